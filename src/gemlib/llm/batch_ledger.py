"""The batch ledger: every provider batch gemlib submits, before and after, and its results.

One SQLite file (WAL, synchronous FULL), by default ``batches.sqlite`` beside
the request cache (:func:`gemlib._paths.cache_home`), shared by runs and
processes like the cache: a request's ID is the hash of its content and
server, so any run asking the same question finds it. Tables::

    batches   local_id, provider batch id, state, api_base key, created
    requests  custom_id, local_id, state (pending/ok/failed), the request line, reply or error

A batch is written in state ``submitting`` with all its request lines before
anything is sent; ``submitted`` with the provider's IDs once the batch is
created; ``done`` with every request's outcome once its results are read. A
process killed in between finds the batch in the ledger on its next run and
polls it, or (killed between the provider creating it and the ledger
recording it) finds it at the provider by the ``local_id`` in its metadata.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import attrs

from gemlib._paths import cache_home

__all__ = ["BatchLedger", "LedgerBatch", "default_ledger_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    local_id TEXT PRIMARY KEY, batch_id TEXT, state TEXT NOT NULL,
    endpoint TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    custom_id TEXT NOT NULL, local_id TEXT NOT NULL, state TEXT NOT NULL,
    line TEXT NOT NULL, outcome TEXT, PRIMARY KEY (custom_id, local_id));
CREATE INDEX IF NOT EXISTS requests_by_id ON requests (custom_id, state);
"""


def default_ledger_path() -> Path:
    """``batches.sqlite`` beside the request cache."""
    return cache_home() / "batches.sqlite"


@attrs.frozen
class LedgerBatch:
    """A batch as the ledger knows it."""

    local_id: str
    batch_id: str | None
    state: str
    created: float


class BatchLedger:
    """Batches and request outcomes in one SQLite file, safe across processes."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_ledger_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def _write(
        self, statements: list[tuple[str, tuple[object, ...] | list[tuple[object, ...]]]]
    ) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    if isinstance(params, list):
                        self._db.executemany(sql, params)
                    else:
                        self._db.execute(sql, params)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ writing

    def submitting(self, local_id: str, endpoint: str, lines: dict[str, str]) -> None:
        """Record a batch about to be submitted, with its request lines by custom ID."""
        self._write(
            [
                (
                    "INSERT INTO batches (local_id, state, endpoint, created) "
                    "VALUES (?, 'submitting', ?, ?)",
                    (local_id, endpoint, time.time()),
                ),
                (
                    "INSERT INTO requests (custom_id, local_id, state, line) "
                    "VALUES (?, ?, 'pending', ?)",
                    [(cid, local_id, line) for cid, line in lines.items()],
                ),
            ]
        )

    def submitted(self, local_id: str, batch_id: str) -> None:
        """Record the provider's ID of a batch it created."""
        self._write(
            [
                (
                    "UPDATE batches SET batch_id=?, state='submitted' WHERE local_id=?",
                    (batch_id, local_id),
                )
            ]
        )

    def finished(self, local_id: str, ok: dict[str, str], failed: dict[str, str]) -> None:
        """Record a batch's outcomes: replies (JSON) and errors (JSON) by custom ID."""
        self._write(
            [
                (
                    "UPDATE requests SET state='ok', outcome=? WHERE custom_id=? AND local_id=?",
                    [(reply, cid, local_id) for cid, reply in ok.items()],
                ),
                (
                    "UPDATE requests SET state='failed', outcome=? "
                    "WHERE custom_id=? AND local_id=?",
                    [(error, cid, local_id) for cid, error in failed.items()],
                ),
                ("UPDATE batches SET state='done' WHERE local_id=?", (local_id,)),
            ]
        )

    # ------------------------------------------------------------------ reading

    def reply(self, custom_id: str) -> str | None:
        """The reply (JSON) a finished batch gave this request, if any did."""
        with self._lock:
            row = self._db.execute(
                "SELECT outcome FROM requests WHERE custom_id=? AND state='ok' LIMIT 1",
                (custom_id,),
            ).fetchone()
        return None if row is None else str(row[0])

    def pending_in(self, custom_id: str) -> str | None:
        """The local ID of an unfinished batch holding this request, if one does."""
        with self._lock:
            row = self._db.execute(
                "SELECT local_id FROM requests WHERE custom_id=? AND state='pending' LIMIT 1",
                (custom_id,),
            ).fetchone()
        return None if row is None else str(row[0])

    def batch(self, local_id: str) -> LedgerBatch:
        """One batch's record."""
        with self._lock:
            row = self._db.execute(
                "SELECT local_id, batch_id, state, created FROM batches WHERE local_id=?",
                (local_id,),
            ).fetchone()
        return LedgerBatch(*row)

    def batch_ids(self) -> set[str]:
        """Every provider batch ID the ledger has recorded."""
        with self._lock:
            rows = self._db.execute(
                "SELECT batch_id FROM batches WHERE batch_id IS NOT NULL"
            ).fetchall()
        return {str(row[0]) for row in rows}

    def lines(self, local_id: str) -> dict[str, str]:
        """A batch's request lines by custom ID."""
        with self._lock:
            rows = self._db.execute(
                "SELECT custom_id, line FROM requests WHERE local_id=?", (local_id,)
            ).fetchall()
        return {str(cid): str(line) for cid, line in rows}

    def counts(self) -> dict[str, int]:
        """Batches by state."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM batches GROUP BY state").fetchall()
        return {str(state): int(n) for state, n in rows}

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"BatchLedger({str(self.path)!r})"
