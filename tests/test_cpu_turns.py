"""Replies that arrive together: the requests they free go out before their parsing.

A wave of replies (a teacher with fixed latency answers a full slot of
requests at once) used to be parsed back to back, each parse followed by its
item's next steps, while the requests waiting for the slots the wave freed
went out only after the whole wave: every wave cost its whole CPU time in
latency. Parsing now waits for its turn (:func:`gemlib._turns.cpu_turn`),
one per pass of the event loop, behind the requests that are ready.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import attrs

from gemlib import Document, Pipeline
from gemlib._turns import cpu_turn
from gemlib.llm import LLM, Limits, ScriptedBackend
from gemlib.llm.protocol import ChatRequest
from gemlib.stages.llm_stage import LLMStage

SLOTS = 8


@attrs.define
class Echo(LLMStage):
    """Asks about a document and logs when its reply is parsed."""

    events: list[str] = attrs.field(factory=list)

    def prompt(self, doc: Document) -> list[dict[str, str]]:
        return [{"role": "user", "content": doc.text}]

    def parse(self, text: str, doc: Document) -> Document:
        self.events.append(f"parse {doc.text}")
        return doc


def test_requests_freed_by_a_wave_go_out_before_its_parsing() -> None:
    events: list[str] = []
    first_wave = asyncio.Event()
    waiting: list[ChatRequest] = []

    async def teacher(request: ChatRequest) -> str:
        text = str(request.messages[0]["content"])
        events.append(f"request {text}")
        waiting.append(request)
        if len(waiting) == SLOTS:
            first_wave.set()  # the first SLOTS requests are answered together
        await first_wave.wait()
        return "ok"

    llm = LLM(
        "openai/teacher",
        backend=ScriptedBackend(teacher),
        cache=False,
        limits=Limits(max_concurrency=SLOTS),
    )
    docs = [f"doc {i}" for i in range(2 * SLOTS)]
    result = Pipeline([Echo(llm, events=events)]).run(docs, max_in_flight=2 * SLOTS)

    assert result.stats.outputs == 2 * SLOTS
    after_wave = events[events.index(f"request doc {SLOTS - 1}") + 1 :]
    second_wave = [e for e in after_wave if e.startswith("request")]
    assert len(second_wave) == SLOTS, events
    last_request = after_wave.index(second_wave[-1])
    parses_before = [e for e in after_wave[:last_request] if e.startswith("parse")]
    # Old code: all SLOTS parses ran before the first waiting request went out.
    assert len(parses_before) <= 1, after_wave


def test_turns_let_ready_callbacks_run_between_cpu_work() -> None:
    order: list[str] = []

    async def job(i: int) -> None:
        await cpu_turn()
        order.append(f"job {i}")
        asyncio.get_running_loop().call_soon(order.append, f"io {i}")

    async def main() -> None:
        await asyncio.gather(*(job(i) for i in range(3)))

    asyncio.run(main())
    assert order == ["job 0", "io 0", "job 1", "io 1", "job 2", "io 2"]


def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    order: list[Any] = []

    async def main() -> None:
        first = asyncio.ensure_future(cpu_turn())
        second = asyncio.ensure_future(cpu_turn())
        third = asyncio.ensure_future(cpu_turn())
        await asyncio.sleep(0)  # all three are waiting
        second.cancel()
        await asyncio.wait_for(asyncio.gather(first, third), 5)
        order.extend([first.done(), second.cancelled(), third.done()])

    asyncio.run(main())
    assert order == [True, True, True]


def test_an_event_loop_that_took_turns_can_be_freed() -> None:
    freed = []
    for _ in range(3):
        loop = asyncio.new_event_loop()
        loop.run_until_complete(cpu_turn())
        loop.close()
        freed.append(weakref.ref(loop))
        del loop
    gc.collect()
    assert [ref() for ref in freed] == [None, None, None]
