"""A direct backend for OpenAI-compatible chat servers (vLLM, llama.cpp, TGI, ...).

litellm spends about 2.5 ms of CPU per call, which caps one process near 400
requests per second however fast the server is. Against a server that speaks
the OpenAI chat API, this backend posts the request with one pooled
``aiohttp`` session per event loop and reads the reply itself, for about a
tenth of that (``httpx``'s pool was measured slower still at high concurrency).
Failures map onto the same gemlib errors as the litellm backend; cost comes
from the price table litellm ships, read as a file (0 for a model it does not
list, as for any self-hosted model); litellm itself is never imported here.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import attrs

from gemlib.errors import (
    ModelAuthError,
    ModelError,
    ModelRequestError,
    RateLimited,
    TransientModelError,
)
from gemlib.llm.prices import cost
from gemlib.llm.protocol import ChatReply, ChatRequest

__all__ = ["OpenAICompatBackend", "error_for_status", "parse_completion", "served_name"]

_PREFIXES = ("openai/", "hosted_vllm/")


def served_name(model: str) -> str:
    """The name the server knows: the litellm string without its provider prefix."""
    for prefix in _PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix) :]
    return model


def _retry_after(headers: Any) -> float | None:
    try:
        return float(headers["retry-after"])
    except (KeyError, ValueError):
        return None


def error_for_status(status: int, text: str, headers: Any, model: str) -> ModelError:
    """The gemlib error for an HTTP failure: 429 rate limited, 401/403/404 fatal, 5xx transient."""
    text = text[:300]
    if status == 429:
        return RateLimited(f"HTTP 429: {text}", model=model, retry_after=_retry_after(headers))
    if status in (401, 403):
        return ModelAuthError(
            f"HTTP {status}: {text} (pass api_key=..., or set OPENAI_API_KEY "
            "or HOSTED_VLLM_API_KEY)",
            model=model,
            status=status,
        )
    if status == 404:
        return ModelAuthError(
            f"HTTP 404: {text} (check the model name and api_base)", model=model, status=status
        )
    if 400 <= status < 500:
        return ModelRequestError(f"HTTP {status}: {text}", model=model, status=status)
    return TransientModelError(f"HTTP {status}: {text}", model=model, status=status)


@attrs.define
class OpenAICompatBackend:
    """Posts to ``{api_base}/chat/completions``; no retries here (the ``LLM`` retries)."""

    api_base: str
    api_key: str | None = attrs.field(default=None, repr=False)
    timeout: float = 120.0
    price: bool = True
    _sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = attrs.field(
        factory=dict, repr=False
    )

    def _session(self) -> aiohttp.ClientSession:
        # A session belongs to one event loop; a later run gets its own.
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            for stale in [other for other in self._sessions if other.is_closed()]:
                del self._sessions[stale]
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            session = aiohttp.ClientSession(
                headers=headers,
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
            self._sessions[loop] = session
        return session

    async def aclose(self) -> None:
        """Close this event loop's session (a run calls it when it ends)."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()

    async def acomplete(self, request: ChatRequest) -> ChatReply:
        """Send ``request`` once and map failures to gemlib errors."""
        body = {
            **request.params,
            "model": served_name(request.model),
            "messages": [dict(m) for m in request.messages],
        }
        url = self.api_base.rstrip("/") + "/chat/completions"
        started = time.perf_counter()
        try:
            async with self._session().post(url, json=body) as response:
                status, text, headers = response.status, await response.text(), response.headers
        except asyncio.TimeoutError:
            raise TransientModelError(
                f"no reply within {self.timeout}s", model=request.model
            ) from None
        except aiohttp.ClientError as exc:
            raise TransientModelError(f"{type(exc).__name__}: {exc}", model=request.model) from None
        if status != 200:
            raise error_for_status(status, text, headers, request.model)
        try:
            data = json.loads(text)
        except ValueError:
            raise TransientModelError(
                f"unreadable reply: {text[:200]!r}", model=request.model
            ) from None
        reply = parse_completion(data, request.model)
        return attrs.evolve(
            reply,
            cost=cost(request.model, reply.prompt_tokens, reply.completion_tokens)
            if self.price
            else 0.0,
            latency=time.perf_counter() - started,
        )


def parse_completion(data: Any, model: str) -> ChatReply:
    """A chat completion's JSON body as a :class:`ChatReply` (cost and latency left at 0).

    Raises :class:`TransientModelError` for a body that is not a completion.
    """
    try:
        choice = data["choices"][0]
        message = choice["message"]
        content = message.get("content") or ""
        reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        raise TransientModelError(
            f"unreadable reply: {json.dumps(data)[:200]!r}", model=model
        ) from None
    usage = data.get("usage") or {}
    details = usage.get("completion_tokens_details")
    details = details if isinstance(details, dict) else {}
    return ChatReply(
        text=content,
        finish_reason=choice.get("finish_reason") or "stop",
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        model=model,
        reasoning=reasoning if isinstance(reasoning, str) else "",
        reasoning_tokens=int(details.get("reasoning_tokens") or 0),
    )
