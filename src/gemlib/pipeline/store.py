"""Where a run keeps its results: in memory, or in a resumable run directory.

A run directory holds::

    manifest.json       the pipeline (stage names, versions, config), gemlib version, fingerprint
    progress.sqlite     one row per finished corpus item, committed byte lengths of the JSONL files,
                        the run's cumulative statistics
    outputs.jsonl       one finished item per line
    rejections.jsonl    one Rejection per line
    run.json            the settings that made the run (``settings``; `gemlib run` writes them)
    .lock               held while a process uses the directory

A partitioned run (:mod:`gemlib.cluster`) keeps one such directory per
partition, ``part-00000``, ``part-00001``, ... under its root; the readers here
(:func:`open_results`, :func:`read_totals`) read either kind.

Results of a corpus item are appended to the JSONL files only when the item's
whole tree (every fan-out child through every stage) is finished, and the item
counts as done only once the SQLite transaction that records it and the new
file lengths commits. On open, each file is cut back to its committed length,
so a crash at any instant loses only work that had not been committed yet
(items in flight, and items finished within the last commit interval) and never
leaves a duplicate or a half-written line. Results wait in memory until the
commit writes them, so a write that fails (a full disk) is cut back before
anything else commits. A file found shorter than its committed length (cut or
deleted by hand) is refused by the store and by every reader, saying what is
missing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, NamedTuple, NoReturn

import attrs
from pydantic import BaseModel, TypeAdapter
from pydantic_core import PydanticSerializationError

from gemlib._atomic import write_atomic
from gemlib._unicode import LONE_SURROGATE, without_lone_surrogates
from gemlib._version import __version__
from gemlib.errors import RunDirError, RunDirWriteError
from gemlib.model import ModelUsage, Rejection, RunStats, StageStats, UsageByStage, merge_usage

__all__ = [
    "DirStore",
    "MemoryStore",
    "RunTotals",
    "Store",
    "forget_missing",
    "open_results",
    "partition_dir",
    "pipeline_changes",
    "read_manifest",
    "read_totals",
    "run_dirs",
]

MANIFEST = "manifest.json"
OUTPUTS = "outputs.jsonl"
REJECTIONS = "rejections.jsonl"
PROGRESS = "progress.sqlite"
LOCK = ".lock"
SETTINGS = "run.json"
PARTITION = "part-{:05d}"
PARTITION_GLOB = "part-[0-9][0-9][0-9][0-9][0-9]"
_RUN_FILES = (MANIFEST, OUTPUTS, REJECTIONS, PROGRESS, PROGRESS + "-wal", PROGRESS + "-shm")


def _dump(item: Any) -> str:
    """One JSON line, storable as UTF-8: a lone surrogate (left in a value by a model's
    stray ``\\ud800`` escape) becomes U+FFFD rather than failing the commit."""
    if isinstance(item, BaseModel):
        try:
            return item.model_dump_json()
        except PydanticSerializationError:
            item = without_lone_surrogates(item.model_dump(mode="json"))
    return LONE_SURROGATE.sub("\ufffd", json.dumps(item, ensure_ascii=False, default=str))


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
    """A resumable run directory (see the module docstring for its layout).

    Opening it takes the lock, then checks the manifest; only then is anything
    written (``settings`` included), so a refused open changes nothing. Every
    problem with the directory raises :class:`~gemlib.errors.RunDirError`
    naming the file and what to do; a failed write raises
    :class:`~gemlib.errors.RunDirWriteError` after cutting the files back to
    what was committed.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        manifest: dict[str, Any],
        overwrite: bool = False,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(_os_problem(self.path, exc)) from None
        self._lock_file = self._lock()
        try:
            if overwrite:
                for name in (*_RUN_FILES, SETTINGS):
                    (self.path / name).unlink(missing_ok=True)
            self._check_manifest(manifest)
            self._db = _open_progress(self.path / PROGRESS)
            with self._db_errors(writing=True):
                self.session = self._next_session()
                self._committed = {name: self._cut_back(name) for name in (OUTPUTS, REJECTIONS)}
                self._prior_usage = self._load_usage()
            self._fds = {
                name: os.open(self.path / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
                for name in self._committed
            }
            if settings is not None:
                write_atomic(self.path / SETTINGS, json.dumps(settings, indent=2))
        except RunDirError:
            self._unlock()
            raise
        except OSError as exc:
            self._unlock()
            raise RunDirError(_os_problem(self.path, exc)) from None
        except BaseException:
            self._unlock()
            raise
        self._session_usage: UsageByStage = {}
        self._pending: list[tuple[str, int, int]] = []
        self._pending_ids: set[str] = set()
        self._pending_stats: dict[str, StageStats] = {}
        self._buffers = {name: bytearray() for name in self._committed}
        self._failed: RunDirWriteError | None = None

    # ------------------------------------------------------------------ opening

    def _lock(self) -> IO[str]:
        return _take_lock(self.path)

    def _unlock(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()

    def _check_manifest(self, manifest: dict[str, Any]) -> None:
        path = self.path / MANIFEST
        if path.exists():
            existing = read_manifest(self.path)
            if existing.get("fingerprint") != manifest["fingerprint"]:
                raise RunDirError(
                    f"run directory {self.path} was made by a different pipeline:\n"
                    + "\n".join(f"  {line}" for line in pipeline_changes(existing, manifest))
                    + "\nUse another run directory, or start this one afresh (its results "
                    "are deleted) with `gemlib run ... --overwrite` (in Python: overwrite=True)."
                )
            return
        if any(self.path.glob("*.jsonl")) or (self.path / PROGRESS).exists():
            raise RunDirError(
                f"{self.path} holds run files but no {MANIFEST}; refusing to mix runs: "
                "use another run directory"
            )
        body = {**manifest, "gemlib_version": __version__, "created": time.time()}
        write_atomic(path, json.dumps(body, indent=2, sort_keys=True))

    def _next_session(self) -> int:
        row = self._db.execute("SELECT value FROM kv WHERE key='session'").fetchone()
        session = int(row[0]) + 1 if row else 1
        self._db.execute("INSERT OR REPLACE INTO kv VALUES ('session', ?)", (str(session),))
        return session

    def _cut_back(self, name: str) -> int:
        """Check ``name`` holds its committed bytes; cut off what a crash left after them."""
        row = self._db.execute("SELECT length FROM files WHERE name=?", (name,)).fetchone()
        committed = int(row[0]) if row else 0
        column = "outputs" if name == OUTPUTS else "rejections"
        records = self._db.execute(f"SELECT SUM({column}) FROM items").fetchone()[0] or 0
        path = self.path / name
        check_committed(path, committed, int(records))
        with open(path, "ab") as handle:
            if handle.tell() > committed:
                handle.truncate(committed)
        return committed

    def _load_usage(self) -> UsageByStage:
        row = self._db.execute("SELECT value FROM kv WHERE key='usage'").fetchone()
        return {} if row is None else _usage_from_json(row[0])

    @contextlib.contextmanager
    def _db_errors(self, *, writing: bool = False) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise RunDirError(_db_problem(self.path / PROGRESS, exc, writing)) from None

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
        with self._db_errors():
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
        """Queue one item's results; nothing reaches the files before :meth:`commit`."""
        out = "".join(_dump(o) + "\n" for o in outputs).encode()
        rej = "".join(_dump(r) + "\n" for r in rejections).encode()
        self._buffers[OUTPUTS] += out
        self._buffers[REJECTIONS] += rej
        self._pending.append((item_id, len(outputs), len(rejections)))
        self._pending_ids.add(item_id)
        merge_stats(self._pending_stats, stats)

    def commit(self) -> None:
        """Append the queued results, sync them, then record them as done in one transaction.

        If any write fails, the files are cut back to their committed lengths,
        nothing queued counts as done, and this and every later commit raise
        :class:`~gemlib.errors.RunDirWriteError`.
        """
        if self._failed is not None:
            raise self._failed
        if not self._pending and not self._session_usage:
            return
        where = self.path / OUTPUTS
        try:
            lengths = {}
            for name, data in self._buffers.items():
                where = self.path / name
                if data:
                    _write_all(self._fds[name], data)
                    os.fsync(self._fds[name])
                lengths[name] = self._committed[name] + len(data)
            where = self.path / PROGRESS
            self._record_done(lengths)
        except (OSError, sqlite3.Error) as exc:
            self._fail(where, exc)
        self._committed = lengths
        for data in self._buffers.values():
            data.clear()
        self._pending.clear()
        self._pending_ids.clear()
        self._pending_stats = {}

    def _record_done(self, lengths: dict[str, int]) -> None:
        now = time.time()
        totals = self.stage_stats()
        merge_stats(totals, self._pending_stats)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?, ?)",
            [(i, self.session, o, r, now) for i, o, r in self._pending],
        )
        db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?)", list(lengths.items()))
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

    def _fail(self, where: Path, exc: OSError | sqlite3.Error) -> NoReturn:
        """Undo a failed commit: roll back, cut the files back, refuse further commits."""
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
        for name, descriptor in self._fds.items():
            with contextlib.suppress(OSError):  # if this fails too, the next open cuts back
                os.ftruncate(descriptor, self._committed[name])
        cause = "the disk is full" if _disk_full(where, exc) else str(exc)
        self._failed = RunDirWriteError(
            f"writing to {where} failed: {cause}. The run stopped; finished items are kept and "
            "nothing half-written counts. Free space (or fix the cause) and rerun the same "
            "command to resume."
        )
        raise self._failed from None

    def close(self, run_stats: RunStats) -> None:
        """Commit, record this session's statistics in the manifest, release the directory.

        After a failed write only the release happens: the failure was raised already.
        """
        try:
            if self._failed is None:
                self.commit()
                self._note_session(run_stats)
        finally:
            for descriptor in self._fds.values():
                with contextlib.suppress(OSError):
                    os.close(descriptor)
            self._db.close()
            self._unlock()

    def _note_session(self, run_stats: RunStats) -> None:
        manifest = read_manifest(self.path)
        manifest["last_session"] = {
            "session": self.session,
            "finished": time.time(),
            "gemlib_version": __version__,
            "stats": run_stats.model_dump(),
        }
        try:
            write_atomic(self.path / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
        except OSError as exc:
            self._fail(self.path / MANIFEST, exc)

    def stage_stats(self) -> dict[str, StageStats]:
        with self._db_errors():
            row = self._db.execute("SELECT value FROM kv WHERE key='stage_stats'").fetchone()
        if row is None:
            return {}
        return {k: StageStats.model_validate(v) for k, v in json.loads(row[0]).items()}

    def counts(self) -> tuple[int, int]:
        with self._db_errors():
            row = self._db.execute("SELECT SUM(outputs), SUM(rejections) FROM items").fetchone()
        return int(row[0] or 0), int(row[1] or 0)


def _take_lock(base: Path) -> IO[str]:
    """Hold ``base``'s lock (until the handle is closed) or raise :class:`RunDirError`."""
    path = base / LOCK
    try:
        handle = open(path, "a+")  # noqa: SIM115  # held for the store's life
    except IsADirectoryError:
        raise RunDirError(
            f"{path} is a directory, not gemlib's lock file: remove it and rerun"
        ) from None
    except OSError as exc:
        raise RunDirError(_os_problem(base, exc)) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunDirError(
            f"run directory {base} is in use by {holder}; wait for it to finish "
            "or choose another run directory"
        ) from None
    try:
        os.ftruncate(handle.fileno(), 0)
        _write_all(handle.fileno(), f"pid {os.getpid()}\n".encode())
    except OSError as exc:
        handle.close()
        raise RunDirError(_os_problem(base, exc)) from None
    return handle


def forget_missing(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """Make a run directory whose files were cut or deleted usable again.

    The items whose outputs or rejections are no longer in the files (and every
    item recorded after the first of them, since records follow the order
    items were recorded) are marked not done, and the files are cut back to the
    records that remain, so the next run redoes those items. Returns ``(items,
    outputs, rejections)`` forgotten. Stage counts in the run's totals are
    cumulative and still include the forgotten items' first attempt.
    """
    base = Path(path)
    lock = _take_lock(base)
    try:
        db = _open_progress(base / PROGRESS)
        try:
            return _forget_missing(base, db)
        except (OSError, sqlite3.Error) as exc:
            raise RunDirError(f"could not repair {base} ({exc}); {_START_AFRESH}") from None
        finally:
            db.close()
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def _forget_missing(base: Path, db: sqlite3.Connection) -> tuple[int, int, int]:
    lengths = {str(k): int(v) for k, v in db.execute("SELECT name, length FROM files")}
    ends = {name: _line_ends(base / name, lengths.get(name, 0)) for name in (OUTPUTS, REJECTIONS)}
    items = db.execute("SELECT rowid, outputs, rejections FROM items ORDER BY rowid").fetchall()
    kept_out = kept_rej = 0
    cut = None
    for rowid, outputs, rejections in items:
        if kept_out + outputs > len(ends[OUTPUTS]) or kept_rej + rejections > len(ends[REJECTIONS]):
            cut = rowid
            break
        kept_out += outputs
        kept_rej += rejections
    if cut is None:
        return 0, 0, 0
    total_out = sum(row[1] for row in items)
    total_rej = sum(row[2] for row in items)
    new = {
        OUTPUTS: ends[OUTPUTS][kept_out - 1] if kept_out else 0,
        REJECTIONS: ends[REJECTIONS][kept_rej - 1] if kept_rej else 0,
    }
    db.execute("BEGIN IMMEDIATE")
    forgotten = db.execute("DELETE FROM items WHERE rowid >= ?", (cut,)).rowcount
    db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?)", list(new.items()))
    db.execute("COMMIT")
    for name, length in new.items():  # longer than committed: also what the next open does
        with open(base / name, "ab") as handle:
            handle.truncate(length)
    return forgotten, total_out - kept_out, total_rej - kept_rej


def _line_ends(path: Path, limit: int) -> list[int]:
    """Byte offsets just past each whole line in the first ``limit`` bytes of ``path``."""
    ends: list[int] = []
    try:
        handle = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return ends
    with handle:
        position = 0
        for line in handle:
            position += len(line)
            if position > limit or not line.endswith(b"\n"):
                break
            ends.append(position)
    return ends


def run_dirs(path: str | os.PathLike[str]) -> list[Path]:
    """The run directories at ``path``: itself, or its partitions (``part-NNNNN``) in order.

    Raises :class:`RunDirError` when ``path`` is neither.
    """
    base = Path(path)
    if (base / PROGRESS).is_file():
        return [base]
    parts = sorted(p for p in base.glob(PARTITION_GLOB) if (p / PROGRESS).is_file())
    if parts:
        return parts
    raise RunDirError(
        f"{base} is not a run directory (it has no {PROGRESS}, and no partitions "
        f"{PARTITION_GLOB} that have one)"
    )


def partition_dir(root: str | os.PathLike[str], index: int) -> Path:
    """Where partition ``index`` of a partitioned run keeps its run directory."""
    return Path(root) / PARTITION.format(index)


def open_results(
    path: str | os.PathLike[str], output_adapter: TypeAdapter[Any] | None = None
) -> tuple[Iterator[Any], Iterator[Rejection]]:
    """Stream a run directory's committed outputs and rejections (every session).

    What a killed run left after the committed length is not read. A
    partitioned run's root reads every partition in order. A file shorter than
    its committed length raises :class:`RunDirError` saying what is missing.
    """
    directories = run_dirs(path)
    states = [_read_state(d) for d in directories]  # check every file before streaming
    outputs = (
        output_adapter.validate_json(line) if output_adapter else json.loads(line)
        for directory, state in zip(directories, states, strict=True)
        for line in _committed_lines(directory / OUTPUTS, state.lengths.get(OUTPUTS, 0))
    )
    rejections = (
        Rejection.model_validate_json(line)
        for directory, state in zip(directories, states, strict=True)
        for line in _committed_lines(directory / REJECTIONS, state.lengths.get(REJECTIONS, 0))
    )
    return outputs, rejections


class _State(NamedTuple):
    lengths: dict[str, int]
    kv: dict[str, str]
    items: int
    outputs: int
    rejections: int


def _read_state(base: Path) -> _State:
    """The committed state of a run directory, its files checked against it (no lock taken)."""
    path = base / PROGRESS
    if not path.is_file():
        raise RunDirError(f"{base} is not a run directory (no {PROGRESS})")
    try:
        db = _connect_read_only(path)
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if not {"files", "items", "kv"} <= tables:  # created, nothing committed yet
                return _State({}, {}, 0, 0, 0)
            lengths = {str(k): int(v) for k, v in db.execute("SELECT name, length FROM files")}
            kv = dict(db.execute("SELECT key, value FROM kv").fetchall())
            items, outputs, rejections = db.execute(
                "SELECT COUNT(*), SUM(outputs), SUM(rejections) FROM items"
            ).fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise RunDirError(_db_problem(path, exc, writing=False)) from None
    state = _State(lengths, kv, int(items), int(outputs or 0), int(rejections or 0))
    for name, records in ((OUTPUTS, state.outputs), (REJECTIONS, state.rejections)):
        check_committed(base / name, lengths.get(name, 0), records)
    return state


def _connect_read_only(path: Path) -> sqlite3.Connection:
    uri = path.absolute().as_uri()  # percent-escapes '#', '?' and '%' in the path
    try:
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True)
        db.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        if os.access(path.parent, os.W_OK):
            raise
        # a read-only directory: SQLite cannot make the WAL index, and no one can write
        db = sqlite3.connect(f"{uri}?immutable=1", uri=True)
    return db


def check_committed(path: Path, committed: int, records: int) -> None:
    """Raise :class:`RunDirError` unless ``path`` holds its ``committed`` bytes, ending a record."""
    if not committed:
        return
    try:
        _check_committed(path, committed, records)
    except OSError as exc:
        raise RunDirError(f"cannot read {path} ({exc.strerror or exc}); {_START_AFRESH}") from None


def _check_committed(path: Path, committed: int, records: int) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = 0
    if size >= committed:
        with open(path, "rb") as handle:
            handle.seek(committed - 1)
            if handle.read(1) == b"\n":
                return
        raise RunDirError(
            f"{path} was changed by hand: its committed part ({committed} bytes) no longer "
            f"ends with a whole record. {_RECOVER}"
        )
    present = 0
    if size:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                present += block.count(b"\n")
    raise RunDirError(
        f"{path} is shorter than what the run committed ({size} of {committed} bytes): "
        f"{records - present} of its {records} records are missing (the file was cut or "
        f"deleted by hand), and the items they came from count as done. {_RECOVER}"
    )


def read_manifest(base: str | os.PathLike[str]) -> dict[str, Any]:
    """A run directory's manifest; :class:`RunDirError` if it is unreadable or not an object."""
    path = Path(base) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{Path(base)} is not a run directory (no {MANIFEST})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path} is unreadable ({exc}); {_START_AFRESH}") from None
    if not isinstance(manifest, dict):
        raise RunDirError(f"{path} does not hold a JSON object; {_START_AFRESH}")
    return manifest


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
    state = _read_state(Path(path))
    stages = {
        k: StageStats.model_validate(v)
        for k, v in json.loads(state.kv.get("stage_stats", "{}")).items()
    }
    usage = _usage_from_json(state.kv.get("usage", "{}"))
    return RunTotals(stages, usage, state.items, state.outputs, state.rejections)


def _usage_from_json(text: str) -> UsageByStage:
    return {
        stage: {model: ModelUsage.model_validate(u) for model, u in models.items()}
        for stage, models in json.loads(text).items()
    }


def _committed_lines(path: Path, length: int) -> Iterator[bytes]:
    if not length:
        return
    try:
        with open(path, "rb") as handle:
            read = 0
            for line in handle:
                read += len(line)
                if read > length:
                    return
                yield line
    except OSError as exc:
        raise RunDirError(f"cannot read {path} ({exc.strerror or exc}); {_START_AFRESH}") from None


def pipeline_changes(there: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between two manifests' pipelines: one line per stage or setting."""
    before = {str(s.get("name")): s for s in there.get("stages", []) if isinstance(s, Mapping)}
    after = {str(s.get("name")): s for s in now.get("stages", []) if isinstance(s, Mapping)}
    lines: list[str] = []
    for name in [*after, *(n for n in before if n not in after)]:
        if name not in before:
            lines.append(f"stage {name}: not there, added now")
        elif name not in after:
            lines.append(f"stage {name}: there, removed now")
        else:
            old, new = _flatten(before[name]), _flatten(after[name])
            for key in [*new, *(k for k in old if k not in new)]:
                if old.get(key, _ABSENT) != new.get(key, _ABSENT):
                    lines.append(
                        f"{name}.{key}: there {_shown(old.get(key, _ABSENT))}, "
                        f"now {_shown(new.get(key, _ABSENT))}"
                    )
    if list(before) != list(after) and set(before) == set(after):
        lines.append(f"stage order: there {' -> '.join(before)}, now {' -> '.join(after)}")
    if not lines:
        lines.append(
            "the stages' settings read the same, but their fingerprints differ (made by gemlib "
            f"{there.get('gemlib_version', '?')}, now {__version__})"
        )
    return lines[:_MAX_CHANGES] + (
        [f"... and {len(lines) - _MAX_CHANGES} more"] if len(lines) > _MAX_CHANGES else []
    )


_ABSENT = object()
_MAX_CHANGES = 12


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            if not prefix and key == "name":
                continue
            flat.update(_flatten(inner, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def _shown(value: Any, width: int = 60) -> str:
    if value is _ABSENT:
        return "(not set)"
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."


def _open_progress(path: Path) -> sqlite3.Connection:
    """Open (or create) the progress database for writing."""
    try:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        db.execute("SELECT id, session, outputs, rejections FROM items LIMIT 1").fetchall()
        db.execute("SELECT name, length FROM files LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise RunDirError(_db_problem(path, exc, writing=True)) from None
    return db


_RECOVER = (
    "Restore the file from a backup; or redo the items whose records are gone with "
    "`gemlib resume DIR --forget-missing` (in Python: gemlib.pipeline.store.forget_missing); "
    "or start afresh with `gemlib run ... --overwrite` (in Python: overwrite=True)."
)
_START_AFRESH = (
    "move the directory away, or start it afresh (its results are deleted) with "
    "`gemlib run ... --overwrite` (in Python: overwrite=True)"
)


def _db_problem(path: Path, exc: sqlite3.Error, writing: bool) -> str:
    text = str(exc)
    if "readonly" in text or "unable to open" in text:
        return (
            f"cannot {'write' if writing else 'read'} {path} ({text}): make the run directory "
            f"{'writable' if writing else 'readable'}, or use another one"
        )
    if _disk_full(path, exc):
        return f"cannot write {path}: the disk is full. Free space and rerun the same command."
    if "I/O error" in text:
        return f"cannot use {path} ({text}): check the disk, then rerun the same command"
    return f"{path} is not a usable progress database ({text}); {_START_AFRESH}"


def _disk_full(path: Path, exc: OSError | sqlite3.Error) -> bool:
    """Whether ``exc`` means there was no room (SQLite may call that a disk I/O error)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if "full" in str(exc):
        return True
    if "I/O error" not in str(exc):
        return False
    try:
        room = os.statvfs(path.parent)
    except OSError:
        return False
    return room.f_bavail * room.f_frsize < _LOW_SPACE


_LOW_SPACE = 1 << 20


def _os_problem(base: Path, exc: OSError) -> str:
    where = exc.filename or base
    if isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
        return (
            f"cannot write to {where} ({exc.strerror}): make the run directory {base} "
            "writable, or use another one"
        )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"cannot write to {where}: the disk is full. Free space and rerun the same command."
    return f"cannot use {where} ({exc.strerror or exc}); {_START_AFRESH}"


def _write_all(descriptor: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]
