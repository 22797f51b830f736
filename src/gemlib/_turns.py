"""CPU work on the event loop in turns, behind the I/O that is ready.

When many replies arrive together (a wave), each one's parsing, checking and
next prompt would otherwise run back to back, and every request the wave
frees a slot for would wait for all of them. :func:`cpu_turn` queues the
caller and lets one waiting task through per pass of the event loop, so the
requests, reads and writes that are ready go first.
"""

from __future__ import annotations

import asyncio
import collections
import weakref

__all__ = ["cpu_turn"]


class _Turns:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weakly: the mapping below is keyed weakly by the loop, and a strong reference
        # here would keep every run's loop alive for good.
        self.loop = weakref.ref(loop)
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self.scheduled = False

    def admit(self) -> None:
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():  # a cancelled waiter gives its turn on
                turn.set_result(None)
                break
        if self.waiting:
            asyncio.get_running_loop().call_soon(self.admit)  # admit runs on its loop
        else:
            self.scheduled = False


_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns] = weakref.WeakKeyDictionary()
_last: _Turns | None = None
"""The turns of the loop that asked last: found without a weak mapping's lookup (a
weak reference made per call), as every model request asks once."""


async def cpu_turn() -> None:
    """Wait for this task's turn to use the CPU (one task per pass of the event loop)."""
    global _last
    loop = asyncio.get_running_loop()
    turns = _last
    if turns is None or turns.loop() is not loop:
        turns = _TURNS.get(loop)
        if turns is None:
            turns = _TURNS[loop] = _Turns(loop)
        _last = turns
    turn = loop.create_future()
    turns.waiting.append(turn)
    if not turns.scheduled:
        turns.scheduled = True
        loop.call_soon(turns.admit)
    await turn
