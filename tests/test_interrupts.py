"""Ctrl-C and SIGTERM lose nothing, even under a 429/500 storm (issue 14).

`gemlib run` runs as a real subprocess against the loopback fake teacher, which
answers a share of requests with 429 (short ``Retry-After``) or 500. The drill
interrupts the same run directory 20 times with SIGINT and, in parallel, 20
times with SIGTERM, each time after a random number of requests; every stop
must say it was interrupted, exit 130 / 143, and record no in-flight item as a
rejection. After the last resume, outputs and rejections equal those of an
uninterrupted run. Before the fix, a cancelled wait for the rate-limited model's
slot raised ``ValueError: <Future cancelled> is not in deque``, which became an
``exception`` rejection (and SIGTERM killed the process with no message).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI, Reply
from gemlib.pipeline.rundir import open_results

pytestmark = pytest.mark.faults

INTERRUPTS = 20
EXAMPLES = {
    "return-online-order",
    "calendar-meeting",
    "history-printing",
    "smart-thermostat",
    "bank-transfer",
}


def _corpus(path: Path, copies: int) -> Path:
    """The teacher's five example texts, ``copies`` times each under other IDs."""
    source = Path(__file__).parents[1] / "examples" / "corpus" / "gem_examples.jsonl"
    texts = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    lines = [
        json.dumps({"id": f"{doc['id']}-{copy}", "text": f"{doc['text']}\n\n(copy {copy})"})
        for copy in range(copies)
        for doc in texts
        if doc["id"] in EXAMPLES
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _storm(seed: int) -> Any:
    from teacher import teacher_reply

    rng = random.Random(seed)
    lock = threading.Lock()

    def reply(body: dict[str, Any], n: int) -> Reply:
        with lock:
            roll = rng.random()
        if roll < 0.15:
            return Reply(status=429, headers={"Retry-After": "0.05"})
        if roll < 0.25:
            return Reply(status=500)
        return teacher_reply(body, n)

    return reply


def _strip(value: Any) -> Any:
    """A record without what legitimately differs between sessions (usage, cost, latency)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in ("usage",)}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _canonical(run_dir: Path) -> tuple[list[str], list[str]]:
    outputs, rejections = open_results(run_dir)
    return (
        sorted(json.dumps(_strip(o), sort_keys=True) for o in outputs),
        sorted(json.dumps(_strip(r.model_dump()), sort_keys=True) for r in rejections),
    )


def _command(corpus: Path, out: Path, url: str) -> list[str]:
    return [
        sys.executable, "-m", "gemlib.cli", "run", str(corpus), "--model", "openai/teacher",
        "--api-base", url, "--out", str(out), "--quiet", "--concurrency", "4",
    ]  # fmt: skip


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "GEMLIB_CACHE_DIR": str(cache), "OPENAI_API_KEY": "none"}


def _finish(command: list[str], env: dict[str, str]) -> None:
    """Resume until the run is complete (a storm may leave an item for the next run)."""
    for _ in range(4):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode == 0:
            return
        assert done.returncode == 3, done.stdout + done.stderr
    raise AssertionError("the run did not complete in four resumes")


def _drill(signum: int, tmp_path: Path, corpus: Path, failures: list[str]) -> None:
    try:
        _interrupt_again_and_again(signum, tmp_path, corpus, failures)
    except Exception as exc:  # a thread's exception would vanish: report it
        failures.append(f"{signum}: {type(exc).__name__}: {exc}")


def _interrupt_again_and_again(
    signum: int, tmp_path: Path, corpus: Path, failures: list[str]
) -> None:
    out, cache = tmp_path / f"run-{signum}", tmp_path / f"cache-{signum}"
    rng = random.Random(signum)
    interrupted = 0
    with FakeOpenAI(_storm(seed=signum), latency=0.01) as server:
        command, env = _command(corpus, out, server.url), _env(cache)
        while interrupted < INTERRUPTS:
            seen = len(server.requests)
            proc = subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            wanted = seen + rng.randint(2, 10)
            deadline = time.monotonic() + 60
            while len(server.requests) < wanted and proc.poll() is None:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            if proc.poll() is not None:  # finished before the signal: nothing left to stop
                break
            proc.send_signal(signum)
            _, stderr = proc.communicate(timeout=60)
            interrupted += 1
            expected = 130 if signum == signal.SIGINT else 143
            if proc.returncode != expected or "interrupted; finished items are kept" not in stderr:
                failures.append(f"{signum}: exit {proc.returncode}: {stderr[-500:]}")
            if "Traceback" in stderr:
                failures.append(f"{signum}: traceback: {stderr[-800:]}")
            _, rejections = open_results(out) if (out / "manifest.json").exists() else ([], [])
            for rejection in rejections:
                if any(w in rejection.reason for w in ("CancelledError", "Future", "deque")):
                    failures.append(f"{signum}: in-flight item rejected: {rejection.reason}")
        _finish(command, env)
    if interrupted < INTERRUPTS:
        failures.append(f"{signum}: only {interrupted} interrupts before the run finished")


def test_interrupts_under_a_429_500_storm_lose_nothing(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus.jsonl", copies=8)
    reference = tmp_path / "reference"
    with FakeOpenAI(_storm(seed=7), latency=0.01) as server:
        _finish(_command(corpus, reference, server.url), _env(tmp_path / "cache-ref"))
    expected = _canonical(reference)
    assert len(expected[0]) >= 8, "the teacher's procedural texts make trajectories"
    assert len(expected[1]) >= 8, "and its faulty ones rejections"

    failures: list[str] = []
    drills = [
        threading.Thread(target=_drill, args=(signum, tmp_path, corpus, failures))
        for signum in (signal.SIGINT, signal.SIGTERM)
    ]
    for drill in drills:
        drill.start()
    for drill in drills:
        drill.join(timeout=600)
    assert not failures, "\n".join(failures)
    for signum in (signal.SIGINT, signal.SIGTERM):
        assert _canonical(tmp_path / f"run-{signum}") == expected, f"signal {signum}"


SIGINT_IGNORED = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "from gemlib.cli import main; sys.exit(main(sys.argv[1:]))"
)
"""``gemlib`` as a job started with ``&`` runs it (no ``preexec_fn``: the fake teacher's
threads make one unsafe)."""


def test_sigterm_with_sigint_ignored_stops_a_busy_run_without_a_traceback(tmp_path: Path) -> None:
    """A shell starts a job with ``&`` with SIGINT ignored, so asyncio installs no Ctrl-C
    handler and gemlib cannot turn SIGTERM into SIGINT. SIGTERM must still stop the run
    the clean way wherever it lands: before the fix, the KeyboardInterrupt raised inside
    a task (parsing, a schema check, the cache) was also that task's unretrieved
    exception, and asyncio printed its traceback. Replies come at once, so the run is
    busy when the signal lands."""
    from teacher import teacher_reply

    corpus = _corpus(tmp_path / "corpus.jsonl", copies=8)
    out, cache = tmp_path / "run", tmp_path / "cache"
    rng = random.Random(5)
    stops = 0
    with FakeOpenAI(teacher_reply) as server:
        command, env = _command(corpus, out, server.url), _env(cache)
        for _ in range(10):
            wanted = len(server.requests) + rng.randint(3, 12)
            proc = subprocess.Popen(
                [sys.executable, "-c", SIGINT_IGNORED, *command[3:]],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            deadline = time.monotonic() + 60
            while len(server.requests) < wanted and proc.poll() is None:
                assert time.monotonic() < deadline, "the run made no progress"
                time.sleep(0.002)
            if proc.poll() is not None:  # finished before the signal
                break
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=60)
            stops += 1
            assert proc.returncode == 143, stderr
            assert "interrupted; finished items are kept" in stderr, stderr
            assert "Traceback" not in stderr, stderr
        _finish(command, env)
    assert stops >= 3, "the signals landed while the run was going"
    outputs, _ = _canonical(out)
    assert outputs, "the resumed run finished the corpus"
