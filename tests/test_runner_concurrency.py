"""The runner streams: a sliding window of items, per-stage caps, no waves."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import attrs
import pytest

from fake_openai import FakeOpenAI, Reply
from gemlib import Document, Pipeline, Stage
from gemlib.llm import LLM, Limits
from gemlib.stages.llm_stage import LLMStage


@attrs.define
class Recorder:
    """Shared log of when each item entered and left each stage."""

    active: int = 0
    peak: int = 0
    events: list[tuple[str, str, str, float]] = attrs.field(factory=list)

    def log(self, stage: str, what: str, doc: Document) -> None:
        self.events.append((stage, what, doc.text, time.perf_counter()))

    def first(self, stage: str, what: str, text: str) -> float:
        return next(t for s, w, x, t in self.events if (s, w, x) == (stage, what, text))


@attrs.define
class Sleepy(Stage):
    recorder: Recorder
    delays: dict[str, float]
    name: str = "sleepy"
    concurrency: int | None = None

    async def process(self, doc: Document) -> Document:
        rec = self.recorder
        rec.active += 1
        rec.peak = max(rec.peak, rec.active)
        rec.log(self.name, "start", doc)
        await asyncio.sleep(self.delays.get(doc.text, 0.01))
        rec.log(self.name, "end", doc)
        rec.active -= 1
        return doc


def test_sliding_window_keeps_n_in_flight_without_waves() -> None:
    window = 8
    texts = [f"item {i}" for i in range(40)]
    rec = Recorder()
    stage = Sleepy(rec, delays={"item 0": 0.4})
    Pipeline([stage]).run(texts, max_in_flight=window)

    assert rec.peak == window, "exactly the window of items must be in flight at once"
    # Item 0 is slow. With waves, item 8 could only start once item 0 is done;
    # with a sliding window, items keep flowing past it.
    slow_done = rec.first("sleepy", "end", "item 0")
    assert rec.first("sleepy", "start", "item 8") < slow_done
    assert rec.first("sleepy", "end", "item 39") < slow_done, "the rest flows past the slow one"


def test_items_move_to_the_next_stage_as_soon_as_they_are_ready() -> None:
    rec = Recorder()
    first = Sleepy(rec, delays={}, name="first")
    second = Sleepy(rec, delays={}, name="second")
    texts = [f"doc {i}" for i in range(30)]
    Pipeline([first, second]).run(texts, max_in_flight=4)
    # The second stage starts on doc 0 long before the first stage has seen the last doc.
    assert rec.first("second", "start", "doc 0") < rec.first("first", "start", "doc 29")


def test_per_stage_concurrency_cap_is_respected_and_reached() -> None:
    rec = Recorder()
    capped = Sleepy(rec, delays={}, concurrency=3)
    Pipeline([capped]).run([f"d{i}" for i in range(30)], max_in_flight=20)
    assert rec.peak == 3


def test_blocking_stages_run_in_worker_threads() -> None:
    import threading

    threads: set[str] = set()

    class Blocking(Stage):
        blocking = True

        def process(self, doc: Document) -> Document:
            threads.add(threading.current_thread().name)
            time.sleep(0.02)
            return doc

    started = time.perf_counter()
    result = Pipeline([Blocking()]).run([f"b{i}" for i in range(8)], max_in_flight=8)
    elapsed = time.perf_counter() - started
    assert len(result.outputs) == 8
    assert threading.main_thread().name not in threads
    assert elapsed < 8 * 0.02, "blocking work must overlap across worker threads"


class Echo(LLMStage):
    """The smallest model stage: one request per document."""

    def prompt(self, doc: Document) -> list[dict[str, str]]:
        return [{"role": "user", "content": doc.text}]

    def parse(self, text: str, doc: Document) -> Document:
        return doc


def test_default_window_keeps_a_models_whole_concurrency_busy() -> None:
    # The window of items used to default to 64 whatever the models allowed, so a
    # model with 256 request slots had at most 64 requests in flight.
    # Replies wait until 256 requests are in at once (or 10 s pass), so the peak does
    # not depend on how fast a loaded machine opens 256 connections.
    full = threading.Event()

    def hold(body: dict[str, object], n: int) -> Reply:
        if server.active >= 256:
            full.set()
        full.wait(10)
        return Reply("ok")

    with FakeOpenAI(hold) as server:
        model = LLM("openai/x", api_base=server.url, api_key="k", cache=False, limits=Limits(256))
        result = Pipeline([Echo(model)]).run([f"doc {i}" for i in range(300)])
    assert result.stats.outputs == 300
    assert server.peak == 256


def test_a_window_below_the_models_concurrency_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with FakeOpenAI() as server:
        model = LLM("openai/x", api_base=server.url, api_key="k", cache=False, limits=Limits(32))
        with caplog.at_level(logging.WARNING, logger="gemlib"):
            Pipeline([Echo(model)]).run(["a", "b"], max_in_flight=8)
    assert "max_in_flight=8 caps requests in flight below" in caplog.text
