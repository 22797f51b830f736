"""The async streaming runner.

Each corpus item gets its own task, which carries the item and every fan-out
child through all stages; an item moves to the next stage the moment its
current stage returns. A window of ``max_in_flight`` corpus items bounds memory:
the next item is read from the (lazy) corpus only when one finishes, so the
corpus is never held whole and nothing waits for a wave. Each stage may cap
how many items are inside its ``process`` at once.

What a stage's exception means (decided here, once):

- :class:`~gemlib.errors.FatalError` (bad credentials, unknown model, unreachable
  server, unusable cache), :class:`~gemlib.errors.ModelConfigError` and
  :class:`~gemlib.errors.RunDirError`: no further item can succeed; the run stops
  at once with :class:`~gemlib.errors.RunAborted`, recording nothing in flight.
- ``ValueError`` (which includes gemlib's ``ParseError``, ``ToolSchemaError``
  and ``FormatError``) and :class:`~gemlib.errors.ReplyError`: the item's own
  data is bad. The item gets an ``exception`` rejection, final.
- Anything else (:class:`~gemlib.errors.ModelError` after its retries, a
  ``KeyError`` or ``RuntimeError`` in a stage's code, an ``OSError``): not the
  item's fault. The item is left not done, counted in ``stats.left_for_retry``
  by cause, and retried by the next run; a stage that wants to reject an item
  returns a :class:`~gemlib.model.Rejection` or raises ``ValueError``.

Failures of the last kind count towards ``max_error_rate``, judged per stage
over its last ``error_window`` calls; a cancelled item is never a rejection.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import inspect
import logging
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Iterable
from time import perf_counter
from typing import TYPE_CHECKING, Any

import attrs

from gemlib._secrets import scrub
from gemlib.errors import (
    FatalError,
    ModelConfigError,
    ModelError,
    ReplyError,
    RunAborted,
    RunDirError,
)
from gemlib.llm.usage import BatchCounts, ModelUsage, UsageByStage
from gemlib.model import Rejection
from gemlib.model._base import copied
from gemlib.pipeline.accounting import ItemCounts, RunStats, StageCounts, StageStats, merge_stats
from gemlib.pipeline.progress import Reporter, Snapshot, default_reporter
from gemlib.pipeline.stage import Stage
from gemlib.pipeline.store import Store

if TYPE_CHECKING:
    from gemlib.llm.client import LLM

__all__ = ["RunOptions", "run_items"]

log = logging.getLogger("gemlib")

_EXAMPLES = 3
"""How many IDs a warning about skipped duplicates names."""

_NOTHING = ModelUsage()
"""The usage of a model a stage had not used when the run started (never changed)."""


@attrs.frozen
class RunOptions:
    """How a run behaves, apart from what its stages do.

    ``max_in_flight``: corpus items being worked on at once (the sliding window).
    ``max_error_rate``: the share of one stage's last ``error_window`` calls that
    may fail for reasons not the item's (model, network, cache, an exception
    other than ``ValueError``) before the run stops with
    :class:`~gemlib.errors.RunAborted`, judged once the stage has made
    ``min_calls_for_abort`` calls. ``commit_interval``: seconds between commits to a run
    directory (finished work younger than this is what a crash can lose).
    ``progress_interval``: seconds between progress reports (``None``: none);
    ``progress``: the reporter (:mod:`gemlib.pipeline.progress`; default: a display in
    Jupyter, log lines elsewhere);
    ``total``: corpus items in all, for an ETA (``Pipeline.run`` fills it in for lists
    and corpus paths); ``total_estimated``: it is an estimate.
    """

    max_in_flight: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    max_error_rate: float = attrs.field(
        default=0.5, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)]
    )
    min_calls_for_abort: int = attrs.field(default=20, validator=attrs.validators.ge(1))
    error_window: int = attrs.field(default=50, validator=attrs.validators.ge(1))
    commit_interval: float = attrs.field(default=0.1, validator=attrs.validators.ge(0.0))
    progress_interval: float | None = 10.0
    progress: Reporter | None = None
    total: int | None = None
    total_estimated: bool = False


def _item_id(item: Any) -> str:
    value = getattr(item, "id", None)
    if not isinstance(value, str) or not value:
        raise TypeError(
            f"corpus items need a string 'id' attribute; got {type(item).__name__}. "
            "Pass texts, Documents, or models with an id."
        )
    return value


class _LeftForRetry(Exception):
    """An item stopped by a failure that is not its fault: recorded nowhere, retried later."""

    def __init__(self, cause: str, example: str) -> None:
        self.cause = cause
        self.example = example
        super().__init__(cause)


class _Stopped(Exception):
    """An item cut short because the run is stopping (a fatal error)."""


def _cause(exc: Exception) -> str:
    """A short, stable name for what went wrong, to group items left for retry by."""
    status = getattr(exc, "status", None) if isinstance(exc, ModelError) else None
    return f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "")


async def _iterate(items: Iterable[Any] | AsyncIterator[Any]) -> AsyncIterator[Any]:
    if hasattr(items, "__aiter__"):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


@attrs.define
class _Runner:
    stages: tuple[Stage, ...]
    store: Store
    options: RunOptions
    stats: RunStats = attrs.field(factory=RunStats)
    aborted: str | None = None
    store_error: RunDirError | None = None
    _windows: dict[str, collections.deque[bool]] = attrs.field(factory=dict)
    _semaphores: list[asyncio.Semaphore | None] = attrs.field(factory=list)
    _commit_handle: asyncio.TimerHandle | None = None
    _async_process: list[bool] = attrs.field(factory=list)
    _direct: list[bool] = attrs.field(factory=list)
    """Per stage: its ``process`` is a coroutine function and no semaphore caps it."""
    _successes: list[collections.deque[bool]] = attrs.field(factory=list)
    """Per stage: its window of outcomes (a stage's name may come twice, its window once)."""
    _names: tuple[str, ...] = ()
    """The stages' names, each once, in order: how an item's counts are laid out."""
    _offsets: list[int] = attrs.field(factory=list)
    """Per stage: where its name's figures start in an item's :class:`ItemCounts`."""
    _usage_base: UsageByStage = attrs.field(factory=dict)
    _live: dict[str, StageCounts] = attrs.field(factory=dict)
    _finished: int = 0
    _tasks: dict[asyncio.Task[None], str] = attrs.field(factory=dict)
    """The items' tasks in flight, and their IDs."""
    _in_flight: set[str] = attrs.field(factory=set)
    _window: asyncio.Semaphore = attrs.field(init=False)
    """The places of items in flight (``max_in_flight``)."""
    _started: float = 0.0
    _duplicate_ids: list[str] = attrs.field(factory=list)
    _judged_after: int = 0
    """Calls of a stage before its error rate can stop the run."""

    def __attrs_post_init__(self) -> None:
        self._window = asyncio.Semaphore(self.options.max_in_flight)
        self._judged_after = min(self.options.min_calls_for_abort, self.options.error_window)
        self._usage_base = self._usage_now()
        self._semaphores = [
            asyncio.Semaphore(s.concurrency) if s.concurrency else None for s in self.stages
        ]
        self._async_process = [inspect.iscoroutinefunction(s.process) for s in self.stages]
        self._direct = [
            is_async and semaphore is None
            for is_async, semaphore in zip(self._async_process, self._semaphores, strict=True)
        ]
        for stage in self.stages:
            self._windows.setdefault(
                stage.name, collections.deque(maxlen=self.options.error_window)
            )
        self._successes = [self._windows[s.name] for s in self.stages]
        self._names = tuple(self._windows)
        self._offsets = [5 * self._names.index(s.name) for s in self.stages]

    async def run(self, items: Iterable[Any] | AsyncIterator[Any]) -> RunStats:
        started = self._started = time.perf_counter()
        window = self._window
        tasks = self._tasks
        in_flight = self._in_flight
        # One callback and one context for every item's task, not a closure and a copy
        # of the context each (held while the item is in flight).
        done = self._task_done
        context = contextvars.copy_context()
        reporter = None
        if self.options.progress_interval is not None:
            reporter = self.options.progress or default_reporter()
        reporting = asyncio.create_task(self._report(reporter)) if reporter else None
        try:
            async for item in _iterate(items):
                item_id = _item_id(item)
                self.stats.inputs += 1
                state = "duplicate" if item_id in in_flight else self.store.seen(item_id)
                if state == "resumed":
                    self.stats.resumed += 1
                    continue
                if state == "duplicate":
                    self.stats.duplicates += 1
                    if len(self._duplicate_ids) < _EXAMPLES:
                        self._duplicate_ids.append(item_id)
                    continue
                await window.acquire()
                if self.aborted:
                    window.release()
                    break
                in_flight.add(item_id)
                task = asyncio.create_task(self._run_item(item, item_id))
                tasks[task] = item_id
                task.add_done_callback(done, context=context)
            if tasks:
                for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                    if isinstance(outcome, Exception):  # a bug in the runner itself
                        raise outcome
        finally:
            if reporting is not None:
                reporting.cancel()
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            if self._commit_handle is not None:
                self._commit_handle.cancel()
            self._commit()
            for stage in self.stages:
                await stage.aclose()
            self._warn_duplicates()
            self.stats.wall_seconds = time.perf_counter() - started
            self.stats.stages = {s.name: StageStats() for s in self.stages}
            merge_stats(self.stats.stages, self.store.stage_stats())
            self.stats.outputs, self.stats.rejections = self.store.counts()  # all sessions
            self.stats.usage = self.store.total_usage()
            if reporter is not None:
                reporter.close(self.snapshot())
        if self.store_error is not None:
            raise self.store_error
        if self.aborted:
            raise RunAborted(self.aborted)
        return self.stats

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """An item's task ended: its ID and its place in the window are free."""
        self._in_flight.discard(self._tasks.pop(task))
        self._window.release()

    def _warn_duplicates(self) -> None:
        """One line for every item skipped for a repeated ID, with the first few IDs."""
        if self.stats.duplicates:
            shown = ", ".join(repr(i) for i in self._duplicate_ids)
            more = ", ..." if self.stats.duplicates > len(self._duplicate_ids) else ""
            log.warning(
                "skipped %d item(s) whose ID came earlier in this corpus (%s%s); "
                "give each document its own id to process them",
                self.stats.duplicates,
                shown,
                more,
            )

    def _usage_now(self) -> UsageByStage:
        return {
            s.name: {model: u.model_copy() for model, u in s.usage().items()} for s in self.stages
        }

    def _note_usage(self) -> None:
        """Hand the store what this run spent (stage ledgers may predate the run)."""
        session: UsageByStage = {}
        for stage in self.stages:  # once per commit: the live ledgers, not copies of them
            base = self._usage_base.get(stage.name, {})
            for model, usage in stage.usage().items():
                session.setdefault(stage.name, {})[model] = usage.minus(base.get(model, _NOTHING))
        self.store.note_usage(session)

    async def _report(self, reporter: Reporter) -> None:
        interval = self.options.progress_interval or 10.0
        while True:
            await asyncio.sleep(interval)
            reporter.update(self.snapshot())

    def snapshot(self) -> Snapshot:
        """Where this session of the run stands."""
        requests = tokens = 0
        cost = 0.0
        for stage, models in self._usage_now().items():
            for model, usage in models.items():
                spent = usage.minus(self._usage_base.get(stage, {}).get(model, ModelUsage()))
                requests += spent.requests
                tokens += spent.prompt_tokens + spent.completion_tokens
                cost += spent.cost
        return Snapshot(
            elapsed=time.perf_counter() - self._started,
            read=self.stats.inputs,
            finished=self._finished + self.stats.resumed,
            in_flight=len(self._tasks),
            outputs=self.stats.outputs,
            rejections=self.stats.rejections,
            stages={name: (s.received, s.emitted, s.rejected) for name, s in self._live.items()},
            requests=requests,
            tokens=tokens,
            cost=cost,
            total=self.options.total,
            total_estimated=self.options.total_estimated,
            resumed=self.stats.resumed,
            batches=self._batch_counts(),
            paused=tuple(n for llm in self._models() if (n := llm.pause_note()) is not None),
        )

    def _models(self) -> list[LLM]:
        """Each model the stages call, once."""
        return list({id(llm): llm for s in self.stages for llm in s.models()}.values())

    def _batch_counts(self) -> BatchCounts | None:
        counts = [c for llm in self._models() if (c := llm.batch_counts()) is not None]
        return sum(counts, BatchCounts()) if counts else None

    async def _run_item(self, item: Any, item_id: str) -> None:
        outputs: list[Any] = []
        rejections: list[Rejection] = []
        counts = ItemCounts(self._names)
        try:
            await self._walk(item, 0, item_id, outputs, rejections, counts)
        except _Stopped:
            return
        except _LeftForRetry as exc:
            if not self.aborted:
                left = self.stats.left_for_retry
                left[exc.cause] = left.get(exc.cause, 0) + 1
                self.stats.left_for_retry_examples.setdefault(exc.cause, exc.example)
            return
        if self.aborted:  # its failures may be the abort's cause: leave it for the rerun
            return
        try:
            self.store.record(item_id, outputs, rejections, counts)
        except Exception as exc:  # a full disk, an I/O error: no later item can be kept
            self._store_failed(exc)
            return
        counts.add_to(self._live)
        self._finished += 1
        self.stats.outputs += len(outputs)
        self.stats.rejections += len(rejections)
        self._schedule_commit()

    def _schedule_commit(self) -> None:
        if self.options.commit_interval == 0:
            self._commit()
        elif self._commit_handle is None:
            loop = asyncio.get_running_loop()
            self._commit_handle = loop.call_later(self.options.commit_interval, self._commit)

    def _commit(self) -> None:
        """Commit finished items; a store that cannot write (a full disk) stops the run."""
        self._commit_handle = None
        try:
            self._note_usage()
            self.store.commit()
        except Exception as exc:
            self._store_failed(exc)

    def _store_failed(self, exc: Exception) -> None:
        """A store that cannot write (a full disk) stops the run; its own error is raised."""
        if isinstance(exc, RunDirError):
            if self.store_error is None:
                self.store_error = exc
            self._abort(str(exc))
        else:
            self._abort(f"the run directory failed: {type(exc).__name__}: {exc}")

    def _abort(self, message: str) -> None:
        """Stop the run: no new item starts and the items in flight are cancelled."""
        if self.aborted is not None:
            return
        self.aborted = (
            f"{message}. Finished items are kept; fix the cause and rerun the same "
            "command to resume."
        )
        asyncio.get_running_loop().call_soon(self._cancel_in_flight)

    def _cancel_in_flight(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _walk(
        self,
        item: Any,
        index: int,
        root_id: str,
        outputs: list[Any],
        rejections: list[Rejection],
        counts: ItemCounts,
    ) -> None:
        # A single child goes on in this loop, not in a nested call: every await in a
        # stage resumes each frame of the chain that waits on it, once per stage deep.
        # For the same reason each stage is called here, not in a coroutine of its own.
        stages = self.stages
        figures = counts.figures
        while index < len(stages):
            stage = stages[index]
            at = self._offsets[index]  # received, emitted, rejected, errors, seconds
            figures[at] += 1
            started = perf_counter()
            try:
                if self._direct[index]:  # the usual case: an async stage, no semaphore
                    result = await stage.process(item)  # type: ignore[misc]
                else:
                    result = await self._invoke(stage, index, item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                figures[at + 3] += 1
                result = self._failed(stage, exc)
            else:
                self._successes[index].append(False)  # _count_call(stage, None), inlined
            finally:
                figures[at + 4] += perf_counter() - started
            if isinstance(result, (list, tuple)):
                results = result
            elif result is None:
                results = [self._no_result(stage)]
            else:
                results = [result]
            children: list[Any] = []
            for result in results:
                if isinstance(result, Rejection):
                    rejections.append(
                        copied(
                            result,
                            stage=result.stage or stage.name,
                            item_id=result.item_id or getattr(item, "id", "") or "",
                            document_id=result.document_id or root_id,
                        )
                    )
                    counts.reject(at, result.rule)
                else:
                    children.append(result)
            index += 1
            if len(children) != 1:
                break
            figures[at + 1] += 1
            item = children[0]
        else:
            outputs.append(item)
            return
        if not children:
            return
        figures[at + 1] += len(children)
        outcomes = await asyncio.gather(
            *(self._walk(child, index, root_id, outputs, rejections, counts) for child in children),
            return_exceptions=True,
        )
        for outcome in outcomes:  # every sibling has finished: nothing runs on unseen
            if isinstance(outcome, BaseException):
                raise outcome

    async def _invoke(self, stage: Stage, index: int, item: Any, guarded: bool = False) -> Any:
        """A stage's call under its semaphore, or of a ``process`` that is no coroutine function."""
        semaphore = self._semaphores[index]
        if semaphore is not None and not guarded:
            async with semaphore:
                return await self._invoke(stage, index, item, guarded=True)
        if self._async_process[index]:
            return await stage.process(item)  # type: ignore[misc]
        if stage.blocks(item):
            result = await asyncio.to_thread(stage.process, item)
        else:
            result = stage.process(item)
        if isinstance(result, Awaitable):
            result = await result
        return result

    @staticmethod
    def _no_result(stage: Stage) -> Rejection:
        return Rejection(
            rule="no_result",
            reason=f"stage {stage.name!r} returned None; return an item, a list or a Rejection",
        )

    def _failed(self, stage: Stage, exc: Exception) -> Rejection:
        """The rejection for an item's own fault; otherwise stop the item (see the module doc)."""
        if isinstance(exc, (FatalError, ModelConfigError, RunDirError)):
            self._abort(f"stage {stage.name!r} hit a fatal error: {scrub(str(exc))}")
            raise _Stopped from exc
        if isinstance(exc, (ValueError, ReplyError)) and not isinstance(exc, ModelError):
            self._count_call(stage, None)  # the item's fault, not the stage's
            return Rejection(
                rule="exception",
                reason=scrub(f"{type(exc).__name__}: {exc}"),
                detail={"exception": type(exc).__name__},
            )
        cause = f"{stage.name}: {_cause(exc)}"
        example = scrub(str(exc)) or type(exc).__name__
        if not isinstance(exc, ModelError) and cause not in self.stats.left_for_retry_examples:
            trace = scrub("".join(traceback.format_exception(exc)))
            log.warning(
                "stage %r raised %s; the item is left for the next run\n%s",
                stage.name,
                example,
                trace,
            )
        self._count_call(stage, example)
        raise _LeftForRetry(cause, example) from exc

    def _count_call(self, stage: Stage, error: str | None) -> None:
        """Note one call's outcome in the stage's window; stop the run past the bound."""
        window = self._windows[stage.name]
        window.append(error is not None)
        if error is None or len(window) < self._judged_after:
            return
        failed = sum(window)
        if failed / len(window) > self.options.max_error_rate:
            self._abort(
                f"{failed} of the last {len(window)} calls of stage {stage.name!r} failed "
                f"(limit {self.options.max_error_rate:.0%}); last error: {error}"
            )


async def run_items(
    stages: tuple[Stage, ...],
    items: Iterable[Any] | AsyncIterator[Any],
    store: Store,
    options: RunOptions,
    stats: RunStats | None = None,
) -> RunStats:
    """Run ``items`` through ``stages``, recording results in ``store``.

    ``stats`` is filled in as the run goes, so a caller still has the figures
    when the run is interrupted or aborted.
    """
    return await _Runner(stages, store, options, stats or RunStats()).run(items)
