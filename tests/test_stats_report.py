"""Dataset statistics, the text and HTML reports, and deduplication."""

from __future__ import annotations

import html.parser

from gemlib import Document, Message, ModelUsage, Pipeline, RunStats, StageStats, Trajectory
from gemlib.dedup import Deduplicate, find_duplicates
from gemlib.report import format_costs, html_report, text_report
from gemlib.stats import Distribution, dataset_stats, tool_kind
from test_model import OPENAI_RECORD


def _trajectory(labels: dict[str, object] | None = None) -> Trajectory:
    t = Trajectory.from_openai(OPENAI_RECORD)
    return t.model_copy(update={"labels": labels or {}})


def test_distribution_summaries() -> None:
    d = Distribution.of([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert (d.mean, d.median, d.p90, d.max) == (5.5, 5.5, 9, 10)
    assert Distribution.of([]) == Distribution()


def test_dataset_stats_count_what_the_paper_reports() -> None:
    labelled = _trajectory(
        {
            "domains": ["shopping", "finance"],
            "platform": "computer",
            "task": "ecommerce_and_retail",
            "patterns": ["clarification"],
        }
    )
    stats = dataset_stats([labelled, _trajectory()], count_tokens=True)
    assert stats.trajectories == 2
    assert stats.messages.mean == 9
    assert stats.user_turns.max == 2
    assert stats.distinct_tools_used.median == 2
    assert stats.tool_calls.mean == 2
    assert stats.tokens.mean > 30
    assert stats.calls_per_tool == {"get_order": 2, "cancel_order": 2}
    assert stats.call_kinds == {"read": 2, "write": 2}
    assert stats.domains == {"shopping": 1, "finance": 1}
    assert stats.platforms == {"computer": 1}
    assert stats.patterns == {"clarification": 1}
    assert "tool_calls" in stats.format()


def test_tool_kinds() -> None:
    assert [
        tool_kind(n)
        for n in ("get_order", "listFiles", "cancel_order", "GorillaFS.mkdir", "frobnicate")
    ] == ["read", "read", "write", "write", "unknown"]


def _run_stats() -> RunStats:
    return RunStats(
        inputs=10,
        outputs=4,
        rejections=6,
        wall_seconds=3.5,
        stages={
            "relevance_filter": StageStats(
                received=10, emitted=5, rejected=5, rejections_by_rule={"not_procedural": 5}
            ),
            "llm_judge": StageStats(
                received=5, emitted=4, rejected=1, rejections_by_rule={"context_hallucination": 1}
            ),
        },
        usage={
            "relevance_filter": {
                "openai/small": ModelUsage(
                    requests=10, prompt_tokens=8000, completion_tokens=400, cost=0.02
                )
            },
            "llm_judge": {
                "openai/big": ModelUsage(
                    requests=5, cache_hits=1, prompt_tokens=20000, completion_tokens=100, cost=0.2
                )
            },
        },
    )


def test_costs_per_kept_trajectory() -> None:
    table = format_costs(_run_stats())
    assert "relevance_filter       openai/small" in table
    relevance = next(line for line in table.splitlines() if line.startswith("relevance_filter"))
    assert relevance.split()[-2:] == ["2100", "0.00500"]  # 8400 tokens and $0.02 over 4 kept
    total = table.splitlines()[-1].split()
    assert total[-4:] == ["28500", "0.2200", "7125", "0.05500"]
    # Usage counts every session of a resumed run: per kept divides by the whole run's
    # trajectories, and a run that kept none says so instead of dividing by one.
    assert format_costs(_run_stats(), kept=2).splitlines()[-1].split()[-2:] == ["14250", "0.11000"]
    assert format_costs(_run_stats(), kept=0).splitlines()[-1].split()[-2:] == ["-", "-"]


def test_text_and_html_reports() -> None:
    dataset = dataset_stats([_trajectory({"domains": ["shopping"]})], count_tokens=False)
    text = text_report(_run_stats(), dataset)
    for heading in ("== funnel ==", "== models ==", "== kept trajectories =="):
        assert heading in text
    page = html_report(dataset, _run_stats(), title="A <run> & more")
    assert page.startswith("<!doctype html>")
    assert "<title>A &lt;run&gt; &amp; more</title>" in page
    assert "http" not in page, "self-contained: nothing fetched"
    assert page.count("<svg") == 4  # the funnel and three distributions
    parser = html.parser.HTMLParser()
    parser.feed(page)  # well formed enough to parse


def test_exact_and_near_duplicates() -> None:
    base = (
        "Open the Northwind app, sign in with your email and password, open Orders, pick the "
        "order with the item, choose Return, pick a reason and a refund method, then print "
        "the prepaid label and drop the parcel at a partner post office within fourteen days."
    )
    near = base.replace("fourteen", "fifteen")
    other = "A short history of the printing press in Europe, from Mainz to Venice and beyond."
    found = list(
        find_duplicates([("a", base), ("b", base.upper() + "  "), ("c", near), ("d", other)])
    )
    assert [(d.item_id, d.duplicate_of) for d in found] == [("b", "a"), ("c", "a")]
    assert found[0].similarity == 1.0
    assert 0.8 <= found[1].similarity < 1.0
    assert list(find_duplicates([("a", base), ("c", near)], threshold=0.99)) == []


def test_deduplicate_stage_on_documents_and_trajectories() -> None:
    docs = [
        Document(id="x", text="Open the app and tap go, then confirm the order please now."),
        Document(id="y", text="open the app and TAP go, then confirm the order please now!"),
    ]
    result = Pipeline([Deduplicate()]).run(docs)
    assert [d.id for d in result.outputs] == ["x"]
    assert result.rejections[0].rule == "duplicate"
    assert "repeats x" in result.rejections[0].reason
    t = _trajectory()
    other = t.model_copy(update={"id": "copy"})
    different = t.model_copy(
        update={
            "id": "d",
            "messages": (
                Message(role="user", content="Something else entirely, about trains and tickets."),
                Message(role="assistant", content="Sure."),
            ),
        }
    )
    kept = Pipeline([Deduplicate()]).run([t, other, different]).outputs
    assert [x.id for x in kept] == [t.id, "d"]
