"""Dataset statistics, the text and HTML reports, and deduplication."""

from __future__ import annotations

import html.parser
import json
import re
import subprocess
import sys
from pathlib import Path

from gemlib import (
    Document,
    Message,
    ModelUsage,
    Pipeline,
    Rejection,
    RunStats,
    Stage,
    StageStats,
    Tool,
    ToolCall,
    Trajectory,
)
from gemlib.analysis.report import format_costs, html_report, text_report
from gemlib.analysis.stats import Distribution, dataset_stats, tool_kind
from gemlib.analysis.summary import load_summary
from gemlib.formats.chat import from_chat
from gemlib.pipeline.rundir import read_trajectories
from gemlib.stages.dedup import Deduplicate, find_duplicates
from test_model import OPENAI_RECORD


def _trajectory(labels: dict[str, object] | None = None) -> Trajectory:
    t = from_chat(OPENAI_RECORD)
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
    assert total[-5:] == ["28500", "0", "0.2200", "7125", "0.05500"]  # 0: no reasoning tokens
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
    assert not re.search(r"(src|href)=|https?:|url\(", page), "self-contained: nothing fetched"
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


# --------------------------------------------------------------------------- run reports


class _Zeta(Stage):
    """First in the pipeline, last in the alphabet: drops texts that mention 'skip'."""

    name = "zeta_screen"

    def process(self, doc: Document) -> Document | Rejection:
        if "skip" in doc.text:
            return Rejection(rule="says_skip", reason=f"the text says skip: {doc.text}")
        return doc


class _Alpha(Stage):
    """Second in the pipeline: turns a text into a one-call trajectory, or drops it."""

    name = "alpha_writer"

    def process(self, doc: Document) -> Trajectory | Rejection:
        if "short" in doc.text:
            return Rejection(rule="too_short", reason=f"only {len(doc.text)} characters")
        calls = doc.text.count("call") or 1
        messages = [Message(role="user", content=doc.text)]
        for n in range(calls):
            messages += [
                Message(
                    role="assistant",
                    tool_calls=(ToolCall(id=f"c{n}", name="get_thing", arguments={"n": n}),),
                ),
                Message(role="tool", tool_call_id=f"c{n}", name="get_thing", content="{}"),
            ]
        messages.append(Message(role="assistant", content="Done."))
        return Trajectory(messages=tuple(messages), tools=(Tool(name="get_thing"),))


def _run_dir(tmp_path: Path) -> Path:
    texts = [f"call {'call ' * (i % 5)}number {i}" for i in range(12)]
    texts += [
        "please skip this one",
        "skip me too",
        "short",
        "short again",
        "short third",
        "short 4",
    ]
    run = tmp_path / "run"
    Pipeline([_Zeta(), _Alpha()]).run(texts, run_dir=run, progress_interval=None)
    return run


def test_a_run_directory_reports_its_funnel_in_pipeline_order(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    summary = load_summary(run)
    # The manifest lists zeta_screen first; the stored stats are alphabetical.
    assert list(summary.stats.stages) == ["zeta_screen", "alpha_writer"]
    assert (summary.stats.inputs, summary.stats.outputs, summary.stats.rejections) == (18, 12, 6)
    assert [len(v) for v in summary.examples.values()] == [2, 3], "a few examples per rule"
    assert summary.examples[("alpha_writer", "too_short")][0].reason == "only 5 characters"

    text = text_report(summary.stats, examples=summary.examples)
    funnel = text.split("== funnel ==")[1]
    assert funnel.index("zeta_screen") < funnel.index("alpha_writer")
    assert "alpha_writer                  16      12         4  too_short 4" in funnel
    assert "zeta_screen/says_skip:" in text
    assert "the text says skip: skip me too" in text


def test_the_html_report_has_reasons_examples_axes_counts_and_the_paper(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    summary = load_summary(run)
    dataset = dataset_stats(read_trajectories(run), count_tokens=False)
    page = html_report(dataset, summary.stats, examples=summary.examples)
    funnel = page[page.index("<h2>Funnel</h2>") : page.index("<h2>Example rejections</h2>")]
    assert funnel.index("zeta_screen") < funnel.index("alpha_writer")
    assert "too_short 4" in funnel
    assert "says_skip 2" in funnel
    assert "only 5 characters" in page
    # Tool calls per trajectory are 1..4 (once 5 calls): the histogram labels each value on
    # its x axis, names both axes, and writes each bar's count over it.
    svg = page[page.index('aria-label="tool calls per trajectory"') :]
    svg = svg[: svg.index("</svg>")]
    ticks = re.findall(r'class="tick"[^>]*>([^<]*)<', svg)
    counts = re.findall(r'class="count"[^>]*>([^<]*)<', svg)
    assert ticks == ["1", "2", "3", "4", "5"]
    assert [int(c) for c in counts] == [3, 3, 2, 2, 2]
    assert ">trajectories<" in svg
    assert ">tool calls per trajectory<" in svg
    assert "46.1" in page
    assert "8.6" in page
    assert "16.3" in page
    assert "Content-Security-Policy" in page


def test_stats_counts_tokens_without_importing_litellm(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    script = (
        "import sys\nfrom gemlib.cli import main\n"
        f"code = main(['stats', {str(run)!r}])\n"
        "assert 'litellm' not in sys.modules, 'stats imported litellm'\nsys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "zeta_screen" in done.stdout
    assert "== beside the GEM paper ==" in done.stdout
    assert "tokens counted with cl100k_base" in done.stdout


def test_the_token_count_agrees_with_litellms() -> None:
    from gemlib.llm.backends.litellm import import_litellm

    litellm = import_litellm()
    trajectory = _trajectory()
    stats = dataset_stats([trajectory], count_tokens=True)
    assert stats.tokens_counted_with == "cl100k_base"
    text = "\n".join(
        m.content + "".join(json.dumps(c.arguments) for c in m.tool_calls)
        for m in trajectory.messages
    )
    theirs = litellm.token_counter(model="gpt-4", text=text)
    assert abs(stats.tokens.mean - theirs) <= max(3, theirs * 0.01)
    assert dataset_stats([trajectory], count_tokens=False).tokens_counted_with.startswith(
        "estimate"
    )


def test_a_damaged_manifest_gives_a_report_or_one_line(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    manifest = run / "manifest.json"
    for broken in (
        {"stages": 5, "last_session": "x"},
        {"stages": [1, {"config": [2]}, {"name": "zeta_screen", "config": "m"}]},
        {"last_session": {"stats": {"inputs": "many"}}},
    ):
        manifest.write_text(json.dumps(broken))
        summary = load_summary(run)
        assert summary.stats.outputs == 12, "the counts come from the committed totals"
        assert set(summary.stats.stages) == {"zeta_screen", "alpha_writer"}
        assert summary.models() == {}
    manifest.write_text("[1, 2]")
    done = subprocess.run(
        [sys.executable, "-m", "gemlib.cli", "stats", str(run), "--fast"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "does not hold a JSON object" in done.stderr


def test_a_partitioned_run_is_summed_over_its_partitions(tmp_path: Path) -> None:
    from gemlib.pipeline.rundir import RunDir

    root = tmp_path / "root"
    halves = (["call one", "short a", "skip this"], ["call call two", "call three", "short b"])
    for index, texts in enumerate(halves):
        Pipeline([_Zeta(), _Alpha()]).run(
            texts, run_dir=RunDir(root).partition(index).path, progress_interval=None
        )
    summary = load_summary(root)
    assert list(summary.stats.stages) == ["zeta_screen", "alpha_writer"]
    assert (summary.stats.inputs, summary.stats.outputs, summary.stats.rejections) == (6, 3, 3)
    assert summary.stats.stages["alpha_writer"].rejections_by_rule == {"too_short": 2}
    assert len(summary.examples[("alpha_writer", "too_short")]) == 2
    done = subprocess.run(
        [sys.executable, "-m", "gemlib.cli", "stats", str(root), "--fast"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^alpha_writer +5 +3 +2  too_short 2$", done.stdout, re.M), done.stdout
    assert "3 trajectories" in done.stdout
