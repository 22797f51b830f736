"""A full disk under a run directory, then freed: on a real small tmpfs (needs root).

The disk fills at different moments (inside a JSONL write, inside SQLite's
commit, while opening); every time the run stops with one error, nothing
half-written counts as committed, and the rerun after space returns equals a
run that never met a full disk.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gemlib.pipeline.rundir import open_results

pytestmark = pytest.mark.faults

WORKER = Path(__file__).with_name("crash_worker.py")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs mounted for the test (skipped without root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` to the last byte, then free ``leave`` bytes; return the filler."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        with pytest.raises(OSError, match="No space left") as full:  # noqa: PT012
            while True:
                os.write(descriptor, b"\0" * 4096)
        assert full.value.errno == errno.ENOSPC
        os.ftruncate(descriptor, max(os.fstat(descriptor).st_size - leave, 0))
    finally:
        os.close(descriptor)
    return filler


def _worker(run_dir: Path, n_docs: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(WORKER), str(run_dir), str(n_docs), "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _canonical(run_dir: Path) -> tuple[list[str], list[str]]:
    outputs, rejections = open_results(run_dir)
    return (
        sorted(json.dumps(o, sort_keys=True) for o in outputs),
        sorted(json.dumps(r.model_dump(), sort_keys=True) for r in rejections),
    )


@pytest.mark.parametrize("free_kib", [8, 24, 48, 96])
def test_a_full_disk_stops_the_run_and_the_rerun_equals_an_uninterrupted_one(
    tmp_path: Path, small_disk: Path, free_kib: int
) -> None:
    """Fails on the old code: a half line inside the committed part, or duplicates after
    the rerun, and tracebacks of tasks whose exceptions nobody retrieved."""
    n_docs = 150
    reference = tmp_path / "reference"
    assert _worker(reference, n_docs).returncode == 0
    expected = _canonical(reference)

    filler = _fill(small_disk, free_kib * 1024)
    run_dir = small_disk / "run"
    full = _worker(run_dir, n_docs)
    assert full.returncode != 0, "this much room cannot hold the whole run"
    assert "RunDirWriteError" in full.stderr or "RunDirError" in full.stderr, full.stderr
    assert "never retrieved" not in full.stderr
    assert "Exception in callback" not in full.stderr
    assert "the disk is full" in full.stderr
    filler.unlink()
    if (run_dir / "progress.sqlite").exists():
        outputs, _ = _canonical(run_dir)  # the committed part reads whole
        assert len(set(outputs)) == len(outputs)
        assert set(outputs) <= set(expected[0])
    again = _worker(run_dir, n_docs)
    assert again.returncode == 0, again.stderr
    assert _canonical(run_dir) == expected


def test_a_full_disk_on_the_command_line_is_one_line_and_exit_code_2(
    tmp_path: Path, small_disk: Path
) -> None:
    """Fails on the old code: exit code 0 and a screen of tracebacks."""
    if importlib.util.find_spec("llama_cpp") is not None:
        pytest.skip("with llama-cpp-python installed the demo runs the embedded model")
    env = {**os.environ, "GEMLIB_CACHE_DIR": str(tmp_path / "cache")}

    def demo(out: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gemlib.cli", "demo", "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )

    assert demo(tmp_path / "reference").returncode == 0
    expected = _canonical(tmp_path / "reference")
    for free in (1024, 6 * 1024, 12 * 1024):
        filler = _fill(small_disk, free)
        out = small_disk / f"run-{free}"
        full = demo(out)
        assert full.returncode == 2, full.stderr
        lines = full.stderr.strip().splitlines()
        assert len(lines) == 1, full.stderr
        assert lines[0].startswith("gemlib: error: "), lines
        assert "disk is full" in lines[0], lines
        assert "Traceback" not in full.stdout
        filler.unlink()
        again = demo(out)
        assert again.returncode == 0, again.stderr
        assert _canonical(out) == expected
        shutil.rmtree(out)


def test_a_read_only_run_directory_is_one_line_and_still_readable(
    tmp_path: Path, small_disk: Path
) -> None:
    """Fails on the old code: a PermissionError/OSError traceback, and readers could not
    open the progress database of a read-only directory."""
    if importlib.util.find_spec("llama_cpp") is not None:
        pytest.skip("with llama-cpp-python installed the demo runs the embedded model")
    env = {**os.environ, "GEMLIB_CACHE_DIR": str(tmp_path / "cache")}

    def gemlib(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gemlib.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )

    out = small_disk / "run"
    assert gemlib("demo", "--out", str(out)).returncode == 0
    expected = _canonical(out)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    refused = gemlib("demo", "--out", str(out))
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert str(out) in lines[0]
    assert "writable" in lines[0]
    assert _canonical(out) == expected, "readers still read a read-only run directory"
