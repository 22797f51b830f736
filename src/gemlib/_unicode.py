"""Lone surrogates: code points that UTF-8 cannot hold.

A JSON escape such as ``"\\ud800"`` without its pair decodes to one, in a
corpus line or in a model's reply, and writing it to a UTF-8 file or to
SQLite then fails. gemlib replaces each with U+FFFD where such text enters.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["LONE_SURROGATE", "has_lone_surrogate", "without_lone_surrogates"]

LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""Matches a lone surrogate (after decoding, a pair is one character above U+FFFF)."""


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate; several times faster than searching with
    :data:`LONE_SURROGATE` (ASCII text has none; other text encodes unless it has one)."""
    if text.isascii():
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def without_lone_surrogates(value: Any) -> Any:
    """``value`` (a string, or lists and dicts of them) with each lone surrogate replaced."""
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {without_lone_surrogates(k): without_lone_surrogates(v) for k, v in value.items()}
    return value
