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
    from fake_openai import FakeOpenAI, Reply

    def needs_a_key(body: dict[str, object], n: int) -> Reply:
        return Reply(status=401)  # what a server that wants a key answers

    corpus = _five_docs(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    with FakeOpenAI(needs_a_key) as server:
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
        sent = len(server.requests)
    assert done.returncode == 2
    assert "HTTP 401" in done.stderr
    assert "OPENAI_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr
    assert sent <= 5, "stops at once: only the requests already in flight went out"
