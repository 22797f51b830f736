"""The LLM layer under hostile servers and broken caches (issue 14, runtime part).

Nothing hangs (every exception frees its slot, every wait is capped), every
backend failure is a gemlib error, no credential reaches an error text, a log
line or a repr, and a broken request cache is never an item's fault. Marked
``faults``; everything talks to the loopback fake server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI, Reply
from gemlib import Document, Pipeline
from gemlib.errors import (
    CacheError,
    ModelConfigError,
    ModelError,
    ReplyTooLarge,
    RunAborted,
    TransientModelError,
)
from gemlib.llm import LLM, Limits
from gemlib.llm.cache import RequestCache
from gemlib.llm.limits import Limiter
from gemlib.llm.protocol import ChatRequest, ScriptedBackend
from gemlib.pipeline.rundir import open_results
from test_faults import Echo
from test_infra_faults import _northwind

pytestmark = pytest.mark.faults

KEY = "sk-test-SECRETKEY1234567890"
HI = [{"role": "user", "content": "hi"}]


def _llm(url: str, tmp_path: Path, **options: Any) -> LLM:
    options.setdefault("max_retries", 0)
    options.setdefault("cache", False)
    return LLM(
        "openai/hostile",
        api_base=url,
        api_key=KEY,
        timeout=5.0,
        backoff_base=0.01,
        backoff_max=0.05,
        **options,
    )


def _ask(llm: LLM, seconds: float = 20.0) -> Any:
    async def once() -> Any:
        try:
            return await asyncio.wait_for(llm.acomplete(HI), seconds)
        finally:
            await llm.aclose()

    return asyncio.run(once())


def test_a_cancelled_wait_for_a_slot_is_a_clean_cancel() -> None:
    """The waiter's future already dropped by the wake-up: no ValueError, no lost slot.

    Fails on the code before the fix: ``ValueError: <Future cancelled> is not in deque``.
    """

    async def scenario() -> Limiter:
        limiter = Limiter(Limits(max_concurrency=1))
        await limiter.acquire(0)
        waiting = asyncio.create_task(limiter.acquire(0))
        await asyncio.sleep(0)  # parked on its future
        waiting.cancel()
        limiter.release(ok=True)  # the wake-up pops the cancelled future first
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.wait_for(limiter.acquire(0), 1)  # the slot is still there
        return limiter

    assert asyncio.run(scenario()).active == 1


def test_backend_exceptions_of_any_kind_free_their_slot_and_map_to_model_errors() -> None:
    """Twenty RuntimeErrors through two slots, then a reply: nothing leaks, nothing hangs.

    Fails on the code before the fix: the first two errors kept both slots, and the
    third call waited forever (here: the 5 s bound).
    """
    calls = 0

    def script(request: Any) -> Any:
        nonlocal calls
        calls += 1
        return RuntimeError("a bug in someone's backend") if calls <= 20 else "fine"

    llm = LLM("x/y", backend=ScriptedBackend(script), cache=False, limits=Limits(max_concurrency=2))

    async def many() -> list[Any]:
        return await asyncio.wait_for(
            asyncio.gather(*(llm.acomplete(HI) for _ in range(21)), return_exceptions=True), 5
        )

    outcomes = asyncio.run(many())
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 20
    assert all(isinstance(e, ModelError) and "RuntimeError" in str(e) for e in errors)
    assert [o.text for o in outcomes if not isinstance(o, BaseException)] == ["fine"]
    assert llm.limiter.active == 0


@pytest.mark.parametrize(
    "body",
    [
        b'{"choices": [{"message": {"content": "\xff\xfe broken"}}]}',  # not UTF-8
        b"[" * 200_000 + b"]" * 200_000,  # nested past the parser's recursion limit
        json.dumps(
            {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "many"}}
        ).encode(),
        json.dumps(
            {"choices": [{"message": {"content": "x"}}], "usage": {"completion_tokens": [3]}}
        ).encode(),
        json.dumps({"choices": [{"message": {"content": {"not": "text"}}}]}).encode(),
    ],
    ids=["undecodable", "deeply-nested", "usage-string", "usage-list", "content-object"],
)
def test_the_direct_transport_maps_every_malformed_body(tmp_path: Path, body: bytes) -> None:
    """Fails on the code before the fix: UnicodeDecodeError, RecursionError, ValueError or
    TypeError escaped unmapped (and leaked the slot)."""
    with FakeOpenAI(lambda b, n: Reply(raw_body=body)) as server:
        llm = _llm(server.url, tmp_path)
        with pytest.raises(TransientModelError, match="unreadable reply"):
            _ask(llm)
    assert llm.limiter.active == 0


@pytest.mark.parametrize("value", ["inf", "86400", "1e308", "nan", "soon"])
def test_retry_after_is_capped_and_said(
    tmp_path: Path, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A 429 asking to wait forever waits ``max_retry_after`` at most, with a warning.

    Fails on the code before the fix: `inf` and a day were slept in full (here: the bound).
    """
    with FakeOpenAI(
        lambda b, n: Reply(status=429, headers={"Retry-After": value}) if n == 0 else Reply("ok")
    ) as server:
        llm = _llm(server.url, tmp_path, max_retries=2, max_retry_after=0.3)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="gemlib"):
            assert _ask(llm, seconds=10).text == "ok"
    assert time.monotonic() - started < 5
    if value in ("inf", "86400", "1e308"):
        assert f"asked to wait {float(value)} s" in caplog.text
        assert "waiting 0.3 s instead" in caplog.text


def test_a_capped_retry_after_shows_in_the_progress_line(tmp_path: Path) -> None:
    """While a model waits out a capped Retry-After, the progress line says so (it said
    nothing before: the run looked stalled)."""
    seen: list[str] = []

    class Collect:
        def update(self, snapshot: Any) -> None:
            seen.append(snapshot.line())

        def close(self, snapshot: Any) -> None:
            seen.append(snapshot.line())

    with FakeOpenAI(
        lambda b, n: Reply(status=429, headers={"Retry-After": "86400"}) if n == 0 else Reply("a")
    ) as server:
        llm = _llm(server.url, tmp_path, max_retries=2, max_retry_after=1.5)
        result = Pipeline([Echo(llm)]).run(
            [Document(id="a", text="x")], progress_interval=0.2, progress=Collect()
        )
    assert result.stats.outputs == 1
    assert any(
        "openai/hostile paused" in line and "Retry-After 86400s capped at 1.5s" in line
        for line in seen
    ), seen
    assert "paused" not in seen[-1]  # the pause is over by the end


def test_an_oversized_reply_is_refused_without_being_read_whole(tmp_path: Path) -> None:
    """Fails on the code before the fix: the 8 MB reply was read, cached and returned."""
    big = "x" * (8 * 2**20)
    with FakeOpenAI(lambda b, n: Reply(big)) as server:
        llm = _llm(server.url, tmp_path, max_reply_bytes=2**20, cache=tmp_path / "c.sqlite")
        with pytest.raises(ReplyTooLarge, match="max_reply_bytes"):
            _ask(llm)
    assert len(RequestCache(tmp_path / "c.sqlite")) == 0


def test_an_oversized_reply_leaves_the_item_for_retry(tmp_path: Path) -> None:
    big = "x" * (3 * 2**20)
    with FakeOpenAI(lambda b, n: Reply(big)) as server:
        llm = _llm(server.url, tmp_path, max_reply_bytes=2**20)
        result = Pipeline([Echo(llm)]).run([Document(id="a", text="x")], progress_interval=None)
    assert result.rejections == []
    assert result.stats.left_for_retry == {"echo: ReplyTooLarge": 1}


@pytest.mark.parametrize("transport", ["openai-compatible", "litellm"])
def test_an_echoed_authorization_header_never_reaches_a_reason_or_log(
    tmp_path: Path, transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that echoes the key in a 400 body: scrubbed by both transports.

    Fails on the code before the fix: `Bearer sk-...` was in the rejection reason.
    """
    echoed = json.dumps(
        {"error": {"message": f"bad request; headers: {{'Authorization': 'Bearer {KEY}'}}"}}
    ).encode()
    with FakeOpenAI(lambda b, n: Reply(status=400, raw_body=echoed)) as server:
        llm = _llm(server.url, tmp_path, transport=transport)
        with caplog.at_level(logging.DEBUG):
            result = Pipeline([Echo(llm)]).run(
                [Document(id="a", text="x")], run_dir=tmp_path / "run", progress_interval=None
            )
    shown = json.dumps(result.stats.model_dump()) + caplog.text + repr(llm)
    written = "".join(p.read_text(errors="replace") for p in (tmp_path / "run").rglob("*.json*"))
    assert result.stats.left_for_retry, "the 400 leaves the item for retry"
    if "bad request; headers" in shown:  # the body is shown: with the key masked
        assert "***" in shown
    assert KEY not in shown
    assert KEY not in written
    assert KEY[:12] not in shown


def test_credentials_in_api_base_are_refused_when_the_llm_is_built() -> None:
    """Fails on the code before the fix: the LLM was built and its repr showed the password."""
    with pytest.raises(ModelConfigError, match=r"carries credentials") as caught:
        LLM("openai/x", api_base="http://ana:hunter2pass@127.0.0.1:8000/v1")
    assert "hunter2pass" not in str(caught.value)
    with pytest.raises(ModelConfigError, match="not an http"):
        LLM("openai/x", api_base="127.0.0.1:8000/v1")
    llm = LLM("openai/x", api_base="http://127.0.0.1:8000/v1", api_key=KEY)
    assert KEY not in repr(llm)


def test_a_cache_that_cannot_be_opened_stops_the_run_before_spending(tmp_path: Path) -> None:
    """A garbage file, or a folder that is a file: CacheError, the run stops, nothing rejected.

    Fails on the code before the fix: every item became an `exception` rejection.
    """
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    for path in (garbage, blocked / "cache.sqlite"):
        with FakeOpenAI(lambda b, n: Reply("echo " + b["messages"][0]["content"][8:])) as server:
            llm = _llm(server.url, tmp_path, cache=path)
            with pytest.raises(RunAborted, match=r"request cache .* cannot be used"):
                Pipeline([Echo(llm)]).run(
                    [Document(id=f"d{i}", text="x") for i in range(10)],
                    run_dir=tmp_path / f"run-{path.name}",
                    progress_interval=None,
                )
            assert server.requests == [], "nothing is spent"
        assert open_results(tmp_path / f"run-{path.name}")[1].__class__  # readable
        assert list(open_results(tmp_path / f"run-{path.name}")[1]) == []
    with pytest.raises(CacheError):
        RequestCache(garbage)


def test_a_cache_that_fills_up_mid_run_is_dropped_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite's own "database or disk is full": one warning, every item still done.

    Fails on the code before the fix: each item whose reply could not be cached was
    rejected with `exception: OperationalError: database or disk is full`.
    """
    cache = RequestCache(tmp_path / "small.sqlite")
    pages = cache._db.execute("PRAGMA page_count").fetchone()[0]
    cache._db.execute(f"PRAGMA max_page_count={pages + 2}")
    docs = [Document(id=f"d{i:02d}", text="x") for i in range(20)]
    with FakeOpenAI(
        lambda b, n: Reply("echo " + b["messages"][0]["content"][8:] + " " * 3000)
    ) as s:
        llm = _llm(s.url, tmp_path, cache=cache)
        with caplog.at_level(logging.WARNING, logger="gemlib"):
            result = Pipeline([Echo(llm)]).run(docs, progress_interval=None)
    assert len(result.outputs) == 20
    assert result.rejections == []
    assert caplog.text.count("going on without the request cache") == 1


def test_a_corrupt_cache_stops_the_cli_with_one_line(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / "llm-cache.sqlite").write_bytes(b"garbage" * 1000)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "Open the app. Click save. Close it."}) + "\n")
    with FakeOpenAI() as server:
        done = subprocess.run(
            [sys.executable, "-m", "gemlib.cli", "run", str(corpus), "--model", "openai/t",
             "--api-base", server.url, "--out", str(tmp_path / "r"), "--quiet"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "GEMLIB_CACHE_DIR": str(cache_dir), "OPENAI_API_KEY": "none"},
        )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "llm-cache.sqlite cannot be used" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_two_hundred_documents_with_the_server_started_mid_run(tmp_path: Path) -> None:
    """The model is down when the run starts and comes up during it: after one rerun the
    outputs are exactly those of an uninterrupted run, and nothing was rejected for it.

    Fails on the code before the fix: the items that met the outage were rejected
    (`model_error`) and the rerun never retried them.
    """
    from teacher import canned_reply

    def pipeline(url: str, cache: Path) -> Pipeline:
        llm = LLM(
            "openai/teacher", api_base=url, api_key="none", cache=cache, backoff_base=0.2,
            limits=Limits(max_concurrency=8),
        )  # fmt: skip
        return Pipeline.gem(llm)

    text = _northwind()
    docs = [Document(id=f"doc{i:03d}", text=f"{text}\n\n(copy {i})") for i in range(200)]
    with FakeOpenAI(canned_reply) as server:
        pipeline(server.url, tmp_path / "ref-cache.sqlite").run(
            docs, run_dir=tmp_path / "ref", progress_interval=None
        )
    expected = _canonical(tmp_path / "ref")
    assert len(expected[0]) == 200

    probe = FakeOpenAI().start()
    port = probe.port
    probe.stop()
    later = FakeOpenAI(canned_reply, port=port)
    timer = threading.Timer(0.6, later.start)
    timer.start()
    url = f"http://127.0.0.1:{port}/v1"
    try:
        stopped = ""
        try:
            first = pipeline(url, tmp_path / "cache.sqlite").run(
                docs, run_dir=tmp_path / "run", progress_interval=None
            )
        except RunAborted as exc:  # the first requests found nobody: stopped at once
            stopped = str(exc)
        else:
            assert all(r.rule != "model_error" for r in first.rejections)
        assert not stopped or "cannot reach the model" in stopped
        timer.join()
        pipeline(url, tmp_path / "cache.sqlite").run(
            docs, run_dir=tmp_path / "run", progress_interval=None
        )
    finally:
        timer.cancel()
        later.stop()
    assert _canonical(tmp_path / "run") == expected


def _canonical(run_dir: Path) -> tuple[list[str], list[str]]:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "usage"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    outputs, rejections = open_results(run_dir)
    return (
        sorted(json.dumps(strip(o), sort_keys=True) for o in outputs),
        sorted(json.dumps(strip(r.model_dump()), sort_keys=True) for r in rejections),
    )


def test_a_model_busy_on_another_threads_loop_is_refused_not_hung() -> None:
    # Two threads each running their own event loop on one LLM: the limiter's state
    # belongs to one loop, so the second took it over, zeroing the first's count and
    # stranding its queued requests (they waited for ever; active went below 0).
    started, release = threading.Event(), threading.Event()

    async def script(request: ChatRequest) -> str:
        started.set()
        await asyncio.to_thread(release.wait, 20)
        return "ok"

    backend = ScriptedBackend(script)
    llm = LLM("openai/teacher", backend=backend, cache=False, limits=Limits(max_concurrency=1))
    messages = [{"role": "user", "content": "hi"}]

    async def two() -> list[str]:
        replies = await asyncio.wait_for(
            asyncio.gather(llm.acomplete(messages), llm.acomplete(messages)), 10
        )
        return [r.text for r in replies]

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(asyncio.run, two())  # one in flight, one queued
        try:
            assert started.wait(10)
            with pytest.raises(RuntimeError, match="another event loop"):
                asyncio.run(asyncio.wait_for(llm.acomplete(messages), 2))
        finally:
            release.set()
        assert first.result(20) == ["ok", "ok"]
    assert llm.limiter.active == 0
    assert asyncio.run(llm.acomplete(messages)).text == "ok"  # that loop done: served
    assert llm.limiter.active == 0
