"""Attempt timeouts (gemlib.llm.deadlines): each one on time, cancellations told apart,
as ``asyncio.timeout`` would; and a request that hangs, raises or is cancelled frees its slot."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gemlib.errors import ModelError, TransientModelError
from gemlib.llm import LLM, ChatRequest, Limits, ScriptedBackend
from gemlib.llm.deadlines import Deadlines

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="needs Task.uncancel")

Timed = Callable[[float, Awaitable[Any]], Awaitable[Any]]


async def with_deadlines(seconds: float, awaitable: Awaitable[Any]) -> Any:
    return await Deadlines(seconds, asyncio.get_running_loop()).run(awaitable)


async def with_asyncio_timeout(seconds: float, awaitable: Awaitable[Any]) -> Any:
    async with asyncio.timeout(seconds):
        return await awaitable


BOTH = pytest.mark.parametrize(
    "timed", [with_deadlines, with_asyncio_timeout], ids=["deadlines", "asyncio.timeout"]
)


async def hang() -> None:
    await asyncio.Event().wait()


DEADLINE = 0.2
"""Seconds each attempt of these scenarios may take."""
BLOCK_AT = 0.05
"""When the loop is blocked (until past the deadline): long before the scenarios' events
near the deadline, so a loop that wakes late for it (a loaded machine) still runs it in an
earlier pass than those events, which then fall due in one pass with the deadline."""


async def outcome(timed: Timed, scenario: Scenario) -> str:
    """What ``timed(DEADLINE, future)`` ends with when ``scenario`` arranges the loop around it,
    and whether the task is left with cancellation requests pending."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    async def attempt() -> str:
        task = asyncio.current_task()
        assert task is not None
        # The scenario's times count from here, microseconds before the deadline is set,
        # so a loop slow to start the task (a loaded machine) cannot reorder them.
        scenario(future, task)
        loop.call_later(BLOCK_AT, time.sleep, DEADLINE)  # block the loop across the deadline
        try:
            value = await timed(DEADLINE, future)
        except BaseException as exc:
            value = type(exc).__name__
        return f"{value}, {task.cancelling()} pending"

    return await loop.create_task(attempt())


Scenario = Callable[["asyncio.Future[str]", "asyncio.Task[str]"], object]


def answered_late(future: asyncio.Future[str], task: asyncio.Task[str]) -> None:
    asyncio.get_running_loop().call_later(2 * DEADLINE, future.set_result, "reply")


def answered_in_time(future: asyncio.Future[str], task: asyncio.Task[str]) -> None:
    asyncio.get_running_loop().call_later(0.02, future.set_result, "reply")


def answered_as_it_expires(future: asyncio.Future[str], task: asyncio.Task[str]) -> None:
    asyncio.get_running_loop().call_later(DEADLINE - 0.001, future.set_result, "reply")


def cancelled_as_it_expires(future: asyncio.Future[str], task: asyncio.Task[str]) -> None:
    asyncio.get_running_loop().call_later(DEADLINE + 0.001, task.cancel)


def cancelled_before(future: asyncio.Future[str], task: asyncio.Task[str]) -> None:
    asyncio.get_running_loop().call_later(0.03, task.cancel)


@BOTH
@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        (answered_in_time, "reply, 0 pending"),
        (answered_late, "TimeoutError, 0 pending"),
        (answered_as_it_expires, "TimeoutError, 0 pending"),
        (cancelled_as_it_expires, "CancelledError, 1 pending"),
        (cancelled_before, "CancelledError, 1 pending"),
    ],
)
def test_a_deadline_ends_an_attempt_as_asyncio_timeout_does(
    timed: Timed, scenario: Scenario, expected: str
) -> None:
    assert asyncio.run(outcome(timed, scenario)) == expected


@BOTH
def test_an_attempt_that_swallows_its_cancellation_returns_its_value(timed: Timed) -> None:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            return "kept"
        return "slept"

    async def main() -> str:
        value = await timed(0.05, stubborn())
        task = asyncio.current_task()
        assert task is not None
        return f"{value}, {task.cancelling()} pending"

    assert asyncio.run(main()) == "kept, 0 pending"


def test_attempts_started_apart_each_time_out_at_their_own_deadline() -> None:
    async def main() -> list[float]:
        deadlines = Deadlines(0.3, asyncio.get_running_loop())

        async def one(delay: float) -> float:
            await asyncio.sleep(delay)
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await deadlines.run(hang())
            return time.monotonic() - started

        quick = asyncio.create_task(deadlines.run(asyncio.sleep(0.01, "quick")))
        waits = await asyncio.gather(*(one(i * 0.03) for i in range(12)))
        assert await quick == "quick"
        return waits

    for waited in asyncio.run(main()):
        assert 0.29 <= waited < 0.5  # never early; late only by the loop's own delay


def test_attempts_ended_behind_a_long_one_are_not_kept() -> None:
    async def main() -> int:
        deadlines = Deadlines(60, asyncio.get_running_loop())
        long = asyncio.create_task(deadlines.run(asyncio.sleep(0.5)))
        await asyncio.sleep(0)
        for _ in range(5000):
            await deadlines.run(asyncio.sleep(0))
        kept = len(deadlines._running)  # what a long attempt keeps alive: bounded
        await long
        return kept

    assert asyncio.run(main()) <= 2 * 2 + 64


def test_a_second_event_loop_gets_its_own_timer() -> None:
    llm = hanging_llm(timeout=0.2)
    for _ in range(2):  # the second run would hang if the first loop's timer were kept
        with pytest.raises(TransientModelError, match=r"no reply within 0\.2s"):
            asyncio.run(llm.acomplete([{"role": "user", "content": "hi"}]))


def hanging_llm(**options: Any) -> LLM:
    async def script(request: ChatRequest) -> str:
        await hang()
        return "never"

    options = {"max_retries": 0, "cache": False, **options}
    return LLM("openai/teacher", backend=ScriptedBackend(script), **options)


def test_a_hanging_backend_is_cut_at_the_timeout_and_retried() -> None:
    llm = hanging_llm(timeout=0.2, max_retries=2, backoff_base=0.01)
    started = time.monotonic()
    with pytest.raises(TransientModelError, match=r"no reply within 0\.2s"):
        llm.complete([{"role": "user", "content": "hi"}], stage="s")
    assert 0.6 <= time.monotonic() - started < 3
    usage = llm.usage_for("s")
    assert (usage.requests, usage.retries, usage.errors) == (3, 2, 1)
    assert llm.limiter.active == 0


def test_a_backend_that_raises_is_a_model_error_and_frees_its_slot() -> None:
    def script(request: ChatRequest) -> str:
        raise ValueError("boom")

    llm = LLM("openai/teacher", backend=ScriptedBackend(script), cache=False)
    with pytest.raises(ModelError, match="the backend failed: ValueError: boom"):
        llm.complete([{"role": "user", "content": "hi"}], stage="s")
    assert llm.usage_for("s").errors == 1
    assert llm.limiter.active == 0


def test_requests_cancelled_in_flight_or_queued_free_their_slots() -> None:
    llm = hanging_llm(timeout=30, limits=Limits(max_concurrency=2))
    messages = [{"role": "user", "content": "hi"}]

    async def main() -> None:
        tasks = [asyncio.create_task(llm.acomplete(messages)) for _ in range(5)]
        await asyncio.sleep(0.05)
        assert llm.limiter.active == 2  # two sent, three waiting for a slot
        for task in tasks:
            task.cancel()
        for task in tasks:
            with pytest.raises(asyncio.CancelledError):
                await task
        assert llm.limiter.active == 0

    asyncio.run(main())


def test_a_keyboard_interrupt_in_a_backend_leaves_as_itself_and_frees_its_slot() -> None:
    def script(request: ChatRequest) -> str:
        raise KeyboardInterrupt

    llm = LLM("openai/teacher", backend=ScriptedBackend(script), cache=False)
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(llm.acomplete([{"role": "user", "content": "hi"}], stage="s"))
    assert llm.limiter.active == 0
    assert llm.usage_for("s").errors == 0  # not the model's failure: the run is stopping
