"""Keeping credentials out of every text gemlib shows or stores: the one scrubber.

Error messages from providers and HTTP libraries can carry an API key (a
server echoing the ``Authorization`` header in a 400 body), and URLs can carry
``user:password@``. Everything that turns such text into an error message,
a rejection reason, a log line or a repr passes it through :func:`scrub`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from gemlib.errors import ModelConfigError

__all__ = ["MASK", "check_api_base", "scrub", "url_credentials", "url_without_credentials"]

MASK = "***"
_CUT_PREFIX = 8
"""Characters of a secret's start that are masked wherever they appear (a secret cut short)."""

# Each pattern is linear (no nested quantifiers) and keeps its prefix in group 1.
_PATTERNS = (
    # "Bearer sk-...", "Basic dXNlcjpwYXNz" (an echoed Authorization header)
    re.compile(r"(?i)(\b(?:bearer|basic)\s+)[^\s\"',;}\]]+"),
    # Authorization: ..., "api_key": "...", x-api-key=..., token=..., password=...
    re.compile(
        r"(?i)(\b(?:authorization|x-api-key|api[-_]?key|access[-_]?token|password|secret)"
        r"[\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)[^\s\"',;}\]]+"
    ),
    # user:password@ in any URL
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s@\"']+@"),
    # provider-style keys that appear bare: sk-..., sk-proj-..., hf_...
    re.compile(r"()\b(?:sk-[A-Za-z0-9_-]{12,}|hf_[A-Za-z0-9]{20,})"),
)


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with the given ``secrets`` and anything shaped like a credential masked.

    A secret cut short (an error quoting the first 60 bytes of a line the server echoed
    the key into) is masked too: any run of its first :data:`_CUT_PREFIX` or more
    characters.
    """
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, MASK)
            if len(secret) > _CUT_PREFIX and secret[:_CUT_PREFIX] in text:
                text = _mask_cut(text, secret)
    for pattern in _PATTERNS:
        text = pattern.sub(
            lambda m: m.group(1) + (MASK + "@" if m.group(0).endswith("@") else MASK), text
        )
    return text


def _mask_cut(text: str, secret: str) -> str:
    """``text`` with each run of ``secret``'s leading characters (at least
    :data:`_CUT_PREFIX`) masked."""
    head, start = secret[:_CUT_PREFIX], 0
    kept: list[str] = []
    while (found := text.find(head, start)) >= 0:
        end = found + _CUT_PREFIX
        while end < len(text) and end - found < len(secret) and text[end] == secret[end - found]:
            end += 1
        kept += (text[start:found], MASK)
        start = end
    return "".join(kept) + text[start:]


def url_credentials(url: str) -> tuple[str, str] | None:
    """The ``(user, password)`` a URL carries before its host, if any."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.username is None and parts.password is None:
        return None
    return parts.username or "", parts.password or ""


def url_without_credentials(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``."""
    return scrub(url)


def check_api_base(url: str) -> None:
    """Refuse an ``api_base`` that cannot work, or that carries credentials."""
    if url_credentials(url) is not None:
        raise ModelConfigError(
            f"api_base {url_without_credentials(url)} carries credentials (user:password@); "
            "gemlib does not send them. Give the server's URL without them and pass the key "
            "as api_key=... (or the provider's variable, such as OPENAI_API_KEY)"
        )
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in ("http", "https") or not rest.split("/")[0]:
        raise ModelConfigError(
            f"api_base {scrub(url)!r} is not an http(s) URL; give one such as "
            "http://127.0.0.1:8000/v1"
        )
