"""Dataset statistics: what a set of trajectories is like, with the figures GEM reports.

    from gemlib.analysis.stats import dataset_stats
    stats = dataset_stats(trajectories)
    print(stats.format())

Per trajectory: messages, user turns, distinct tools used, tool calls and
tokens (mean, median, p90, max); over the set: calls per tool, the share of
read and write calls, interaction patterns where labelled, and the domain,
platform and task-category distributions.

Read or write is judged from the tool's name as the state ledger judges it
(:mod:`gemlib.validation.tool_kinds`: the first known verb, ``get``, ``list``...
read; ``create``, ``cancel``, ``toggle``... write); names that say neither are
counted as unknown. Tokens are counted with tiktoken's
``cl100k_base`` encoding, read from the copy litellm ships (offline) without
importing litellm, which takes seconds; where that copy or tiktoken is missing,
or with ``count_tokens=False``, they are estimated as characters divided by
four. :attr:`DatasetStats.tokens_counted_with` says which.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable

from pydantic import BaseModel, Field

from gemlib.llm.tokens import tiktoken_encoding
from gemlib.model import Trajectory
from gemlib.validation.tool_kinds import ToolKinds

__all__ = [
    "ESTIMATE",
    "PAPER_FIGURES",
    "DatasetStats",
    "Distribution",
    "dataset_stats",
    "tool_kind",
]

ESTIMATE = "estimate (characters / 4)"

PAPER_FIGURES = {"messages": 46.1, "distinct_tools_used": 8.6, "tool_calls": 16.3}
"""Means per trajectory the GEM paper reports for its data after complexity refinement."""


def tool_kind(name: str) -> str:
    """``"read"``, ``"write"`` or ``"unknown"``, judged from a tool's name by
    :class:`~gemlib.validation.tool_kinds.ToolKinds` (the state ledger's judge)."""
    kind = ToolKinds().kind(name)
    return "unknown" if kind == "other" else kind


class Distribution(BaseModel):
    """Summary of one per-trajectory figure."""

    mean: float = 0.0
    median: float = 0.0
    p90: float = 0.0
    max: float = 0.0

    @classmethod
    def of(cls, values: list[float]) -> Distribution:
        """The summary of ``values`` (zeros when empty)."""
        if not values:
            return cls()
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
        return cls(
            mean=statistics.fmean(ordered),
            median=statistics.median(ordered),
            p90=p90,
            max=ordered[-1],
        )


class DatasetStats(BaseModel):
    """Figures for a set of trajectories."""

    trajectories: int = 0
    messages: Distribution = Field(default_factory=Distribution)
    user_turns: Distribution = Field(default_factory=Distribution)
    distinct_tools_used: Distribution = Field(default_factory=Distribution)
    tool_calls: Distribution = Field(default_factory=Distribution)
    tokens: Distribution = Field(default_factory=Distribution)
    calls_per_tool: dict[str, int] = Field(default_factory=dict)
    call_kinds: dict[str, int] = Field(default_factory=dict)
    patterns: dict[str, int] = Field(default_factory=dict)
    domains: dict[str, int] = Field(default_factory=dict)
    platforms: dict[str, int] = Field(default_factory=dict)
    tasks: dict[str, int] = Field(default_factory=dict)
    samples: dict[str, list[float]] = Field(default_factory=dict, exclude=True)
    """The raw per-trajectory values behind each distribution (for plots)."""
    tokens_counted_with: str = ESTIMATE
    """How ``tokens`` was counted: ``cl100k_base``, or an estimate from the length."""

    def format(self) -> str:
        """A plain-text table for terminals."""
        rows = [
            f"{self.trajectories} trajectories",
            f"{'per trajectory':<22} {'mean':>8} {'median':>8} {'p90':>8} {'max':>8}",
        ]
        for name in ("messages", "user_turns", "distinct_tools_used", "tool_calls", "tokens"):
            d: Distribution = getattr(self, name)
            rows.append(f"{name:<22} {d.mean:>8.1f} {d.median:>8.1f} {d.p90:>8.1f} {d.max:>8.0f}")
        rows.append(f"tokens counted with {self.tokens_counted_with}")
        total = sum(self.call_kinds.values()) or 1
        kinds = ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(self.call_kinds.items()))
        rows.append(f"calls by kind: {kinds}")
        for title, counts in (
            ("top tools", self.calls_per_tool),
            ("domains", self.domains),
            ("platforms", self.platforms),
            ("tasks", self.tasks),
            ("patterns", self.patterns),
        ):
            if counts:
                top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
                rows.append(f"{title}: " + ", ".join(f"{k} {v}" for k, v in top))
        return "\n".join(rows)


def _token_counter(count_tokens: bool) -> tuple[Callable[[str], int], str]:
    """A token counter and the name of how it counts."""
    encoding = tiktoken_encoding("cl100k_base") if count_tokens else None
    if encoding is None:
        return (lambda text: len(text) // 4), ESTIMATE
    return (lambda text: len(encoding.encode(text, disallowed_special=()))), "cl100k_base"


def _labels(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return []


def dataset_stats(trajectories: Iterable[Trajectory], *, count_tokens: bool = True) -> DatasetStats:
    """Compute :class:`DatasetStats` in one pass over ``trajectories``."""
    counter, tokens_by = _token_counter(count_tokens)
    samples: dict[str, list[float]] = {
        k: [] for k in ("messages", "user_turns", "distinct_tools_used", "tool_calls", "tokens")
    }
    per_tool: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    patterns: Counter[str] = Counter()
    domains: Counter[str] = Counter()
    platforms: Counter[str] = Counter()
    tasks: Counter[str] = Counter()
    count = 0
    for trajectory in trajectories:
        count += 1
        calls = trajectory.tool_calls
        samples["messages"].append(len(trajectory.messages))
        samples["user_turns"].append(sum(m.role == "user" for m in trajectory.messages))
        samples["distinct_tools_used"].append(len({c.name for c in calls}))
        samples["tool_calls"].append(len(calls))
        text = "\n".join(
            m.content + "".join(json.dumps(c.arguments) for c in m.tool_calls)
            for m in trajectory.messages
        )
        samples["tokens"].append(counter(text))
        for call in calls:
            per_tool[call.name] += 1
            kinds[tool_kind(call.name)] += 1
        labels = trajectory.labels
        patterns.update(_labels(labels.get("patterns")))
        domains.update(_labels(labels.get("domains")))
        platforms.update(_labels(labels.get("platform")))
        tasks.update(_labels(labels.get("task")))
    return DatasetStats(
        trajectories=count,
        **{name: Distribution.of(values) for name, values in samples.items()},
        calls_per_tool=dict(per_tool.most_common()),
        call_kinds=dict(kinds),
        patterns=dict(patterns),
        domains=dict(domains),
        platforms=dict(platforms),
        tasks=dict(tasks),
        samples=samples,
        tokens_counted_with=tokens_by,
    )
