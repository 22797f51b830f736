"""A content-addressed request cache in SQLite, shared by runs and processes.

Keys are the sha256 of the canonical request (model, endpoint, messages,
parameters, sample index; never credentials), values the reply. The database
runs in WAL mode with a busy timeout, so several processes can read and write
it at once. Ask for a different ``sample`` to get a fresh generation of the
same prompt.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from gemlib._paths import cache_home
from gemlib.llm.protocol import ChatReply

__all__ = ["RequestCache", "default_cache_path"]


def default_cache_path() -> Path:
    """``llm-cache.sqlite`` in :func:`gemlib._paths.cache_home`."""
    return cache_home() / "llm-cache.sqlite"


class RequestCache:
    """Replies by request key, in one SQLite file."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT NOT NULL)"
        )

    def get(self, key: str) -> ChatReply | None:
        """The cached reply for ``key``, if any."""
        with self._lock:
            row = self._db.execute("SELECT reply FROM replies WHERE key=?", (key,)).fetchone()
        return ChatReply.from_json(row[0]) if row else None

    def put(self, key: str, reply: ChatReply) -> None:
        """Store ``reply`` under ``key`` (the last writer wins; equal keys mean equal requests)."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?)", (key, reply.to_json()))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"RequestCache({str(self.path)!r})"
