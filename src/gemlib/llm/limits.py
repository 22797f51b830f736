"""Per-model traffic limits: concurrency (optionally adaptive), requests and tokens per minute.

One :class:`Limiter` belongs to one model and is shared by every stage that
uses it. A 429 pauses the whole model (every request waits out the pause, not
only the one that was refused) and, with ``adaptive=True``, halves the
concurrency, which then grows back by one after each run of successes.

Time comes from a :class:`Clock` (the monotonic clock and ``asyncio.sleep`` by
default), so a test can run the limiter on virtual time and assert on it.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Protocol

import attrs

__all__ = ["Clock", "Limiter", "Limits", "MonotonicClock"]


class Clock(Protocol):
    """Where a :class:`Limiter` reads the time and waits: seconds, any fixed origin."""

    def now(self) -> float:
        """The current time in seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock."""
        ...


class MonotonicClock:
    """The real clock: :func:`time.monotonic` and :func:`asyncio.sleep`."""

    def now(self) -> float:
        """Seconds on the monotonic clock."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the running event loop."""
        await asyncio.sleep(seconds)


@attrs.frozen
class Limits:
    """Traffic limits for one model.

    ``max_concurrency``: requests in flight at once. ``rpm`` / ``tpm``: requests
    and tokens per minute (``None``: unlimited); bursts of up to one second's
    worth are allowed. ``adaptive``: cut concurrency on 429, grow it back slowly.
    """

    max_concurrency: int = attrs.field(default=16, validator=attrs.validators.ge(1))
    rpm: float | None = None
    tpm: float | None = None
    adaptive: bool = False
    min_concurrency: int = attrs.field(default=1, validator=attrs.validators.ge(1))


@attrs.define
class _Bucket:
    """A token bucket refilled at ``rate`` per second, holding at most ``capacity``."""

    rate: float
    capacity: float
    clock: Clock
    tokens: float = 0.0
    stamp: float = 0.0

    def __attrs_post_init__(self) -> None:
        self.tokens = self.capacity
        self.stamp = self.clock.now()

    def _refill(self) -> None:
        now = self.clock.now()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    async def take(self, amount: float) -> None:
        # An amount above capacity is let through once the bucket is full, leaving a debt.
        need = min(amount, self.capacity)
        while True:
            self._refill()
            if self.tokens >= need:
                self.tokens -= amount
                return
            await self.clock.sleep((need - self.tokens) / self.rate)

    def give_back(self, amount: float) -> None:
        self._refill()
        self.tokens = min(self.capacity, self.tokens + amount)


@attrs.define
class _LoopState:
    waiters: collections.deque[asyncio.Future[None]] = attrs.field(factory=collections.deque)


@attrs.define
class Limiter:
    """Enforces :class:`Limits` for one model across all the requests sent to it.

    ``clock``: where pauses and rate budgets read the time and wait.
    """

    limits: Limits
    clock: Clock = attrs.field(factory=MonotonicClock, kw_only=True)
    concurrency: int = 0
    active: int = 0
    peak: int = 0
    paused_until: float = 0.0
    _streak: int = 0
    _requests: _Bucket | None = None
    _tokens: _Bucket | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _state: _LoopState = attrs.field(factory=_LoopState)

    def __attrs_post_init__(self) -> None:
        self.concurrency = self.limits.max_concurrency
        if self.limits.rpm:
            per_second = self.limits.rpm / 60
            self._requests = _Bucket(per_second, max(1.0, per_second), self.clock)
        if self.limits.tpm:
            per_second = self.limits.tpm / 60
            self._tokens = _Bucket(per_second, max(1.0, per_second), self.clock)

    def _bind(self) -> _LoopState:
        # asyncio futures belong to one loop; a model reused by a later run gets fresh state.
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            bound = self._loop
            if bound is not None and bound.is_running() and (self.active or self._state.waiters):
                # Taking over would zero the other loop's count and strand its waiters.
                raise RuntimeError(
                    "this model is serving requests on another event loop (another "
                    "thread): build one LLM per thread that runs its own event loop"
                )
            self._loop, self._state, self.active = loop, _LoopState(), 0
        return self._state

    def take_free_slot(self) -> bool:
        """Take a concurrency slot if :meth:`acquire` would not wait for anything (a slot
        is free and no one queues for one, no 429 has paused this model, no rate limits
        are set); ``False`` leaves everything as it was. Callers then skip ``acquire``'s
        coroutine, as almost every request can."""
        if (
            self.active >= self.concurrency
            or self.paused_until
            or self._requests is not None
            or self._tokens is not None
            or self._loop is not asyncio.get_running_loop()
            or self._state.waiters
        ):
            return False
        self.active += 1
        if self.active > self.peak:
            self.peak = self.active
        return True

    async def acquire(self, estimated_tokens: int) -> None:
        """Wait for a concurrency slot, the end of any pause, and rate budget."""
        if self.take_free_slot():
            return
        state = self._bind()
        if self.active >= self.concurrency or state.waiters:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            state.waiters.append(future)
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self.release(ok=False)  # granted just before the cancel: hand it on
                elif future in state.waiters:  # _wake may already have dropped it
                    state.waiters.remove(future)
                raise
        else:
            self.active += 1
        if self.active > self.peak:
            self.peak = self.active
        try:
            # A pause can be extended while we sleep (another 429), hence the loop;
            # before any 429 there is none to wait for, nor a clock to read.
            while self.paused_until and (wait := self.paused_until - self.clock.now()) > 0:
                await self.clock.sleep(wait)
            if self._requests is not None:
                await self._requests.take(1)
            if self._tokens is not None:
                await self._tokens.take(estimated_tokens)
        except BaseException:
            self.release(ok=False)
            raise

    def release(self, *, ok: bool) -> None:
        """Free the slot; ``ok`` feeds adaptive growth."""
        self.active -= 1
        if ok and self.limits.adaptive and self.concurrency < self.limits.max_concurrency:
            self._streak += 1
            if self._streak >= self.concurrency:
                self._streak = 0
                self.concurrency += 1
        if self._state.waiters:
            self._wake()

    def _wake(self) -> None:
        waiters = self._state.waiters
        while waiters and self.active < self.concurrency:
            future = waiters.popleft()
            if not future.done():
                self.active += 1
                future.set_result(None)

    def rate_limited(self, pause: float) -> None:
        """A 429 arrived: pause all traffic for ``pause`` seconds; cut concurrency if adaptive."""
        self.paused_until = max(self.paused_until, self.clock.now() + pause)
        if self.limits.adaptive:
            self._streak = 0
            self.concurrency = max(self.limits.min_concurrency, self.concurrency // 2)

    def pause_left(self) -> float:
        """Seconds until the pause of the last 429 ends (0 when not paused)."""
        return max(0.0, self.paused_until - self.clock.now())

    @property
    def counts_tokens(self) -> bool:
        """Whether requests must bring a token estimate (a ``tpm`` limit is set)."""
        return self._tokens is not None

    def settle_tokens(self, estimated: int, actual: int) -> None:
        """Correct the token budget once the real usage of a request is known.

        A reply claiming more than a minute's worth of tokens (``tpm``) beyond its estimate
        is charged a minute's worth: the usage is the server's word, and a server saying
        ``10**15`` would otherwise hold every later request for ages.
        """
        if self._tokens is not None and estimated != actual:
            most = max(estimated, 60 * self._tokens.rate)
            self._tokens.give_back(estimated - min(actual, most))
