"""Facts about objects that are shared and never changed in place, kept by identity.

A trajectory's tools come from :meth:`gemlib.Tool.from_any`, which hands out one
``Tool`` per definition, so the same parameter schemas reach the rule checks
for every document. Facts about them (their validators, whether they are
well formed, whether they hold a regex) are kept by the schema's identity; the
schema itself is held too, so its ``id`` cannot be reused by another object.
A ``Tool`` is frozen; its parameters must not be changed in place either.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["IdentityMemo"]

V = TypeVar("V")

MEMO_SIZE = 4096
"""Entries kept before the memo starts afresh (a few per tool)."""


class IdentityMemo(Generic[V]):
    """``compute(obj, extra)`` once per object and ``extra`` key, by identity; bounded."""

    def __init__(self) -> None:
        self._items: dict[tuple[int, Hashable], tuple[Any, V]] = {}

    def get(self, obj: Any, compute: Callable[[Any, Any], V], extra: Hashable = None) -> V:
        """The value kept for ``obj`` and ``extra``, or ``compute(obj, extra)`` kept for them."""
        key = (id(obj), extra)
        hit = self._items.get(key)
        if hit is not None and hit[0] is obj:
            return hit[1]
        value = compute(obj, extra)
        if len(self._items) >= MEMO_SIZE:
            self._items.clear()
        self._items[key] = (obj, value)
        return value
