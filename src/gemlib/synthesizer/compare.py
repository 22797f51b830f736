"""The full GEM pipeline and the Trajectory Synthesizer on the same segments, side by side."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from gemlib.analysis.stats import DatasetStats, dataset_stats
from gemlib.pipeline.pipeline import Pipeline, RunResult

__all__ = ["Comparison", "compare"]


@attrs.frozen
class Comparison:
    """Both runs' results and the figures that matter for choosing between them."""

    names: tuple[str, str]
    results: tuple[RunResult, RunResult]
    datasets: tuple[DatasetStats, DatasetStats]

    def rows(self) -> list[tuple[str, str, str]]:
        """``(figure, first, second)`` rows of the comparison table."""
        out: list[tuple[str, str, str]] = []

        def row(name: str, values: list[str]) -> None:
            out.append((name, values[0], values[1]))

        kept = [max(r.stats.outputs, 1) for r in self.results]
        inputs = [max(r.stats.inputs, 1) for r in self.results]
        row("kept trajectories", [str(r.stats.outputs) for r in self.results])
        row(
            "yield (kept / input)",
            [f"{r.stats.outputs / n:.0%}" for r, n in zip(self.results, inputs, strict=True)],
        )
        for label, key in (
            ("messages", "messages"),
            ("distinct tools", "distinct_tools_used"),
            ("tool calls", "tool_calls"),
        ):
            row(f"mean {label}", [f"{getattr(d, key).mean:.1f}" for d in self.datasets])
        tokens = [
            sum(u.prompt_tokens + u.completion_tokens for m in r.usage.values() for u in m.values())
            for r in self.results
        ]
        requests = [
            sum(u.requests for m in r.usage.values() for u in m.values()) for r in self.results
        ]
        cost = [sum(u.cost for m in r.usage.values() for u in m.values()) for r in self.results]
        row(
            "model requests per kept", [f"{q / k:.1f}" for q, k in zip(requests, kept, strict=True)]
        )
        row("tokens per kept", [f"{t / k:.0f}" for t, k in zip(tokens, kept, strict=True)])
        row("cost per kept ($)", [f"{c / k:.5f}" for c, k in zip(cost, kept, strict=True)])
        row(
            "seconds per kept",
            [f"{r.stats.wall_seconds / k:.2f}" for r, k in zip(self.results, kept, strict=True)],
        )
        return out

    def format(self) -> str:
        """The comparison as a text table."""
        lines = [f"{'':<26} {self.names[0]:>16} {self.names[1]:>16}"]
        lines += [f"{name:<26} {a:>16} {b:>16}" for name, a, b in self.rows()]
        return "\n".join(lines)


def compare(
    texts: Iterable[Any],
    full: Pipeline,
    synthesizer: Pipeline,
    *,
    run_dir: str | os.PathLike[str] | None = None,
    names: tuple[str, str] = ("full pipeline", "synthesizer"),
    **options: Any,
) -> Comparison:
    """Run both pipelines on the same items and compare yield, shape, tokens, cost and time.

    ``texts`` is materialised once so both see the same items; with ``run_dir``
    each run gets a subdirectory (and resumes like any run).
    """
    items = list(texts)
    results = []
    for name, pipe in zip(names, (full, synthesizer), strict=True):
        where = Path(run_dir) / name.replace(" ", "-") if run_dir else None
        results.append(pipe.run(items, run_dir=where, **options))
    first, second = results
    datasets = (
        dataset_stats(first.trajectories, count_tokens=False),
        dataset_stats(second.trajectories, count_tokens=False),
    )
    return Comparison(names, (first, second), datasets)
