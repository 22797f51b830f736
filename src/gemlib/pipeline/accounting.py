"""A run's accounting: per-stage counts and the funnel, with model usage by stage."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, Field

from gemlib.llm.usage import ModelUsage

__all__ = ["RunStats", "StageStats", "merge_stats"]


class StageStats(BaseModel):
    """Counts for one stage: items received, items emitted, rejections by rule, time spent."""

    received: int = 0
    emitted: int = 0
    rejected: int = 0
    errors: int = 0
    rejections_by_rule: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0

    def merge(self, other: StageStats) -> None:
        """Add ``other``'s counts into this one."""
        # Once per stage per finished item (twice: live figures and the store's):
        # a count left at zero is not assigned, as pydantic's assignment is slow.
        if other.received:
            self.received += other.received
        if other.emitted:
            self.emitted += other.emitted
        if other.rejected:
            self.rejected += other.rejected
        if other.errors:
            self.errors += other.errors
        if other.seconds:
            self.seconds += other.seconds
        for rule, n in other.rejections_by_rule.items():
            self.rejections_by_rule[rule] = self.rejections_by_rule.get(rule, 0) + n


def merge_stats(total: dict[str, StageStats], part: Mapping[str, StageStats]) -> None:
    """Add the per-stage counts of ``part`` into ``total``."""
    for name, stats in part.items():
        into = total.get(name)
        if into is None:  # not setdefault: that would build a StageStats per call
            into = total[name] = StageStats()
        into.merge(stats)


class RunStats(BaseModel):
    """A run's funnel: inputs, outputs, per-stage counts, and time."""

    inputs: int = 0
    """Corpus items read, including ones skipped because an earlier run finished them."""
    resumed: int = 0
    """Items skipped because the run directory already held their results."""
    duplicates: int = 0
    """Items skipped because an item with the same ID came earlier in the corpus."""
    outputs: int = 0
    rejections: int = 0
    left_for_retry: dict[str, int] = Field(default_factory=dict)
    """Items this session left not done, by cause (``"stage: error"``): a failure that
    was not the item's fault (model, network, cache, a stage's own exception). They
    are neither outputs nor rejections; the next run of the same command retries them."""
    left_for_retry_examples: dict[str, str] = Field(default_factory=dict)
    """The first error message of each cause in :attr:`left_for_retry`."""
    stages: dict[str, StageStats] = Field(default_factory=dict)
    usage: dict[str, dict[str, ModelUsage]] = Field(default_factory=dict)
    """Model usage by stage, then model (all sessions of a run directory)."""
    wall_seconds: float = 0.0

    def funnel(self) -> list[tuple[str, int, int, int]]:
        """``(stage, received, emitted, rejected)`` rows in pipeline order."""
        return [(n, s.received, s.emitted, s.rejected) for n, s in self.stages.items()]
