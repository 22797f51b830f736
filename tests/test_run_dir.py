"""Run directories: resume, crash safety, refusing other pipelines, locking, reading."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest

from gemlib import Document, Pipeline, RunDirError, Stage
from gemlib.pipeline.rundir import open_results
from gemlib.pipeline.store import DirStore

WORKER = Path(__file__).with_name("crash_worker.py")


class Counting(Stage):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def process(self, doc: Document) -> Document:
        self.seen.append(doc.text)
        return doc.model_copy(update={"text": doc.text.upper()})


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_rerun_skips_finished_items_and_appends_only_new_ones(tmp_path: Path) -> None:
    first = Counting()
    result = Pipeline([first]).run(["a", "b", "c"], run_dir=tmp_path)
    assert sorted(first.seen) == ["a", "b", "c"]
    assert result.stats.outputs == 3

    second = Counting()
    result = Pipeline([second]).run(["a", "b", "c", "d"], run_dir=tmp_path)
    assert second.seen == ["d"], "finished items must not be recomputed"
    assert result.stats.resumed == 3
    assert sorted(d.text for d in result.outputs) == ["A", "B", "C", "D"]
    assert len(_lines(tmp_path / "outputs.jsonl")) == 4
    assert result.stats.stages["counting"].received == 4, "stats add up over sessions"


def test_manifest_records_the_pipeline_and_library(tmp_path: Path) -> None:
    Pipeline([Counting()]).run(["a"], run_dir=tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["stages"] == [{"name": "counting", "version": "1", "config": {}}]
    assert manifest["gemlib_version"]
    assert manifest["last_session"]["stats"]["outputs"] == 1


def test_a_different_pipeline_is_refused_and_overwrite_starts_afresh(tmp_path: Path) -> None:
    Pipeline([Counting()]).run(["a"], run_dir=tmp_path)

    class Other(Stage):
        version = "2"

        def process(self, doc: Document) -> Document:
            return doc

    with pytest.raises(RunDirError, match="different pipeline") as refused:
        Pipeline([Other()]).run(["a"], run_dir=tmp_path)
    message = str(refused.value)
    assert "stage other: not there, added now" in message
    assert "stage counting: there, removed now" in message
    assert "--overwrite" in message, "the CLI flag is named"
    result = Pipeline([Other()]).run(["b"], run_dir=tmp_path, overwrite=True)
    assert [d.text for d in result.outputs] == ["b"]


@attrs.define
class Tagging(Stage):
    tag: str = "x"
    limits: dict[str, int] = attrs.field(factory=lambda: {"depth": 1, "width": 2})

    def process(self, doc: Document) -> Document:
        return doc


def test_a_different_pipeline_names_each_setting_that_differs(tmp_path: Path) -> None:
    """Fails on the old code, whose there:/now: lines showed only names and versions."""
    Pipeline([Tagging()]).run(["a"], run_dir=tmp_path)
    with pytest.raises(RunDirError) as refused:
        Pipeline([Tagging(tag="y", limits={"depth": 1, "width": 3})]).run(["a"], run_dir=tmp_path)
    lines = str(refused.value).splitlines()
    assert '  tagging.config.tag: there "x", now "y"' in lines
    assert "  tagging.config.limits.width: there 2, now 3" in lines
    assert not any("depth" in line for line in lines), "only what differs"


def test_a_run_directory_in_use_is_refused(tmp_path: Path) -> None:
    manifest = {"fingerprint": "f", "stages": []}
    holder = DirStore(tmp_path, manifest=manifest)
    try:
        with pytest.raises(RunDirError, match=f"in use by pid {os.getpid()}"):
            DirStore(tmp_path, manifest=manifest)
    finally:
        holder.close(__import__("gemlib").RunStats())
    DirStore(tmp_path, manifest=manifest).close(__import__("gemlib").RunStats())


def test_stray_files_without_a_manifest_are_not_mixed_in(tmp_path: Path) -> None:
    (tmp_path / "outputs.jsonl").write_text("{}\n")
    with pytest.raises(RunDirError, match="no manifest"):
        Pipeline([Counting()]).run(["a"], run_dir=tmp_path)


def test_uncommitted_tail_is_cut_off_on_open(tmp_path: Path) -> None:
    Pipeline([Counting()]).run(["a", "b"], run_dir=tmp_path)
    with open(tmp_path / "outputs.jsonl", "a") as handle:  # what a crash mid-write leaves
        handle.write('{"id": "half-writ')
    result = Pipeline([Counting()]).run(["a", "b", "c"], run_dir=tmp_path)
    lines = _lines(tmp_path / "outputs.jsonl")
    assert len(lines) == 3
    assert all(json.loads(line) for line in lines)
    assert sorted(d.text for d in result.outputs) == ["A", "B", "C"]


def _run_worker(run_dir: Path, n_docs: int, delay: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(run_dir), str(n_docs), str(delay)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _canonical(run_dir: Path) -> tuple[list[str], list[str]]:
    outputs, rejections = open_results(run_dir)
    return (
        sorted(json.dumps(o, sort_keys=True) for o in outputs),
        sorted(json.dumps(r.model_dump(), sort_keys=True) for r in rejections),
    )


@pytest.mark.faults  # a crash drill: seven worker processes, six of them killed (~20 s)
def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    from crash_worker import Sentences, SlowCheck, corpus

    n_docs, delay = 600, 0.02
    reference = tmp_path / "reference"
    # The uninterrupted run, in this process; its records do not depend on the delay.
    Pipeline([Sentences(), SlowCheck()]).run(corpus(n_docs), run_dir=reference, max_in_flight=16)
    expected = _canonical(reference)
    assert len(expected[0]) == 2 * n_docs
    assert len(expected[1]) == n_docs

    crashed = tmp_path / "crashed"
    rng = random.Random(7)
    kills = 0
    for _attempt in range(6):
        proc = _run_worker(crashed, n_docs, delay)
        # Wait until this session has committed something new, then kill at a random moment.
        before = (
            (crashed / "outputs.jsonl").stat().st_size
            if (crashed / "outputs.jsonl").exists()
            else 0
        )
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            path = crashed / "outputs.jsonl"
            if path.exists() and path.stat().st_size > before:
                break
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.15))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        outputs, _ = _canonical(crashed)  # readable after every kill
        assert len(outputs) == len(set(outputs)), "no duplicates, even mid-run"
        kills += len(outputs) < 2 * n_docs
    assert kills >= 3, "the test must actually interrupt the run several times"
    final = _run_worker(crashed, n_docs, delay)
    assert final.wait(timeout=120) == 0, final.stderr.read() if final.stderr else ""
    assert _canonical(crashed) == expected


@pytest.mark.parametrize("damage", ["cut", "deleted", "edited"])
def test_a_file_shorter_than_committed_is_refused_saying_what_is_missing(
    tmp_path: Path, damage: str
) -> None:
    """Fails on the old code: the rerun reported the lost outputs and exited as usual."""
    Pipeline([Counting()]).run([f"doc {i}" for i in range(10)], run_dir=tmp_path)
    outputs = tmp_path / "outputs.jsonl"
    data = outputs.read_bytes()
    if damage == "cut":
        outputs.write_bytes(data[: len(data) // 2])
    elif damage == "deleted":
        outputs.unlink()
    else:
        outputs.write_bytes(data[:-1] + b"xz")  # the last committed record no longer ends
    with pytest.raises(RunDirError) as refused:
        Pipeline([Counting()]).run([f"doc {i}" for i in range(10)], run_dir=tmp_path)
    message = str(refused.value)
    assert str(outputs) in message
    assert "--overwrite" in message
    assert "backup" in message
    if damage != "edited":
        kept = data[: len(data) // 2].count(b"\n") if damage == "cut" else 0
        assert f"{10 - kept} of its 10 records are missing" in message
    with pytest.raises(RunDirError, match=r"missing|changed by hand"):
        open_results(tmp_path)
    assert outputs.exists() or damage == "deleted", "a refused open cuts nothing"


def test_corrupt_run_directory_states_are_named(tmp_path: Path) -> None:
    """Fails on the old code: AttributeError, sqlite3.DatabaseError, IsADirectoryError."""
    cases = {
        "manifest.json": lambda d: (d / "manifest.json").write_text("[1, 2]"),
        "progress.sqlite": lambda d: (d / "progress.sqlite").write_bytes(os.urandom(8192)),
        ".lock": lambda d: ((d / ".lock").unlink(), (d / ".lock").mkdir()),
        "outputs.jsonl": lambda d: ((d / "outputs.jsonl").unlink(), (d / "outputs.jsonl").mkdir()),
    }
    for name, damage in cases.items():
        run_dir = tmp_path / name
        Pipeline([Counting()]).run(["a"], run_dir=run_dir)
        damage(run_dir)
        with pytest.raises(RunDirError) as refused:
            Pipeline([Counting()]).run(["a", "b"], run_dir=run_dir)
        assert str(run_dir / name) in str(refused.value), name
        assert "\n" not in str(refused.value), "one line"
        if name not in (".lock", "manifest.json"):  # readers take no lock, need no manifest
            with pytest.raises(RunDirError) as unreadable:
                open_results(run_dir)
            assert str(run_dir / name) in str(unreadable.value), name


@pytest.mark.parametrize("damage", ["cut", "deleted"])
def test_forget_missing_redoes_exactly_the_items_whose_records_are_gone(
    tmp_path: Path, damage: str
) -> None:
    """New: the old code had no way to recover a cut file but starting afresh."""
    from gemlib.pipeline.rundir import forget_missing

    corpus = [f"doc {i}" for i in range(12)]
    reference = Pipeline([Counting()]).run(corpus, run_dir=tmp_path / "reference")
    expected = sorted(d.text for d in reference.outputs)
    run_dir = tmp_path / "run"
    Pipeline([Counting()]).run(corpus[:6], run_dir=run_dir)
    Pipeline([Counting()]).run(corpus, run_dir=run_dir)  # two sessions
    outputs = run_dir / "outputs.jsonl"
    if damage == "cut":
        data = outputs.read_bytes()
        outputs.write_bytes(data[: len(data) // 2 + 3])  # half a record at the end too
    else:
        outputs.unlink()
    items, lost, _ = forget_missing(run_dir)
    assert items == lost == (12 - 6 if damage == "cut" else 12)
    again = Counting()
    result = Pipeline([again]).run(corpus, run_dir=run_dir)
    assert len(again.seen) == items, "only the forgotten items run again"
    assert sorted(d.text for d in result.outputs) == expected
    assert forget_missing(run_dir) == (0, 0, 0)


def test_a_partitioned_runs_totals_add_up_its_partitions(tmp_path: Path) -> None:
    """Fails on the old code: read_totals (the pilot of `gemlib estimate --pilot`) read
    only a single run directory and refused a partitioned run's root."""
    from gemlib.pipeline.rundir import RunDir, read_totals

    root = RunDir(tmp_path / "parts")
    for index, corpus in enumerate((["a", "b"], ["c", "d", "e"])):
        Pipeline([Counting()]).run(corpus, run_dir=root.partition(index).path)
        with open(root.partition(index).outputs_file, "a") as handle:
            handle.write('{"id": "half-writ')  # what a killed partition leaves
    assert [run.path.name for run in root.runs()] == ["part-00000", "part-00001"]
    totals = read_totals(root.path)
    assert (totals.items, totals.outputs, totals.rejections) == (5, 5, 0)
    assert totals.stages["counting"].received == 5
    assert sorted(d["text"] for d in root.results()[0]) == ["A", "B", "C", "D", "E"]


def test_readers_never_read_past_the_committed_length(tmp_path: Path) -> None:
    """Fails on the old code: the reader read the uncommitted tail line by line, so a
    long half-written last line was held in memory whole (64 MB here) before being
    dropped."""
    import tracemalloc

    Pipeline([Counting()]).run(["a", "b"], run_dir=tmp_path)
    with open(tmp_path / "outputs.jsonl", "ab") as handle:
        handle.write(b'{"id": "half-written", "text": "' + b"x" * (64 << 20))
    tracemalloc.start()
    try:
        texts = sorted(d["text"] for d in open_results(tmp_path)[0])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert texts == ["A", "B"]
    assert peak < 8 << 20, f"{peak / 2**20:.0f} MB held to read two short records"


@pytest.mark.parametrize(
    ("name", "garble"),
    [
        ("outputs.jsonl", b"\xff"),  # not UTF-8
        ("outputs.jsonl", b"["),  # not JSON
        ("rejections.jsonl", b"["),
        ("rejections.jsonl", b'{"x": 1}'),  # JSON, but not a Rejection
    ],
)
def test_a_committed_record_edited_by_hand_is_named_by_every_reader(
    tmp_path: Path, name: str, garble: bytes
) -> None:
    """Fails on the old code: UnicodeDecodeError, JSONDecodeError or pydantic's
    ValidationError escaped from the readers (a traceback from every command)."""
    from gemlib import Rejection
    from gemlib.pipeline.rundir import read_trajectories

    class Rejecting(Stage):
        def process(self, doc: Document) -> Document | Rejection:
            if doc.text.startswith("no"):
                return Rejection(item_id=doc.id, stage=self.name, rule="no", reason="no")
            return doc

    Pipeline([Rejecting()]).run(["a", "b", "no c", "no d"], run_dir=tmp_path)
    path = tmp_path / name
    lines = path.read_bytes().splitlines(keepends=True)
    lines[0] = garble + b" " * (len(lines[0]) - len(garble) - 1) + b"\n"  # same length
    path.write_bytes(b"".join(lines))
    readers = [lambda: list(open_results(tmp_path)[name == "rejections.jsonl"])]
    if name == "outputs.jsonl":
        readers.append(lambda: list(read_trajectories(tmp_path)))
    for read in readers:
        with pytest.raises(RunDirError) as refused:
            read()
        assert f"{path} line 1 is not a record as gemlib wrote it" in str(refused.value)
        assert "\n" not in str(refused.value)


@pytest.mark.parametrize("key", ["stage_stats", "usage"])
@pytest.mark.parametrize("value", ['{"x": 5', "[1, 2]", '{"counting": {"received": "many"}}'])
def test_totals_changed_by_hand_in_the_progress_database_are_named(
    tmp_path: Path, key: str, value: str
) -> None:
    """Fails on the old code: JSONDecodeError, AttributeError or pydantic's ValidationError
    escaped from RunDir.totals and from a resume (a traceback from `gemlib stats`,
    `view` and `resume`, and a bare JSON message from `estimate --pilot`)."""
    import sqlite3

    from gemlib.pipeline.rundir import RunDir

    Pipeline([Counting()]).run(["a"], run_dir=tmp_path)
    if key == "usage" and value.startswith('{"counting"'):
        value = '{"counting": {"openai/x": {"requests": "many"}}}'
    with sqlite3.connect(tmp_path / "progress.sqlite") as db:
        db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))
    db.close()
    for read in (
        lambda: RunDir(tmp_path).totals(),
        lambda: Pipeline([Counting()]).run(["a", "b"], run_dir=tmp_path),
    ):
        with pytest.raises(RunDirError) as refused:
            read()
        assert f"{tmp_path / 'progress.sqlite'} holds unreadable totals ({key!r}" in str(
            refused.value
        )
        assert "\n" not in str(refused.value)


def test_formats_read_files_and_the_run_directory_reads_run_directories(tmp_path: Path) -> None:
    """gemlib.formats no longer imports the run directory (imports point down): it
    refuses a directory, saying which reader takes one; that reader also reads files."""
    from gemlib import FormatError
    from gemlib.formats import read_trajectories as read_file
    from gemlib.pipeline.rundir import read_trajectories

    run = tmp_path / "run"
    Pipeline([Counting()]).run(["a"], run_dir=run)  # Documents: not trajectories
    with pytest.raises(FormatError, match=r"gemlib\.pipeline\.rundir\.read_trajectories"):
        list(read_file(run))
    errors: list[FormatError] = []
    assert list(read_trajectories(run, on_error=errors.append)) == []
    assert [str(e).split(":")[0] for e in errors] == [f"{run} record 1"]
    lines = tmp_path / "lines.jsonl"
    lines.write_text("not json\n")
    with pytest.raises(FormatError, match=f"{lines} line 1"):
        list(read_trajectories(lines))


def test_a_single_run_and_a_partitioned_run_never_share_a_directory(tmp_path: Path) -> None:
    """Fails on the old code: a run into a partitioned run's root started a single run
    there (and run_partitions put partitions into a single run's directory); the readers
    then read one of them and silently left out the other."""
    from gemlib.cli import main
    from gemlib.pipeline.cluster import run_partitions
    from gemlib.pipeline.rundir import RunDir

    root = RunDir(tmp_path / "parts")
    Pipeline([Counting()]).run(["a"], run_dir=root.partition(0).path)
    with pytest.raises(RunDirError, match=r"holds a partitioned run .*part-\*"):
        Pipeline([Counting()]).run(["b"], run_dir=root.path, overwrite=True)
    assert not root.progress_file.exists()
    assert [d["text"] for d in root.results()[0]] == ["A"]

    single = RunDir(tmp_path / "single")
    Pipeline([Counting()]).run(["a"], run_dir=single.path)
    with pytest.raises(RunDirError, match="holds a single run"):
        run_partitions(lambda limits: Pipeline([Counting()]), [["b"]], single.path, client=None)
    assert not single.has_partitions()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "c0.jsonl").write_text('{"text": "b"}\n')
    single.write_settings({"corpus": "first"})
    before = single.settings_file.read_bytes()
    argv = ["run", str(corpus), "--model", "m", "--out", str(single.path), "--dask", "local:1"]
    assert main(argv) == 2
    assert single.settings_file.read_bytes() == before, "a refused run changes nothing"


def test_an_overwrite_cut_short_leaves_no_records_that_seem_cut_by_hand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails on the old code: the manifest and outputs were deleted before the progress
    database, so after a crash there the readers said records were missing (cut by hand)
    and pointed at --forget-missing."""
    Pipeline([Counting()]).run(["a", "b"], run_dir=tmp_path)
    real, calls = Path.unlink, []

    def crash_after_two(self: Path, missing_ok: bool = False) -> None:
        calls.append(self.name)
        if len(calls) > 2:
            raise KeyboardInterrupt  # the process stops here
        real(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        Pipeline([Counting()]).run(["c"], run_dir=tmp_path, overwrite=True)
    monkeypatch.undo()
    with pytest.raises(RunDirError, match="is not a run directory"):
        open_results(tmp_path)
    result = Pipeline([Counting()]).run(["c"], run_dir=tmp_path)  # the rerun starts afresh
    assert [d.text for d in result.outputs] == ["C"]


def test_an_export_or_report_onto_a_run_directorys_own_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fails on the old code (checked): `gemlib export --out RUN/outputs.jsonl RUN` replaced
    the run's committed outputs with the export, and every reader then refused the run."""
    from gemlib.cli import main
    from viewer_data import make_run

    run = make_run(tmp_path)  # trajectories, so that the old export went through
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    (tmp_path / "link.jsonl").symlink_to(run / "rejections.jsonl")
    commands = [
        ["export", "--format", "openai", "--out", str(run / "outputs.jsonl"), str(run)],
        ["export", "--format", "sharegpt", "--out", str(tmp_path / "link.jsonl"), str(run)],
        ["stats", "--html", str(run / "manifest.json"), str(run)],
        ["view", "--out", str(run / "progress.sqlite"), str(run)],
    ]
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert "writing there would replace the results of" in err[0]
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_a_pipe_in_place_of_a_results_file_is_refused_not_waited_on(tmp_path: Path) -> None:
    """Fails on the old code: opening the run directory waited for ever (opening a pipe
    for writing waits for a reader) when nothing had been committed to that file yet."""
    import concurrent.futures

    Pipeline([Counting()]).run([], run_dir=tmp_path)
    fifo = tmp_path / "outputs.jsonl"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        opening = pool.submit(Pipeline([Counting()]).run, ["a"], run_dir=tmp_path)
        try:
            with pytest.raises(RunDirError, match="is not a regular file"):
                opening.result(timeout=10)
        finally:  # release a writer waiting on the pipe, so the thread can end
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
