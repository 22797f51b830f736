"""Plain-text reports of a run: the funnel and the rejection reasons."""

from __future__ import annotations

from collections.abc import Iterable

from gemlib.model import Rejection, RunStats

__all__ = ["format_funnel", "format_rejections"]


def format_funnel(stats: RunStats) -> str:
    """A table of items in, out and rejected per stage, with the top rejection rules."""
    rows = [f"{'stage':<24} {'in':>7} {'out':>7} {'rejected':>9}  top rules"]
    for name, s in stats.stages.items():
        rules = sorted(s.rejections_by_rule.items(), key=lambda kv: -kv[1])[:3]
        top = ", ".join(f"{rule} {n}" for rule, n in rules)
        rows.append(f"{name:<24} {s.received:>7} {s.emitted:>7} {s.rejected:>9}  {top}")
    rows.append(
        f"{stats.inputs} inputs ({stats.resumed} already done, {stats.duplicates} duplicates), "
        f"{stats.outputs} outputs, {stats.rejections} rejections, {stats.wall_seconds:.2f} s"
    )
    return "\n".join(rows)


def format_rejections(rejections: Iterable[Rejection], limit: int = 10) -> str:
    """One line per rejection (at most ``limit``): item, stage/rule and reason."""
    lines = []
    for count, r in enumerate(rejections):
        if count == limit:
            lines.append("...")
            break
        lines.append(f"{r.item_id:<28} {r.stage}/{r.rule}: {r.reason}")
    return "\n".join(lines)
