"""Anthropic's Message Batches behind :class:`~gemlib.llm.batch.BatchAPI`.

A batch is one ``POST /v1/messages/batches`` holding every request (no file
upload); it is ``in_progress``, ``canceling`` or ``ended``, and its results
are a JSONL file at ``results_url``, one line per request: ``succeeded`` with
the message, ``errored`` with the error, ``canceled`` or ``expired``.

Anthropic batches carry no metadata, so a batch created by a process killed
before its ledger recorded the ID is recognised by what can be seen of it: a
batch created since the ledger's record with the same number of requests. If
the guess is wrong, none of its results carry our request IDs, so every
request counts as unfinished and is submitted again: a wrong guess costs a
duplicate, never a wrong reply.
"""

from __future__ import annotations

import json
from collections.abc import Container
from datetime import datetime
from typing import Any

import attrs

from gemlib.errors import TransientModelError
from gemlib.llm.batch import HTTPBatchAPI, LineResult, ProviderBatch
from gemlib.llm.model_id import ModelId
from gemlib.llm.protocol import ChatReply, ChatRequest

__all__ = ["ANTHROPIC_API", "AnthropicBatchAPI"]

ANTHROPIC_API = "https://api.anthropic.com"
VERSION = "2023-06-01"
PATH = "/v1/messages/batches"
DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires ``max_tokens``; used when the request sets none."""
PASSED = ("temperature", "top_p", "top_k", "stop_sequences", "thinking", "metadata")
"""Request settings Anthropic's Messages API takes as they are."""
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def _seconds(value: Any) -> float:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


@attrs.define
class AnthropicBatchAPI(HTTPBatchAPI):
    """``/v1/messages/batches`` of the Anthropic API."""

    api_base: str = ANTHROPIC_API

    def headers(self) -> dict[str, str]:
        """The key and the API version."""
        headers = {"anthropic-version": VERSION}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers

    def line(self, request: ChatRequest, custom_id: str) -> str:
        """The request in Messages API form: system text apart, ``max_tokens`` always set."""
        system = [
            str(m.get("content") or "") for m in request.messages if m.get("role") == "system"
        ]
        params: dict[str, Any] = {
            "model": ModelId.parse(request.model).served_as(("anthropic",)),
            "max_tokens": int(request.params.get("max_tokens") or DEFAULT_MAX_TOKENS),
            "messages": [
                {"role": m.get("role"), "content": m.get("content")}
                for m in request.messages
                if m.get("role") != "system"
            ],
            **{k: v for k, v in request.params.items() if k in PASSED},
        }
        if "stop" in request.params:
            params["stop_sequences"] = request.params["stop"]
        if system:
            params["system"] = "\n\n".join(system)
        return json.dumps({"custom_id": custom_id, "params": params}, ensure_ascii=False)

    async def submit(self, local_id: str, lines: list[str], window: str) -> str:
        """One request holding every line (Anthropic's window is fixed at 24 hours)."""
        body = {"requests": [json.loads(line) for line in lines]}
        return str((await self._json("POST", PATH, body=body))["id"])

    async def status(self, batch_id: str) -> ProviderBatch:
        """``processing_status``: done once ``ended``."""
        raw = await self._json("GET", f"{PATH}/{batch_id}")
        status = str(raw.get("processing_status"))
        return ProviderBatch(batch_id, status, status == "ended", raw)

    async def cancel(self, batch_id: str) -> None:
        """Ask Anthropic to cancel the batch."""
        await self._json("POST", f"{PATH}/{batch_id}/cancel")

    async def find(
        self, local_id: str, since: float, count: int, known: Container[str]
    ) -> str | None:
        """A batch of ``count`` requests created since ``since`` that the ledger does not
        know (see the module docstring)."""
        after: str | None = None
        while True:
            page = await self._json(
                "GET", f"{PATH}?limit=100" + (f"&after_id={after}" if after else "")
            )
            batches = page.get("data") or []
            for batch in batches:
                counts = batch.get("request_counts") or {}
                fits = _seconds(batch.get("created_at")) >= since and sum(counts.values()) == count
                if fits and str(batch["id"]) not in known:
                    return str(batch["id"])
            if not page.get("has_more") or not batches:
                return None
            if min(_seconds(b.get("created_at")) for b in batches) < since:
                return None
            after = str(page.get("last_id") or batches[-1].get("id"))

    async def results(self, batch: ProviderBatch) -> list[LineResult]:
        """The lines of ``results_url``."""
        url = batch.raw.get("results_url")
        if not url:
            return []
        content = await self._call("GET", str(url))
        return [r for r in map(self._result, content.splitlines()) if r is not None]

    def _result(self, raw: bytes) -> LineResult | None:
        try:
            entry = json.loads(raw)
            cid = str(entry["custom_id"])
            result = entry["result"]
            kind = result["type"]
        except (ValueError, KeyError, TypeError):
            return None
        if kind == "succeeded":
            try:
                return LineResult(cid, self._reply(result["message"]))
            except (KeyError, TypeError, AttributeError):
                unreadable = f"unreadable message: {json.dumps(result)[:200]}"
                return LineResult(cid, message=self.scrub(unreadable))
        if kind == "errored":
            error = (result.get("error") or {}).get("error") or {}
            status = ERROR_STATUS.get(str(error.get("type")), 500)
            return LineResult(
                cid, status=status, message=self.scrub(str(error.get("message"))[:500])
            )
        return LineResult(cid, message=f"the request was {kind} before it ran")

    def _reply(self, message: dict[str, Any]) -> ChatReply:
        blocks = message["content"]
        text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        thinking = "".join(b.get("thinking", "") for b in blocks if b.get("type") == "thinking")
        usage = message.get("usage") or {}
        if not isinstance(text, str):
            raise TransientModelError("unreadable message", model=self.model)
        return ChatReply(
            text=text,
            finish_reason="length" if message.get("stop_reason") == "max_tokens" else "stop",
            prompt_tokens=int(usage.get("input_tokens") or 0),
            completion_tokens=int(usage.get("output_tokens") or 0),
            model=self.model,
            reasoning=thinking,
        )
