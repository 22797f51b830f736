"""The `gemlib` command, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _gemlib(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gemlib.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GEMLIB_CACHE_DIR": str(cwd / "cache"), **(env or {})},
    )


LOCAL_KEY = {"OPENAI_API_KEY": "none"}


def test_demo_runs_end_to_end_and_resumes(tmp_path: Path) -> None:
    first = _gemlib("demo", "--out", "run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "models:   none" in first.stdout, "the demo must say plainly what ran"
    assert "gem_examples.jsonl --model openai/gpt-4.1-mini" in first.stdout
    assert "procedure_prefilter           20      16         4" in first.stdout
    assert "history-printing:0" in first.stdout
    assert len((tmp_path / "run" / "outputs.jsonl").read_text().splitlines()) == 16
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert [s["name"] for s in manifest["stages"]] == ["segmenter", "procedure_prefilter"]

    second = _gemlib("demo", "--out", "run", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "20 inputs (20 already done" in second.stdout
    assert len((tmp_path / "run" / "outputs.jsonl").read_text().splitlines()) == 16


def test_version_and_usage_errors(tmp_path: Path) -> None:
    assert _gemlib("--version", cwd=tmp_path).stdout.startswith("gemlib ")
    wrong = _gemlib("frobnicate", cwd=tmp_path)
    assert wrong.returncode == 2
    assert "invalid choice" in wrong.stderr


def _five_docs(tmp_path: Path) -> Path:
    source = Path(__file__).parents[1] / "examples" / "corpus" / "gem_examples.jsonl"
    keep = {
        "return-online-order",
        "calendar-meeting",
        "history-printing",
        "smart-thermostat",
        "bank-transfer",
    }
    lines = [ln for ln in source.read_text().splitlines() if json.loads(ln)["id"] in keep]
    corpus = tmp_path / "five.jsonl"
    corpus.write_text("\n".join(lines) + "\n")
    return corpus


def _run_command(tmp_path: Path, api_base: str) -> list[str]:
    """`gemlib run` over five example texts against a teacher server, into ./run."""
    corpus = _five_docs(tmp_path)
    return ["run", str(corpus), "--model", "openai/teacher", "--api-base", api_base, "--out", "run"]


def test_run_command_drives_gem_against_a_server(tmp_path: Path) -> None:
    from fake_openai import FakeOpenAI
    from teacher import teacher_reply

    with FakeOpenAI(teacher_reply) as server:
        command = _run_command(tmp_path, server.url)
        done = _gemlib(*command, cwd=tmp_path, env=LOCAL_KEY)
        assert done.returncode == 0, done.stderr
        assert "1 trajectories in run/outputs.jsonl" in done.stdout
        assert "relevance_filter/not_procedural" in done.stdout
        requests = len(server.requests)
        again = _gemlib(*command, cwd=tmp_path, env=LOCAL_KEY)
        assert again.returncode == 0, again.stderr
        assert "5 inputs (5 already done" in again.stdout
        assert len(server.requests) == requests, "a resumed run sends nothing"


def test_run_command_user_mistakes_fail_before_spending(tmp_path: Path) -> None:
    missing = _gemlib("run", "nope.jsonl", "--model", "openai/x", "--out", "r", cwd=tmp_path)
    assert missing.returncode == 2
    assert "gemlib: error: corpus not found: nope.jsonl" in missing.stderr
    assert "Traceback" not in missing.stderr
    corpus = _five_docs(tmp_path)
    bad_stage = _gemlib(
        "run",
        str(corpus),
        "--model",
        "openai/x",
        "--out",
        "r",
        "--stage-model",
        "judging=openai/y",
        cwd=tmp_path,
    )
    assert bad_stage.returncode == 2
    assert "unknown stage keys ['judging']" in bad_stage.stderr


def test_example_script_runs_gem_on_a_corpus(tmp_path: Path) -> None:
    from fake_openai import FakeOpenAI
    from teacher import teacher_reply

    script = Path(__file__).parents[1] / "examples" / "run_gem.py"
    with FakeOpenAI(teacher_reply) as server:
        done = subprocess.run(
            [
                sys.executable,
                str(script),
                "--model",
                "openai/teacher",
                "--api-base",
                server.url,
                "--corpus",
                str(_five_docs(tmp_path)),
                "--out",
                str(tmp_path / "ex"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "GEMLIB_CACHE_DIR": str(tmp_path / "cache"), **LOCAL_KEY},
        )
    assert done.returncode == 0, done.stderr
    assert "1 trajectories" in done.stdout
    assert "complexity_refiner" in done.stdout


def test_a_missing_api_key_stops_the_run_with_the_fix(tmp_path: Path) -> None:
    from fake_openai import FakeOpenAI

    corpus = _five_docs(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    with FakeOpenAI() as server:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "gemlib.cli",
                "run",
                str(corpus),
                "--model",
                "openai/x",
                "--api-base",
                server.url,
                "--out",
                "r",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, "GEMLIB_CACHE_DIR": str(tmp_path / "cache")},
        )
    assert done.returncode == 2
    assert "no API key" in done.stderr
    assert "OPENAI_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr


def test_stats_export_and_validate_commands(tmp_path: Path) -> None:
    from gemlib import Trajectory
    from gemlib.formats import write_jsonl
    from test_model import OPENAI_RECORD

    good = Trajectory.from_openai(OPENAI_RECORD)
    bad = good.model_copy(update={"id": "bad", "messages": good.messages[:3]})
    write_jsonl([good, bad], tmp_path / "in.jsonl", "openai")

    stats = _gemlib("stats", "in.jsonl", "--html", "report.html", "--fast", cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert "2 trajectories" in stats.stdout
    assert (tmp_path / "report.html").read_text().startswith("<!doctype html>")

    for name in ("sharegpt", "hermes", "gem", "openai"):
        out = _gemlib(
            "export", "in.jsonl", "--format", name, "--out", f"out/{name}.jsonl", cwd=tmp_path
        )
        assert out.returncode == 0, out.stderr
        assert f"wrote 2 trajectories to out/{name}.jsonl" in out.stdout
    assert "sharegpt" in (tmp_path / "out" / "dataset_info.json").read_text()

    check = _gemlib("validate", "out/hermes.jsonl", cwd=tmp_path)
    assert check.returncode == 1
    assert "bad:" in check.stdout
    assert "[turn_order]" in check.stdout
    assert "1 of 2 trajectories pass" in check.stdout

    missing = _gemlib("stats", "nope.jsonl", cwd=tmp_path)
    assert missing.returncode == 2
    assert "gemlib: error: no such file: nope.jsonl" in missing.stderr
    unknown = _gemlib("export", "in.jsonl", "--format", "csv", "--out", "x", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "invalid choice: 'csv'" in unknown.stderr


def test_stats_on_a_run_directory_include_the_funnel(tmp_path: Path) -> None:
    from fake_openai import FakeOpenAI
    from teacher import teacher_reply

    with FakeOpenAI(teacher_reply) as server:
        done = _gemlib(*_run_command(tmp_path, server.url), cwd=tmp_path, env=LOCAL_KEY)
    assert done.returncode == 0, done.stderr
    stats = _gemlib("stats", "run", "--fast", cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert "== funnel ==" in stats.stdout
    assert "llm_judge" in stats.stdout
    assert "1 trajectories" in stats.stdout
