"""The run directory: the one module that knows its layout.

A run directory holds::

    manifest.json       the pipeline (stage names, versions, config), gemlib version, fingerprint
    progress.sqlite     one row per finished corpus item, committed byte lengths of the JSONL files,
                        the run's cumulative statistics
    outputs.jsonl       one finished item per line
    rejections.jsonl    one Rejection per line
    run.json            the settings that made the run (``settings``; `gemlib run` writes them)
    .lock               held while a process uses the directory

A partitioned run (``gemlib run --dask``) keeps one such directory per
partition, ``part-00000``, ``part-00001``, ... under its root, and its
``run.json`` at the root. :class:`RunDir` reads either kind.

Only what ``progress.sqlite`` says was committed is ever read: a reader stops at
each file's committed length, so the half line a killed run leaves at the end
of a file is never read, and a file found shorter than its committed length
(cut or deleted by hand) is refused, saying what is missing. The writer
(:class:`~gemlib.pipeline.store.DirStore`) goes through :class:`RunDir` and
:class:`Progress` for every file and every row.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple, TypeVar

import attrs
from pydantic import TypeAdapter

from gemlib._atomic import write_atomic
from gemlib.errors import FormatError, RunDirError
from gemlib.llm.usage import ModelUsage, UsageByStage, merge_usage
from gemlib.model import Rejection, Trajectory
from gemlib.pipeline.accounting import StageStats, merge_stats

__all__ = [
    "Progress",
    "RunDir",
    "RunTotals",
    "forget_missing",
    "open_results",
    "read_manifest",
    "read_totals",
    "read_trajectories",
    "refuse_run_file",
]

_MANIFEST = "manifest.json"
_OUTPUTS = "outputs.jsonl"
_REJECTIONS = "rejections.jsonl"
_PROGRESS = "progress.sqlite"
_LOCK = ".lock"
_SETTINGS = "run.json"
_PARTITION = "part-{:05d}"
_PARTITION_GLOB = "part-[0-9][0-9][0-9][0-9][0-9]"
_RECORDS = {"outputs": _OUTPUTS, "rejections": _REJECTIONS}
"""The JSONL files by kind of record (also the ``items`` column counting them)."""
_T = TypeVar("_T")
_RUN_FILES = (
    _PROGRESS,  # first: without it nothing counts as committed, whatever is left
    _PROGRESS + "-wal",
    _PROGRESS + "-shm",
    _MANIFEST,
    _OUTPUTS,
    _REJECTIONS,
    _SETTINGS,
)


class RunTotals(NamedTuple):
    """A run directory's committed totals over every session (and every partition)."""

    stages: dict[str, StageStats]
    usage: UsageByStage
    items: int
    """Corpus items finished."""
    outputs: int
    rejections: int


@attrs.frozen
class RunDir:
    """A run directory, or a partitioned run's root, at ``path``.

    Reading takes no lock and needs no manifest: what was committed is read,
    whatever a running or killed process left after it is not.
    """

    path: Path = attrs.field(converter=Path)

    # ------------------------------------------------------------------ files

    @property
    def outputs_file(self) -> Path:
        """One finished item per line."""
        return self.path / _OUTPUTS

    @property
    def rejections_file(self) -> Path:
        """One :class:`~gemlib.model.Rejection` per line."""
        return self.path / _REJECTIONS

    @property
    def manifest_file(self) -> Path:
        """The pipeline that made the run, and its last session."""
        return self.path / _MANIFEST

    @property
    def settings_file(self) -> Path:
        """The settings that made the run (``run.json``)."""
        return self.path / _SETTINGS

    @property
    def progress_file(self) -> Path:
        """The committed state: items done, file lengths, statistics."""
        return self.path / _PROGRESS

    def records_file(self, kind: str) -> Path:
        """The JSONL file of ``kind`` (``"outputs"`` or ``"rejections"``)."""
        return self.path / _RECORDS[kind]

    def partition(self, index: int) -> RunDir:
        """Where partition ``index`` of a partitioned run keeps its run directory."""
        return RunDir(self.path / _PARTITION.format(index))

    @property
    def partitions_shown(self) -> str:
        """The partitions' directories as messages name them (``ROOT/part-*``)."""
        return str(self.path / "part-*")

    def has_partitions(self) -> bool:
        """Whether a partitioned run was started here (a partition directory exists)."""
        return any(self.path.glob(_PARTITION_GLOB))

    def refuse_other_kind(self, *, partitioned: bool) -> None:
        """Raise :class:`RunDirError` if the other kind of run is here already.

        A single run and a partitioned run never share a directory: the readers
        would read one of them and silently leave out the other.
        """
        if partitioned and self.progress_file.exists():
            raise RunDirError(
                f"{self.path} holds a single run (made without --dask); a partitioned run "
                "needs another directory"
            )
        if not partitioned and self.has_partitions():
            raise RunDirError(
                f"{self.path} holds a partitioned run ({self.partitions_shown}, made with "
                "--dask); run it again with --dask, or use another directory"
            )

    def runs(self) -> list[RunDir]:
        """This directory if it is a run directory, else its partitions in order.

        Raises :class:`RunDirError` when it is neither.
        """
        if self.progress_file.is_file():
            return [self]
        parts = sorted(p for p in self.path.glob(_PARTITION_GLOB) if (p / _PROGRESS).is_file())
        if parts:
            return [RunDir(p) for p in parts]
        raise RunDirError(
            f"{self.path} is not a run directory (it has no {_PROGRESS}, and no partitions "
            f"{_PARTITION_GLOB} that have one)"
        )

    # ------------------------------------------------------------------ reading

    def read_manifest(self) -> dict[str, Any]:
        """The manifest; :class:`RunDirError` if it is missing, unreadable or not an object."""
        return _read_object(self.manifest_file, f"{self.path} is not a run directory")

    def read_settings(self) -> dict[str, Any] | None:
        """The settings in ``run.json`` (at a partitioned run's root), ``None`` if there are none.

        A file that is unreadable or not a JSON object raises :class:`RunDirError`.
        """
        if not self.settings_file.is_file():
            return None
        return _read_object(self.settings_file, "")

    def results(
        self, output_adapter: TypeAdapter[Any] | None = None
    ) -> tuple[Iterator[Any], Iterator[Rejection]]:
        """Stream the committed outputs and rejections of every session (and partition).

        Every file is checked against its committed length before anything is
        streamed; a file shorter than that raises :class:`RunDirError` saying
        what is missing.
        """
        runs = [(run, run._committed()) for run in self.runs()]
        load = output_adapter.validate_json if output_adapter else json.loads
        outputs = (
            record
            for run, state in runs
            for record in _records(run.outputs_file, state.lengths.get(_OUTPUTS, 0), load)
        )
        rejections = (
            record
            for run, state in runs
            for record in _records(
                run.rejections_file,
                state.lengths.get(_REJECTIONS, 0),
                Rejection.model_validate_json,
            )
        )
        return outputs, rejections

    def totals(self) -> RunTotals:
        """Per-stage counts, model usage, items, outputs and rejections committed.

        Every session of a resumed run counts (unlike the manifest's
        ``last_session``), and every partition of a partitioned run.
        """
        stages: dict[str, StageStats] = {}
        usage: UsageByStage = {}
        items = outputs = rejections = 0
        for run in self.runs():
            state = run._committed()
            merge_stats(
                stages, _stats_from_json(state.kv.get("stage_stats", "{}"), run.progress_file)
            )
            merge_usage(usage, _usage_from_json(state.kv.get("usage", "{}"), run.progress_file))
            items += state.items
            outputs += state.outputs
            rejections += state.rejections
        return RunTotals(stages, usage, items, outputs, rejections)

    def _committed(self) -> _State:
        """The committed state, every file checked against it (no lock taken)."""
        path = self.progress_file
        if not path.is_file():
            raise RunDirError(f"{self.path} is not a run directory (no {_PROGRESS})")
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
            raise RunDirError(db_problem(path, exc, writing=False)) from None
        state = _State(lengths, kv, int(items), int(outputs or 0), int(rejections or 0))
        for name, records in ((_OUTPUTS, state.outputs), (_REJECTIONS, state.rejections)):
            check_committed(self.path / name, lengths.get(name, 0), records)
        return state

    # ------------------------------------------------------------------ writing

    def lock(self) -> IO[str]:
        """Hold the directory's lock (until the handle is closed) or raise :class:`RunDirError`."""
        path = self.path / _LOCK
        try:
            handle = open(path, "a+")  # noqa: SIM115  # held for the store's life
        except IsADirectoryError:
            raise RunDirError(
                f"{path} is a directory, not gemlib's lock file: remove it and rerun"
            ) from None
        except OSError as exc:
            raise RunDirError(os_problem(self.path, exc)) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunDirError(
                f"run directory {self.path} is in use by {holder}; wait for it to finish "
                "or choose another run directory"
            ) from None
        try:
            os.ftruncate(handle.fileno(), 0)
            write_all(handle.fileno(), f"pid {os.getpid()}\n".encode())
        except OSError as exc:
            handle.close()
            raise RunDirError(os_problem(self.path, exc)) from None
        return handle

    def remove_run_files(self) -> None:
        """Delete every file of a run (for a run started afresh; the lock is held).

        The progress database goes first, so a deletion cut short leaves no
        committed state pointing at files that are gone.
        """
        for name in _RUN_FILES:
            (self.path / name).unlink(missing_ok=True)

    def holds_stray_files(self) -> bool:
        """Whether run files are here without a manifest to say which run made them."""
        return any(self.path.glob("*.jsonl")) or self.progress_file.exists()

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        """Replace the manifest all at once."""
        write_atomic(self.manifest_file, json.dumps(manifest, indent=2, sort_keys=True))

    def write_settings(self, settings: Mapping[str, Any]) -> None:
        """Replace ``run.json`` all at once."""
        write_atomic(self.settings_file, json.dumps(settings, indent=2))

    def open_progress(self) -> Progress:
        """Open (or create) the progress database for writing; the lock must be held."""
        return Progress(self, _open_progress(self.progress_file))

    def open_appenders(self) -> dict[str, int]:
        """Append-only descriptors of the JSONL files, by kind of record."""
        return {
            kind: os.open(self.path / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            for kind, name in _RECORDS.items()
        }


class _State(NamedTuple):
    lengths: dict[str, int]
    kv: dict[str, str]
    items: int
    outputs: int
    rejections: int


_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY, session INTEGER NOT NULL, outputs INTEGER NOT NULL,
    rejections INTEGER NOT NULL, finished REAL NOT NULL);
CREATE TABLE IF NOT EXISTS files (name TEXT PRIMARY KEY, length INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


_FILTER_BITS = 1 << 23
"""Bits of the finished-items filter (1 MB): one in eight set after a million items."""


@attrs.define
class Progress:
    """The progress database of a run directory open for writing (its lock held).

    Its SQLite errors are raised as they are; the store decides what they mean.
    """

    run_dir: RunDir
    db: sqlite3.Connection
    _maybe_done: bytearray | None = None
    """One bit per hash of the IDs of finished items (read on first use): a clear bit
    means not finished, so most items of a fresh run are looked up without a query."""

    def next_session(self) -> int:
        """Count a new session and return its number."""
        row = self.db.execute("SELECT value FROM kv WHERE key='session'").fetchone()
        session = int(row[0]) + 1 if row else 1
        self.db.execute("INSERT OR REPLACE INTO kv VALUES ('session', ?)", (str(session),))
        return session

    def cut_back(self) -> dict[str, int]:
        """Check each JSONL file holds its committed bytes; cut off what a crash left after.

        Returns the committed lengths by kind of record.
        """
        committed = {}
        for kind, name in _RECORDS.items():
            row = self.db.execute("SELECT length FROM files WHERE name=?", (name,)).fetchone()
            length = int(row[0]) if row else 0
            records = self.db.execute(f"SELECT SUM({kind}) FROM items").fetchone()[0] or 0
            path = self.run_dir.path / name
            check_committed(path, length, int(records))
            with open(path, "ab") as handle:
                if handle.tell() > length:
                    handle.truncate(length)
            committed[kind] = length
        return committed

    def session_of(self, item_id: str) -> int | None:
        """The session that finished ``item_id``, if one did."""
        if self._maybe_done is None:
            self._maybe_done = bytearray(_FILTER_BITS // 8)
            self._note_done(row[0] for row in self.db.execute("SELECT id FROM items"))
        bit = hash(item_id) & (_FILTER_BITS - 1)
        if not self._maybe_done[bit >> 3] & (1 << (bit & 7)):
            return None
        row = self.db.execute("SELECT session FROM items WHERE id=?", (item_id,)).fetchone()
        return None if row is None else int(row[0])

    def _note_done(self, ids: Iterable[str]) -> None:
        done = self._maybe_done
        if done is not None:
            for item_id in ids:
                bit = hash(item_id) & (_FILTER_BITS - 1)
                done[bit >> 3] |= 1 << (bit & 7)

    def record_done(
        self,
        session: int,
        items: Sequence[tuple[str, int, int]],
        lengths: Mapping[str, int],
        stats: Mapping[str, Mapping[str, Any]],
        usage: Mapping[str, Mapping[str, Mapping[str, Any]]],
        now: float,
    ) -> None:
        """In one transaction: ``(id, outputs, rejections)`` done, new lengths (by kind of
        record) and cumulative totals: ``stats`` as ``StageStats.model_dump`` gives them, by
        stage; ``usage`` as ``ModelUsage.model_dump`` does, by stage and model."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?, ?)",
            [(i, session, o, r, now) for i, o, r in items],
        )
        db.executemany(
            "INSERT OR REPLACE INTO files VALUES (?, ?)",
            [(_RECORDS[kind], length) for kind, length in lengths.items()],
        )
        db.execute("INSERT OR REPLACE INTO kv VALUES ('stage_stats', ?)", (json.dumps(stats),))
        db.execute("INSERT OR REPLACE INTO kv VALUES ('usage', ?)", (json.dumps(usage),))
        db.execute("COMMIT")
        self._note_done(i for i, _, _ in items)

    def rollback(self) -> None:
        """Undo a transaction left open by a failed :meth:`record_done`."""
        if self.db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")

    def stage_stats(self) -> dict[str, StageStats]:
        """Cumulative per-stage counts committed."""
        row = self.db.execute("SELECT value FROM kv WHERE key='stage_stats'").fetchone()
        return {} if row is None else _stats_from_json(row[0], self.run_dir.progress_file)

    def usage(self) -> UsageByStage:
        """Cumulative model usage committed."""
        row = self.db.execute("SELECT value FROM kv WHERE key='usage'").fetchone()
        return {} if row is None else _usage_from_json(row[0], self.run_dir.progress_file)

    def counts(self) -> tuple[int, int]:
        """``(outputs, rejections)`` committed."""
        row = self.db.execute("SELECT SUM(outputs), SUM(rejections) FROM items").fetchone()
        return int(row[0] or 0), int(row[1] or 0)

    def close(self) -> None:
        """Close the database."""
        self.db.close()


def open_results(
    path: str | os.PathLike[str], output_adapter: TypeAdapter[Any] | None = None
) -> tuple[Iterator[Any], Iterator[Rejection]]:
    """Stream a run directory's (or a partitioned run's) committed outputs and rejections.

    The same as ``RunDir(path).results(output_adapter)``.
    """
    return RunDir(path).results(output_adapter)


def read_trajectories(
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    on_error: Callable[[FormatError], None] | None = None,
) -> Iterator[Trajectory]:
    """Trajectories from a run directory (or a partitioned run's root), or from a file.

    A run directory's committed outputs are read (a killed run's half-written
    last line never is), each record's format guessed unless ``format`` names
    it; any other path is read by :func:`gemlib.formats.read_trajectories` (a
    file in any readable format, or an importer's source). A record that
    cannot be read raises :class:`FormatError`, or goes to ``on_error``.
    """
    from gemlib.formats import read_records
    from gemlib.formats import read_trajectories as read_file

    if Path(path).is_dir():
        return read_records(RunDir(path).results()[0], path, format, on_error=on_error)
    return read_file(path, format, on_error=on_error)


def refuse_run_file(path: str | os.PathLike[str]) -> None:
    """Raise :class:`RunDirError` if ``path`` is one of a run directory's own files, so
    that an export or a report written there cannot replace the run's records."""
    target = Path(path).resolve()  # a symbolic link to the file counts as the file
    if target.name in (*_RUN_FILES, _LOCK) and (target.parent / _PROGRESS).is_file():
        raise RunDirError(
            f"{path} is the run directory's own {target.name}: writing there would "
            f"replace the results of {target.parent}; write to another path"
        )


def read_totals(path: str | os.PathLike[str]) -> RunTotals:
    """A run directory's (or a partitioned run's) committed totals: ``RunDir(path).totals()``."""
    return RunDir(path).totals()


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run directory's manifest: ``RunDir(path).read_manifest()``."""
    return RunDir(path).read_manifest()


def forget_missing(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """Make a run directory whose files were cut or deleted usable again.

    The items whose outputs or rejections are no longer in the files (and every
    item recorded after the first of them, since records follow the order
    items were recorded) are marked not done, and the files are cut back to the
    records that remain, so the next run redoes those items. Returns ``(items,
    outputs, rejections)`` forgotten. Stage counts in the run's totals are
    cumulative and still include the forgotten items' first attempt.
    """
    run = RunDir(path)
    lock = run.lock()
    try:
        db = _open_progress(run.progress_file)
        try:
            return _forget_missing(run.path, db)
        except (OSError, sqlite3.Error) as exc:
            raise RunDirError(f"could not repair {run.path} ({exc}); {START_AFRESH}") from None
        finally:
            db.close()
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def _forget_missing(base: Path, db: sqlite3.Connection) -> tuple[int, int, int]:
    lengths = {str(k): int(v) for k, v in db.execute("SELECT name, length FROM files")}
    ends = {name: _line_ends(base / name, lengths.get(name, 0)) for name in _RECORDS.values()}
    items = db.execute("SELECT rowid, outputs, rejections FROM items ORDER BY rowid").fetchall()
    kept_out = kept_rej = 0
    cut = None
    for rowid, outputs, rejections in items:
        if kept_out + outputs > len(ends[_OUTPUTS]) or kept_rej + rejections > len(
            ends[_REJECTIONS]
        ):
            cut = rowid
            break
        kept_out += outputs
        kept_rej += rejections
    if cut is None:
        return 0, 0, 0
    total_out = sum(row[1] for row in items)
    total_rej = sum(row[2] for row in items)
    new = {
        _OUTPUTS: ends[_OUTPUTS][kept_out - 1] if kept_out else 0,
        _REJECTIONS: ends[_REJECTIONS][kept_rej - 1] if kept_rej else 0,
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
        for line in _lines_within(handle, limit):
            ends.append((ends[-1] if ends else 0) + len(line))
    return ends


def _records(path: Path, length: int, load: Callable[[bytes], _T]) -> Iterator[_T]:
    """The committed records of ``path``; a record that does not load was edited by hand."""
    for number, line in enumerate(committed_lines(path, length), start=1):
        try:
            record = load(line)
        except ValueError:  # not UTF-8, not JSON, or not the record type
            raise RunDirError(
                f"{path} line {number} is not a record as gemlib wrote it: the committed part "
                f"of the file was changed by hand. Restore it from a backup, or {START_AFRESH}"
            ) from None
        yield record


def committed_lines(path: Path, length: int) -> Iterator[bytes]:
    """The whole lines in the first ``length`` bytes of ``path``; nothing after is read."""
    if not length:
        return
    try:
        with open(path, "rb") as handle:
            yield from _lines_within(handle, length)
    except OSError as exc:
        raise RunDirError(f"cannot read {path} ({exc.strerror or exc}); {START_AFRESH}") from None


def _lines_within(handle: IO[bytes], limit: int) -> Iterator[bytes]:
    """Whole lines from ``handle`` up to byte ``limit``: a line is never read past it."""
    left = limit
    while left > 0:
        line = handle.readline(left)
        if not line.endswith(b"\n"):  # the end of the file, or of the limit
            return
        left -= len(line)
        yield line


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
        raise RunDirError(db_problem(path, exc, writing=True)) from None
    return db


def check_committed(path: Path, committed: int, records: int) -> None:
    """Raise :class:`RunDirError` unless ``path`` holds its ``committed`` bytes, ending a record.

    Something else in the file's place (a directory, a pipe, a device) is refused
    even when nothing was committed: opening a pipe would wait for ever.
    """
    if path.exists() and not path.is_file():
        raise RunDirError(
            f"{path} is not a regular file (a directory, pipe or device is in its place); "
            f"{START_AFRESH}"
        )
    if not committed:
        return
    try:
        _check_committed(path, committed, records)
    except OSError as exc:
        raise RunDirError(f"cannot read {path} ({exc.strerror or exc}); {START_AFRESH}") from None


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


def _read_object(path: Path, missing: str) -> dict[str, Any]:
    """A JSON object file; :class:`RunDirError` (``missing``, if given, when there is none)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{missing or path} (no {path.name})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path} is unreadable ({exc}); {START_AFRESH}") from None
    if not isinstance(found, dict):
        raise RunDirError(f"{path} does not hold a JSON object; {START_AFRESH}")
    return found


def _stats_from_json(text: str, db: Path) -> dict[str, StageStats]:
    try:
        return {k: StageStats.model_validate(v) for k, v in json.loads(text).items()}
    except (ValueError, AttributeError):  # not JSON, not an object, not statistics
        raise RunDirError(_unreadable_totals(db, "stage_stats")) from None


def _usage_from_json(text: str, db: Path) -> UsageByStage:
    try:
        return {
            stage: {model: ModelUsage.model_validate(u) for model, u in models.items()}
            for stage, models in json.loads(text).items()
        }
    except (ValueError, AttributeError):
        raise RunDirError(_unreadable_totals(db, "usage")) from None


def _unreadable_totals(db: Path, key: str) -> str:
    return f"{db} holds unreadable totals ({key!r} was changed by hand); {START_AFRESH}"


_RECOVER = (
    "Restore the file from a backup; or redo the items whose records are gone with "
    "`gemlib resume DIR --forget-missing` (in Python: gemlib.pipeline.rundir.forget_missing); "
    "or start afresh with `gemlib run ... --overwrite` (in Python: overwrite=True)."
)
START_AFRESH = (
    "move the directory away, or start it afresh (its results are deleted) with "
    "`gemlib run ... --overwrite` (in Python: overwrite=True)"
)
"""How to get past a run directory that cannot be used (ends a message)."""


def db_problem(path: Path, exc: sqlite3.Error, writing: bool) -> str:
    """What went wrong with the progress database at ``path``, and what to do."""
    text = str(exc)
    if "readonly" in text or "unable to open" in text:
        return (
            f"cannot {'write' if writing else 'read'} {path} ({text}): make the run directory "
            f"{'writable' if writing else 'readable'}, or use another one"
        )
    if disk_full(path, exc):
        return f"cannot write {path}: the disk is full. Free space and rerun the same command."
    if "I/O error" in text:
        return f"cannot use {path} ({text}): check the disk, then rerun the same command"
    return f"{path} is not a usable progress database ({text}); {START_AFRESH}"


def disk_full(path: Path, exc: OSError | sqlite3.Error) -> bool:
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


def os_problem(base: Path, exc: OSError) -> str:
    """What went wrong using the run directory ``base``, and what to do."""
    where = exc.filename or base
    if isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
        return (
            f"cannot write to {where} ({exc.strerror}): make the run directory {base} "
            "writable, or use another one"
        )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"cannot write to {where}: the disk is full. Free space and rerun the same command."
    return f"cannot use {where} ({exc.strerror or exc}); {START_AFRESH}"


def write_all(descriptor: int, data: bytes | bytearray) -> None:
    """Write all of ``data`` to ``descriptor`` (``os.write`` may write less)."""
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]
