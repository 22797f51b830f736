"""Where a run keeps its results: in memory, or in a resumable run directory.

A run directory holds::

    manifest.json       the pipeline (stage names, versions, config), gemlib version, fingerprint
    progress.sqlite     one row per finished corpus item, committed byte lengths of the JSONL files,
                        the run's cumulative statistics
    outputs.jsonl       one finished item per line
    rejections.jsonl    one Rejection per line
    .lock               held while a process uses the directory

Results of a corpus item are appended to the JSONL files only when the item's
whole tree (every fan-out child through every stage) is finished, and the item
counts as done only once the SQLite transaction that records it and the new
file lengths commits. On open, each file is cut back to its committed length,
so a crash at any instant loses only work that had not been committed yet
(items in flight, and items finished within the last commit interval) and never
leaves a duplicate or a half-written line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

import attrs
from pydantic import BaseModel, TypeAdapter

from gemlib._version import __version__
from gemlib.errors import RunDirError
from gemlib.model import ModelUsage, Rejection, RunStats, StageStats, UsageByStage, merge_usage

__all__ = ["DirStore", "MemoryStore", "RunTotals", "Store", "open_results", "read_totals"]

MANIFEST = "manifest.json"
OUTPUTS = "outputs.jsonl"
REJECTIONS = "rejections.jsonl"
PROGRESS = "progress.sqlite"
LOCK = ".lock"


def _dump(item: Any) -> str:
    if isinstance(item, BaseModel):
        return item.model_dump_json()
    return json.dumps(item, ensure_ascii=False, default=str)


def merge_stats(total: dict[str, StageStats], part: dict[str, StageStats]) -> None:
    """Add the per-stage counts of ``part`` into ``total``."""
    for name, stats in part.items():
        total.setdefault(name, StageStats()).merge(stats)


class Store:
    """What the runner needs from a place to keep results."""

    def seen(self, item_id: str) -> str | None:
        """``"resumed"`` if an earlier run finished the item, ``"duplicate"`` if this one did."""
        raise NotImplementedError

    def record(
        self,
        item_id: str,
        outputs: list[Any],
        rejections: list[Rejection],
        stats: dict[str, StageStats],
    ) -> None:
        """Keep the results of one finished corpus item (durable after :meth:`commit`)."""
        raise NotImplementedError

    def note_usage(self, session: UsageByStage) -> None:
        """This session's model usage so far (made durable by the next commit)."""
        raise NotImplementedError

    def total_usage(self) -> UsageByStage:
        """Model usage of every session this store holds."""
        raise NotImplementedError

    def commit(self) -> None:
        """Make everything recorded so far durable."""

    def close(self, run_stats: RunStats) -> None:
        """Commit, write final statistics, release the directory."""

    def stage_stats(self) -> dict[str, StageStats]:
        """Cumulative per-stage counts of every item this store holds."""
        raise NotImplementedError

    def counts(self) -> tuple[int, int]:
        """``(outputs, rejections)`` held, without reading them."""
        raise NotImplementedError


@attrs.define
class MemoryStore(Store):
    """Keeps results in lists: for notebooks and small runs without ``run_dir``."""

    outputs: list[Any] = attrs.field(factory=list)
    rejections: list[Rejection] = attrs.field(factory=list)
    _done: set[str] = attrs.field(factory=set)
    _stats: dict[str, StageStats] = attrs.field(factory=dict)
    _usage: UsageByStage = attrs.field(factory=dict)

    def note_usage(self, session: UsageByStage) -> None:
        self._usage = session

    def total_usage(self) -> UsageByStage:
        return self._usage

    def seen(self, item_id: str) -> str | None:
        return "duplicate" if item_id in self._done else None

    def record(
        self,
        item_id: str,
        outputs: list[Any],
        rejections: list[Rejection],
        stats: dict[str, StageStats],
    ) -> None:
        self._done.add(item_id)
        self.outputs.extend(outputs)
        self.rejections.extend(rejections)
        merge_stats(self._stats, stats)

    def stage_stats(self) -> dict[str, StageStats]:
        return self._stats

    def counts(self) -> tuple[int, int]:
        return len(self.outputs), len(self.rejections)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY, session INTEGER NOT NULL, outputs INTEGER NOT NULL,
    rejections INTEGER NOT NULL, finished REAL NOT NULL);
CREATE TABLE IF NOT EXISTS files (name TEXT PRIMARY KEY, length INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class DirStore(Store):
    """A resumable run directory (see the module docstring for its layout)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        manifest: dict[str, Any],
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_file = self._lock()
        try:
            if overwrite:
                for name in (
                    MANIFEST,
                    OUTPUTS,
                    REJECTIONS,
                    PROGRESS,
                    PROGRESS + "-wal",
                    PROGRESS + "-shm",
                ):
                    (self.path / name).unlink(missing_ok=True)
            self._check_manifest(manifest)
            self._db = sqlite3.connect(self.path / PROGRESS, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self.session = self._next_session()
            self._files = {name: self._open_truncated(name) for name in (OUTPUTS, REJECTIONS)}
        except BaseException:
            self._unlock()
            raise
        self._prior_usage = self._load_usage()
        self._session_usage: UsageByStage = {}
        self._pending: list[tuple[str, int, int]] = []
        self._pending_ids: set[str] = set()
        self._pending_stats: dict[str, StageStats] = {}

    # ------------------------------------------------------------------ opening

    def _lock(self) -> IO[str]:
        handle = open(self.path / LOCK, "a+")  # noqa: SIM115  # held for the store's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunDirError(
                f"run directory {self.path} is in use by {holder}; wait for it to finish "
                "or choose another run_dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        return handle

    def _unlock(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()

    def _check_manifest(self, manifest: dict[str, Any]) -> None:
        path = self.path / MANIFEST
        if path.exists():
            try:
                existing = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise RunDirError(
                    f"{path} is unreadable ({exc}); move the directory away"
                ) from None
            if existing.get("fingerprint") != manifest["fingerprint"]:
                raise RunDirError(
                    f"run directory {self.path} was made by a different pipeline:\n"
                    f"  there: {_stage_line(existing)}\n  now:   {_stage_line(manifest)}\n"
                    "Use a new run_dir, or pass overwrite=True to start it afresh."
                )
            return
        if any(self.path.glob("*.jsonl")) or (self.path / PROGRESS).exists():
            raise RunDirError(f"{self.path} holds run files but no manifest; refusing to mix runs")
        body = {**manifest, "gemlib_version": __version__, "created": time.time()}
        _write_atomic(path, json.dumps(body, indent=2, sort_keys=True))

    def _next_session(self) -> int:
        row = self._db.execute("SELECT value FROM kv WHERE key='session'").fetchone()
        session = int(row[0]) + 1 if row else 1
        self._db.execute("INSERT OR REPLACE INTO kv VALUES ('session', ?)", (str(session),))
        return session

    def _open_truncated(self, name: str) -> IO[bytes]:
        row = self._db.execute("SELECT length FROM files WHERE name=?", (name,)).fetchone()
        committed = row[0] if row else 0
        path = self.path / name
        with open(path, "ab") as handle:
            if handle.tell() > committed:  # cut off what a crash left uncommitted
                handle.truncate(committed)
        return open(path, "ab")  # kept open for appends until close()

    def _load_usage(self) -> UsageByStage:
        row = self._db.execute("SELECT value FROM kv WHERE key='usage'").fetchone()
        return {} if row is None else _usage_from_json(row[0])

    # ------------------------------------------------------------------ Store

    def note_usage(self, session: UsageByStage) -> None:
        self._session_usage = session

    def total_usage(self) -> UsageByStage:
        total: UsageByStage = {}
        merge_usage(total, self._prior_usage)
        merge_usage(total, self._session_usage)
        return total

    def seen(self, item_id: str) -> str | None:
        if item_id in self._pending_ids:
            return "duplicate"
        row = self._db.execute("SELECT session FROM items WHERE id=?", (item_id,)).fetchone()
        if row is None:
            return None
        return "duplicate" if row[0] == self.session else "resumed"

    def record(
        self,
        item_id: str,
        outputs: list[Any],
        rejections: list[Rejection],
        stats: dict[str, StageStats],
    ) -> None:
        out, rej = self._files[OUTPUTS], self._files[REJECTIONS]
        if outputs:
            out.write("".join(_dump(o) + "\n" for o in outputs).encode())
        if rejections:
            rej.write("".join(r.model_dump_json() + "\n" for r in rejections).encode())
        self._pending.append((item_id, len(outputs), len(rejections)))
        self._pending_ids.add(item_id)
        merge_stats(self._pending_stats, stats)

    def commit(self) -> None:
        if not self._pending and not self._session_usage:
            return
        for handle in self._files.values():
            handle.flush()
            os.fsync(handle.fileno())
        now = time.time()
        totals = self.stage_stats()
        merge_stats(totals, self._pending_stats)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO items VALUES (?, ?, ?, ?, ?)",
                [(i, self.session, o, r, now) for i, o, r in self._pending],
            )
            db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?)",
                [(name, h.tell()) for name, h in self._files.items()],
            )
            db.execute(
                "INSERT OR REPLACE INTO kv VALUES ('stage_stats', ?)",
                (json.dumps({k: v.model_dump() for k, v in totals.items()}),),
            )
            usage = {
                stage: {model: u.model_dump() for model, u in models.items()}
                for stage, models in self.total_usage().items()
            }
            db.execute("INSERT OR REPLACE INTO kv VALUES ('usage', ?)", (json.dumps(usage),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._pending.clear()
        self._pending_ids.clear()
        self._pending_stats = {}

    def close(self, run_stats: RunStats) -> None:
        try:
            self.commit()
            for handle in self._files.values():
                handle.close()
            manifest_path = self.path / MANIFEST
            manifest = json.loads(manifest_path.read_text())
            manifest["last_session"] = {
                "session": self.session,
                "finished": time.time(),
                "gemlib_version": __version__,
                "stats": run_stats.model_dump(),
            }
            _write_atomic(manifest_path, json.dumps(manifest, indent=2, sort_keys=True))
            self._db.close()
        finally:
            self._unlock()

    def stage_stats(self) -> dict[str, StageStats]:
        row = self._db.execute("SELECT value FROM kv WHERE key='stage_stats'").fetchone()
        if row is None:
            return {}
        return {k: StageStats.model_validate(v) for k, v in json.loads(row[0]).items()}

    def counts(self) -> tuple[int, int]:
        row = self._db.execute("SELECT SUM(outputs), SUM(rejections) FROM items").fetchone()
        return int(row[0] or 0), int(row[1] or 0)


def open_results(
    path: str | os.PathLike[str], output_adapter: TypeAdapter[Any] | None = None
) -> tuple[Iterator[Any], Iterator[Rejection]]:
    """Read a finished (or interrupted) run directory's committed outputs and rejections."""
    base = Path(path)
    db = sqlite3.connect(f"file:{base / PROGRESS}?mode=ro", uri=True)
    try:
        lengths = dict(db.execute("SELECT name, length FROM files").fetchall())
    finally:
        db.close()
    outputs = (
        output_adapter.validate_json(line) if output_adapter else json.loads(line)
        for line in _committed_lines(base / OUTPUTS, lengths.get(OUTPUTS, 0))
    )
    rejections = (
        Rejection.model_validate_json(line)
        for line in _committed_lines(base / REJECTIONS, lengths.get(REJECTIONS, 0))
    )
    return outputs, rejections


class RunTotals(NamedTuple):
    """A run directory's committed totals over every session."""

    stages: dict[str, StageStats]
    usage: UsageByStage
    items: int
    """Corpus items finished."""
    outputs: int
    rejections: int


def read_totals(path: str | os.PathLike[str]) -> RunTotals:
    """A run directory's cumulative per-stage counts, model usage, items, outputs, rejections.

    Read from the committed state, without taking the directory's lock: every
    session of a resumed run is counted, unlike the manifest's ``last_session``.
    """
    db = sqlite3.connect(f"file:{Path(path) / PROGRESS}?mode=ro", uri=True)
    try:
        kv = dict(db.execute("SELECT key, value FROM kv").fetchall())
        items, outputs, rejections = db.execute(
            "SELECT COUNT(*), SUM(outputs), SUM(rejections) FROM items"
        ).fetchone()
    finally:
        db.close()
    stages = {
        k: StageStats.model_validate(v) for k, v in json.loads(kv.get("stage_stats", "{}")).items()
    }
    usage = _usage_from_json(kv.get("usage", "{}"))
    return RunTotals(stages, usage, int(items), int(outputs or 0), int(rejections or 0))


def _usage_from_json(text: str) -> UsageByStage:
    return {
        stage: {model: ModelUsage.model_validate(u) for model, u in models.items()}
        for stage, models in json.loads(text).items()
    }


def _committed_lines(path: Path, length: int) -> Iterator[bytes]:
    if not length:
        return
    with open(path, "rb") as handle:
        read = 0
        for line in handle:
            read += len(line)
            if read > length:
                return
            yield line


def _stage_line(manifest: dict[str, Any]) -> str:
    stages = manifest.get("stages", [])
    return " | ".join(f"{s.get('name')} v{s.get('version')}" for s in stages) or "(none)"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
