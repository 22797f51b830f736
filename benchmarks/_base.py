"""Side by side with an older commit: its wheel built and unpacked, and child runs interleaved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def extract(commit: str, into: Path) -> Path:
    """A directory importing ``commit``'s gemlib as its wheel installs it.

    The commit's tree (``git archive``) is built into a wheel by pip with the
    build backend installed here (no build isolation, so nothing is fetched:
    ``nox -s bench`` installs it) and the wheel is unpacked under ``into``; the
    returned directory goes on ``PYTHONPATH``. Without the backend, the
    commit's ``src`` is used as it is, and a line says so.
    """
    tree, wheels, site = into / "tree", into / "wheel", into / "site"
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    build = subprocess.run(
        [*pip, "-w", str(wheels), str(tree)],
        capture_output=True,
        text=True,
    )
    built = sorted(wheels.glob("*.whl"))
    if build.returncode or not built:
        print(f"(could not build {commit}'s wheel; using its src as it is)", file=sys.stderr)
        return tree / "src"
    with zipfile.ZipFile(built[0]) as wheel:
        wheel.extractall(site)
    return site


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


def fastest(
    script: Path, sources: Mapping[bool, Path], arguments: Sequence[str], rounds: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Each figure's lowest over ``rounds`` :func:`child` runs per side (the sides
    alternating, as :func:`pairs` orders them) of ``script``, which prints its figures
    as one JSON object: the base's (``sources[True]``), then this tree's."""
    best: dict[bool, dict[str, float]] = {True: {}, False: {}}
    for order in pairs(rounds):
        for base in order:
            for name, figure in json.loads(child(script, sources[base], arguments)).items():
                best[base][name] = min(figure, best[base].get(name, figure))
    return best[True], best[False]


def cpu_us(run: Callable[[], object], samples: int, calls: int) -> float:
    """Microseconds of process time per call of ``run``: the fastest of ``samples``
    batches of ``calls`` calls (the batch least disturbed by other work)."""
    best = float("inf")
    for _ in range(samples):
        started = time.process_time()
        for _ in range(calls):
            run()
        best = min(best, time.process_time() - started)
    return best / calls * 1e6
