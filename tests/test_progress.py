"""Live progress: snapshots while a run goes, the reporters, and the command line."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import attrs
import pytest

from gemlib import Document, Pipeline, Rejection, Stage
from gemlib.pipeline import progress
from gemlib.pipeline.progress import LineReporter, Snapshot, TerminalReporter, corpus_total


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
    assert "finished: 5/5 items done (100%)" in loud.stderr, "non-terminals get plain lines"
    assert quiet.returncode == 0, quiet.stderr
    assert "items done" not in quiet.stderr


def test_a_corpus_file_or_folder_has_a_total_cheaply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("".join(f'{{"text": "doc {i}"}}\n' for i in range(250)) + '{"text": "x"}')
    assert corpus_total(jsonl) == (251, False), "a last line without a newline counts"
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    for name in ("a.md", "b.txt", "sub/c.rst", "sub/skip.png"):
        (tmp_path / "docs" / name).write_text("text")
    assert corpus_total(tmp_path / "docs") == (3, False)
    assert corpus_total(tmp_path / "docs" / "a.md") == (1, False)
    assert corpus_total("-") is None
    table = tmp_path / "c.csv"
    table.write_text('id,text\n1,"two\nlines"\n2,plain\n3,more\n')
    assert corpus_total(table) == (4, True), "lines after the header, an upper estimate"
    assert corpus_total(tmp_path / "missing.jsonl") is None
    pyarrow = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pyarrow.table({"text": [f"t{i}" for i in range(77)]}), tmp_path / "c.parquet")
    assert corpus_total(tmp_path / "c.parquet") == (77, False)
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    assert corpus_total(tmp_path / "broken.parquet") is None

    # Beyond the exact limit, the count is estimated from the first megabytes.
    monkeypatch.setattr(progress, "EXACT_COUNT_BYTES", 1000)
    count, estimated = corpus_total(jsonl) or (0, False)
    assert estimated
    assert 240 <= count <= 262


def test_percent_and_eta_use_this_sessions_pace() -> None:
    base = {"read": 0, "in_flight": 0, "outputs": 0, "rejections": 0}
    # 600 of 1000 done, 500 of them by an earlier session: 100 items took 10 s here.
    resumed = Snapshot(elapsed=10.0, finished=600, total=1000, resumed=500, **base)
    assert resumed.eta == 40.0
    assert resumed.percent == 60.0
    assert "600/1000 items done (60%)" in resumed.line()
    assert "ETA 40s" in resumed.line()
    only_resumed = Snapshot(elapsed=1.0, finished=500, total=1000, resumed=500, **base)
    assert only_resumed.eta is None, "no pace yet"
    slow = Snapshot(elapsed=3600.0, finished=100, total=1000, **base)
    assert "ETA 9h00m" in slow.line()
    guess = Snapshot(elapsed=60.0, finished=30, total=100, total_estimated=True, **base)
    assert "30/~100 items done (30%)" in guess.line()
    assert "ETA 2m20s" in guess.line()
    passed = Snapshot(elapsed=60.0, finished=120, total=100, total_estimated=True, **base)
    assert passed.eta is None
    assert passed.percent is None
    assert "120 items done |" in passed.line(), "an estimate the run has passed is dropped"


def test_a_run_over_a_corpus_path_reports_its_total(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(f'{{"text": "doc {i}"}}\n' for i in range(40)))
    reporter = Collect()
    Pipeline([Slow()]).run(corpus, max_in_flight=4, progress=reporter, progress_interval=0.05)
    assert all(s.total == 40 for s in reporter.updates)
    assert reporter.final is not None
    assert reporter.final.percent == 100.0
