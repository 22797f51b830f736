"""Attempt timeouts for every request to one model, kept by one timer.

Each attempt of a model may take the same number of seconds, so attempts reach
their deadlines in the order they started: a queue in start order is sorted by
deadline, and one timer, armed for the oldest attempt still running, serves
them all. An ``asyncio.timeout`` per attempt instead builds a context manager
and a timer handle, pushes it onto the event loop's heap and cancels it again,
for each request (about a fifth of the request path's CPU).

An attempt past its deadline is cancelled and its ``await`` raises
``TimeoutError``, exactly when ``asyncio.timeout`` would: the deadline is the
attempt's start plus ``seconds``, the cancellation is told apart from any other
(a run being stopped cancels too, and that cancellation wins), and it is
withdrawn if the attempt ends before it is delivered.
"""

from __future__ import annotations

import asyncio
import collections
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["Deadlines"]

T = TypeVar("T")


class _Attempt:
    """One awaited attempt: when it must end, its task (``None`` once it ended) and that
    task's count of cancellation requests when it started."""

    __slots__ = ("cancelling", "deadline", "expired", "task")

    def __init__(self, deadline: float, task: asyncio.Task[Any], cancelling: int) -> None:
        self.deadline = deadline
        self.task: asyncio.Task[Any] | None = task
        self.cancelling = cancelling
        self.expired = False


class Deadlines:
    """Runs awaitables for at most ``seconds`` each, on the event loop that first uses it."""

    def __init__(self, seconds: float, loop: asyncio.AbstractEventLoop) -> None:
        self.seconds = seconds
        self.loop = loop
        self._running: collections.deque[_Attempt] = collections.deque()
        self._live = 0  # attempts started and not ended (expired ones included)
        self._timer: asyncio.TimerHandle | None = None

    async def run(self, awaitable: Awaitable[T]) -> T:
        """``await awaitable``, raising ``TimeoutError`` once ``seconds`` have passed."""
        task = asyncio.current_task(self.loop)
        if sys.version_info < (3, 11) or task is None:  # pragma: no cover
            # Python 3.10 tasks do not count cancellation requests: a task per attempt.
            return await asyncio.wait_for(awaitable, self.seconds)
        attempt = self._start(task, task.cancelling())
        try:
            result = await awaitable
        except BaseException as exc:
            # Our cancellation withdrawn; a TimeoutError if no one else asked for one.
            expired = attempt.expired and task.uncancel() <= attempt.cancelling
            if expired and isinstance(exc, asyncio.CancelledError):
                raise TimeoutError from None
            raise
        finally:
            attempt.task = None
            self._live -= 1
            self._forget_ended()
        if attempt.expired:  # expired as it ended: the cancellation was never delivered
            task.uncancel()
        return result

    def _start(self, task: asyncio.Task[Any], cancelling: int) -> _Attempt:
        attempt = _Attempt(self.loop.time() + self.seconds, task, cancelling)
        self._running.append(attempt)
        self._live += 1
        if self._timer is None:  # else armed at or before an earlier, hence this, deadline
            self._timer = self.loop.call_at(attempt.deadline, self._expire)
        return attempt

    def _forget_ended(self) -> None:
        """Drop the ended attempts at the front; and all of them once they outnumber the
        running ones (an attempt that runs long, a batch's for hours, would otherwise keep
        every attempt started after it)."""
        running = self._running
        while running and running[0].task is None:
            running.popleft()
        if len(running) > 2 * self._live + 64:
            self._running = collections.deque(a for a in running if a.task is not None)

    def _expire(self) -> None:
        """Cancel the attempts past their deadline; arm the timer for the next one."""
        self._timer = None
        self._forget_ended()
        now = self.loop.time()
        running = self._running
        while running:
            attempt = running[0]
            if attempt.task is not None:
                if attempt.deadline > now:
                    self._timer = self.loop.call_at(attempt.deadline, self._expire)
                    return
                attempt.expired = True
                attempt.task.cancel()
            running.popleft()
