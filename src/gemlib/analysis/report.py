"""Reports of a run or a dataset: plain text for terminals, one HTML page for browsers.

The run report holds the funnel in pipeline order (items into and out of each
stage, and why the rest were dropped, by rule), a few example rejections per
rule, tokens and cost per stage and per kept trajectory, wall time, and the
statistics of what was kept beside the figures the GEM paper reports. The HTML
page is self-contained (inline SVG plots with axes and counts, no scripts,
nothing fetched).

Pass the stats of a run directory through :func:`gemlib.analysis.summary.load_summary`,
which puts the stages in the order the pipeline ran them; a live run's stats
are in that order already.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence

from gemlib.analysis.stats import PAPER_FIGURES, DatasetStats
from gemlib.model import Rejection
from gemlib.pipeline.accounting import RunStats

__all__ = [
    "format_costs",
    "format_examples",
    "format_funnel",
    "format_paper_comparison",
    "format_rejections",
    "html_report",
    "text_report",
]

Examples = Mapping[tuple[str, str], Sequence[Rejection]]
"""Example rejections by ``(stage, rule)``, as
:func:`gemlib.analysis.summary.example_rejections` gives."""


def _reasons(rules: Mapping[str, int]) -> str:
    return ", ".join(f"{rule} {n}" for rule, n in sorted(rules.items(), key=lambda kv: -kv[1]))


def format_funnel(stats: RunStats) -> str:
    """Items in, out and rejected per stage, in the stats' (pipeline) order, with every rule."""
    rows = [f"{'stage':<24} {'in':>7} {'out':>7} {'rejected':>9}  drop reasons"]
    for name, s in stats.stages.items():
        rows.append(
            f"{name:<24} {s.received:>7} {s.emitted:>7} {s.rejected:>9}  "
            f"{_reasons(s.rejections_by_rule)}"
        )
    rows.append(
        f"{stats.inputs} inputs ({stats.resumed} already done, {stats.duplicates} duplicates), "
        f"{stats.outputs} outputs, {stats.rejections} rejections, {stats.wall_seconds:.2f} s"
    )
    return "\n".join(rows)


def format_examples(examples: Examples, order: Sequence[str] = (), width: int = 160) -> str:
    """A few rejections per stage and rule: the item and the reason, cut to ``width``."""
    lines = []
    for stage, rule in _ordered_keys(examples, order):
        lines.append(f"{stage}/{rule}:")
        for r in examples[(stage, rule)]:
            reason = " ".join(r.reason.split())
            lines.append(f"  {r.item_id}: {reason[: width - len(r.item_id) - 4]}")
    return "\n".join(lines)


def _ordered_keys(examples: Examples, order: Sequence[str]) -> list[tuple[str, str]]:
    def rank(key: tuple[str, str]) -> tuple[int, str, str]:
        stage, rule = key
        return (order.index(stage) if stage in order else len(order), stage, rule)

    return sorted(examples, key=rank)


def format_paper_comparison(dataset: DatasetStats) -> str:
    """Mean messages, distinct tools and calls per trajectory beside the GEM paper's."""
    rows = [f"{'mean per trajectory':<22} {'this run':>9} {'GEM paper':>10}"]
    for name, paper in PAPER_FIGURES.items():
        rows.append(f"{name:<22} {getattr(dataset, name).mean:>9.1f} {paper:>10.1f}")
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


def format_left_for_retry(stats: RunStats, width: int = 160) -> str:
    """How many items the run left not done, and why, by cause ('' when none)."""
    left = stats.left_for_retry
    if not left:
        return ""
    lines = [
        f"{sum(left.values())} items left for retry (not done, not rejected: the failure "
        "was not theirs); rerun the same command to retry them:"
    ]
    for cause, count in sorted(left.items(), key=lambda kv: (-kv[1], kv[0])):
        example = stats.left_for_retry_examples.get(cause, "")
        line = f"  {count:>6}  {cause}" + (f": {example}" if example else "")
        lines.append(line if len(line) <= width else line[: width - 3] + "...")
    return "\n".join(lines)


def format_costs(stats: RunStats, kept: int | None = None) -> str:
    """Requests, tokens (and the reasoning tokens among them) and cost per stage and model,
    also per kept trajectory.

    Usage in ``stats`` counts every session of a resumed run, so pass ``kept``,
    the trajectories the whole run holds, when ``stats`` is one session's.
    """
    kept = stats.outputs if kept is None else kept

    def per_kept(value: float, spec: str) -> str:
        return format(value / kept, spec) if kept else "-"

    rows = [
        f"{'stage':<22} {'model':<26} {'requests':>8} {'cached':>7} {'tokens':>10} "
        f"{'reasoning':>9} {'cost $':>9} {'tokens/kept':>11} {'$/kept':>9}"
    ]
    total_tokens, total_reasoning, total_cost = 0, 0, 0.0
    for stage, models in stats.usage.items():
        for model, u in models.items():
            tokens = u.prompt_tokens + u.completion_tokens
            total_tokens += tokens
            total_reasoning += u.reasoning_tokens
            total_cost += u.cost
            rows.append(
                f"{stage:<22} {model[:26]:<26} {u.requests:>8} {u.cache_hits:>7} "
                f"{tokens:>10} {u.reasoning_tokens:>9} {u.cost:>9.4f} "
                f"{per_kept(tokens, '>11.0f'):>11} "
                f"{per_kept(u.cost, '>9.5f'):>9}"
            )
    rows.append(
        f"{'total':<22} {'':<26} {'':>8} {'':>7} {total_tokens:>10} {total_reasoning:>9} "
        f"{total_cost:>9.4f} "
        f"{per_kept(total_tokens, '>11.0f'):>11} {per_kept(total_cost, '>9.5f'):>9}"
    )
    requests = sum(u.requests for models in stats.usage.values() for u in models.values())
    batched = sum(u.batched for models in stats.usage.values() for u in models.values())
    if batched:
        rows.append(f"{batched} of {requests} requests went in provider batches, at batch prices")
    return "\n".join(rows)


def text_report(
    stats: RunStats,
    dataset: DatasetStats | None = None,
    rejections: Sequence[Rejection] = (),
    examples: Examples | None = None,
) -> str:
    """The whole report as text: funnel, example rejections, costs, and dataset figures."""
    parts = ["== funnel ==", format_funnel(stats)]
    if examples:
        parts += ["", "== example rejections ==", format_examples(examples, list(stats.stages))]
    elif rejections:
        parts += ["", "== rejections ==", format_rejections(rejections)]
    if stats.usage:
        kept = None if dataset is None else dataset.trajectories
        parts += ["", "== models ==", format_costs(stats, kept=kept)]
    if dataset is not None:
        parts += ["", "== kept trajectories ==", dataset.format()]
        parts += ["", "== beside the GEM paper ==", format_paper_comparison(dataset)]
    return "\n".join(parts)


# --------------------------------------------------------------------------- HTML

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:64rem;color:#222;padding:0 1rem}
table{border-collapse:collapse;margin:1rem 0}
td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:right;vertical-align:top}
td:first-child,th:first-child{text-align:left}h2{margin-top:2rem}
td.reasons,th.reasons{text-align:left;font-size:.9rem}
.plots{display:flex;flex-wrap:wrap;gap:1.5rem}figure{margin:0}
figcaption{font-size:.9rem;color:#555}
details{margin:.3rem 0}summary{cursor:pointer}
.example{font-size:.9rem;margin:.2rem 0 .2rem 1.2rem}.example code{color:#555}
svg text{font-family:system-ui,sans-serif}
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""The page fetches nothing and runs nothing; the browser enforces it."""


def _bins(values: Sequence[float]) -> list[tuple[float, float, int]]:
    """``(low, high, count)`` per bin: one per whole number when few, else twelve equal."""
    low, high = min(values), max(values)
    whole = all(float(v).is_integer() for v in values)
    bins = int(high - low) + 1 if whole and high - low < 12 else 12
    span = (high - low + (1 if whole else 0)) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - low) / span))] += 1
    return [(low + i * span, low + (i + 1) * span, c) for i, c in enumerate(counts)]


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:.1f}"


def _histogram(values: Sequence[float], title: str, width: int = 320, height: int = 180) -> str:
    """A bar chart with a labelled x axis (the figure), a y axis (trajectories) and counts."""
    if not values:
        return ""
    bins = _bins(values)
    left, bottom, top = 40, 36, 16
    plot_w, plot_h = width - left - 8, height - bottom - top
    tallest = max(c for _, _, c in bins)
    bar = plot_w / len(bins)
    unit = all(float(v).is_integer() for v in values) and bins[0][1] - bins[0][0] == 1
    parts = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#444"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#444"/>',
        f'<text x="{left - 4}" y="{top + plot_h}" font-size="10" text-anchor="end">0</text>',
        f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{tallest}</text>',
        f'<text x="10" y="{top + plot_h / 2}" font-size="10" text-anchor="middle" '
        f'transform="rotate(-90 10 {top + plot_h / 2})">trajectories</text>',
        f'<text x="{left + plot_w / 2}" y="{height - 2}" font-size="11" '
        f'text-anchor="middle">{html.escape(title)}</text>',
    ]
    for i, (low, high, count) in enumerate(bins):
        h = count / tallest * (plot_h - 12)
        x = left + i * bar
        label = _number(low) if unit else f"{_number(low)}-{_number(high)}"
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" width="{bar - 2:.1f}" '
            f'height="{h:.1f}" fill="#4a7bd0"><title>{label}: {count}</title></rect>'
        )
        if count:
            parts.append(
                f'<text class="count" x="{x + bar / 2:.1f}" y="{top + plot_h - h - 2:.1f}" '
                f'font-size="9" text-anchor="middle">{count}</text>'
            )
        if unit:  # one bin per value: label each
            parts.append(
                f'<text class="tick" x="{x + bar / 2:.1f}" y="{top + plot_h + 12}" '
                f'font-size="9" text-anchor="middle">{label}</text>'
            )
    if not unit:  # equal bins: label the ends of the axis
        parts.append(
            f'<text class="tick" x="{left}" y="{top + plot_h + 12}" font-size="9">'
            f"{_number(bins[0][0])}</text>"
            f'<text class="tick" x="{left + plot_w}" y="{top + plot_h + 12}" font-size="9" '
            f'text-anchor="end">{_number(bins[-1][1])}</text>'
        )
    return (
        f'<figure><svg width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}">{"".join(parts)}</svg>'
        f"<figcaption>{html.escape(title)} ({len(values)} trajectories)</figcaption></figure>"
    )


def _funnel_svg(stats: RunStats, width: int = 720) -> str:
    rows = list(stats.stages.items())
    if not rows:
        return ""
    widest = max(s.received for _, s in rows) or 1
    height = 26 * len(rows) + 10
    parts = []
    for i, (name, s) in enumerate(rows):
        y = 5 + i * 26
        out = s.emitted / widest * (width - 360)
        rejected = s.rejected / widest * (width - 360)
        parts.append(
            f'<text x="0" y="{y + 15}" font-size="12">{html.escape(name)}</text>'
            f'<rect x="170" y="{y}" width="{out:.1f}" height="18" fill="#3c9a5f">'
            f"<title>{s.emitted} out</title></rect>"
            f'<rect x="{170 + out:.1f}" y="{y}" width="{rejected:.1f}" height="18" fill="#d0563c">'
            f"<title>{s.rejected} rejected</title></rect>"
            f'<text x="{175 + out + rejected:.1f}" y="{y + 14}" font-size="11">'
            f"{s.emitted} of {s.received} out, {s.rejected} rejected</text>"
        )
    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="funnel">'
        + "".join(parts)
        + "</svg>"
    )


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><tr>{head}</tr>{body}</table>"


def _funnel_section(stats: RunStats) -> list[str]:
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{s.received}</td><td>{s.emitted}</td>"
        f'<td>{s.rejected}</td><td class="reasons">{html.escape(_reasons(s.rejections_by_rule))}'
        "</td></tr>"
        for n, s in stats.stages.items()
    )
    return [
        "<h2>Funnel</h2>",
        "<p>Stages in the order the pipeline runs them.</p>",
        _funnel_svg(stats),
        '<table class="funnel"><tr><th>stage</th><th>in</th><th>out</th><th>rejected</th>'
        f'<th class="reasons">drop reasons</th></tr>{rows}</table>',
        f"<p>{stats.inputs} inputs, {stats.outputs} kept, {stats.rejections} rejected, "
        f"{stats.wall_seconds:.1f} s.</p>",
    ]


def _examples_section(examples: Examples, order: Sequence[str]) -> list[str]:
    blocks = []
    for stage, rule in _ordered_keys(examples, order):
        items = "".join(
            f'<div class="example"><code>{html.escape(r.item_id)}</code>: '
            f"{html.escape(r.reason)}</div>"
            for r in examples[(stage, rule)]
        )
        blocks.append(
            f'<details class="rule" open><summary>{html.escape(stage)} / '
            f"<b>{html.escape(rule)}</b></summary>{items}</details>"
        )
    return ["<h2>Example rejections</h2>", *blocks] if blocks else []


def _models_section(stats: RunStats, kept: int) -> list[str]:
    def per(value: float, spec: str) -> str:
        return format(value / kept, spec) if kept else "-"

    rows = [
        (
            stage,
            model,
            u.requests,
            u.cache_hits,
            u.prompt_tokens + u.completion_tokens,
            u.reasoning_tokens,
            f"{u.cost:.4f}",
            per(u.prompt_tokens + u.completion_tokens, ".0f"),
            per(u.cost, ".5f"),
        )
        for stage, models in stats.usage.items()
        for model, u in models.items()
    ]
    header = ["stage", "model", "requests", "cache hits", "tokens", "of them reasoning", "cost $"]
    return ["<h2>Models</h2>", _table([*header, "tokens per kept", "$ per kept"], rows)]


def html_report(
    dataset: DatasetStats,
    stats: RunStats | None = None,
    title: str = "gemlib report",
    examples: Examples | None = None,
) -> str:
    """A self-contained HTML page: funnel, example rejections, costs, distributions, labels."""
    sections = [f"<h1>{html.escape(title)}</h1>"]
    if stats is not None:
        sections += _funnel_section(stats)
        sections += _examples_section(examples or {}, list(stats.stages))
        if stats.usage:
            sections += _models_section(stats, dataset.trajectories)
    sections += [
        f"<h2>Trajectories ({dataset.trajectories})</h2>",
        _table(
            ["per trajectory", "mean", "median", "p90", "max", "GEM paper (mean)"],
            [
                (
                    label,
                    f"{d.mean:.1f}",
                    f"{d.median:.1f}",
                    f"{d.p90:.1f}",
                    f"{d.max:.0f}",
                    f"{PAPER_FIGURES[name]:.1f}" if name in PAPER_FIGURES else "",
                )
                for name, label in (
                    ("messages", "messages"),
                    ("user_turns", "user turns"),
                    ("distinct_tools_used", "distinct tools used"),
                    ("tool_calls", "tool calls"),
                    ("tokens", "tokens"),
                )
                for d in [getattr(dataset, name)]
            ],
            cls="figures",
        ),
        f"<p>Tokens counted with {html.escape(dataset.tokens_counted_with)}. The paper's "
        "figures are for its data after complexity refinement.</p>",
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
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        + "".join(sections)
        + "</body></html>"
    )
