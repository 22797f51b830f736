"""Batch mode against the loopback fake of OpenAI's files and batches endpoints."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cli_runner import gemlib as run_gemlib
from fake_batch import FakeBatch
from fake_openai import FakeOpenAI, Reply
from gemlib import Pipeline, RunResult
from gemlib.analysis.report import format_costs
from gemlib.llm import LLM, ChatRequest
from gemlib.llm.batch import BatchSettings, custom_id
from gemlib.llm.batch_ledger import BatchLedger
from gemlib.pipeline.progress import Snapshot
from teacher import teacher_reply
from test_gem_stages import _docs, _llm

FAST = {"idle_after": 0.05, "flush_after": 1.0, "poll_interval": 0.02}


def _batch_llm(
    server: FakeBatch, ledger: Path, model: str = "openai/teacher", **settings: Any
) -> LLM:
    anthropic = model.startswith("anthropic/")
    return LLM(
        model,
        api_base=server.url.removesuffix("/v1") if anthropic else server.url,
        api_key="k",
        cache=False,
        backoff_base=0.01,
        batch=BatchSettings(ledger=ledger, **{**FAST, **settings}),
    )


def _outputs(result: RunResult) -> list[dict[str, Any]]:
    return sorted((t.model_dump() for t in result.trajectories), key=lambda t: t["id"])


def _rejections(result: RunResult) -> list[tuple[str, str, str]]:
    return sorted((r.item_id, r.stage, r.rule) for r in result.rejections)


@pytest.fixture(scope="module")
def direct() -> tuple[RunResult, int]:
    with FakeOpenAI(teacher_reply) as server:
        result = Pipeline.gem(_llm(server)).run(_docs(), progress_interval=None)
        return result, len(server.requests)


def test_a_gem_run_in_batch_mode_keeps_the_direct_runs_trajectories(
    direct: tuple[RunResult, int], tmp_path: Path
) -> None:
    expected, requests = direct
    seen: list[Snapshot] = []

    class Keep:
        def update(self, snapshot: Snapshot) -> None:
            seen.append(snapshot)

        def close(self, snapshot: Snapshot) -> None:
            seen.append(snapshot)

    with FakeBatch(teacher_reply, delay=0.05) as server:
        result = Pipeline.gem(_batch_llm(server, tmp_path / "ledger.sqlite")).run(
            _docs(), progress=Keep(), progress_interval=0.02
        )
    assert _outputs(result) == _outputs(expected)
    assert _rejections(result) == _rejections(expected)
    submitted = server.all_submitted()
    assert len(submitted) == requests, "the same requests, each once"
    assert len(set(submitted)) == len(submitted)
    assert len(server.submitted) >= 5, "stage by stage, repairs in a later batch"
    ledger = BatchLedger(tmp_path / "ledger.sqlite")
    assert ledger.counts() == {"done": len(server.submitted)}
    final = seen[-1].batches
    assert final is not None
    assert (final.submitted, final.done, final.in_progress) == (len(server.submitted),) * 2 + (0,)
    assert final.requests_done == final.requests_submitted == requests
    assert any(s.batches and s.batches.in_progress for s in seen), "progress shows batches waiting"
    assert "batches " in seen[-1].line()
    usage = [u for models in result.usage.values() for u in models.values()]
    assert sum(u.batched for u in usage) == sum(u.requests for u in usage) == requests
    assert f"{requests} of {requests} requests went in provider batches" in format_costs(
        result.stats
    )


def test_anthropic_message_batches_give_the_direct_trajectories(
    direct: tuple[RunResult, int], tmp_path: Path
) -> None:
    expected, requests = direct
    with FakeBatch(teacher_reply, delay=0.05) as server:
        llm = _batch_llm(server, tmp_path / "ledger.sqlite", "anthropic/claude-teacher")
        result = Pipeline.gem(llm).run(_docs(), progress_interval=None)
    assert _expected(result) == _expected(expected)
    submitted = server.all_submitted()
    assert len(submitted) == len(set(submitted)) == requests
    assert all(call.startswith(("POST /v1/messages", "GET /v1/messages")) for call in server.calls)


def test_identical_requests_share_one_line_and_ids_are_content_hashes(tmp_path: Path) -> None:
    with FakeBatch(lambda body, n: Reply("same")) as server:
        llm = _batch_llm(server, tmp_path / "ledger.sqlite")
        messages = [{"role": "user", "content": "hi"}]

        async def ask_twice() -> list[str]:
            try:
                replies = await asyncio.gather(
                    llm.acomplete(messages),
                    llm.acomplete(messages),
                    llm.acomplete(messages, sample=1),
                )
            finally:
                await llm.aclose()
            return [r.text for r in replies]

        assert asyncio.run(ask_twice()) == ["same", "same", "same"]
        assert len(server.submitted) == 1
        assert len(server.submitted[0]) == 2, "two distinct requests, one line each"
    request = ChatRequest("openai/teacher", messages, {})
    assert custom_id(request, "x") == custom_id(ChatRequest("openai/teacher", messages, {}), "x")
    assert custom_id(request, "x") != custom_id(ChatRequest("openai/teacher", messages, {}, 1), "x")
    assert custom_id(request, "x") != custom_id(request, "y"), "another server, another ID"


def _ask_all(llm: LLM, count: int) -> list[Any]:
    """``count`` distinct requests at once; each reply's text, or the exception it raised."""

    async def go() -> list[Any]:
        try:
            return await asyncio.gather(
                *(llm.acomplete([{"role": "user", "content": f"q{i}"}]) for i in range(count)),
                return_exceptions=True,
            )
        finally:
            await llm.aclose()

    return [r if isinstance(r, BaseException) else r.text for r in asyncio.run(go())]


def _echo(body: dict[str, Any], n: int) -> Reply:
    return Reply("re " + body["messages"][0]["content"])


@pytest.mark.parametrize(
    ("model", "ending"),
    [
        ("openai/teacher", "expired"),
        ("openai/teacher", "failed"),
        ("openai/teacher", "cancelled"),
        ("anthropic/claude-teacher", "expired"),
        ("anthropic/claude-teacher", "cancelled"),
    ],
)
def test_a_batch_that_ends_early_has_only_its_unfinished_requests_resubmitted(
    tmp_path: Path, model: str, ending: str
) -> None:
    def outcome(n: int) -> str:
        return ending if n == 0 else "completed"

    with FakeBatch(_echo, delay=0.2, outcome=outcome, partial=0.4) as server:
        replies = _ask_all(_batch_llm(server, tmp_path / "ledger.sqlite", model), 10)
    assert replies == [f"re q{i}" for i in range(10)]
    first, *later = server.submitted
    answered = 4 if ending == "expired" else 0
    assert sorted(x for batch in later for x in batch) == sorted(first[answered:]), (
        "exactly the requests the first batch left unfinished went out again, once"
    )


def test_failed_lines_follow_the_direct_rules_transient_retried_client_errors_not(
    tmp_path: Path,
) -> None:
    seen: dict[str, int] = {}

    def flaky(body: dict[str, Any], n: int) -> Reply:
        text = body["messages"][0]["content"]
        seen[text] = seen.get(text, 0) + 1
        if text == "q7":
            return Reply(status=400)
        if text in ("q1", "q2") and seen[text] == 1:
            return Reply(status=500)
        if text == "q3" and seen[text] == 1:
            return Reply(status=429)
        return _echo(body, n)

    with FakeBatch(flaky) as server:
        replies = _ask_all(_batch_llm(server, tmp_path / "ledger.sqlite"), 10)
    assert [r for i, r in enumerate(replies) if i != 7] == [f"re q{i}" for i in range(10) if i != 7]
    assert type(replies[7]).__name__ == "ModelRequestError", "a 400 line is not retried"
    assert len(server.submitted[0]) == 10
    retried = sorted(x for batch in server.submitted[1:] for x in batch)
    assert len(retried) == 3, "only the lines with transient errors went out again"
    assert seen["q7"] == 1


@pytest.mark.parametrize("kind", ["directory", "not a database"])
def test_a_ledger_that_cannot_be_opened_stops_the_run_and_is_never_the_requests_fault(
    tmp_path: Path, kind: str
) -> None:
    ledger = tmp_path
    if kind == "not a database":
        ledger = tmp_path / "batches.sqlite"
        ledger.write_bytes(bytes(range(256)) * 20)
    with FakeBatch(_echo) as server:
        llm = LLM(
            "openai/teacher",
            api_base=server.url,
            api_key="k",
            cache=False,
            max_retries=1,
            backoff_base=0.01,
            batch=BatchSettings(ledger=ledger, **FAST),  # SQLite cannot open it
        )
        started = time.monotonic()
        replies = _ask_all(llm, 3)
    assert time.monotonic() - started < 2, "no retries: the ledger will not heal by itself"
    assert [type(r).__name__ for r in replies] == ["CacheError"] * 3, "a fatal error, as the cache"
    assert f"batch ledger {ledger} cannot be used" in str(replies[0])
    assert server.submitted == [], "nothing is sent that the ledger did not record"


def test_a_rerun_takes_replies_from_the_ledger_and_never_resubmits(tmp_path: Path) -> None:
    with FakeBatch(_echo) as server:
        ledger = tmp_path / "ledger.sqlite"
        assert _ask_all(_batch_llm(server, ledger), 6) == [f"re q{i}" for i in range(6)]
        assert _ask_all(_batch_llm(server, ledger), 6) == [f"re q{i}" for i in range(6)]
        assert len(server.submitted) == 1, "the second run found every reply in the ledger"


# ------------------------------------------------------------------ the command line, and crashes


def _write_corpus(path: Path) -> Path:
    path.write_text("".join(d.model_dump_json(include={"id", "text"}) + "\n" for d in _docs()))
    return path


def _run_args(tmp_path: Path, url: str, *extra: str) -> list[str]:
    """`gemlib run --batch` over the corpus in ``tmp_path``, with fast batch settings."""
    config = tmp_path / "batch.toml"
    config.write_text(
        "[batch_settings]\nidle_after = 0.05\nflush_after = 1.0\npoll_interval = 0.02\n"
    )
    args = ["run", str(tmp_path / "corpus.jsonl")]
    args += ["--model", "openai/teacher", "--api-base", url, "--batch", "--quiet"]
    return [*args, "--config", str(config), "--out", str(tmp_path / "run"), *extra]


def _cli(tmp_path: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    """The same command as a real process, for the tests that kill it."""
    args = [sys.executable, "-m", "gemlib.cli", *_run_args(tmp_path, url, *extra)]
    env = {**os.environ, "OPENAI_API_KEY": "k", "GEMLIB_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _trajectories(run_dir: Path) -> list[tuple[str, Any, Any]]:
    lines = (run_dir / "outputs.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return sorted((r["id"], r["messages"], r["tools"]) for r in records)


def _expected(result: RunResult) -> list[tuple[str, Any, Any]]:
    return sorted(
        (t["id"], t["messages"], t["tools"])
        for t in (json.loads(t.model_dump_json()) for t in result.trajectories)
    )


def test_gemlib_run_batch_gives_the_direct_trajectories(
    direct: tuple[RunResult, int], tmp_path: Path
) -> None:
    _write_corpus(tmp_path / "corpus.jsonl")
    with FakeBatch(teacher_reply, delay=0.05) as server:
        done = run_gemlib(
            *_run_args(tmp_path, server.url), cwd=tmp_path, env={"OPENAI_API_KEY": "k"}
        )
        assert done.returncode == 0, done.stderr
        assert _trajectories(tmp_path / "run") == _expected(direct[0])
        submitted = server.all_submitted()
        assert len(submitted) == len(set(submitted)) == direct[1]
    assert (tmp_path / "cache" / "batches.sqlite").exists(), "the ledger sits beside the cache"


def _kill_soon(process: subprocess.Popen[str], server: FakeBatch, delay: float) -> bool:
    """Kill ``process`` ``delay`` seconds after it first reaches the server; whether it did."""
    calls = len(server.calls)
    deadline = time.monotonic() + 30
    while len(server.calls) == calls and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.kill()
        return True
    return False


@pytest.mark.faults
def test_sigkill_at_random_moments_never_submits_a_request_twice(
    direct: tuple[RunResult, int], tmp_path: Path
) -> None:
    """Passes of the whole run, each against a fresh server, until 20 kills have landed.

    Half the batch creations kill the client after the provider made the batch
    and before the client hears its ID; other kills come at random moments
    after the process first reaches the server. Each pass ends with a rerun
    that finishes; the server must never have seen a request twice.
    """
    rng = random.Random(18)
    kills: list[str] = []
    passes = lookups = 0
    while len(kills) < 20:
        passes += 1
        work = tmp_path / f"pass-{passes}"
        work.mkdir()
        _write_corpus(work / "corpus.jsonl")
        current: dict[str, Any] = {}

        def kill_on_create(batch: dict[str, Any], current: dict[str, Any] = current) -> None:
            if rng.random() < 0.5:
                current["process"].kill()
                kills.append("between submit and record")

        with FakeBatch(teacher_reply, delay=0.2, on_create=kill_on_create) as server:
            for _ in range(100):
                process = current["process"] = _cli(work, server.url)
                if _kill_soon(process, server, rng.uniform(0.0, 0.8)):
                    kills.append("at a random moment")
                _out, err = process.communicate(timeout=120)
                if process.returncode == 0:
                    break
                assert process.returncode == -signal.SIGKILL, err
            submitted = server.all_submitted()
            lookups += server.calls.count("GET /v1/batches")
        assert process.returncode == 0
        assert len(submitted) == len(set(submitted)), "no request was submitted twice"
        assert _trajectories(work / "run") == _expected(direct[0])
    assert kills.count("between submit and record") >= 3, kills
    assert lookups >= 3, "reruns looked the unrecorded batches up at the provider"
    print(f"{passes} passes, {len(kills)} kills ({kills.count('at a random moment')} at random)")
