"""The litellm backend: any provider litellm knows, imported only when first used.

litellm's own retries are switched off (gemlib's retry loop sees every 429 and
slows the whole model); its exceptions are mapped onto gemlib's error types
with credentials scrubbed from the messages.
"""

from __future__ import annotations

import functools
import os
import time
from types import ModuleType
from typing import Any, ClassVar

import attrs

from gemlib._secrets import scrub
from gemlib.errors import (
    ConnectFailed,
    ModelAuthError,
    ModelError,
    PromptTooLong,
    TransientModelError,
)
from gemlib.llm.backends.registry import BACKENDS
from gemlib.llm.http_status import error_for_status, retry_after_seconds
from gemlib.llm.protocol import BackendOptions, ChatReply, ChatRequest

__all__ = ["LiteLLMBackend", "import_litellm"]


@functools.cache
def import_litellm() -> ModuleType:
    """Import litellm once, offline and quiet (gemlib changes nothing else in it)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


_STATUS_OF = (
    ("RateLimitError", 429),
    ("AuthenticationError", 401),
    ("PermissionDeniedError", 403),
    ("NotFoundError", 404),
)
"""litellm's exception types and the statuses they stand for (whatever status they carry)."""


_WELL_KNOWN = ("anthropic", "gemini", "vertex_ai", "bedrock", "azure", "openrouter", "ollama")


def _unknown_provider(model: str, litellm: ModuleType) -> str:
    theirs = {str(getattr(p, "value", p)) for p in litellm.provider_list}
    examples = ", ".join(f"{name}/" for name in _WELL_KNOWN if name in theirs)
    ours = ", ".join(f"{name}/" for name in BACKENDS.names())
    return (
        f"unknown provider in the model name {model!r}: give it as provider/model, such as "
        f"openai/gpt-4.1-mini or hosted_vllm/NAME (with --api-base); known prefixes: {ours} "
        f"(gemlib's backends) and the {len(theirs)} providers litellm knows ({examples} ...)"
    )


def _headers(exc: BaseException) -> Any:
    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    return headers


def _map_error(exc: BaseException, model: str, secret: str | None) -> ModelError:
    litellm = import_litellm()
    message = scrub(str(exc), (secret,))
    if "llm provider not provided" in message.lower():
        # A model string without a provider, or a misspelt one (`opnai/...`).
        return ModelAuthError(_unknown_provider(model, litellm), model=model)
    if "missing credentials" in message.lower() or "api_key client option must be set" in message:
        # litellm raises these as server errors, but no retry can fix them.
        return ModelAuthError(
            f"no API key: {message.rstrip('.')}. Pass api_key=..., set the provider's variable "
            "(e.g. OPENAI_API_KEY), or for a local server that needs none, any placeholder "
            "such as OPENAI_API_KEY=none",
            model=model,
        )
    status = getattr(exc, "status_code", None)
    # litellm's types say more than their statuses: a timeout is 408, a lost connection 500.
    if isinstance(exc, litellm.ContextWindowExceededError):
        return PromptTooLong(message, model=model, status=status)
    if isinstance(exc, litellm.Timeout):
        return TransientModelError(message, model=model, status=status)
    if isinstance(exc, litellm.APIConnectionError):
        return ConnectFailed(message, model=model, status=status)
    for kind, implied in _STATUS_OF:
        if isinstance(exc, getattr(litellm, kind)):
            status = implied
    return error_for_status(
        status if isinstance(status, int) else None,
        message,
        model,
        retry_after=retry_after_seconds(_headers(exc)),
    )


@attrs.define
class LiteLLMBackend:
    """Sends requests through ``litellm.acompletion``.

    ``api_key`` is passed to litellm only; it is left out of the repr and never
    logged or cached. Without it litellm reads the provider's usual variable
    (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``...).
    """

    default_concurrency: ClassVar[int] = 16

    api_base: str | None = None
    api_key: str | None = attrs.field(default=None, repr=False)
    timeout: float = 120.0
    extra: dict[str, Any] = attrs.field(factory=dict)

    @classmethod
    def build(cls, options: BackendOptions) -> LiteLLMBackend:
        """A backend passing ``options``' server, key and timeout to litellm."""
        return cls(options.api_base, options.api_key, options.timeout)

    async def aclose(self) -> None:
        """Nothing to release: litellm keeps its own connection pools."""

    async def acomplete(self, request: ChatRequest) -> ChatReply:
        """Send ``request`` once (no retries here) and map failures to gemlib errors."""
        litellm = import_litellm()
        kwargs: dict[str, Any] = {
            **self.extra,
            **request.params,
            "model": request.model,
            "messages": [dict(m) for m in request.messages],
            "timeout": self.timeout,
            "num_retries": 0,
            "max_retries": 0,
        }
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        started = time.perf_counter()
        try:
            response = await litellm.acompletion(**kwargs)
        except Exception as exc:
            raise _map_error(exc, request.model, self.api_key) from None
        if not response.choices:
            raise TransientModelError("the reply had no choices", model=request.model)
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        hidden = getattr(response, "_hidden_params", {}) or {}
        details = getattr(usage, "completion_tokens_details", None)
        reasoning = getattr(choice.message, "reasoning_content", None)
        return ChatReply(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason or "stop",
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost=float(hidden.get("response_cost") or 0.0),
            model=request.model,
            latency=time.perf_counter() - started,
            reasoning=reasoning if isinstance(reasoning, str) else "",
            reasoning_tokens=int(getattr(details, "reasoning_tokens", 0) or 0),
        )
