"""Live progress of a run: snapshots, and reporters for terminals, logs and notebooks.

The runner takes a :class:`Snapshot` every ``progress_interval`` seconds and
hands it to a reporter: one refreshed line on a terminal, a log line per
interval where output is not a terminal (CI, nohup), an updating display in
a notebook. :func:`default_reporter` picks the one that fits.

With a total (a list's length, or :func:`corpus_total` for a corpus file or
folder) the line shows the share done and an ETA at this session's pace. A
JSONL file's total is its line count, counted exactly up to
:data:`EXACT_COUNT_BYTES` and estimated from the first megabytes beyond that
(shown as ``~N``); a Parquet file's is its row count from the footer; a
folder's, its text files.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import IO, Any, Protocol

import attrs

from gemlib.llm.usage import BatchCounts

__all__ = [
    "LineReporter",
    "LogReporter",
    "NotebookReporter",
    "Reporter",
    "Snapshot",
    "TerminalReporter",
    "corpus_total",
    "default_reporter",
]

log = logging.getLogger("gemlib")


@attrs.frozen
class Snapshot:
    """Where a run stands: items, stages, model traffic, and time."""

    elapsed: float
    read: int
    finished: int
    in_flight: int
    outputs: int
    rejections: int
    stages: dict[str, tuple[int, int, int]] = attrs.field(factory=dict)
    """Per stage: items received, emitted, rejected (this session)."""
    requests: int = 0
    tokens: int = 0
    cost: float = 0.0
    total: int | None = None
    """Corpus items in all, when known (a list, or ``RunOptions.total``)."""
    total_estimated: bool = False
    """``total`` is an estimate (a large JSONL file's line count from its first megabytes)."""
    resumed: int = 0
    """Of ``finished``, the items an earlier session had finished (they take no time)."""
    batches: BatchCounts | None = None
    """Provider batches, for models in batch mode."""
    paused: tuple[str, ...] = ()
    """Models waiting out a 429, and for how long (see :meth:`gemlib.llm.LLM.pause_note`)."""

    @property
    def _total(self) -> int | None:
        # An estimate that the run has passed says nothing any more.
        if self.total is None or (self.total_estimated and self.finished >= self.total):
            return None
        return self.total

    @property
    def eta(self) -> float | None:
        """Seconds left at this session's pace, when the corpus size is known."""
        worked = self.finished - self.resumed
        if self._total is None or worked <= 0 or self.elapsed <= 0:
            return None
        return max(0.0, (self._total - self.finished) * self.elapsed / worked)

    @property
    def percent(self) -> float | None:
        """The share of the corpus done, in percent, when its size is known."""
        if self._total is None:
            return None
        return 100.0 if self._total == 0 else min(100.0, 100.0 * self.finished / self._total)

    def line(self) -> str:
        """One line: counts, share done, rates, cost, ETA and the busiest stages."""
        rate = self.elapsed or 1.0
        done = f"{self.finished}"
        if self._total is not None:
            done += f"/{'~' if self.total_estimated else ''}{self._total}"
        parts = [
            f"{done} items done" + (f" ({self.percent:.0f}%)" if self.percent is not None else ""),
            f"{self.in_flight} in flight",
            f"{self.outputs} kept",
            f"{self.rejections} rejected",
            f"{self.requests / rate:.1f} req/s",
            f"{self.tokens / rate:.0f} tok/s",
            f"${self.cost:.4f}",
        ]
        if self.eta is not None:
            parts.append(f"ETA {_duration(self.eta)}")
        if self.batches is not None:
            parts.append(self.batches.line())
        parts.extend(self.paused)
        stages = " ".join(f"{name}:{out}/{got}" for name, (got, out, _) in self.stages.items())
        return " | ".join(parts) + (f" | {stages}" if stages else "")


def _duration(seconds: float) -> str:
    """``42s``, ``5m12s``, ``3h04m``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


EXACT_COUNT_BYTES = 256 * 2**20
"""JSONL files up to this size have their lines counted; larger ones are estimated."""
_SAMPLE_BYTES = 8 * 2**20


def corpus_total(path: str | os.PathLike[str]) -> tuple[int, bool] | None:
    """``(items, estimated)`` in a corpus at ``path``, cheaply; ``None`` when unknown.

    The count is of what :func:`gemlib.formats.corpus.read_corpus` would read at most:
    lines of a JSONL file (blank and malformed lines included, so it may be a
    little high), rows of a Parquet file, lines of a CSV or TSV file after its
    header (an estimate: a quoted field may span lines), text files in a folder,
    one for a text file. Standard input (``"-"``) and unreadable paths give ``None``.
    """
    from gemlib.formats.corpus import JSONL_SUFFIXES, TABLE_DELIMITERS, TEXT_SUFFIXES

    if str(path) == "-":
        return None
    base = Path(path)
    try:
        if base.is_dir():
            found = sum(
                1 for f in base.rglob("*") if f.suffix.lower() in TEXT_SUFFIXES and f.is_file()
            )
            return found, False
        suffix = base.suffix.lower()
        if suffix == ".parquet":
            parquet: Any = importlib.import_module("pyarrow.parquet")
            return int(parquet.ParquetFile(str(base)).metadata.num_rows), False
        if suffix in JSONL_SUFFIXES:
            return _count_lines(base)
        if suffix in TABLE_DELIMITERS:  # less the header; a quoted field may span lines
            lines, _ = _count_lines(base)
            return max(lines - 1, 0), True
        return (1, False) if base.is_file() else None
    except Exception:  # unreadable, or pyarrow's errors on a broken file: the reader will say
        return None


def _count_lines(path: Path) -> tuple[int, bool]:
    size = path.stat().st_size
    with open(path, "rb") as handle:
        if size <= EXACT_COUNT_BYTES:
            lines = 0
            ends_open = False
            while chunk := handle.read(2**20):
                lines += chunk.count(b"\n")
                ends_open = not chunk.endswith(b"\n")
            return lines + ends_open, False
        sample = handle.read(_SAMPLE_BYTES)
    per_byte = max(sample.count(b"\n"), 1) / len(sample)
    return max(1, round(size * per_byte)), True


class Reporter(Protocol):
    """Receives snapshots while a run goes, and the last one when it ends."""

    def update(self, snapshot: Snapshot) -> None:
        """Show the latest snapshot."""
        ...

    def close(self, snapshot: Snapshot) -> None:
        """Show the final snapshot and finish the display."""
        ...


@attrs.define
class LogReporter:
    """One INFO line on the ``gemlib`` logger per snapshot (for CI and nohup)."""

    def update(self, snapshot: Snapshot) -> None:
        """Log the snapshot."""
        log.info("progress: %s", snapshot.line())

    def close(self, snapshot: Snapshot) -> None:
        """Log the final snapshot."""
        log.info("finished: %s", snapshot.line())


@attrs.define
class LineReporter:
    """A printed line per snapshot, for output that is not a terminal (CI, nohup)."""

    stream: IO[str] = attrs.field(factory=lambda: sys.stderr)

    def update(self, snapshot: Snapshot) -> None:
        """Print the snapshot."""
        self.stream.write(f"progress: {snapshot.line()}\n")
        self.stream.flush()

    def close(self, snapshot: Snapshot) -> None:
        """Print the final snapshot."""
        self.stream.write(f"finished: {snapshot.line()}\n")
        self.stream.flush()


@attrs.define
class TerminalReporter:
    """One line on a terminal, rewritten in place."""

    stream: IO[str] = attrs.field(factory=lambda: sys.stderr)

    def update(self, snapshot: Snapshot) -> None:
        """Rewrite the line."""
        width = shutil.get_terminal_size((120, 20)).columns - 1
        self.stream.write("\r" + snapshot.line()[:width].ljust(width))
        self.stream.flush()

    def close(self, snapshot: Snapshot) -> None:
        """Write the final line and end it."""
        self.update(snapshot)
        self.stream.write("\n")
        self.stream.flush()


@attrs.define
class NotebookReporter:
    """An output area in a Jupyter notebook, updated in place."""

    _handle: Any = None

    def update(self, snapshot: Snapshot) -> None:
        """Update the displayed line."""
        display: Any = importlib.import_module("IPython.display").display
        text = {"text/plain": snapshot.line()}
        if self._handle is None:
            self._handle = display(text, raw=True, display_id=True)
        else:
            self._handle.update(text, raw=True)

    def close(self, snapshot: Snapshot) -> None:
        """Show the final line."""
        self.update(snapshot)


def _in_notebook() -> bool:
    module: Any = sys.modules.get("IPython")
    ipython = module.get_ipython() if module is not None else None
    return ipython is not None and type(ipython).__name__ == "ZMQInteractiveShell"


def default_reporter(*, printing: bool = False) -> Reporter:
    """A display in Jupyter; else, when ``printing`` (the command line), a live line on a
    terminal or printed lines elsewhere; else log lines (a library should not print)."""
    if _in_notebook():
        return NotebookReporter()
    if not printing:
        return LogReporter()
    return TerminalReporter() if sys.stderr.isatty() else LineReporter()
