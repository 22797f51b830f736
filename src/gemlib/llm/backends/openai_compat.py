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
import os
import time
from typing import Any, ClassVar

import aiohttp
import attrs

from gemlib._secrets import check_api_base, scrub
from gemlib.errors import ConnectFailed, ModelRequestError, ReplyTooLarge, TransientModelError
from gemlib.llm.http_status import error_for_status, retry_after_seconds
from gemlib.llm.model_id import ModelId
from gemlib.llm.prices import cost
from gemlib.llm.protocol import BackendOptions, ChatReply, ChatRequest

__all__ = ["PROVIDERS", "OpenAICompatBackend", "key_from_environment", "parse_completion"]

PROVIDERS = ("openai", "hosted_vllm")
"""The prefixes this backend strips from a model string: the rest is the name the server knows."""

KEY_HINT = "pass api_key=..., or set OPENAI_API_KEY or HOSTED_VLLM_API_KEY"


def key_from_environment(model: str) -> str | None:
    """The key litellm would read for ``model``: ``HOSTED_VLLM_API_KEY`` for ``hosted_vllm/``,
    else ``OPENAI_API_KEY``."""
    provider = ModelId.parse(model).provider
    return os.environ.get("HOSTED_VLLM_API_KEY" if provider == "hosted_vllm" else "OPENAI_API_KEY")


@attrs.define
class OpenAICompatBackend:
    """Posts to ``{api_base}/chat/completions``; no retries here (the ``LLM`` retries)."""

    default_concurrency: ClassVar[int] = 16

    api_base: str = attrs.field()
    api_key: str | None = attrs.field(default=None, repr=False)
    timeout: float = 120.0
    price: bool = True
    max_reply_bytes: int = 16 * 2**20
    """A longer body is refused (:class:`~gemlib.errors.ReplyTooLarge`) without being read."""
    _sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = attrs.field(
        factory=dict, repr=False
    )

    @api_base.validator
    def _check(self, _: Any, value: str) -> None:
        check_api_base(value)

    @classmethod
    def build(cls, options: BackendOptions) -> OpenAICompatBackend:
        """The client for ``options.api_base``, with the given key or the environment's."""
        if not options.api_base:
            raise ValueError(f"{options.model}: the openai-compatible transport needs api_base")
        key = options.api_key or key_from_environment(options.model)
        return cls(options.api_base, key, options.timeout, max_reply_bytes=options.max_reply_bytes)

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

    def _scrub(self, text: str) -> str:
        return scrub(text, (self.api_key,))

    async def _read(self, response: aiohttp.ClientResponse, model: str) -> bytes:
        """The body, refused (:class:`ReplyTooLarge`) as soon as it passes the cap."""
        declared = response.content_length
        if declared is not None and declared > self.max_reply_bytes:
            raise ReplyTooLarge(
                f"the server announced a reply of {declared} bytes "
                f"(max_reply_bytes={self.max_reply_bytes})",
                model=model,
            )
        chunks: list[bytes] = []
        size = 0
        while chunk := await response.content.read(2**16):
            size += len(chunk)
            if size > self.max_reply_bytes:
                raise ReplyTooLarge(
                    f"a reply of more than {self.max_reply_bytes} bytes (max_reply_bytes)",
                    model=model,
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def acomplete(self, request: ChatRequest) -> ChatReply:
        """Send ``request`` once and map failures to gemlib errors."""
        body = {
            **request.params,
            "model": ModelId.parse(request.model).served_as(PROVIDERS),
            "messages": [dict(m) for m in request.messages],
        }
        url = self.api_base.rstrip("/") + "/chat/completions"
        started = time.perf_counter()
        try:
            async with self._session().post(url, json=body) as response:
                status, headers = response.status, response.headers
                raw = await self._read(response, request.model)
        except asyncio.TimeoutError:
            raise TransientModelError(
                f"no reply within {self.timeout}s", model=request.model
            ) from None
        except aiohttp.ClientConnectorError as exc:
            reason = self._scrub(f"{type(exc).__name__}: {exc}")
            raise ConnectFailed(reason, model=request.model) from None
        except aiohttp.ClientError as exc:
            reason = self._scrub(f"{type(exc).__name__}: {exc}")
            raise TransientModelError(reason, model=request.model) from None
        except ValueError as exc:  # aiohttp refuses some URLs and header combinations
            reason = self._scrub(f"{type(exc).__name__}: {exc}")
            raise ModelRequestError(reason, model=request.model) from None
        text = raw.decode("utf-8", errors="replace")
        if status != 200:
            wait = retry_after_seconds(headers)
            detail = self._scrub(text[:300])
            raise error_for_status(
                status, detail, request.model, retry_after=wait, key_hint=KEY_HINT
            )
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            # Undecodable bytes and bad JSON are ValueErrors, a body nested too deep to
            # parse a RecursionError: a server that sends them is broken, so retried.
            raise TransientModelError(
                f"unreadable reply: {self._scrub(text[:200])!r}", model=request.model
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
        usage = data.get("usage") or {}
        details = usage.get("completion_tokens_details")
        details = details if isinstance(details, dict) else {}
        if not isinstance(content, str):
            raise TypeError("the content is not a string")
        return ChatReply(
            text=content,
            finish_reason=str(choice.get("finish_reason") or "stop"),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            model=model,
            reasoning=reasoning if isinstance(reasoning, str) else "",
            reasoning_tokens=int(details.get("reasoning_tokens") or 0),
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError, OverflowError):
        # OverflowError: int() of an infinite float in `usage`
        raise TransientModelError(
            f"unreadable reply: {scrub(repr(data)[:200])}", model=model
        ) from None
