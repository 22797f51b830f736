"""Sending one request through a backend: limits, retries, timeouts and the stage's accounting.

:class:`Retrying` wraps a :class:`~gemlib.llm.protocol.Backend` for an
:class:`~gemlib.llm.LLM`. Each attempt waits for the model's limiter, runs
under a timeout, and frees its slot however it ends. 429s, timeouts,
connection errors, 5xx and unreadable replies are retried with exponential
backoff and jitter (a 429 pauses the whole model for the server's
``Retry-After``, capped); other errors are raised at once. A server that never
answered raises :class:`~gemlib.errors.ModelUnreachable` after two quick
retries. Every attempt, retry, error, token and cent is booked to the stage's
:class:`~gemlib.llm.usage.ModelUsage`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random

import attrs

from gemlib._secrets import url_without_credentials
from gemlib._unicode import has_lone_surrogate, without_lone_surrogates
from gemlib.errors import (
    CacheError,
    ConnectFailed,
    ModelError,
    ModelUnreachable,
    RateLimited,
    ReplyTooLarge,
    TransientModelError,
)
from gemlib.llm.deadlines import Deadlines
from gemlib.llm.limits import Limiter
from gemlib.llm.protocol import Backend, ChatReply, ChatRequest
from gemlib.llm.reasoning import separate_reasoning
from gemlib.llm.usage import ModelUsage

__all__ = ["Retrying"]

log = logging.getLogger("gemlib")


@attrs.define
class Retrying:
    """``backend`` behind ``limiter``, with the retry settings of an ``LLM`` (see its fields).

    ``attempt_timeout``: seconds one attempt may take; a backend whose own
    ``attempt_timeout`` attribute is that number bounds each attempt itself (the
    direct transport, whose HTTP client has a deadline per exchange), else a
    :class:`~gemlib.llm.deadlines.Deadlines` timer does. ``batched``: the backend
    sends provider batches (booked as ``batched`` requests).
    """

    backend: Backend
    limiter: Limiter
    model: str
    max_retries: int
    backoff_base: float
    backoff_max: float
    max_retry_after: float
    attempt_timeout: float
    max_reply_bytes: int
    api_base: str | None = None
    batched: bool = False
    _reached: bool = attrs.field(init=False, default=False)
    _capped_retry_after: bool = attrs.field(init=False, default=False)
    _asked_retry_after: float | None = attrs.field(init=False, default=None)
    _deadline: Deadlines | None = attrs.field(init=False, default=None)

    def _deadlines(self) -> Deadlines:
        """The attempts' timer on the running event loop (a later run gets its own)."""
        loop = asyncio.get_running_loop()
        deadlines, seconds = self._deadline, self.attempt_timeout
        if deadlines is None or deadlines.loop is not loop or deadlines.seconds != seconds:
            deadlines = self._deadline = Deadlines(seconds, loop)
        return deadlines

    async def send(self, request: ChatRequest, ledger: ModelUsage) -> ChatReply:
        """The reply to ``request``, after the retries its failures allow; usage booked."""
        limiter = self.limiter
        estimate = request.estimated_tokens() if limiter.counts_tokens else 0
        attempt = 0
        while True:
            if not limiter.take_free_slot():
                await limiter.acquire(estimate)
            ledger.count("requests")
            if self.batched:
                ledger.count("batched")
            try:
                backend, seconds = self.backend, self.attempt_timeout
                own = getattr(backend, "attempt_timeout", None)
                if own == seconds and type(own) is type(seconds):  # and says it as we would
                    reply = await backend.acomplete(request)
                else:
                    reply = await self._deadlines().run(backend.acomplete(request))
                if len(reply.text) > self.max_reply_bytes:  # a backend that cannot stop early
                    raise ReplyTooLarge(
                        f"a reply of {len(reply.text)} characters (max_reply_bytes="
                        f"{self.max_reply_bytes})",
                        model=self.model,
                    )
                reply = _storable(separate_reasoning(reply))
            except BaseException as exc:
                limiter.release(ok=False)  # every exit frees the slot
                if not isinstance(exc, Exception):
                    raise  # cancelled: the run is stopping
                if isinstance(exc, CacheError):  # the batch ledger unusable: stop the run
                    raise
                error = self._model_error(exc)
                if not isinstance(error, TransientModelError) or attempt >= self._retries(error):
                    ledger.errors += 1
                    if isinstance(error, ConnectFailed) and not self._reached:
                        raise self._unreachable(error) from None
                    raise error from None
                delay = self._backoff(attempt)
                if isinstance(error, RateLimited):
                    if error.retry_after is not None:
                        delay = self._retry_after(error.retry_after, delay)
                        delay += random.uniform(0, 0.1)
                    limiter.rate_limited(delay)
                else:
                    await asyncio.sleep(delay)
                attempt += 1
                ledger.retries += 1
                continue
            self._reached = True
            limiter.release(ok=True)
            if estimate:
                limiter.settle_tokens(estimate, reply.prompt_tokens + reply.completion_tokens)
            ledger.count_reply(
                reply.prompt_tokens, reply.completion_tokens, reply.reasoning_tokens, reply.cost
            )
            return reply

    def _model_error(self, exc: Exception) -> ModelError:
        """Any exception out of a backend as a gemlib model error."""
        if isinstance(exc, ModelError):
            return exc
        if isinstance(exc, asyncio.TimeoutError):
            return TransientModelError(f"no reply within {self.attempt_timeout}s", model=self.model)
        return ModelError(f"the backend failed: {type(exc).__name__}: {exc}", model=self.model)

    def _retries(self, error: ModelError) -> int:
        """Retries allowed for ``error``: few while the server has never answered."""
        if isinstance(error, ConnectFailed) and not self._reached:
            return min(self.max_retries, 2)
        return self.max_retries

    def _unreachable(self, error: ConnectFailed) -> ModelUnreachable:
        where = f" at {url_without_credentials(self.api_base)}" if self.api_base else ""
        reason = str(error).removeprefix(f"{self.model}: ")
        return ModelUnreachable(
            f"cannot reach the model{where} ({reason}); start the server, or fix "
            "--api-base / the network",
            model=self.model,
        )

    def pause_note(self) -> str | None:
        """Why requests to this model are waiting now (a 429's pause), for progress lines."""
        left = self.limiter.pause_left()
        if left <= 0:
            return None
        note = f"{self.model} paused {left:.0f}s after a 429"
        if self._asked_retry_after is not None:
            note += (
                f" (Retry-After {self._asked_retry_after:g}s capped at {self.max_retry_after:g}s)"
            )
        return note

    def _retry_after(self, seconds: float, backoff: float) -> float:
        """The server's ``Retry-After``, capped at ``max_retry_after`` (with one warning).

        A value that is no duration (negative, NaN) leaves the ``backoff``.
        """
        if math.isnan(seconds) or seconds < 0:
            return backoff
        if seconds <= self.max_retry_after:
            self._asked_retry_after = None
            return seconds
        self._asked_retry_after = seconds
        if not self._capped_retry_after:
            self._capped_retry_after = True
            log.warning(
                "%s: the server asked to wait %s s (Retry-After); waiting %s s instead "
                "(LLM(max_retry_after=...))",
                self.model,
                seconds,
                self.max_retry_after,
            )
        return self.max_retry_after

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)


def _storable(reply: ChatReply) -> ChatReply:
    """``reply`` with lone surrogates (from a stray ``\\ud800`` escape) replaced, so the
    cache and the run directory can store it: a server's odd escape is no one's fault."""
    if has_lone_surrogate(reply.text) or has_lone_surrogate(reply.reasoning):
        return attrs.evolve(
            reply,
            text=without_lone_surrogates(reply.text),
            reasoning=without_lone_surrogates(reply.reasoning),
        )
    return reply
