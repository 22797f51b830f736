"""What a run will cost, before spending anything: requests, tokens, dollars and time.

    from gemlib import Pipeline
    print(Pipeline.gem("openai/gpt-4.1-mini").estimate("corpus.jsonl").format())

No model is called. The corpus goes through the pipeline's model-free stages
in front of the first model (the segmenter, the prefilter, a classifier), so
documents and segments are counted, not guessed. Prompts of the model stages
that read a segment (relevance, extraction) are rendered and counted with the
model's tokenizer (:mod:`gemlib.llm.tokens`); later prompts are the template plus
what they read (the source text, the previous stage's reply). What the models
will answer is unknowable beforehand, so it comes from explicit assumptions,
printed with the estimate: per stage, the reply's size, the share of items it
passes on (``pass_rate``; the paper's 14% for relevance, workflows per segment
for extraction) and the extra requests repairs cost. Each assumption is a
range (low, expected, high), and so is every figure. A pilot run directory
(``gemlib run --limit N``) replaces them with what the pilot measured.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import attrs

from gemlib._sync import run_sync
from gemlib.formats.corpus import as_items
from gemlib.llm.client import LLM
from gemlib.llm.prices import Prices, prices
from gemlib.llm.tokens import TokenCounter, token_counter
from gemlib.llm.usage import UsageByStage
from gemlib.model import Rejection
from gemlib.pipeline.accounting import (
    ItemCounts,
    RunStats,
    StageCounts,
    StageStats,
    as_stage_stats,
)
from gemlib.pipeline.rundir import read_totals
from gemlib.pipeline.runner import RunOptions, run_items
from gemlib.pipeline.stage import Stage, accepts
from gemlib.pipeline.store import Store
from gemlib.prompts import load_prompt

__all__ = [
    "GEM_ASSUMPTIONS",
    "Assumption",
    "Estimate",
    "Span",
    "StageEstimate",
    "estimate",
]

log = logging.getLogger("gemlib")

Span = tuple[float, float, float]
"""(low, expected, high)."""

REPAIR_OVERHEAD = 60
"""Prompt tokens a repair adds besides the reply it returns (the error and the request)."""


MAX_ASSUMED = 1e6
"""No assumed figure goes above this (a million tokens per reply, items per item, repairs)."""


def _span(value: float | Span) -> Span:
    if isinstance(value, (int, float)):
        value = (value, value, value)
    low, mid, high = (float(v) for v in value)
    if not 0 <= low <= mid <= high <= MAX_ASSUMED:
        raise ValueError(
            f"a range must be (low, expected, high) in order, each from 0 to {MAX_ASSUMED:g}; "
            f"got {value}"
        )
    return (low, mid, high)


@attrs.frozen
class Assumption:
    """What one stage is assumed to do per item it receives.

    ``output_tokens``: tokens per reply. ``pass_rate``: items passed on per
    item received (above 1 for a stage that fans out). ``repairs``: extra
    requests per item (repairs and retries). ``reads_source``,
    ``reads_previous``: whether its prompt holds the segment's text and the
    previous model stage's reply. ``prompt_tokens``: measured prompt tokens per
    request, when a pilot measured them. ``source``: ``default``, ``given`` or
    ``pilot``.
    """

    output_tokens: Span = attrs.field(default=(200.0, 500.0, 1000.0), converter=_span)
    pass_rate: Span = attrs.field(default=(1.0, 1.0, 1.0), converter=_span)
    repairs: Span = attrs.field(default=(0.0, 0.05, 0.1), converter=_span)
    reads_source: bool = True
    reads_previous: bool = False
    prompt_tokens: Span | None = None
    source: str = "default"


GEM_ASSUMPTIONS: dict[str, Assumption] = {
    "relevance": Assumption((50, 80, 120), (0.14, 0.14, 0.14), (0.0, 0.02, 0.05)),
    "extraction": Assumption((800, 1400, 2200), (1.0, 1.5, 2.5), (0.0, 0.05, 0.15)),
    "generation": Assumption(
        (1800, 2800, 4000), (0.8, 0.92, 1.0), (0.05, 0.15, 0.3), reads_previous=True
    ),
    "refinement": Assumption(
        (3000, 4500, 6500), (0.8, 0.9, 1.0), (0.05, 0.15, 0.3), reads_previous=True
    ),
    "rule_validator": Assumption(pass_rate=(0.6, 0.8, 0.95)),
    "judge": Assumption(
        (20, 60, 150), (0.6, 0.8, 0.95), (0.0, 0.02, 0.05), reads_source=False, reads_previous=True
    ),
    "synthesize": Assumption((3000, 4500, 6500), (0.8, 0.9, 1.0), (0.05, 0.15, 0.3)),
}
"""Defaults for the GEM stages, by prompt name (or stage name). The relevance rate is the paper's
(about 14% of web segments pass); the rest are gemlib's guesses for a capable
teacher: override them, or measure them with a pilot."""

SECONDS_PER_OUTPUT_TOKEN: Span = (1 / 120, 1 / 60, 1 / 30)
"""Generation speed assumed for the time estimate (30 to 120 tokens per second)."""
SECONDS_PER_REQUEST: Span = (0.3, 0.6, 1.5)
"""Time to the first token assumed for each request."""
BATCH_TURNAROUND: Span = (600.0, 3 * 3600.0, 24 * 3600.0)
"""Seconds from a batch's submission to its results (providers promise within 24 h)."""


@attrs.frozen
class StageEstimate:
    """One stage's share of the estimate; every figure a (low, expected, high) range."""

    stage: str
    model: str | None
    items: Span
    requests: Span
    prompt_tokens: Span
    completion_tokens: Span
    cost: Span
    batch_cost: Span
    assumption: Assumption


@attrs.frozen
class Estimate:
    """What running the pipeline over the corpus is expected to take."""

    documents: int
    segments: int
    filtered: dict[str, int]
    """Items each model-free stage in front of the models dropped."""
    stages: tuple[StageEstimate, ...]
    direct_seconds: Span
    batch_seconds: Span
    tokenizers: dict[str, str]
    """How prompts were counted, by model."""
    prices: dict[str, Prices | None]
    pilot: str | None = None

    def total(self, field: str) -> Span:
        """A figure summed over the stages (``requests``, ``prompt_tokens``, ``cost``...)."""
        spans = [getattr(s, field) for s in self.stages]
        return (
            sum(s[0] for s in spans),
            sum(s[1] for s in spans),
            sum(s[2] for s in spans),
        )

    def format(self) -> str:
        """The estimate as a table, with every assumption it rests on."""
        lines = [
            f"{self.documents} documents -> {self.segments} segments reach the models"
            + (
                " (" + ", ".join(f"{k} dropped {v}" for k, v in self.filtered.items()) + ")"
                if self.filtered
                else ""
            ),
            "",
            f"{'stage':<20} {'items':>15} {'requests':>17} {'prompt tokens':>23} "
            f"{'completion tokens':>23} {'$ direct':>19} {'$ batch':>19}",
        ]
        for s in self.stages:
            lines.append(
                f"{s.stage:<20} {_fmt(s.items):>15} {_fmt(s.requests):>17} "
                f"{_fmt(s.prompt_tokens):>23} {_fmt(s.completion_tokens):>23} "
                f"{_money(s.cost):>19} {_money(s.batch_cost):>19}"
            )
        lines.append(
            f"{'total':<20} {'':>15} {_fmt(self.total('requests')):>17} "
            f"{_fmt(self.total('prompt_tokens')):>23} {_fmt(self.total('completion_tokens')):>23} "
            f"{_money(self.total('cost')):>19} {_money(self.total('batch_cost')):>19}"
        )
        lines += [
            "",
            "ranges are low-high (expected)",
            f"time, direct at the configured limits: {_duration(self.direct_seconds)}",
            f"time, batch mode (one round per model stage, plus repairs): "
            f"{_duration(self.batch_seconds)}",
            "",
            "assumptions"
            + (
                f" (measured by the pilot run {self.pilot} where marked pilot)"
                if self.pilot
                else ""
            )
            + ":",
        ]
        for s in self.stages:
            a = s.assumption
            parts = [f"passes {_rate(a.pass_rate)} of its items"]
            if s.model is not None:
                parts.insert(0, f"replies of {_fmt(a.output_tokens)} tokens")
                parts.append(f"{_rate(a.repairs)} extra requests per item (repairs, retries)")
                if a.prompt_tokens is not None:
                    parts.append(f"prompts of {_fmt(a.prompt_tokens)} tokens")
            lines.append(f"  {s.stage} [{a.source}]: " + "; ".join(parts))
        lines.append(
            f"  speed: {_fmt(tuple(1 / x for x in reversed(SECONDS_PER_OUTPUT_TOKEN)))} output "
            f"tokens/s, {SECONDS_PER_REQUEST[0]}-{SECONDS_PER_REQUEST[2]} s to the first token; "
            f"a batch returns in {_duration(BATCH_TURNAROUND)}"
        )
        lines.append("tokenizers: " + ", ".join(f"{m}: {t}" for m, t in self.tokenizers.items()))
        for model, price in self.prices.items():
            if price is None:
                lines.append(f"prices: {model}: not in litellm's table, counted as $0")
            else:
                lines.append(
                    f"prices: {model}: ${price.prompt * 1e6:.4g} / ${price.completion * 1e6:.4g} "
                    f"per million prompt / completion tokens; batch ${price.batch_prompt * 1e6:.4g}"
                    f" / ${price.batch_completion * 1e6:.4g} ({price.source})"
                )
        return "\n".join(lines)


def _fmt(span: Span | tuple[float, ...]) -> str:
    low, mid, high = (round(x) for x in span)
    return f"{low:,}" if low == high else f"{low:,}-{high:,} ({mid:,})"


def _money(span: Span) -> str:
    low, mid, high = span
    digits = 2 if high >= 1 else 4
    if round(low, digits) == round(high, digits):
        return f"{low:,.{digits}f}"
    return f"{low:,.{digits}f}-{high:,.{digits}f} ({mid:,.{digits}f})"


def _rate(span: Span) -> str:
    low, mid, high = span
    return f"{low:.3g}" if low == high else f"{low:.3g}-{high:.3g} ({mid:.3g})"


def _duration(span: Span) -> str:
    def one(seconds: float) -> str:
        if seconds < 90:
            return f"{seconds:.0f}s"
        if seconds < 5400:
            return f"{seconds / 60:.0f}m"
        return f"{seconds / 3600:.1f}h"

    return f"{one(span[0])}-{one(span[2])} ({one(span[1])})"


# ---------------------------------------------------------------------- counting


@attrs.define
class _Counter(Store):
    """A store that keeps nothing: it counts segments and the tokens of their prompts."""

    tokens: dict[str, TokenCounter]
    """Counter per model string."""
    exact_stages: list[Stage]
    """Model stages whose prompt a segment renders directly."""
    segments: int = 0
    source_tokens: dict[str, int] = attrs.field(factory=dict)
    prompt_tokens: dict[str, int] = attrs.field(factory=dict)
    _seen: set[str] = attrs.field(factory=set)
    _stats: dict[str, StageCounts] = attrs.field(factory=dict)

    def seen(self, item_id: str) -> str | None:
        return "duplicate" if item_id in self._seen else None

    def record(
        self,
        item_id: str,
        outputs: list[Any],
        rejections: list[Rejection],
        stats: ItemCounts,
    ) -> None:
        self._seen.add(item_id)
        stats.add_to(self._stats)
        for segment in outputs:
            self.segments += 1
            text = str(getattr(segment, "text", "") or "")
            for model, counter in self.tokens.items():
                self.source_tokens[model] = self.source_tokens.get(model, 0) + counter.count(text)
            for stage in list(self.exact_stages):
                count = self.tokens[stage.models()[0].model].count
                try:
                    messages = stage.prompt(segment)  # type: ignore[attr-defined]
                    total = sum(count(str(m.get("content") or "")) + 4 for m in messages)
                except Exception as exc:  # its prompt needs more than a segment: estimate it
                    log.warning("estimate: %s's prompt cannot be rendered (%s)", stage.name, exc)
                    self.exact_stages.remove(stage)
                    self.prompt_tokens.pop(stage.name, None)
                    continue
                self.prompt_tokens[stage.name] = self.prompt_tokens.get(stage.name, 0) + total

    def note_usage(self, session: UsageByStage) -> None:
        pass

    def total_usage(self) -> UsageByStage:
        return {}

    def stage_stats(self) -> dict[str, StageStats]:
        return as_stage_stats(self._stats)

    def counts(self) -> tuple[int, int]:
        return self.segments, 0


def _assumption_for(stage: Stage, chosen: Mapping[str, Assumption]) -> Assumption:
    """A stage's assumption: by its name, else by its prompt's name (``relevance``...)."""
    for key in (stage.name, getattr(stage, "prompt_name", None)):
        if key is not None and key in chosen:
            return chosen[key]
    return Assumption()


def _check_names(assumptions: Mapping[str, Assumption], stages: Iterable[Stage]) -> None:
    """Refuse an assumption that no stage would use (a typo would silently change nothing)."""
    names = {n for s in stages for n in (s.name, getattr(s, "prompt_name", None)) if n}
    unused = sorted(set(assumptions) - names)
    if unused:
        raise ValueError(
            f"no stage after the filters is named {', '.join(unused)}; "
            f"assumptions apply to: {', '.join(sorted(names))}"
        )


def _renders_segments(stage: Stage, segment_type: Any) -> bool:
    return hasattr(stage, "prompt") and accepts(stage.input_type, segment_type)


# ---------------------------------------------------------------------- calibration


def _wilson(passed: int, total: int) -> Span:
    """A 95% interval around a measured share (Wilson's), with the share itself in the middle."""
    p = passed / total
    z = 1.96
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, min(p, centre - half)), p, max(p, centre + half))


def _fan_out_interval(emitted: int, total: int) -> Span:
    """Items per item when a stage may emit several: a Poisson-like 95% interval."""
    mean = emitted / total
    half = 1.96 * math.sqrt(max(emitted, 1)) / total
    return (max(0.0, mean - half), mean, mean + half)


def _calibrate(
    run_dir: str | os.PathLike[str], stages: Iterable[Stage], base: Mapping[str, Assumption]
) -> dict[str, Assumption]:
    """Assumptions replaced by what a pilot run directory measured, stage by stage."""
    totals = read_totals(run_dir)
    found = dict(base)
    for stage in stages:
        measured = totals.stages.get(stage.name)
        if measured is None or measured.received == 0:
            continue
        models = {llm.model for llm in stage.models()}
        used = set(totals.usage.get(stage.name, {}))
        if models and used and not models & used:  # another teacher answers otherwise
            log.warning(
                "pilot %s: stage %s ran with %s, not %s; its measurements are not used",
                run_dir,
                stage.name,
                ", ".join(sorted(used)),
                ", ".join(sorted(models)),
            )
            continue
        n = measured.received
        passed = measured.emitted
        pass_rate = _wilson(passed, n) if passed <= n else _fan_out_interval(passed, n)
        old = _assumption_for(stage, found)
        update: dict[str, Any] = {"pass_rate": pass_rate, "source": "pilot"}
        for usage in totals.usage.get(stage.name, {}).values():
            calls = usage.requests - usage.retries + usage.cache_hits
            replies = usage.requests - usage.retries - usage.errors
            extra = max(0.0, calls / n - 1)
            update["repairs"] = (extra, extra, extra)
            if replies > 0 and usage.completion_tokens > 0:
                out = usage.completion_tokens / replies
                update["output_tokens"] = (out, out, out)
                prompt = usage.prompt_tokens / replies
                update["prompt_tokens"] = (prompt, prompt, prompt)
        found[stage.name] = attrs.evolve(old, **update)
    return found


# ---------------------------------------------------------------------- estimate


def estimate(
    stages: Iterable[Stage],
    items: Iterable[Any] | AsyncIterator[Any] | os.PathLike[str],
    *,
    pilot: str | os.PathLike[str] | None = None,
    assumptions: Mapping[str, Assumption] | None = None,
) -> Estimate:
    """Estimate running ``stages`` over ``items`` (texts, documents, or a corpus path).

    ``assumptions`` override :data:`GEM_ASSUMPTIONS` by stage or prompt name
    (``relevance``, ``extraction``, ``generation``, ``refinement``, ``judge``,
    ``rule_validator``); ``pilot``,
    a run directory of the same pipeline over part of the corpus, replaces
    them with its measurements. Sends no request.
    """
    return run_sync(aestimate(stages, items, pilot=pilot, assumptions=assumptions))


async def aestimate(
    stages: Iterable[Stage],
    items: Iterable[Any] | AsyncIterator[Any] | os.PathLike[str],
    *,
    pilot: str | os.PathLike[str] | None = None,
    assumptions: Mapping[str, Assumption] | None = None,
) -> Estimate:
    """The async form of :func:`estimate`."""
    stages = tuple(stages)
    first = next((i for i, s in enumerate(stages) if s.models()), len(stages))
    prefix, rest = stages[:first], stages[first:]
    llms: dict[str, LLM] = {llm.model: llm for s in rest for llm in s.models()}
    counters = {model: token_counter(model) for model in llms}
    segment_type = prefix[-1].output_types[0] if prefix else stages[0].input_type
    exact = [s for s in rest if s.models() and _renders_segments(s, segment_type)]
    _check_names(assumptions or {}, rest)
    store = _Counter(counters, exact)
    stream = items if hasattr(items, "__aiter__") else as_items(items, stages[0].input_type)
    stats = RunStats()
    options = RunOptions(max_in_flight=256, progress_interval=None, commit_interval=1.0)
    await run_items(prefix, stream, store, options, stats)  # type: ignore[arg-type]
    chosen = {**GEM_ASSUMPTIONS, **(assumptions or {})}
    chosen = {
        k: attrs.evolve(v, source="given") if k in (assumptions or {}) else v
        for k, v in chosen.items()
    }
    if pilot is not None:
        chosen = _calibrate(pilot, rest, chosen)
    segments = store.segments
    results: list[StageEstimate] = []
    flow: Span = (segments, segments, segments)
    previous_output: Span = (0.0, 0.0, 0.0)
    for stage in rest:
        assumption = _assumption_for(stage, chosen)
        models = stage.models()
        if not models:
            results.append(_passive(stage, flow, assumption))
        else:
            llm = models[0]
            if llm.max_tokens is not None:  # no reply is longer than the cap
                low, mid, high = (min(o, llm.max_tokens) for o in assumption.output_tokens)
                assumption = attrs.evolve(assumption, output_tokens=(low, mid, high))
            if assumption.prompt_tokens is not None:
                prompt = assumption.prompt_tokens
            elif stage.name in store.prompt_tokens and segments:
                mean = store.prompt_tokens[stage.name] / segments
                prompt = (mean, mean, mean)
            else:
                prompt = _built_prompt(stage, assumption, store, llm, previous_output)
            results.append(_active(stage, llm, flow, prompt, assumption))
            previous_output = tuple(  # type: ignore[assignment]
                o / max(1.0, p)
                for o, p in zip(assumption.output_tokens, assumption.pass_rate, strict=True)
            )
        flow = tuple(f * p for f, p in zip(flow, assumption.pass_rate, strict=True))  # type: ignore[assignment]
    filtered = {
        s.name: stage_stats.rejected
        for s in prefix
        if (stage_stats := store.stage_stats().get(s.name)) is not None and stage_stats.rejected
    }
    return Estimate(
        documents=stats.inputs - stats.duplicates,
        segments=segments,
        filtered=filtered,
        stages=tuple(results),
        direct_seconds=_direct_seconds(results, llms),
        batch_seconds=_batch_seconds(results),
        tokenizers={m: c.name for m, c in counters.items()},
        prices={m: prices(m) for m in llms},
        pilot=None if pilot is None else str(pilot),
    )


def _built_prompt(
    stage: Stage, assumption: Assumption, store: _Counter, llm: LLM, previous: Span
) -> Span:
    """Prompt tokens of a stage whose input no segment renders: template + what it reads."""
    name = getattr(stage, "prompt_name", None)
    count = store.tokens[llm.model].count
    template = count(load_prompt(name, getattr(stage, "template", None)).source) if name else 0
    source = store.source_tokens.get(llm.model, 0) / max(1, store.segments)
    base = template + (source if assumption.reads_source else 0.0)
    if not assumption.reads_previous:
        return (base, base, base)
    return (base + previous[0], base + previous[1], base + previous[2])


def _passive(stage: Stage, flow: Span, assumption: Assumption) -> StageEstimate:
    zero = (0.0, 0.0, 0.0)
    return StageEstimate(stage.name, None, flow, zero, zero, zero, zero, zero, assumption)


def _active(
    stage: Stage, llm: LLM, flow: Span, prompt: Span, assumption: Assumption
) -> StageEstimate:
    spans: dict[str, list[float]] = {k: [] for k in ("req", "in", "out", "cost", "batch")}
    price = prices(llm.model)
    for i in range(3):
        items, extra, out = flow[i], assumption.repairs[i], assumption.output_tokens[i]
        requests = items * (1 + extra)
        prompt_tokens = items * prompt[i]
        if assumption.prompt_tokens is None:  # repairs resend the prompt with the reply
            prompt_tokens += items * extra * (prompt[i] + out + REPAIR_OVERHEAD)
        else:
            prompt_tokens = requests * prompt[i]
        completion = requests * out
        spans["req"].append(requests)
        spans["in"].append(prompt_tokens)
        spans["out"].append(completion)
        spans["cost"].append(price.cost(int(prompt_tokens), int(completion)) if price else 0.0)
        spans["batch"].append(
            price.cost(int(prompt_tokens), int(completion), batch=True) if price else 0.0
        )

    def span(key: str) -> Span:
        low, mid, high = spans[key]
        return (low, mid, high)

    return StageEstimate(
        stage.name,
        llm.model,
        flow,
        span("req"),
        span("in"),
        span("out"),
        span("cost"),
        span("batch"),
        assumption,
    )


def _direct_seconds(results: list[StageEstimate], llms: Mapping[str, LLM]) -> Span:
    """The busiest model's time: concurrency x latency, requests per minute, tokens per minute."""
    per_model: dict[str, list[float]] = {}
    for i in range(3):
        for model, llm in llms.items():
            mine = [s for s in results if s.model == model]
            requests = sum(s.requests[i] for s in mine)
            tokens = sum(s.prompt_tokens[i] + s.completion_tokens[i] for s in mine)
            busy = sum(
                s.requests[i]
                * (
                    SECONDS_PER_REQUEST[i]
                    + s.assumption.output_tokens[i] * SECONDS_PER_OUTPUT_TOKEN[i]
                )
                for s in mine
            )
            limits = llm.limits
            seconds = busy / max(1, limits.max_concurrency)
            if limits.rpm:
                seconds = max(seconds, requests * 60 / limits.rpm)
            if limits.tpm:
                seconds = max(seconds, tokens * 60 / limits.tpm)
            per_model.setdefault(model, []).append(seconds)
    if not per_model:
        return (0.0, 0.0, 0.0)
    low, mid, high = (max(v[i] for v in per_model.values()) for i in range(3))
    return (low, mid, high)


def _batch_seconds(results: list[StageEstimate]) -> Span:
    """One round per model stage, and one more for the repairs of the slowest."""
    rounds = sum(1 for s in results if s.model is not None and s.requests[2] > 0)
    repairs = any(s.assumption.repairs[2] > 0 for s in results if s.model is not None) and rounds
    low = rounds * BATCH_TURNAROUND[0]
    mid = rounds * BATCH_TURNAROUND[1]
    high = (rounds + repairs) * BATCH_TURNAROUND[2]
    return (low, mid, high)
