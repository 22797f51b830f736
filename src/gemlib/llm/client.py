"""`LLM`: a model as gemlib's stages see it, with limits, retries, cache and accounting.

An ``LLM`` composes a backend (:mod:`gemlib.llm.backends`, chosen by the model's
prefix) with the request cache (:class:`~gemlib.llm.cache.CacheHandle`) and a
:class:`~gemlib.llm.retrying.Retrying` sender (limits, retries, timeouts, usage).

    teacher = LLM("openai/gpt-4.1-mini", temperature=0.7, limits=Limits(max_concurrency=32))
    reply = await teacher.acomplete([{"role": "user", "content": "hi"}], stage="demo")

A model is a litellm model string plus options, so OpenAI, Anthropic, a vLLM
or llama.cpp server (``hosted_vllm/...``, ``openai/...`` with ``api_base``) and a
fine-tuned synthesizer plug in the same way. Share one ``LLM`` between stages
to share its limits: a 429 then slows every stage's traffic to that model.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from gemlib._secrets import check_api_base, scrub
from gemlib._sync import run_sync
from gemlib.errors import CacheError, GemlibError, ModelConfigError, ModelError
from gemlib.llm.backends import TRANSPORTS, backend_type, default_timeout
from gemlib.llm.backends.openai_compat import key_from_environment
from gemlib.llm.batch import BatchBackend, BatchSettings
from gemlib.llm.cache import CacheHandle, CacheSetting
from gemlib.llm.limits import Limiter, Limits
from gemlib.llm.model_id import ModelId
from gemlib.llm.protocol import Backend, BackendOptions, ChatReply, ChatRequest
from gemlib.llm.retrying import Retrying
from gemlib.llm.usage import BatchCounts, ModelUsage

__all__ = ["LLM", "as_llm"]

log = logging.getLogger("gemlib")


@attrs.define(repr=False)
class LLM:
    """A model reached through a backend (litellm unless given), with everything around it.

    ``temperature``/``max_tokens``/``params``: default generation settings.
    ``limits``: concurrency and rate limits. ``max_retries``: attempts after the
    first for 429s, timeouts, connection errors and 5xx, with exponential
    backoff and jitter (``backoff_base``, ``backoff_max`` seconds) and
    ``Retry-After`` honoured up to ``max_retry_after`` seconds; other 4xx are not
    retried. ``cache``: ``True`` for the shared cache
    (:func:`~gemlib.llm.cache.default_cache_path`), a path, a :class:`RequestCache`,
    or ``False``/``None`` for none. ``max_reply_bytes``: a longer reply is refused
    (:class:`~gemlib.errors.ReplyTooLarge`). ``api_key`` is never shown, logged,
    cached or written to a manifest; an ``api_base`` carrying ``user:password@``
    is refused when the ``LLM`` is built (:class:`~gemlib.errors.ModelConfigError`).

    Every failure leaves :meth:`acomplete` as a :class:`~gemlib.errors.ModelError`
    (or :class:`~gemlib.errors.FatalError`) whose text is scrubbed of credentials;
    a server that was never reached raises :class:`~gemlib.errors.ModelUnreachable`
    after ``min(max_retries, 2)`` retries, so a run against a wrong address stops
    within seconds.
    """

    model: str
    api_base: str | None = None
    api_key: str | None = attrs.field(default=None, repr=False)
    temperature: float | None = None
    max_tokens: int | None = None
    params: dict[str, Any] = attrs.field(factory=dict)
    limits: Limits = attrs.field(
        default=attrs.Factory(
            lambda self: Limits(max_concurrency=backend_type(str(self.model)).default_concurrency),
            takes_self=True,
        )
    )
    """Defaults to the backend's ``default_concurrency``: 16 requests in flight, and 1
    for ``local/`` models (a llama.cpp context serves one request at a time, so queued
    calls would spend their ``timeout`` waiting for it)."""
    max_retries: int = attrs.field(default=5, validator=attrs.validators.ge(0))
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    timeout: float = attrs.field(
        default=attrs.Factory(
            lambda self: default_timeout(backend_type(str(self.model))), takes_self=True
        ),
        validator=[  # every wait bounded: None, 0, NaN or infinity refused here, not per request
            attrs.validators.instance_of((int, float)),
            attrs.validators.gt(0),
            attrs.validators.lt(math.inf),
        ],
    )
    """Seconds one attempt may take (a finite number above 0); defaults to the backend's
    ``default_timeout``: 120 for a server, 1800 for a ``local/`` model (a long reply on a
    busy CPU is slow, not lost)."""
    max_retry_after: float = attrs.field(default=120.0, validator=attrs.validators.ge(0.0))
    """The longest pause a ``Retry-After`` header can impose (``inf``, a day or
    garbage are capped to it, with a warning)."""
    max_reply_bytes: int = attrs.field(default=16 * 2**20, validator=attrs.validators.ge(1))
    cache: CacheSetting = True
    transport: str = attrs.field(
        default="auto", validator=attrs.validators.in_(("auto", *TRANSPORTS))
    )
    """How requests travel when no ``backend`` is given: ``litellm``, or the direct
    ``openai-compatible`` client (about a tenth of litellm's CPU per call). ``auto``
    asks the model prefix's backend (:mod:`gemlib.llm.backends`): the direct client
    for ``hosted_vllm/...`` and for ``openai/...`` with an ``api_base``, llama.cpp for
    ``local/...``, a plug-in's backend for its prefix, litellm for everything else."""
    backend: Backend | None = None
    batch: bool | BatchSettings = False
    """Send requests in provider batches at batch prices (:mod:`gemlib.llm.batch`):
    ``True`` or :class:`~gemlib.llm.batch.BatchSettings`. OpenAI models and
    OpenAI-compatible servers with the batch endpoints, and Anthropic models;
    ``limits`` then become the batches' ``max_in_flight``, and a request waits
    up to ``max_wait``."""
    usage: dict[str, ModelUsage] = attrs.field(init=False, factory=dict)
    """Usage by stage name (``""`` for calls made outside a stage)."""
    _cache: CacheHandle = attrs.field(init=False)
    _sender: Retrying = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if not self.model or not isinstance(self.model, str):
            raise ValueError("LLM needs a model string such as 'openai/gpt-4.1-mini'")
        if self.batch:
            self._use_batches()
        if self.api_base is not None:
            check_api_base(self.api_base)
        if self.backend is None:
            options = BackendOptions(
                self.model, self.api_base, self.api_key, self.timeout, self.max_reply_bytes
            )
            self.backend = self._build(options)
        _check_backend(self.backend)
        self._cache = CacheHandle(self.cache, self.api_base or "")
        self._sender = Retrying(
            self.backend,
            Limiter(self.limits),
            self.model,
            self.max_retries,
            self.backoff_base,
            self.backoff_max,
            self.max_retry_after,
            self._attempt_timeout,
            self.max_reply_bytes,
            self.api_base,
            batched=bool(self.batch),
        )

    def _build(self, options: BackendOptions) -> Backend:
        """The backend serving the model; a plug-in's failure to build one is a
        :class:`~gemlib.errors.ModelConfigError` whose text is scrubbed."""
        kind = backend_type(self.model, self.transport)
        try:
            return kind.build(options)
        except GemlibError:
            raise
        except Exception as exc:
            raise ModelConfigError(
                self._scrub(
                    f"{self.model}: its backend failed to start: {type(exc).__name__}: {exc}"
                )
            ) from None

    def _use_batches(self) -> None:
        from gemlib.llm.batch import OpenAIBatchAPI
        from gemlib.llm.batch_anthropic import AnthropicBatchAPI

        settings = self.batch if isinstance(self.batch, BatchSettings) else BatchSettings()
        if self.backend is not None:
            raise ValueError("batch mode brings its own backend: pass backend or batch, not both")
        api: OpenAIBatchAPI | AnthropicBatchAPI
        provider = ModelId.parse(self.model).provider
        if provider == "anthropic":
            key = self.api_key or os.environ.get("ANTHROPIC_API_KEY")
            api = AnthropicBatchAPI(api_key=key, model=self.model, timeout=self.timeout)
        elif provider in ("openai", "hosted_vllm", ""):
            key = self.api_key or key_from_environment(self.model)
            api = OpenAIBatchAPI(api_key=key, model=self.model, timeout=self.timeout)
        else:
            raise ValueError(
                f"{self.model}: batch mode speaks OpenAI's Batch API (OpenAI models, or an "
                "OpenAI-compatible server as openai/... with api_base) and Anthropic's "
                "Message Batches (anthropic/...)"
            )
        if self.api_base:
            api.api_base = self.api_base
        self.backend = BatchBackend(self.model, api, settings, endpoint=self.api_base or "")
        self.limits = Limits(max_concurrency=settings.max_in_flight)

    @property
    def limiter(self) -> Limiter:
        """The limiter every request to this model waits for (shared by the stages using it)."""
        return self._sender.limiter

    @limiter.setter
    def limiter(self, limiter: Limiter) -> None:
        self._sender.limiter = limiter

    def batch_counts(self) -> BatchCounts | None:
        """Batches submitted, in progress and done, with their requests (batch mode only)."""
        return self.backend.counts() if isinstance(self.backend, BatchBackend) else None

    @property
    def _attempt_timeout(self) -> float:
        """Seconds one attempt may take: ``timeout``, or a batch's ``max_wait``."""
        return (
            self.batch.max_wait
            if isinstance(self.batch, BatchSettings)
            else (BatchSettings().max_wait if self.batch else self.timeout)
        )

    def __repr__(self) -> str:
        base = f", api_base={self._scrub(self.api_base)!r}" if self.api_base else ""
        return f"LLM({self._scrub(self.model)!r}{base})"

    def _scrub(self, text: str) -> str:
        """``text`` without this model's key or anything shaped like a credential."""
        return scrub(text, (self.api_key, getattr(self.backend, "api_key", None)))

    def describe(self) -> dict[str, Any]:
        """What identifies this model's output (manifests, run fingerprints).

        Neither the key nor ``api_base`` is included: the same model moved to
        another server still resumes a run, and URLs can carry credentials.
        """
        return {"model": self.model, "params": self._params()}

    def _params(self) -> dict[str, Any]:
        params = dict(self.params)
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        return params

    def usage_for(self, stage: str) -> ModelUsage:
        """The usage ledger of one stage (created empty on first use)."""
        ledger = self.usage.get(stage)
        if ledger is None:
            ledger = self.usage[stage] = ModelUsage()
        return ledger

    # ------------------------------------------------------------------ calls

    def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        stage: str = "",
        sample: int = 0,
        **params: Any,
    ) -> ChatReply:
        """The synchronous form of :meth:`acomplete`."""

        async def once() -> ChatReply:
            try:
                return await self.acomplete(messages, stage=stage, sample=sample, **params)
            finally:
                await self.aclose()

        return run_sync(once())

    def pause_note(self) -> str | None:
        """Why requests to this model are waiting now (a 429's pause), for progress lines."""
        return self._sender.pause_note()

    async def aclose(self) -> None:
        """Release the connections opened in the running event loop.

        A backend that fails to close, or takes longer than ``timeout``, is reported
        with a warning: its replies are already recorded, and the run's other models
        still get closed.
        """
        if self.backend is None:
            return
        try:
            await asyncio.wait_for(self.backend.aclose(), self.timeout)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, TimeoutError):
                reason = f"no answer within {self.timeout}s"
            log.warning(
                "%s: closing its backend failed (%s); its connections stay open until exit",
                self.model,
                self._scrub(reason),
            )

    async def acomplete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        stage: str = "",
        sample: int = 0,
        **params: Any,
    ) -> ChatReply:
        """Send a chat request; return the reply (from the cache when it holds it).

        The reply's ``text`` is the answer; reasoning written before it is in
        ``reasoning`` (:func:`~gemlib.llm.reasoning.separate_reasoning`).

        ``sample`` asks for the sample-th generation of this exact request: a
        different sample misses the cache, the same one hits it. ``stage``
        names the ledger the usage is booked to. Raises
        :class:`~gemlib.errors.ModelError` subclasses once retries are spent.
        """
        settings = self._params()
        if params:
            settings.update(params)
        request = ChatRequest(self.model, messages, settings, sample)
        ledger = self.usage_for(stage)
        cache = self._cache
        key = ""
        try:
            if not cache.off:
                key, hit = cache.lookup(request)  # CacheError if it cannot be opened: fatal
                if hit is not None:
                    ledger.count("cache_hits")
                    return hit
            reply = await self._sender.send(request, ledger)
        except (ModelError, CacheError) as exc:
            self._scrub_error(exc)
            raise
        if key:
            cache.store(key, reply)
        return reply

    def _scrub_error(self, exc: Exception) -> None:
        # Apart from acomplete: a generator there would make `self` a closure cell, one
        # more object per request held across its await.
        exc.args = tuple(self._scrub(a) if isinstance(a, str) else a for a in exc.args)


def _check_backend(backend: object) -> None:
    """Refuse, before anything is sent, a backend lacking a method of the protocol."""
    missing = [
        name for name in ("acomplete", "aclose") if not callable(getattr(backend, name, None))
    ]
    if missing:
        raise TypeError(
            f"{type(backend).__name__} is no gemlib backend: it lacks "
            f"{' and '.join(f'async def {name}()' for name in missing)} (see the Backend "
            "protocol in gemlib.llm; a backend holding no connections writes "
            "`async def aclose(self) -> None: pass`)"
        )


def as_llm(model: str | LLM, **options: Any) -> LLM:
    """An :class:`LLM` from a model string (with ``options``) or an existing one."""
    return model if isinstance(model, LLM) else LLM(model, **options)
