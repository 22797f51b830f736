"""Live progress: snapshots while a run goes, the reporters, and the command line."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import attrs

from gemlib import Document, Pipeline, Rejection, Stage
from gemlib.progress import LineReporter, Snapshot, TerminalReporter


@attrs.define
class Collect:
    updates: list[Snapshot] = attrs.field(factory=list)
    final: Snapshot | None = None

    def update(self, snapshot: Snapshot) -> None:
        self.updates.append(snapshot)

    def close(self, snapshot: Snapshot) -> None:
        self.final = snapshot


class Slow(Stage):
    async def process(self, doc: Document) -> Document | Rejection:
        await asyncio.sleep(0.02)
        if doc.text.endswith("7"):
            return Rejection(rule="sevens", reason="ends in 7")
        return doc


def test_the_runner_reports_while_running_and_at_the_end() -> None:
    reporter = Collect()
    docs = [f"doc {i}" for i in range(60)]
    Pipeline([Slow()]).run(docs, max_in_flight=4, progress=reporter, progress_interval=0.05)
    assert len(reporter.updates) >= 3
    finished = [s.finished for s in reporter.updates]
    assert finished == sorted(finished), "progress only moves forward"
    assert 0 < finished[0] < 60
    assert all(s.total == 60 for s in reporter.updates), "lists give the total"
    assert any(s.eta is not None and s.eta > 0 for s in reporter.updates)
    final = reporter.final
    assert final is not None
    assert (final.finished, final.outputs, final.rejections) == (60, 54, 6)
    assert final.stages == {"slow": (60, 54, 6)}
    assert final.in_flight == 0


def test_snapshot_line_and_eta() -> None:
    snapshot = Snapshot(
        elapsed=10.0,
        read=50,
        finished=40,
        in_flight=8,
        outputs=30,
        rejections=10,
        stages={"relevance_filter": (40, 30, 10)},
        requests=120,
        tokens=50_000,
        cost=0.25,
        total=100,
    )
    assert snapshot.eta == 15.0
    line = snapshot.line()
    for part in (
        "40/100 items done",
        "8 in flight",
        "30 kept",
        "10 rejected",
        "12.0 req/s",
        "5000 tok/s",
        "$0.2500",
        "ETA 15s",
        "relevance_filter:30/40",
    ):
        assert part in line
    assert (
        Snapshot(elapsed=1.0, read=1, finished=1, in_flight=0, outputs=1, rejections=0).eta is None
    )


def test_terminal_and_line_reporters() -> None:
    snapshot = Snapshot(elapsed=1.0, read=2, finished=1, in_flight=1, outputs=1, rejections=0)
    screen = io.StringIO()
    terminal = TerminalReporter(screen)
    terminal.update(snapshot)
    terminal.close(snapshot)
    assert screen.getvalue().count("\r") == 2
    assert screen.getvalue().endswith("\n")
    log = io.StringIO()
    LineReporter(log).update(snapshot)
    LineReporter(log).close(snapshot)
    assert log.getvalue().splitlines()[0].startswith("progress: 1 items done")
    assert log.getvalue().splitlines()[1].startswith("finished: ")


def test_the_command_line_prints_progress_unless_quiet(tmp_path: Path) -> None:
    from fake_openai import FakeOpenAI
    from teacher import teacher_reply
    from test_cli import LOCAL_KEY, _gemlib, _run_command

    with FakeOpenAI(teacher_reply) as server:
        loud = _gemlib(*_run_command(tmp_path, server.url), cwd=tmp_path, env=LOCAL_KEY)
        quiet = _gemlib(
            *_run_command(tmp_path, server.url)[:-1],
            "quiet-run",
            "--quiet",
            cwd=tmp_path,
            env=LOCAL_KEY,
        )
    assert loud.returncode == 0, loud.stderr
    assert "finished: 5 items done" in loud.stderr, "non-terminals get plain lines"
    assert quiet.returncode == 0, quiet.stderr
    assert "items done" not in quiet.stderr
