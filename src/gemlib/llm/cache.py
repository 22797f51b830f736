"""A content-addressed request cache in SQLite, shared by runs and processes.

Keys are the sha256 of the canonical request (model, endpoint, messages,
parameters, sample index; never credentials), values the reply. The database
runs in WAL mode with a busy timeout, so several processes can read and write
it at once. Ask for a different ``sample`` to get a fresh generation of the
same prompt.

Faults: a cache that cannot be opened (unwritable folder, a file that is not
a database) raises :class:`~gemlib.errors.CacheError` when first used, so a run
stops before it spends anything. A cache that fails later (disk full, I/O
error) raises it from :meth:`RequestCache.get` / :meth:`RequestCache.put`;
:class:`CacheHandle`, through which an :class:`~gemlib.llm.LLM` uses the cache,
then warns once and goes on without it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import attrs

from gemlib._paths import cache_home
from gemlib.errors import CacheError
from gemlib.llm.protocol import ChatReply, ChatRequest
from gemlib.llm.reasoning import separate_reasoning

__all__ = ["CacheHandle", "CacheSetting", "RequestCache", "default_cache_path"]

log = logging.getLogger("gemlib")


def default_cache_path() -> Path:
    """``llm-cache.sqlite`` in :func:`gemlib._paths.cache_home`."""
    return cache_home() / "llm-cache.sqlite"


class RequestCache:
    """Replies by request key, in one SQLite file."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT NOT NULL)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc) from None

    def _error(self, exc: BaseException) -> CacheError:
        return CacheError(
            f"the request cache {self.path} cannot be used ({type(exc).__name__}: {exc}); "
            "free or fix its disk, delete the file, set GEMLIB_CACHE_DIR to another folder, "
            "or build the LLM with cache=False"
        )

    def get(self, key: str, **changes: Any) -> ChatReply | None:
        """The cached reply for ``key``, if any (an unreadable entry counts as absent),
        with ``changes`` to its fields (see :meth:`ChatReply.from_json`)."""
        try:
            with self._lock:
                row = self._db.execute("SELECT reply FROM replies WHERE key=?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        if not row:
            return None
        try:
            return ChatReply.from_json(row[0], **changes)
        except (ValueError, TypeError, RecursionError):
            return None

    def put(self, key: str, reply: ChatReply) -> None:
        """Store ``reply`` under ``key`` (the last writer wins; equal keys mean equal requests)."""
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO replies VALUES (?, ?)", (key, reply.to_json())
                )
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc) from None

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"RequestCache({str(self.path)!r})"


CacheSetting = bool | str | os.PathLike[str] | RequestCache | None
"""``True`` for the shared cache, a path, a :class:`RequestCache`, or ``False``/``None``."""


@attrs.define
class CacheHandle:
    """The request cache as one ``LLM`` uses it: opened on first use, dropped after it fails.

    ``endpoint`` (the ``api_base``) is part of every key. A cache that cannot be
    opened raises :class:`~gemlib.errors.CacheError` (the run stops before
    spending anything); one that fails later is warned about once and left alone.
    """

    setting: CacheSetting
    endpoint: str = ""
    _cache: RequestCache | None = attrs.field(init=False, default=None)
    _failed: bool = attrs.field(init=False, default=False)
    off: bool = attrs.field(init=False)
    """No cache was asked for (``False`` or ``None``): nothing to look up or store."""

    @off.default
    def _off(self) -> bool:
        return self.setting is None or self.setting is False

    def _open(self) -> RequestCache | None:
        if self._failed:
            return None
        if self._cache is None and self.setting not in (None, False):
            setting = self.setting
            if isinstance(setting, RequestCache):
                self._cache = setting
            else:
                self._cache = RequestCache(None if setting is True else setting)  # type: ignore[arg-type]
        return self._cache

    def lookup(self, request: ChatRequest) -> tuple[str, ChatReply | None]:
        """``request``'s key (``""`` without a cache) and its cached reply, marked ``cached``."""
        cache = self._open()
        if cache is None:
            return "", None
        key = request.cache_key(self.endpoint)
        try:
            hit = cache.get(key, cached=True, latency=0.0, cost=0.0)
        except CacheError as exc:
            self._broke(exc)
            return key, None
        if hit is not None and not hit.reasoning:  # written before reasoning was separated
            hit = separate_reasoning(hit)
        return key, hit

    def store(self, key: str, reply: ChatReply) -> None:
        """Keep ``reply`` under ``key`` (from :meth:`lookup`); a truncated reply is not kept."""
        cache = self._open()
        if cache is None or not key or reply.truncated:
            return
        try:
            cache.put(key, reply)
        except CacheError as exc:
            self._broke(exc)

    def _broke(self, exc: CacheError) -> None:
        """A cache that failed mid-run (disk full, I/O error): warn once, go on without it."""
        if not self._failed:
            self._failed = True
            log.warning("%s; going on without the request cache", exc)
