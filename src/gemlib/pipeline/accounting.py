"""A run's accounting: per-stage counts and the funnel, with model usage by stage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from gemlib.llm.usage import ModelUsage

__all__ = [
    "ItemCounts",
    "RunStats",
    "StageCounts",
    "StageStats",
    "add_counts",
    "as_stage_stats",
    "merge_stats",
]


class StageStats(BaseModel):
    """Counts for one stage: items received, items emitted, rejections by rule, time spent."""

    received: int = 0
    emitted: int = 0
    rejected: int = 0
    errors: int = 0
    rejections_by_rule: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0

    def merge(self, other: StageStats | StageCounts) -> None:
        """Add ``other``'s counts into this one."""
        _add(self, other)


class StageCounts:
    """One stage's counts as a run takes them, per item: the fields of :class:`StageStats`
    as plain attributes.

    A run bumps a few counts per stage per item, and adds each finished item's counts
    into its live figures and the store's; an assignment to a pydantic model costs
    some twenty times a plain one. :meth:`StageStats.merge` adds these into the
    totals a run directory keeps.
    """

    __slots__ = ("emitted", "errors", "received", "rejected", "rejections_by_rule", "seconds")

    def __init__(self) -> None:
        self.received = 0
        self.emitted = 0
        self.rejected = 0
        self.errors = 0
        self.rejections_by_rule: dict[str, int] = {}
        self.seconds = 0.0

    def add(self, other: StageCounts | StageStats) -> None:
        """Add ``other``'s counts into this one."""
        _add(self, other)

    def figures(self) -> dict[str, Any]:
        """The counts as :meth:`StageStats.model_dump` gives them (same keys, same order;
        the rules' dict is this one's, not a copy)."""
        return {name: getattr(self, name) for name in _FIELDS}


class ItemCounts:
    """One corpus item's counts at every stage, as the runner takes them while the item is
    in flight: flat figures, five per stage name (received, emitted, rejected, errors,
    seconds), and the rules of its rejections.

    Two objects per item, where a :class:`StageCounts` per stage is two per stage: an item
    keeps its counts across each of its model requests, and at high concurrency the
    garbage collector traverses every object held so. :meth:`add_to` adds them into
    per-stage totals, in the order of ``names``, as :func:`add_counts` of one
    :class:`StageCounts` per name would.
    """

    __slots__ = ("figures", "names", "rules")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        """The stage names, each once, in pipeline order: stage name ``names[i]`` owns
        ``figures[5 * i : 5 * i + 5]``."""
        self.figures: list[Any] = [0, 0, 0, 0, 0.0] * len(names)  # ints, and a float
        self.rules: list[tuple[int, str]] | None = None
        """``(offset of the stage's figures, rule)`` of each rejection, in order."""

    def reject(self, offset: int, rule: str) -> None:
        """Count a rejection by ``rule`` at the stage whose figures start at ``offset``."""
        self.figures[offset + 2] += 1
        if self.rules is None:
            self.rules = []
        self.rules.append((offset, rule))

    def add_to(self, total: dict[str, StageCounts]) -> None:
        """Add these counts into ``total`` (a :class:`StageCounts` per stage name; the names
        missing from it are added, in order)."""
        figures = self.figures
        offset = 0
        for name in self.names:
            into = total.get(name)
            if into is None:
                into = total[name] = StageCounts()
            if figures[offset]:  # a stage the item never reached has nothing to add
                into.received += figures[offset]
                into.emitted += figures[offset + 1]
                into.rejected += figures[offset + 2]
                into.errors += figures[offset + 3]
                into.seconds += figures[offset + 4]
            offset += 5
        if self.rules is not None:
            names = self.names
            for offset, rule in self.rules:
                rules = total[names[offset // 5]].rejections_by_rule
                rules[rule] = rules.get(rule, 0) + 1


def _add(into: StageStats | StageCounts, other: StageStats | StageCounts) -> None:
    # A count left at zero is not assigned: on a StageStats that is pydantic's slow path.
    if other.received:
        into.received += other.received
    if other.emitted:
        into.emitted += other.emitted
    if other.rejected:
        into.rejected += other.rejected
    if other.errors:
        into.errors += other.errors
    if other.seconds:
        into.seconds += other.seconds
    for rule, n in other.rejections_by_rule.items():
        into.rejections_by_rule[rule] = into.rejections_by_rule.get(rule, 0) + n


def merge_stats(total: dict[str, StageStats], part: Mapping[str, StageStats | StageCounts]) -> None:
    """Add the per-stage counts of ``part`` into ``total``."""
    for name, stats in part.items():
        into = total.get(name)
        if into is None:  # not setdefault: that would build a StageStats per call
            into = total[name] = StageStats()
        into.merge(stats)


def add_counts(total: dict[str, StageCounts], part: Mapping[str, StageCounts | StageStats]) -> None:
    """Add the per-stage counts of ``part`` into ``total`` (a run's running figures)."""
    for name, counts in part.items():
        into = total.get(name)
        if into is None:
            into = total[name] = StageCounts()
        into.add(counts)


def as_stage_stats(counts: Mapping[str, StageCounts]) -> dict[str, StageStats]:
    """Per-stage counts as :class:`StageStats` records (new ones: changing them changes
    nothing here)."""
    return {name: StageStats.model_validate(c.figures()) for name, c in counts.items()}


_FIELDS = tuple(StageStats.model_fields)
"""The fields of :class:`StageStats`, in order (``model_fields`` is rebuilt on each read)."""


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
