"""A commit writes the run's totals from plain figures, not from pydantic records.

The per-stage counts are kept as :class:`StageCounts` and the usage as plain dicts;
what reaches the progress database must be what dumping the ``StageStats`` and
``ModelUsage`` records (merged the old way) gave: the same keys in the same order,
the same values of the same types, so the same JSON.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gemlib import Document, Pipeline, Rejection, StageStats
from gemlib.llm import LLM, ScriptedBackend
from gemlib.llm.usage import ModelUsage, UsageByStage, merge_usage
from gemlib.pipeline import stage
from gemlib.pipeline.accounting import StageCounts, add_counts, merge_stats
from gemlib.pipeline.store import usage_figures
from gemlib.stages.llm_stage import LLMStage

counts = st.integers(min_value=0, max_value=10**12)
seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False) | st.just(-0.0)
rules = st.dictionaries(st.text(max_size=8), st.integers(min_value=1, max_value=10**6), max_size=3)
names = st.sampled_from(["segmenter", "relevance_filter", "llm_judge", "ünïcode"])


def _counts(r: int, e: int, j: int, x: int, b: dict[str, int], s: float) -> StageCounts:
    c = StageCounts()
    c.received, c.emitted, c.rejected, c.errors, c.seconds = r, e, j, x, s
    c.rejections_by_rule.update(b)
    return c


stage_counts = st.builds(_counts, counts, counts, counts, counts, rules, seconds)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(names, stage_counts, max_size=4), max_size=5))
def test_stage_totals_dump_as_the_stage_stats_did(commits: list[dict[str, StageCounts]]) -> None:
    old: dict[str, StageStats] = {}
    new: dict[str, StageCounts] = {}
    for part in commits:
        merge_stats(old, part)
        add_counts(new, part)
        want = json.dumps({k: v.model_dump() for k, v in old.items()})
        assert json.dumps({k: v.figures() for k, v in new.items()}) == want
    # read back as the store does: the committed StageStats, added into plain counts
    again: dict[str, StageCounts] = {}
    add_counts(again, old)
    assert {k: v.figures() for k, v in again.items()} == {k: v.model_dump() for k, v in old.items()}


ledgers = st.builds(
    ModelUsage,
    requests=counts,
    cache_hits=counts,
    retries=counts,
    errors=counts,
    prompt_tokens=counts,
    completion_tokens=counts,
    reasoning_tokens=counts,
    cost=seconds,
    batched=counts,
)
usages = st.dictionaries(names, st.dictionaries(st.sampled_from(["a/m", "b/m", "c"]), ledgers))


@settings(max_examples=60, deadline=None)
@given(usages, st.lists(usages, max_size=4))
def test_usage_totals_dump_as_the_merged_ledgers_did(
    prior: UsageByStage, sessions: list[UsageByStage]
) -> None:
    prior_figures = usage_figures({}, prior)
    for session in sessions:
        total: UsageByStage = {}
        merge_usage(total, prior)
        merge_usage(total, session)
        want = {s: {m: u.model_dump() for m, u in ms.items()} for s, ms in total.items()}
        got = usage_figures(prior_figures, session)
        assert json.dumps(got) == json.dumps(want)
        assert got == want
    assert usage_figures(prior_figures, {}) == usage_figures({}, prior)  # prior unchanged


class Label(LLMStage):
    def prompt(self, doc: Document) -> list[dict[str, str]]:
        return [{"role": "user", "content": doc.text}]

    def parse(self, text: str, doc: Document) -> Document:
        return doc.model_copy(update={"meta": {"label": text}})


def _kv(run_dir: Path) -> dict[str, Any]:
    with sqlite3.connect(run_dir / "progress.sqlite") as db:
        return {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM kv")}


def test_a_run_in_two_sessions_commits_the_sum_of_both(tmp_path: Path) -> None:
    llm = LLM("openai/teacher", backend=ScriptedBackend(lambda request: "ok"), cache=False)
    pipeline = Pipeline([Label(llm)])
    pipeline.run(["a", "b"], run_dir=tmp_path, progress_interval=None)
    first = _kv(tmp_path)
    usage = first["usage"]["label"]["openai/teacher"]
    assert list(usage) == list(ModelUsage.model_fields)
    assert usage["requests"] == 2
    assert first["stage_stats"]["label"]["received"] == 2
    pipeline.run(["a", "b", "c", "d", "e"], run_dir=tmp_path, progress_interval=None)
    second = _kv(tmp_path)
    assert second["usage"]["label"]["openai/teacher"]["requests"] == 5
    assert second["usage"]["label"]["openai/teacher"]["prompt_tokens"] > usage["prompt_tokens"]
    assert second["stage_stats"]["label"]["received"] == 5
    assert list(second["stage_stats"]["label"]) == list(StageStats.model_fields)


def _split(doc: Document) -> list[Document | Rejection]:
    if "bad" in doc.text:
        raise ValueError("the item's own fault")
    if "odd" in doc.text:
        return [Rejection(rule="odd", reason="odd one"), doc]
    return [doc, doc.model_copy(update={"id": f"{doc.id}.1"})]


def _check(doc: Document) -> Document | Rejection:
    return Rejection(rule="short", reason="too short") if len(doc.text) < 4 else doc


def test_memory_and_directory_runs_count_alike(tmp_path: Path) -> None:
    pipeline = Pipeline([stage(_split), stage(_check)])
    texts = ["plain text", "odd", "bad", "abc", "longer text"]
    counted = []
    for run_dir in (None, tmp_path / "r"):
        stats = pipeline.run(texts, run_dir=run_dir, progress_interval=None).stats
        stages = {name: s.model_dump(exclude={"seconds"}) for name, s in stats.stages.items()}
        counted.append(stages)
    assert counted[0] == counted[1]
    assert counted[0]["_split"] == {
        "received": 5,
        "emitted": 7,
        "rejected": 2,
        "errors": 1,
        "rejections_by_rule": {"odd": 1, "exception": 1},
    }
    assert counted[0]["_check"] == {
        "received": 7,
        "emitted": 4,
        "rejected": 3,
        "errors": 0,
        "rejections_by_rule": {"short": 3},
    }
