"""Run directories through the `gemlib` command: refusals change nothing, paths, readers.

Each test here was written against the code before this change and fails on it
(see the docstrings for how).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gemlib import RunStats
from gemlib.pipeline.rundir import read_manifest
from gemlib.pipeline.store import DirStore
from test_cli import LOCAL_KEY, _five_docs
from test_cli import _gemlib as run_gemlib

pytestmark = pytest.mark.faults  # many runs against a loopback server: ~30 s


def _gemlib(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_gemlib(*args, cwd=cwd, env=LOCAL_KEY)


@pytest.fixture
def server() -> Iterator[str]:
    from fake_openai import FakeOpenAI
    from teacher import teacher_reply

    with FakeOpenAI(teacher_reply) as fake:
        yield fake.url


def _run(corpus: Path, out: str, url: str, *extra: str) -> list[str]:
    return [
        "run",
        str(corpus),
        "--model",
        "openai/teacher",
        "--api-base",
        url,
        "--out",
        out,
        *extra,
    ]


def _one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("gemlib: error: ")
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_a_refused_run_changes_nothing_and_overwrite_is_a_flag(tmp_path: Path, server: str) -> None:
    """Fails on the old code: run.json was rewritten before the refusal, so `gemlib resume`
    ran the refused command's settings; the CLI had no --overwrite."""
    corpus = _five_docs(tmp_path)
    assert _gemlib(*_run(corpus, "run", server), cwd=tmp_path).returncode == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}

    other = _gemlib(*_run(corpus, "run", server, "--no-judge", "--no-refine"), cwd=tmp_path)
    assert other.returncode == 2, other.stderr
    assert "different pipeline" in other.stderr
    assert "stage llm_judge: there, removed now" in other.stderr
    assert "gemlib run ... --overwrite" in other.stderr

    held = DirStore(tmp_path / "run", manifest=read_manifest(tmp_path / "run"))
    try:
        locked = _gemlib(*_run(corpus, "run", "http://127.0.0.1:9/v1"), cwd=tmp_path)
        after = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    finally:
        held.close(RunStats())
    _one_line_error(locked, "is in use by pid")
    for name in ("run.json", "manifest.json", "outputs.jsonl", "rejections.jsonl"):
        assert after[name] == before[name], f"a refused run changed {name}"
    resumed = _gemlib("resume", "run", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "5 inputs (5 already done" in resumed.stdout

    afresh = _gemlib(*_run(corpus, "run", server, "--no-judge", "--overwrite"), cwd=tmp_path)
    assert afresh.returncode == 0, afresh.stderr
    assert "5 inputs (0 already done" in afresh.stdout
    assert json.loads((tmp_path / "run" / "run.json").read_text())["judge"] is False


@pytest.mark.parametrize("name", ["run#1", "q?x=1", "pct%41"])
def test_run_directories_with_uri_characters_and_resume_from_another_folder(
    tmp_path: Path, server: str, name: str
) -> None:
    """Fails on the old code: the results reader built a file: URI from the raw path
    (crash for '#' and '?', another directory's database for '%41'), and run.json kept
    relative paths, so resuming from another folder started a new run there."""
    corpus = _five_docs(tmp_path)
    (tmp_path / "pctA").mkdir()  # what 'pct%41' decodes to: must not be read instead
    done = _gemlib(*_run(corpus, name, server), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 trajectories in" in done.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resumed = _gemlib("resume", str(tmp_path / name), cwd=elsewhere)
    assert resumed.returncode == 0, resumed.stderr
    assert "5 inputs (5 already done" in resumed.stdout
    assert not (elsewhere / name).exists(), "resume ran where it was asked to"
    stats = _gemlib("stats", str(tmp_path / name), "--fast", cwd=elsewhere)
    assert stats.returncode == 0, stats.stderr
    assert "1 trajectories" in stats.stdout
    assert sorted(p.name for p in (tmp_path / "pctA").iterdir()) == []


def _damaged_copies(tmp_path: Path, server: str) -> dict[str, Path]:
    corpus = _five_docs(tmp_path)
    assert _gemlib(*_run(corpus, "run", server), cwd=tmp_path).returncode == 0
    damage = {
        "run.json": lambda d: (d / "run.json").write_text('{"corpus": '),
        "manifest.json": lambda d: (d / "manifest.json").write_text("[]"),
        "progress.sqlite": lambda d: (d / "progress.sqlite").write_bytes(b"garbage" * 999),
        ".lock": lambda d: ((d / ".lock").unlink(missing_ok=True), (d / ".lock").mkdir()),
        "outputs.jsonl": lambda d: (d / "outputs.jsonl").write_bytes(b""),
    }
    copies = {}
    for name, apply in damage.items():
        copy = tmp_path / f"damaged-{name.strip('.')}"
        shutil.copytree(tmp_path / "run", copy)
        apply(copy)
        copies[name] = copy
    return copies


def test_every_corrupt_state_is_one_line_naming_the_file_and_exit_code_2(
    tmp_path: Path, server: str
) -> None:
    """Fails on the old code: tracebacks (pydantic ValidationError, AttributeError,
    sqlite3.DatabaseError, IsADirectoryError)."""
    copies = _damaged_copies(tmp_path, server)
    for name, copy in copies.items():
        resumed = _gemlib("resume", str(copy), cwd=tmp_path)
        _one_line_error(resumed, str(copy / name))
        assert "Traceback" not in resumed.stdout
    cut = copies["outputs.jsonl"]
    repaired = _gemlib("resume", str(cut), "--forget-missing", cwd=tmp_path)
    assert repaired.returncode == 0, repaired.stderr
    assert "items will run again (1 outputs and" in repaired.stdout
    assert "1 trajectories in" in repaired.stdout
    for name, key in (("outputs.jsonl", ("id",)), ("rejections.jsonl", ("item_id", "rule"))):

        def keys(run_dir: Path, name: str = name, key: tuple[str, ...] = key) -> list[str]:
            lines = (run_dir / name).read_text().splitlines()
            return sorted(json.dumps([json.loads(line)[k] for k in key]) for line in lines)

        assert keys(cut) == keys(tmp_path / "run"), name


def _half_lines(run_dir: Path) -> None:
    """What a killed run leaves: half a record at the end of every JSONL file."""
    for name in ("outputs.jsonl", "rejections.jsonl"):
        with open(run_dir / name, "a", encoding="utf-8") as handle:
            handle.write('{"id": "half-writ')


def test_every_reader_reads_committed_records_past_half_written_lines(
    tmp_path: Path, server: str
) -> None:
    """Fails on the old code: export, stats, validate and synth-data read outputs.jsonl
    themselves and stopped at the half line with a JSON error; a partitioned run's root
    was not readable at all (view, added later, reads through the store already)."""
    corpus = _five_docs(tmp_path)
    assert _gemlib(*_run(corpus, "run", server), cwd=tmp_path).returncode == 0
    _half_lines(tmp_path / "run")
    root = tmp_path / "parts"
    for index in range(2):
        shutil.copytree(tmp_path / "run", root / f"part-{index:05d}")
    for source, count in (("run", 1), ("parts", 2)):
        for fmt in ("openai", "sharegpt", "hermes", "gem", "parquet"):
            out = f"out/{source}-{fmt}.data"
            done = _gemlib("export", source, "--format", fmt, "--out", out, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            assert f"wrote {count} trajectories" in done.stdout
        stats = _gemlib("stats", source, "--fast", "--html", f"{source}.html", cwd=tmp_path)
        assert stats.returncode == 0, stats.stderr
        assert f"{count} trajectories" in stats.stdout
        checked = _gemlib("validate", source, cwd=tmp_path)
        assert f"{count} of {count} trajectories pass" in checked.stdout, checked.stderr
        synth = _gemlib("synth-data", source, "--out", f"synth-{source}", cwd=tmp_path)
        assert synth.returncode == 0, synth.stderr
        view = _gemlib("view", source, "--out", f"{source}-view.html", cwd=tmp_path)
        assert view.returncode == 0, view.stderr
    resumed = _gemlib("resume", "run", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "5 inputs (5 already done" in resumed.stdout
