"""Virtual time for the limiter: rate and pause tests assert on this clock, not on wall time."""

from __future__ import annotations

import asyncio
import math


class VirtualClock:
    """A :class:`gemlib.llm.limits.Clock` whose sleeps take no wall time.

    A sleeper yields to the event loop; once its deadline is the earliest of all
    pending sleeps, the clock jumps to it. Time therefore moves exactly as far as
    the waits the limiter asks for, and never backwards.
    """

    def __init__(self) -> None:
        self.time = 0.0
        self._deadlines: list[float] = []

    def now(self) -> float:
        """The virtual time in seconds (starts at 0)."""
        return self.time

    async def sleep(self, seconds: float) -> None:
        """Return once the clock reaches now + ``seconds`` (always yielding once, as asyncio's).

        A positive wait too small to move a float moves the clock by one step, as
        real time would: a wait that never advances would spin forever.
        """
        deadline = self.time
        if seconds > 0:
            deadline = max(self.time + seconds, math.nextafter(self.time, math.inf))
        self._deadlines.append(deadline)
        try:
            await asyncio.sleep(0)
            while self.time < deadline:
                if deadline <= min(self._deadlines):
                    self.time = deadline
                else:
                    await asyncio.sleep(0)  # an earlier sleeper moves the clock first
        finally:
            self._deadlines.remove(deadline)
