"""Where a run keeps its results: in memory, or in a resumable run directory.

:class:`DirStore` writes a run directory (:mod:`gemlib.pipeline.rundir` owns its
layout). Results of a corpus item are appended to the JSONL files only when the
item's whole tree (every fan-out child through every stage) is finished, and the
item counts as done only once the SQLite transaction that records it and the
new file lengths commits. On open, each file is cut back to its committed
length, so a crash at any instant loses only work that had not been committed
yet (items in flight, and items finished within the last commit interval) and
never leaves a duplicate or a half-written line. Results wait in memory until
the commit writes them, so a write that fails (a full disk) is cut back before
anything else commits. A file found shorter than its committed length (cut or
deleted by hand) is refused by the store and by every reader, saying what is
missing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import attrs
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from gemlib._unicode import LONE_SURROGATE, without_lone_surrogates
from gemlib._version import __version__
from gemlib.errors import RunDirError, RunDirWriteError
from gemlib.llm.usage import ModelUsage, UsageByStage, merge_usage
from gemlib.model import Rejection
from gemlib.pipeline.accounting import (
    ItemCounts,
    RunStats,
    StageCounts,
    StageStats,
    add_counts,
    as_stage_stats,
)
from gemlib.pipeline.rundir import (
    RunDir,
    db_problem,
    disk_full,
    os_problem,
    write_all,
)

__all__ = ["DirStore", "MemoryStore", "Store", "pipeline_changes"]


def _dump(item: Any) -> bytes:
    """One JSON line's bytes (without its newline), storable as UTF-8: a lone surrogate
    (left in a value by a model's stray ``\\ud800`` escape) becomes U+FFFD rather than
    failing the commit. A model's bytes come straight from its serializer: the bytes
    ``model_dump_json`` would decode, with no round trip through ``str``."""
    if isinstance(item, BaseModel):
        try:
            return item.__pydantic_serializer__.to_json(item)
        except PydanticSerializationError:
            item = without_lone_surrogates(item.model_dump(mode="json"))
    return LONE_SURROGATE.sub("\ufffd", json.dumps(item, ensure_ascii=False, default=str)).encode()


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
        stats: ItemCounts,
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
    _stats: dict[str, StageCounts] = attrs.field(factory=dict)
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
        stats: ItemCounts,
    ) -> None:
        self._done.add(item_id)
        self.outputs.extend(outputs)
        self.rejections.extend(rejections)
        stats.add_to(self._stats)  # plain adds: see StageCounts

    def stage_stats(self) -> dict[str, StageStats]:
        return as_stage_stats(self._stats)

    def counts(self) -> tuple[int, int]:
        return len(self.outputs), len(self.rejections)


class DirStore(Store):
    """A resumable run directory (:mod:`gemlib.pipeline.rundir` describes its layout).

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
        self.run_dir = RunDir(path)
        self.path = self.run_dir.path
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(os_problem(self.path, exc)) from None
        self._lock_file = self.run_dir.lock()
        try:
            if overwrite:
                self.run_dir.remove_run_files()
            self._check_manifest(manifest)
            self._progress = self.run_dir.open_progress()
            with self._db_errors(writing=True):
                self.session = self._progress.next_session()
                self._committed = self._progress.cut_back()
                self._prior_usage = self._progress.usage()
            self._prior_figures = usage_figures({}, self._prior_usage)
            self._fds = self.run_dir.open_appenders()
            if settings is not None:
                self.run_dir.write_settings(settings)
        except RunDirError:
            self._unlock()
            raise
        except OSError as exc:
            self._unlock()
            raise RunDirError(os_problem(self.path, exc)) from None
        except BaseException:
            self._unlock()
            raise
        self._session_usage: UsageByStage = {}
        self._pending: list[tuple[str, int, int]] = []
        self._pending_ids: set[str] = set()
        self._pending_stats: dict[str, StageCounts] = {}
        self._stage_totals: dict[str, StageCounts] | None = None
        self._buffers = {kind: bytearray() for kind in self._committed}
        self._failed: RunDirWriteError | None = None

    # ------------------------------------------------------------------ opening

    def _unlock(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()

    def _check_manifest(self, manifest: dict[str, Any]) -> None:
        self.run_dir.refuse_other_kind(partitioned=False)
        if self.run_dir.manifest_file.exists():
            existing = self.run_dir.read_manifest()
            if existing.get("fingerprint") != manifest["fingerprint"]:
                raise RunDirError(
                    f"run directory {self.path} was made by a different pipeline:\n"
                    + "\n".join(f"  {line}" for line in pipeline_changes(existing, manifest))
                    + "\nUse another run directory, or start this one afresh (its results "
                    "are deleted) with `gemlib run ... --overwrite` (in Python: overwrite=True)."
                )
            return
        if self.run_dir.holds_stray_files():
            raise RunDirError(
                f"{self.path} holds run files but no {self.run_dir.manifest_file.name}; "
                "refusing to mix runs: use another run directory"
            )
        self.run_dir.write_manifest(
            {**manifest, "gemlib_version": __version__, "created": time.time()}
        )

    @contextlib.contextmanager
    def _db_errors(self, *, writing: bool = False) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise RunDirError(db_problem(self.run_dir.progress_file, exc, writing)) from None

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
        try:  # not the _db_errors() context manager: this runs once per corpus item
            session = self._progress.session_of(item_id)
        except sqlite3.Error as exc:
            raise RunDirError(db_problem(self.run_dir.progress_file, exc, False)) from None
        if session is None:
            return None
        return "duplicate" if session == self.session else "resumed"

    def record(
        self,
        item_id: str,
        outputs: list[Any],
        rejections: list[Rejection],
        stats: ItemCounts,
    ) -> None:
        """Queue one item's results; nothing reaches the files before :meth:`commit`."""
        # Every record is dumped before any is queued: one that cannot be dumped leaves
        # no line of its item behind.
        queued = (
            (self._buffers["outputs"], [_dump(o) for o in outputs]),
            (self._buffers["rejections"], [_dump(r) for r in rejections]),
        )
        for buffer, lines in queued:
            for line in lines:
                buffer += line
                buffer += b"\n"
        self._pending.append((item_id, len(outputs), len(rejections)))
        self._pending_ids.add(item_id)
        stats.add_to(self._pending_stats)

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
        kind: str | None = None  # the records being written, or None: the database
        try:
            lengths = {}
            for kind, data in self._buffers.items():
                if data:
                    write_all(self._fds[kind], data)
                    os.fsync(self._fds[kind])
                lengths[kind] = self._committed[kind] + len(data)
            kind = None
            totals = self._totals()
            add_counts(totals, self._pending_stats)
            self._progress.record_done(
                self.session,
                self._pending,
                lengths,
                {name: counts.figures() for name, counts in totals.items()},
                usage_figures(self._prior_figures, self._session_usage),
                time.time(),
            )
        except (OSError, sqlite3.Error) as exc:
            run = self.run_dir
            self._fail(run.progress_file if kind is None else run.records_file(kind), exc)
        self._committed = lengths
        for data in self._buffers.values():
            data.clear()
        self._pending.clear()
        self._pending_ids.clear()
        self._pending_stats = {}

    def _fail(self, where: Path, exc: OSError | sqlite3.Error) -> NoReturn:
        """Undo a failed commit: roll back, cut the files back, refuse further commits."""
        self._progress.rollback()
        self._stage_totals = None  # they hold what did not commit: read them back
        for kind, descriptor in self._fds.items():
            with contextlib.suppress(OSError):  # if this fails too, the next open cuts back
                os.ftruncate(descriptor, self._committed[kind])
        cause = "the disk is full" if disk_full(where, exc) else str(exc)
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
            self._progress.close()
            self._unlock()

    def _note_session(self, run_stats: RunStats) -> None:
        manifest = self.run_dir.read_manifest()
        manifest["last_session"] = {
            "session": self.session,
            "finished": time.time(),
            "gemlib_version": __version__,
            "stats": run_stats.model_dump(),
        }
        try:
            self.run_dir.write_manifest(manifest)
        except OSError as exc:
            self._fail(self.run_dir.manifest_file, exc)

    def stage_stats(self) -> dict[str, StageStats]:
        return as_stage_stats(self._totals())

    def _totals(self) -> dict[str, StageCounts]:
        """The committed per-stage totals, read once; each commit adds its items to them
        (as plain counts: adding to a ``StageStats`` is pydantic's slow assignment)."""
        if self._stage_totals is None:
            with self._db_errors():
                committed = self._progress.stage_stats()
            self._stage_totals = {}
            add_counts(self._stage_totals, committed)
        return self._stage_totals

    def counts(self) -> tuple[int, int]:
        with self._db_errors():
            return self._progress.counts()


def usage_figures(
    prior: Mapping[str, Mapping[str, Mapping[str, Any]]], session: UsageByStage
) -> dict[str, dict[str, dict[str, Any]]]:
    """``prior`` (figures by stage and model, as ``ModelUsage.model_dump`` gives them)
    with ``session``'s usage added: what :func:`~gemlib.llm.usage.merge_usage` of both
    into an empty total dumps to, in plain dicts (no ledger built per commit).
    """
    total = {
        stage: {model: dict(f) for model, f in models.items()} for stage, models in prior.items()
    }
    for stage, models in session.items():
        into = total.setdefault(stage, {})
        for model, usage in models.items():
            figures = into.get(model)
            if figures is None:
                figures = into[model] = dict(_NO_USAGE)
            for name, value in usage:
                figures[name] += value
    return total


_NO_USAGE = ModelUsage().model_dump()
"""A ledger's figures before anything is added (what ``merge_usage`` starts from)."""


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
