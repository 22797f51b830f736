"""What a run directory says about its run: pipeline order, funnel, usage, example rejections.

    from gemlib.analysis.summary import load_summary
    summary = load_summary("runs/one")
    summary.stats.stages        # per-stage counts, in pipeline order, every session
    summary.examples[("llm_judge", "capability_hallucination")]  # a few rejections

The stage order is the manifest's (the order the pipeline ran them); the
counts and model usage are the run directory's committed totals over every
session, so a resumed run reports the whole run. Everything is read through
:mod:`gemlib.pipeline.store`, never by guessing at its files, and nothing here
imports litellm.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from pydantic import ValidationError

from gemlib.llm.usage import UsageByStage, merge_usage
from gemlib.model import Rejection
from gemlib.pipeline.accounting import RunStats, StageStats, merge_stats
from gemlib.pipeline.rundir import RunDir

__all__ = ["RunSummary", "example_rejections", "in_pipeline_order", "load_summary", "stage_order"]

EXAMPLES_PER_RULE = 3


@attrs.frozen
class RunSummary:
    """A run directory's manifest, its whole-run statistics, and example rejections."""

    path: Path
    manifest: dict[str, Any]
    stats: RunStats
    """Counts and usage of every session, stages in pipeline order."""
    examples: dict[tuple[str, str], list[Rejection]]
    """Up to a few rejections per ``(stage, rule)``, in the order they were recorded."""

    @property
    def stages(self) -> list[dict[str, Any]]:
        """The manifest's description of each stage (name, version, config, prompt hash)."""
        stages = self.manifest.get("stages")
        return [s for s in stages if isinstance(s, dict)] if isinstance(stages, list) else []

    def models(self) -> dict[str, str]:
        """The model each LLM stage used, by stage name."""
        found = {}
        for stage in self.stages:
            config = stage.get("config")
            model = config.get("model") if isinstance(config, Mapping) else None
            if isinstance(model, Mapping):
                model = model.get("model")
            if isinstance(model, str):
                found[str(stage.get("name"))] = model
        return found


def stage_order(manifest: Mapping[str, Any]) -> list[str]:
    """Stage names in the order the pipeline runs them, as the manifest lists them."""
    stages = manifest.get("stages")
    if not isinstance(stages, list):
        return []
    return [str(s.get("name")) for s in stages if isinstance(s, Mapping)]


def in_pipeline_order(stats: RunStats, order: Sequence[str]) -> RunStats:
    """``stats`` with its stages and usage in ``order`` (stages it does not name go last)."""

    def rank(name: str) -> tuple[int, str]:
        return (order.index(name), "") if name in order else (len(order), name)

    return stats.model_copy(
        update={
            "stages": {k: stats.stages[k] for k in sorted(stats.stages, key=rank)},
            "usage": {k: stats.usage[k] for k in sorted(stats.usage, key=rank)},
        }
    )


def example_rejections(
    rejections: Iterable[Rejection], per_rule: int = EXAMPLES_PER_RULE
) -> dict[tuple[str, str], list[Rejection]]:
    """The first ``per_rule`` rejections of each ``(stage, rule)``."""
    found: dict[tuple[str, str], list[Rejection]] = {}
    for rejection in rejections:
        kept = found.setdefault((rejection.stage, rejection.rule), [])
        if len(kept) < per_rule:
            kept.append(rejection)
    return found


def load_summary(
    run_dir: str | os.PathLike[str], *, examples_per_rule: int = EXAMPLES_PER_RULE
) -> RunSummary:
    """Read a run directory's summary; :class:`RunDirError` when it is not one.

    A partitioned run's root (``part-NNNNN`` run directories, as ``gemlib run
    --dask`` makes) is summed over its partitions, which share one pipeline.
    """
    root = RunDir(run_dir)
    runs = root.runs()
    manifests = [run.read_manifest() for run in runs]
    stages: dict[str, StageStats] = {}
    usage: UsageByStage = {}
    whole = RunStats()
    for run, manifest in zip(runs, manifests, strict=True):
        totals = run.totals()
        last = _last_session(manifest)
        merge_stats(stages, totals.stages or last.stages)
        merge_usage(usage, totals.usage or last.usage)
        whole.inputs += totals.items
        whole.outputs += totals.outputs
        whole.rejections += totals.rejections
        whole.duplicates += last.duplicates
        whole.wall_seconds = max(whole.wall_seconds, last.wall_seconds)
    whole.stages, whole.usage = stages, usage
    _, rejections = root.results()
    return RunSummary(
        path=root.path,
        manifest=manifests[0],
        stats=in_pipeline_order(whole, stage_order(manifests[0])),
        examples=example_rejections(rejections, examples_per_rule),
    )


def _last_session(manifest: Mapping[str, Any]) -> RunStats:
    """The manifest's last session (wall time, duplicates), or nothing when it is damaged."""
    session = manifest.get("last_session")
    try:
        return RunStats.model_validate(session.get("stats") or {})  # type: ignore[union-attr]
    except (AttributeError, ValidationError):
        return RunStats()
