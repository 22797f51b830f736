"""Side by side with an older commit: its ``src`` extracted, and child runs interleaved."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def extract(commit: str, into: Path) -> Path:
    """The ``src`` directory of ``commit`` (``git archive``), written under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit, "src"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def child(script: Path, src: Path, arguments: Sequence[str]) -> str:
    """The last line ``script`` prints when run in a fresh process importing gemlib from
    ``src`` (each side of a comparison gets the same kind of process)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, str(script), *arguments], env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"the run with {src} failed:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def pairs(rounds: int) -> list[list[bool]]:
    """Per round, which side runs first (``True``: the base), alternating."""
    return [[True, False] if i % 2 == 0 else [False, True] for i in range(rounds)]
