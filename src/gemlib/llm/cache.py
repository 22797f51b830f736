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
:class:`~gemlib.llm.LLM` then warns once and goes on without the cache.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from gemlib._paths import cache_home
from gemlib.errors import CacheError
from gemlib.llm.protocol import ChatReply

__all__ = ["RequestCache", "default_cache_path"]


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

    def get(self, key: str) -> ChatReply | None:
        """The cached reply for ``key``, if any (an unreadable entry counts as absent)."""
        try:
            with self._lock:
                row = self._db.execute("SELECT reply FROM replies WHERE key=?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        if not row:
            return None
        try:
            return ChatReply.from_json(row[0])
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
