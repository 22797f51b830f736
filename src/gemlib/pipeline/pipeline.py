"""`Pipeline`: stages composed in order, checked when composed, run sync or async."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sized
from functools import cached_property
from pathlib import Path
from typing import Any, Union

import attrs
from pydantic import TypeAdapter

from gemlib._sync import run_sync
from gemlib.errors import PipelineError
from gemlib.formats.corpus import as_items
from gemlib.llm.usage import ModelUsage
from gemlib.model import Rejection, Trajectory
from gemlib.pipeline.accounting import RunStats
from gemlib.pipeline.presets import PRESETS
from gemlib.pipeline.progress import corpus_total
from gemlib.pipeline.rundir import open_results
from gemlib.pipeline.runner import RunOptions, run_items
from gemlib.pipeline.stage import FunctionStage, Stage, accepts
from gemlib.pipeline.store import DirStore, MemoryStore, Store

__all__ = ["Pipeline", "RunResult"]

log = logging.getLogger("gemlib")

StageLike = Union[Stage, "Pipeline", Callable[[Any], Any]]


def _to_stages(value: Iterable[StageLike]) -> tuple[Stage, ...]:
    stages: list[Stage] = []
    for position, entry in enumerate(value):
        if isinstance(entry, Stage):
            stages.append(entry)
        elif isinstance(entry, Pipeline):
            stages.extend(entry.stages)
        elif callable(entry):
            stages.append(FunctionStage(entry))
        else:
            raise PipelineError(f"stage {position} is {entry!r}: expected a Stage or a function")
    return tuple(stages)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


@attrs.frozen
class Pipeline:
    """Stages run in order over a corpus; compose with ``Pipeline([...])`` or ``|``.

    Composition checks that each stage can take what the one before it emits
    and that stage names are unique (they key the funnel and the run directory).
    """

    stages: tuple[Stage, ...] = attrs.field(converter=_to_stages)

    def __attrs_post_init__(self) -> None:
        if not self.stages:
            raise PipelineError("a pipeline needs at least one stage")
        names: dict[str, int] = {}
        for position, stage_ in enumerate(self.stages):
            if stage_.name in names:
                raise PipelineError(
                    f"stages {names[stage_.name]} and {position} are both named {stage_.name!r}; "
                    "give one another name (set its `name` attribute)"
                )
            names[stage_.name] = position
        for before, after in zip(self.stages, self.stages[1:], strict=False):
            for produced in before.output_types:
                if not accepts(after.input_type, produced):
                    raise PipelineError(
                        f"stage {after.name!r} takes {_type_name(after.input_type)}, but the stage "
                        f"before it, {before.name!r}, emits {_type_name(produced)}"
                    )

    @classmethod
    def preset(cls, name: str, model: Any, **options: Any) -> Pipeline:
        """The named preset built for ``model`` (see :mod:`gemlib.pipeline.presets`).

        ``"gem"`` and ``"synthesizer"`` come with gemlib; other packages add
        theirs through the ``gemlib.presets`` entry-point group. A preset that is not
        callable, or that builds no :class:`Pipeline`, raises :class:`PipelineError`.
        """
        build = PRESETS.get(name)
        if not callable(build):
            raise PipelineError(
                f"the preset {name!r} is {build!r}, not a function making a Pipeline"
            )
        pipeline = build(model, **options)
        if not isinstance(pipeline, Pipeline):
            raise PipelineError(
                f"the preset {name!r} made a {type(pipeline).__name__}, not a Pipeline"
            )
        return pipeline

    @classmethod
    def gem(cls, model: Any, **options: Any) -> Pipeline:
        """The GEM method end to end; see :func:`gemlib.gem.presets.gem` for options.

        ``Pipeline.gem("openai/gpt-4.1-mini")`` segments, filters, extracts,
        generates, refines, checks the rules and asks the judge. The method
        lives above the runtime: this is ``Pipeline.preset("gem", ...)``.
        """
        return cls.preset("gem", model, **options)

    @classmethod
    def synthesizer(cls, model: Any, **options: Any) -> Pipeline:
        """The Trajectory Synthesizer path; see :func:`gemlib.synthesizer.preset.synthesizer`."""
        return cls.preset("synthesizer", model, **options)

    def __or__(self, other: StageLike) -> Pipeline:
        return Pipeline([*self.stages, other])

    @property
    def input_type(self) -> Any:
        """What the first stage takes."""
        return self.stages[0].input_type

    @property
    def output_type(self) -> Any:
        """What the last stage emits (a union when it emits several types)."""
        types = self.stages[-1].output_types
        return types[0] if len(types) == 1 else Union[types]  # noqa: UP007

    def describe(self) -> list[dict[str, Any]]:
        """Each stage's name, version and config, in order."""
        return [s.describe() for s in self.stages]

    def model_concurrency(self) -> int:
        """Requests the stages' models may have in flight at once (a shared model counts once)."""
        limits = {
            id(llm.limiter): llm.limits.max_concurrency for s in self.stages for llm in s.models()
        }
        return sum(limits.values())

    def _window(self, options: dict[str, Any]) -> int:
        """Items in flight: at least enough to keep every model's concurrency busy."""
        wanted = self.model_concurrency()
        given = options.get("max_in_flight")
        if given is None:
            return max(RunOptions().max_in_flight, wanted)
        if given < wanted:
            log.warning(
                "max_in_flight=%d caps requests in flight below the models' combined "
                "max_concurrency of %d; raise max_in_flight to use them",
                given,
                wanted,
            )
        return int(given)

    def fingerprint(self) -> str:
        """A hash of :meth:`describe`: run directories refuse a pipeline with another one."""
        canonical = json.dumps(self.describe(), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def estimate(
        self,
        items: Iterable[Any] | AsyncIterator[Any] | os.PathLike[str],
        *,
        pilot: str | os.PathLike[str] | None = None,
        assumptions: Mapping[str, Any] | None = None,
    ) -> Any:
        """What running over ``items`` would cost, without calling a model.

        Returns a :class:`gemlib.pipeline.estimate.Estimate` (``print(e.format())``):
        requests, tokens, dollars direct and in batches, and time, each a range,
        from the model-free stages run over the corpus and the stated
        assumptions, or those measured by a ``pilot`` run directory.
        """
        from gemlib.pipeline.estimate import estimate

        return estimate(self.stages, items, pilot=pilot, assumptions=assumptions)

    # ------------------------------------------------------------------ running

    def run(
        self,
        items: Iterable[Any] | os.PathLike[str],
        *,
        run_dir: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        settings: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> RunResult:
        """Run the pipeline to the end and return its :class:`RunResult`.

        ``items``: texts, :class:`~gemlib.Document` objects, mappings, or a
        :class:`pathlib.Path` to a corpus (JSONL, a text file, a folder).
        ``run_dir``: keep results in a resumable directory; rerunning the same
        pipeline on it skips finished items. ``overwrite``: start that directory
        afresh. ``limit=N`` runs the first N corpus items only, ``sample=N`` (with
        ``seed``) a uniform sample of N, for a pilot (:mod:`gemlib.pipeline.sampling`); run
        the whole corpus into the same ``run_dir`` afterwards to resume past it.
        ``settings``: what made the run (JSON-able; `gemlib run` passes
        its flags), kept as the directory's ``run.json`` once the directory is
        locked and the pipeline accepted, so a refused run changes nothing.
        Other keywords are :class:`~gemlib.pipeline.runner.RunOptions`.
        Works inside a running event loop (Jupyter) by running in a helper thread.
        """
        return run_sync(
            self.arun(items, run_dir=run_dir, overwrite=overwrite, settings=settings, **options)
        )

    async def arun(
        self,
        items: Iterable[Any] | AsyncIterator[Any] | os.PathLike[str],
        *,
        run_dir: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        settings: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> RunResult:
        """The async form of :meth:`run`."""
        limit, sample = options.pop("limit", None), options.pop("sample", None)
        seed = options.pop("seed", 0)
        if "total" not in options and isinstance(items, Sized) and not isinstance(items, str):
            options["total"] = len(items)  # for the ETA
        elif "total" not in options and isinstance(items, os.PathLike):
            options["total"], options["total_estimated"] = corpus_total(items) or (None, False)
        stream = items if hasattr(items, "__aiter__") else as_items(items, self.input_type)
        if limit is not None or sample is not None:
            from gemlib.pipeline.sampling import pilot_items

            if hasattr(stream, "__aiter__"):
                raise TypeError("limit and sample need a corpus that is not an async iterator")
            stream = pilot_items(stream, limit=limit, sample=sample, seed=seed)  # type: ignore[arg-type]
            wanted = limit if limit is not None else sample
            total = options.get("total")
            options["total"] = wanted if total is None else min(total, wanted)
        run_options = RunOptions(**{**options, "max_in_flight": self._window(options)})
        store: Store
        if run_dir is None:
            store = MemoryStore()
        else:
            manifest = {"fingerprint": self.fingerprint(), "stages": self.describe()}
            store = DirStore(run_dir, manifest=manifest, overwrite=overwrite, settings=settings)
        stats = RunStats()
        try:
            await run_items(self.stages, stream, store, run_options, stats)  # type: ignore[arg-type]
        finally:
            store.close(stats)  # also on Ctrl-C or abort: the manifest records what happened
        adapter = TypeAdapter(self.output_type)
        if isinstance(store, MemoryStore):
            return RunResult(stats=stats, memory=store, adapter=adapter)
        return RunResult(stats=stats, run_dir=Path(run_dir), adapter=adapter)  # type: ignore[arg-type]


@attrs.define(repr=False)
class RunResult:
    """What a run produced: outputs (trajectories), rejections, and statistics.

    With a ``run_dir`` the outputs stay on disk and are read when first asked
    for; ``iter_outputs`` streams them without holding them all.
    """

    stats: RunStats
    run_dir: Path | None = None
    memory: MemoryStore | None = None
    adapter: TypeAdapter[Any] | None = None

    def iter_outputs(self) -> Iterator[Any]:
        """Stream every output of the run (all sessions, for a run directory)."""
        if self.memory is not None:
            return iter(self.memory.outputs)
        assert self.run_dir is not None
        return open_results(self.run_dir, self.adapter)[0]

    def iter_rejections(self) -> Iterator[Rejection]:
        """Stream every rejection of the run."""
        if self.memory is not None:
            return iter(self.memory.rejections)
        assert self.run_dir is not None
        return open_results(self.run_dir)[1]

    @cached_property
    def outputs(self) -> list[Any]:
        """Every output item, in the order they finished."""
        return list(self.iter_outputs())

    @property
    def trajectories(self) -> list[Trajectory]:
        """The outputs that are trajectories."""
        return [o for o in self.outputs if isinstance(o, Trajectory)]

    @cached_property
    def rejections(self) -> list[Rejection]:
        """Every rejection, with stage, rule, reason and the item's IDs."""
        return list(self.iter_rejections())

    @property
    def usage(self) -> dict[str, dict[str, ModelUsage]]:
        """Model usage (requests, tokens, retries, cache hits, cost) by stage, then model."""
        return self.stats.usage

    def rejections_by_rule(self) -> dict[str, int]:
        """How many items each ``stage/rule`` rejected, over the whole run."""
        counts: dict[str, int] = {}
        for name, stats in self.stats.stages.items():
            for rule, n in stats.rejections_by_rule.items():
                counts[f"{name}/{rule}"] = n
        return counts

    def __repr__(self) -> str:
        s = self.stats
        where = f" in {self.run_dir}" if self.run_dir else ""
        return (
            f"<RunResult{where}: {s.inputs} inputs, {s.outputs} outputs, "
            f"{s.rejections} rejections, {s.wall_seconds:.2f}s>"
        )
