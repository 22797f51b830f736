"""The `gemlib` command, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _gemlib(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gemlib.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_runs_end_to_end_and_resumes(tmp_path: Path) -> None:
    first = _gemlib("demo", "--out", "run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "models:   none" in first.stdout, "the demo must say plainly what ran"
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
