"""Reports of a run or a dataset: plain text for terminals, one HTML page for browsers.

The run report holds the funnel (items into and out of each stage, rejections
by rule), tokens and cost per stage and per kept trajectory, wall time, and
the statistics of what was kept. The HTML page is self-contained (inline SVG
plots, no scripts, nothing fetched).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from gemlib.model import Rejection, RunStats
from gemlib.stats import DatasetStats

__all__ = ["format_costs", "format_funnel", "format_rejections", "html_report", "text_report"]


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


def format_costs(stats: RunStats, kept: int | None = None) -> str:
    """Requests, tokens and cost per stage and model, also per kept trajectory.

    Usage in ``stats`` counts every session of a resumed run, so pass ``kept``,
    the trajectories the whole run holds, when ``stats`` is one session's.
    """
    kept = stats.outputs if kept is None else kept

    def per_kept(value: float, spec: str) -> str:
        return format(value / kept, spec) if kept else "-"

    rows = [
        f"{'stage':<22} {'model':<26} {'requests':>8} {'cached':>7} {'tokens':>10} "
        f"{'cost $':>9} {'tokens/kept':>11} {'$/kept':>9}"
    ]
    total_tokens, total_cost = 0, 0.0
    for stage, models in stats.usage.items():
        for model, u in models.items():
            tokens = u.prompt_tokens + u.completion_tokens
            total_tokens += tokens
            total_cost += u.cost
            rows.append(
                f"{stage:<22} {model[:26]:<26} {u.requests:>8} {u.cache_hits:>7} "
                f"{tokens:>10} {u.cost:>9.4f} {per_kept(tokens, '>11.0f'):>11} "
                f"{per_kept(u.cost, '>9.5f'):>9}"
            )
    rows.append(
        f"{'total':<22} {'':<26} {'':>8} {'':>7} {total_tokens:>10} {total_cost:>9.4f} "
        f"{per_kept(total_tokens, '>11.0f'):>11} {per_kept(total_cost, '>9.5f'):>9}"
    )
    return "\n".join(rows)


def text_report(
    stats: RunStats, dataset: DatasetStats | None = None, rejections: Sequence[Rejection] = ()
) -> str:
    """The whole report as text: funnel, rejections, costs, and dataset figures."""
    parts = ["== funnel ==", format_funnel(stats)]
    if rejections:
        parts += ["", "== rejections ==", format_rejections(rejections)]
    if stats.usage:
        kept = None if dataset is None else dataset.trajectories
        parts += ["", "== models ==", format_costs(stats, kept=kept)]
    if dataset is not None:
        parts += ["", "== kept trajectories ==", dataset.format()]
    return "\n".join(parts)


# --------------------------------------------------------------------------- HTML

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}
td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}h2{margin-top:2rem}
.plots{display:flex;flex-wrap:wrap;gap:1.5rem}figure{margin:0}
figcaption{font-size:.9rem;color:#555}
"""


def _histogram(values: Sequence[float], title: str, width: int = 280, height: int = 140) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    bins = min(12, max(1, int(high - low) + 1))
    span = (high - low) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - low) / span))] += 1
    tallest = max(counts)
    bar = width / bins
    rects = "".join(
        f'<rect x="{i * bar:.1f}" y="{height - 20 - c / tallest * (height - 30):.1f}" '
        f'width="{bar - 2:.1f}" height="{c / tallest * (height - 30):.1f}" fill="#4a7bd0">'
        f"<title>{low + i * span:.0f}-{low + (i + 1) * span:.0f}: {c}</title></rect>"
        for i, c in enumerate(counts)
    )
    axis = (
        f'<text x="0" y="{height - 4}" font-size="11">{low:.0f}</text>'
        f'<text x="{width}" y="{height - 4}" font-size="11" text-anchor="end">{high:.0f}</text>'
    )
    return (
        f'<figure><svg width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}">{rects}{axis}</svg>'
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
    )


def _funnel_svg(stats: RunStats, width: int = 560) -> str:
    rows = list(stats.stages.items())
    if not rows:
        return ""
    widest = max(s.received for _, s in rows) or 1
    height = 26 * len(rows) + 10
    parts = []
    for i, (name, s) in enumerate(rows):
        y = 5 + i * 26
        out = s.emitted / widest * (width - 200)
        rejected = s.rejected / widest * (width - 200)
        parts.append(
            f'<text x="0" y="{y + 15}" font-size="12">{html.escape(name)}</text>'
            f'<rect x="160" y="{y}" width="{out:.1f}" height="18" fill="#3c9a5f">'
            f"<title>{s.emitted} out</title></rect>"
            f'<rect x="{160 + out:.1f}" y="{y}" width="{rejected:.1f}" height="18" fill="#d0563c">'
            f"<title>{s.rejected} rejected</title></rect>"
            f'<text x="{165 + out + rejected:.1f}" y="{y + 14}" font-size="11">'
            f"{s.emitted} / {s.received}</text>"
        )
    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="funnel">'
        + "".join(parts)
        + "</svg>"
    )


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def html_report(
    dataset: DatasetStats, stats: RunStats | None = None, title: str = "gemlib report"
) -> str:
    """A self-contained HTML page: funnel, costs, distributions and label counts."""
    sections = [f"<h1>{html.escape(title)}</h1>"]
    if stats is not None:
        sections += [
            "<h2>Funnel</h2>",
            _funnel_svg(stats),
            _table(
                ["stage", "in", "out", "rejected", "rules"],
                [
                    (
                        n,
                        s.received,
                        s.emitted,
                        s.rejected,
                        ", ".join(f"{r} {c}" for r, c in s.rejections_by_rule.items()),
                    )
                    for n, s in stats.stages.items()
                ],
            ),
            f"<p>{stats.inputs} inputs, {stats.outputs} kept, {stats.rejections} rejected, "
            f"{stats.wall_seconds:.1f} s.</p>",
        ]
        if stats.usage:
            kept = max(stats.outputs, 1)
            sections += [
                "<h2>Models</h2>",
                _table(
                    ["stage", "model", "requests", "cache hits", "tokens", "cost $", "$ per kept"],
                    [
                        (
                            stage,
                            model,
                            u.requests,
                            u.cache_hits,
                            u.prompt_tokens + u.completion_tokens,
                            f"{u.cost:.4f}",
                            f"{u.cost / kept:.5f}",
                        )
                        for stage, models in stats.usage.items()
                        for model, u in models.items()
                    ],
                ),
            ]
    sections += [
        f"<h2>Trajectories ({dataset.trajectories})</h2>",
        _table(
            ["per trajectory", "mean", "median", "p90", "max"],
            [
                (name, f"{d.mean:.1f}", f"{d.median:.1f}", f"{d.p90:.1f}", f"{d.max:.0f}")
                for name, d in (
                    ("messages", dataset.messages),
                    ("user turns", dataset.user_turns),
                    ("distinct tools used", dataset.distinct_tools_used),
                    ("tool calls", dataset.tool_calls),
                    ("tokens", dataset.tokens),
                )
            ],
        ),
    ]
    plots = [
        _histogram(dataset.samples.get(key, []), caption)
        for key, caption in (
            ("messages", "messages per trajectory"),
            ("tool_calls", "tool calls per trajectory"),
            ("distinct_tools_used", "distinct tools per trajectory"),
        )
    ]
    sections.append(f'<div class="plots">{"".join(plots)}</div>')
    for name, counts in (
        ("Calls per tool", dataset.calls_per_tool),
        ("Call kinds", dataset.call_kinds),
        ("Domains", dataset.domains),
        ("Platforms", dataset.platforms),
        ("Tasks", dataset.tasks),
        ("Patterns", dataset.patterns),
    ):
        if counts:
            top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
            sections += [f"<h2>{name}</h2>", _table(["", "count"], top)]
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        + "".join(sections)
        + "</body></html>"
    )
