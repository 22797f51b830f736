"""The model interface gemlib owns: a chat request in, a reply with usage and cost out.

A *backend* sends one request and maps provider failures onto gemlib's
:mod:`~gemlib.errors` (:meth:`Backend.acomplete`), and releases what it holds when
a run ends (:meth:`Backend.aclose`). A :class:`BackendType` builds one for a model
prefix from :class:`BackendOptions` (see :mod:`gemlib.llm.backends`).
:class:`ScriptedBackend` is the test double shipped with the library: its replies
are chosen by a function of the request. Limits, retries, caching and accounting
sit above backends, in :class:`gemlib.llm.LLM`, so every backend gets them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

import attrs

__all__ = [
    "Backend",
    "BackendOptions",
    "BackendType",
    "ChatReply",
    "ChatRequest",
    "ScriptedBackend",
    "canonical_json",
]


def canonical_json(value: Any) -> str:
    """Sorted-key compact JSON: equal requests give equal bytes."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _messages(value: Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    return tuple(value)


@attrs.frozen
class ChatRequest:
    """One chat completion request.

    ``params`` holds generation settings (``temperature``, ``max_tokens``,
    ``response_format``...). ``sample`` distinguishes deliberate repeat samples of
    the same prompt: it is part of the cache key but is not sent.
    """

    model: str
    messages: tuple[Mapping[str, Any], ...] = attrs.field(converter=_messages)
    params: Mapping[str, Any] = attrs.field(factory=dict)
    sample: int = 0

    def cache_key(self, endpoint: str = "") -> str:
        """sha256 of the canonical request: model, endpoint, messages, params, sample."""
        body = {
            "model": self.model,
            "endpoint": endpoint,
            "messages": list(self.messages),
            "params": dict(self.params),
            "sample": self.sample,
        }
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()

    def estimated_tokens(self) -> int:
        """A cheap upper-bound guess of the request's tokens, for token-rate limits."""
        prompt = sum(len(str(m.get("content") or "")) for m in self.messages) // 3 + 8
        return prompt + int(self.params.get("max_tokens") or 1024)


@attrs.frozen
class ChatReply:
    """A model's reply: its answer, its reasoning, why it stopped, and what it cost.

    ``text`` is the answer alone: reasoning the model wrote before it (a
    ``<think>`` block, or a ``reasoning_content`` field) is in ``reasoning``
    (see :mod:`gemlib.llm.reasoning`). ``completion_tokens`` includes the
    ``reasoning_tokens``, as providers count and bill them.
    """

    text: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    model: str = ""
    cached: bool = False
    latency: float = 0.0
    reasoning: str = ""
    reasoning_tokens: int = 0

    @property
    def truncated(self) -> bool:
        """Whether the reply was cut off by the token limit."""
        return self.finish_reason == "length"

    def to_json(self) -> str:
        """The reply as JSON (for the cache)."""
        return canonical_json(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str, **changes: Any) -> ChatReply:
        """Read a reply written by :meth:`to_json`, with ``changes`` to its fields (built
        once: ``attrs.evolve`` afterwards costs twice the reading's construction)."""
        return cls(**{**json.loads(text), **changes})


class Backend(Protocol):
    """Sends one request. Raises :class:`~gemlib.errors.ModelError` subclasses on failure.

    A backend that fails every attempt itself once a timeout has passed, with a
    :class:`~gemlib.errors.TransientModelError` saying "no reply within {seconds}s",
    may say so in an ``attempt_timeout`` attribute (those seconds, ``None`` when it cannot
    tell): an ``LLM`` whose ``timeout`` is the same number then sets no timer of its own.
    """

    async def acomplete(self, request: ChatRequest) -> ChatReply:
        """Send ``request`` and return the reply."""
        ...

    async def aclose(self) -> None:
        """Release what the backend opened in the running event loop (connections,
        sessions); the ``LLM`` calls it when a run ends. A backend holding nothing
        does nothing."""
        ...


@attrs.frozen
class BackendOptions:
    """What an :class:`~gemlib.llm.LLM` tells a :class:`BackendType` to build its backend.

    ``api_key`` is the one the user passed (``None``: the backend reads its
    provider's variable, if it needs one); it is left out of the repr.
    """

    model: str
    api_base: str | None = None
    api_key: str | None = attrs.field(default=None, repr=False)
    timeout: float = 120.0
    max_reply_bytes: int = 16 * 2**20


class BackendType(Protocol):
    """What serves a model prefix (``local``, ``hosted_vllm``, a plug-in's ``example``):
    usually a backend class with a ``build`` classmethod and a class attribute."""

    @property
    def default_concurrency(self) -> int:
        """Requests in flight when the user sets no ``Limits`` (a llama.cpp context serves one)."""
        ...

    def build(self, options: BackendOptions) -> Backend:
        """The backend for one ``LLM``."""
        ...


ScriptResult = str | ChatReply | BaseException
Script = Callable[[ChatRequest], ScriptResult | Awaitable[ScriptResult]]


@attrs.define
class ScriptedBackend:
    """A backend whose replies come from ``script(request)``: for tests and dry runs.

    The script returns reply text, a full :class:`ChatReply`, or an exception to
    raise (``RateLimited``, ``TransientModelError``...); it may be async.
    Token counts of text replies are estimated from their length. Every
    request is appended to ``requests``.
    """

    script: Script
    requests: list[ChatRequest] = attrs.field(factory=list)

    async def aclose(self) -> None:
        """Nothing to release."""

    async def acomplete(self, request: ChatRequest) -> ChatReply:
        """Record the request and play the script's answer."""
        self.requests.append(request)
        started = time.perf_counter()
        result = self.script(request)
        if isinstance(result, Awaitable):
            result = await result
        if isinstance(result, BaseException):
            raise result
        if isinstance(result, ChatReply):
            return result
        prompt = sum(len(str(m.get("content") or "")) for m in request.messages)
        return ChatReply(
            text=result,
            prompt_tokens=max(1, prompt // 4),
            completion_tokens=max(1, len(result) // 4),
            model=request.model,
            latency=time.perf_counter() - started,
        )
