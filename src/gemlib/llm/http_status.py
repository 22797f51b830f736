"""HTTP statuses as gemlib errors: the one table every backend and batch API uses.

- 400 or 413 saying the prompt does not fit the context:
  :class:`~gemlib.errors.PromptTooLong` (the item's own fault);
- 429: :class:`~gemlib.errors.RateLimited`, with the server's ``Retry-After``;
- 401, 403, 404: :class:`~gemlib.errors.ModelAuthError` (the run stops);
- 3xx, a redirect (followed by no gemlib transport): :class:`~gemlib.errors.ModelAuthError`
  saying where the ``api_base`` points (the run stops: every request would be redirected);
- any other 4xx: :class:`~gemlib.errors.ModelRequestError` (not retried);
- 5xx, anything else, or no status: :class:`~gemlib.errors.TransientModelError` (retried).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gemlib.errors import (
    ModelAuthError,
    ModelError,
    ModelRequestError,
    PromptTooLong,
    RateLimited,
    TransientModelError,
)

__all__ = ["KEY_HINT", "error_for_status", "retry_after_seconds"]

KEY_HINT = "pass api_key=..., or set the provider's key variable such as OPENAI_API_KEY"
"""What a 401 or 403 asks the user to do, unless the backend knows better."""

# What OpenAI, vLLM, llama.cpp, TGI and litellm say when a prompt does not fit the context.
_TOO_LONG = re.compile(
    r"(?i)context[ _](?:length|window)|maximum context|too many tokens|exceeds? the "
    r"(?:available )?context|prompt is too long|input is too long"
)


def retry_after_seconds(headers: Mapping[str, Any] | None) -> float | None:
    """A ``Retry-After`` header in seconds; ``None`` when absent or an HTTP date."""
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def error_for_status(
    status: int | None,
    detail: str,
    model: str,
    *,
    retry_after: float | None = None,
    key_hint: str = KEY_HINT,
    location: str | None = None,
) -> ModelError:
    """The gemlib error for a failure the server answered with ``status``.

    ``detail`` is the server's text, already scrubbed of credentials by the caller;
    ``key_hint`` is added to a 401 or 403 (which key to pass or set); ``location``, a
    redirect's target (scrubbed too), to a 3xx.
    """
    message = f"HTTP {status}: {detail}" if status is not None else detail
    if status in (400, 413) and _TOO_LONG.search(detail[:2000]):
        return PromptTooLong(message, model=model, status=status)
    if status == 429:
        return RateLimited(message, model=model, retry_after=retry_after)
    if status in (401, 403):
        return ModelAuthError(f"{message} ({key_hint})", model=model, status=status)
    if status == 404:
        return ModelAuthError(
            f"{message} (check the model name and api_base)", model=model, status=status
        )
    if status is not None and 300 <= status < 400:
        where = f" to {location}" if location else ""
        return ModelAuthError(
            f"{message} (the api_base redirects{where}; redirects are not followed: give the "
            "final address as api_base)",
            model=model,
            status=status,
        )
    if status is not None and 400 <= status < 500:
        return ModelRequestError(message, model=model, status=status)
    return TransientModelError(message, model=model, status=status)
