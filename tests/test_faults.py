"""Reliability under faults: flaky servers, crashes, interrupts, concurrent runs.

Marked ``faults`` (``nox -s faults``; CI runs it). Everything talks to the
loopback fake server or to subprocesses on this machine only.
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
from gemlib import Document, Pipeline
from gemlib.errors import ParseError
from gemlib.llm import LLM, Limits
from gemlib.pipeline.rundir import open_results
from gemlib.stages.llm_stage import LLMStage
from test_run_dir import WORKER, _canonical, _run_worker

pytestmark = pytest.mark.faults


class Echo(LLMStage):
    """Asks the model to repeat a token; the reply must hold it."""

    def prompt(self, doc: Document) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"Repeat: {doc.id}"}]

    def parse(self, text: str, doc: Document) -> Document:
        if doc.id not in text:
            raise ParseError(f"the reply must contain {doc.id}")
        return doc.model_copy(update={"meta": {"echo": text}})


def _faulty(seed: int) -> Any:
    rng = random.Random(seed)
    lock = threading.Lock()

    def reply(body: dict[str, Any], n: int) -> Reply:
        token = body["messages"][0]["content"].removeprefix("Repeat: ")
        with lock:
            roll = rng.random()
        if roll < 0.10:
            return Reply(status=429, headers={"Retry-After": "0.2"})
        if roll < 0.16:
            return Reply(status=429)
        if roll < 0.24:
            return Reply(status=rng.choice([500, 502, 503]))
        if roll < 0.27:
            return Reply(delay=3.0)  # hangs past the client's timeout
        if roll < 0.32:
            return Reply(raw_body=b'{"choices": [{"message": ')
        if roll < 0.36:
            return Reply(empty_choices=True)
        if roll < 0.40:
            return Reply(f"{token} and then", finish_reason="length")
        return Reply(f"echo {token}")

    return reply


def _llm(server: FakeOpenAI, tmp_path: Path, **options: Any) -> LLM:
    options.setdefault("max_retries", 8)
    return LLM(
        "openai/flaky",
        api_base=server.url,
        api_key="k",
        cache=tmp_path / "cache.sqlite",
        timeout=1.0,
        backoff_base=0.05,
        backoff_max=0.5,
        limits=Limits(max_concurrency=8),
        **options,
    )


def test_random_faults_every_item_ends_as_output_or_rejection(tmp_path: Path) -> None:
    docs = [Document(id=f"d{i:03d}", text=f"text {i}") for i in range(80)]
    with FakeOpenAI(_faulty(seed=11)) as server:
        result = Pipeline([Echo(_llm(server, tmp_path))]).run(docs, run_dir=tmp_path / "run")
        seen = len(server.requests)
    kept = {d.id for d in result.outputs}
    rejected = {r.item_id for r in result.rejections}
    left = {d.id for d in docs} - kept - rejected  # retries spent: not the item's fault
    assert len(left) == sum(result.stats.left_for_retry.values()), "every item is accounted for"
    assert not kept & rejected
    assert len(result.outputs) + len(result.rejections) + len(left) == len(docs)
    assert {r.rule for r in result.rejections} <= {"truncated_reply"}
    assert any(r.rule == "truncated_reply" for r in result.rejections)
    assert len(kept) > 50
    usage = result.usage["echo"]["openai/flaky"]
    assert usage.retries > 10
    # `requests` counts attempts; one that times out waiting for a connection never arrives.
    assert 0.9 * usage.requests <= seen <= usage.requests

    # Rerunning asks only about the items left for retry: every other one is finished.
    with FakeOpenAI(lambda body, n: Reply("echo " + body["messages"][0]["content"][8:])) as again:
        Pipeline([Echo(_llm(again, tmp_path))]).run(docs, run_dir=tmp_path / "run")
        assert {r["messages"][0]["content"][8:] for r in again.requests} == left


def test_a_server_that_dies_and_comes_back(tmp_path: Path) -> None:
    probe = FakeOpenAI().start()
    port = probe.port
    probe.stop()
    server = FakeOpenAI(
        lambda body, n: Reply("echo " + body["messages"][0]["content"][8:]), latency=0.05, port=port
    ).start()
    docs = [Document(id=f"d{i:02d}", text="x") for i in range(80)]
    restarted = threading.Event()

    def outage() -> None:
        while len(server.requests) < 10:
            time.sleep(0.01)
        server.kill()  # open connections dropped, new ones refused
        time.sleep(1.5)
        server.start()
        restarted.set()

    thread = threading.Thread(target=outage)
    thread.start()
    llm = LLM(
        "openai/x",
        api_base=f"http://127.0.0.1:{port}/v1",
        api_key="k",
        cache=False,
        timeout=1.0,
        backoff_base=0.2,
        backoff_max=1.0,
        max_retries=10,
        limits=Limits(max_concurrency=4),
    )
    result = Pipeline([Echo(llm)]).run(docs, max_in_flight=4)
    thread.join()
    server.stop()
    assert restarted.is_set()
    assert len(result.outputs) == 80, [r.reason for r in result.rejections][:3]
    assert result.usage["echo"]["openai/x"].retries > 0


def test_twenty_sigkills_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    n_docs, delay = 2000, 0.02
    reference = tmp_path / "reference"
    assert _run_worker(reference, n_docs, delay).wait(timeout=300) == 0
    expected = _canonical(reference)
    crashed = tmp_path / "crashed"
    rng = random.Random(3)
    kills = 0
    while kills < 20:
        before = _committed(crashed)
        proc = _run_worker(crashed, n_docs, delay)
        deadline = time.monotonic() + 60
        while proc.poll() is None and _committed(crashed) <= before and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.1))
        if proc.poll() is not None:
            break  # finished before we could kill it
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        outputs, _ = _canonical(crashed)  # readable after every kill
        assert len(outputs) == len(set(outputs))
    assert kills == 20
    final = _run_worker(crashed, n_docs, delay)
    assert final.wait(timeout=300) == 0
    assert _canonical(crashed) == expected


def _committed(run_dir: Path) -> int:
    if not (run_dir / "progress.sqlite").exists():
        return 0
    try:
        outputs, _ = open_results(run_dir)
        return sum(1 for _ in outputs)
    except Exception:  # the database is being created this instant
        return 0


def test_ctrl_c_stops_cleanly_keeps_finished_items_and_says_how_to_resume(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    assert _run_worker(reference, 400, 0.02).wait(timeout=120) == 0
    run_dir = tmp_path / "run"
    proc = _run_worker(run_dir, 400, 0.02)
    while _committed(run_dir) == 0:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    kept = _committed(run_dir)
    assert 0 < kept < 800, "stopped part-way, with what was finished kept"
    assert _run_worker(run_dir, 400, 0.02).wait(timeout=120) == 0
    assert _canonical(run_dir) == _canonical(reference)


def test_ctrl_c_on_the_command_line_prints_how_to_resume(tmp_path: Path) -> None:
    from teacher import teacher_reply
    from test_cli import LOCAL_KEY, _run_command

    with FakeOpenAI(teacher_reply, latency=1.0) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gemlib.cli", *_run_command(tmp_path, server.url)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "GEMLIB_CACHE_DIR": str(tmp_path / "cache"), **LOCAL_KEY},
        )
        while not server.requests:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted; finished items are kept, rerun the command to resume" in err
    assert "Traceback" not in err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["last_session"]["stats"]["inputs"] >= 1


def test_a_second_process_on_the_same_run_directory_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = _run_worker(run_dir, 3000, 0.02)
    while _committed(run_dir) == 0:
        time.sleep(0.01)
    second = subprocess.run(
        [sys.executable, str(WORKER), str(run_dir), "10", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    first.kill()
    first.wait()
    assert second.returncode != 0
    assert f"run directory {run_dir} is in use by pid {first.pid}" in second.stderr
