"""Live progress of a run: snapshots, and reporters for terminals, logs and notebooks.

The runner takes a :class:`Snapshot` every ``progress_interval`` seconds and
hands it to a reporter: one refreshed line on a terminal, a log line per
interval where output is not a terminal (CI, nohup), an updating display in
a notebook. :func:`default_reporter` picks the one that fits.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import sys
from typing import IO, Any, Protocol

import attrs

__all__ = [
    "LineReporter",
    "LogReporter",
    "NotebookReporter",
    "Reporter",
    "Snapshot",
    "TerminalReporter",
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

    @property
    def eta(self) -> float | None:
        """Seconds left at the current pace, when the corpus size is known."""
        if self.total is None or self.finished == 0 or self.elapsed <= 0:
            return None
        return max(0.0, (self.total - self.finished) * self.elapsed / self.finished)

    def line(self) -> str:
        """One line: counts, rates, cost, ETA and the busiest stages."""
        rate = self.elapsed or 1.0
        done = f"{self.finished}/{self.total}" if self.total is not None else f"{self.finished}"
        parts = [
            f"{done} items done",
            f"{self.in_flight} in flight",
            f"{self.outputs} kept",
            f"{self.rejections} rejected",
            f"{self.requests / rate:.1f} req/s",
            f"{self.tokens / rate:.0f} tok/s",
            f"${self.cost:.4f}",
        ]
        if self.eta is not None:
            parts.append(f"ETA {self.eta:.0f}s")
        stages = " ".join(f"{name}:{out}/{got}" for name, (got, out, _) in self.stages.items())
        return " | ".join(parts) + (f" | {stages}" if stages else "")


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
