"""The four GEM stages and Pipeline.gem, driven through the loopback server by a teacher."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI, Reply
from gemlib import Document, Pipeline, Trajectory, Workflow, read_corpus
from gemlib.errors import RunAborted
from gemlib.gem.extraction import WorkflowExtractor
from gemlib.gem.relevance import RelevanceFilter
from gemlib.llm import LLM
from teacher import teacher_reply

EXAMPLES = Path(__file__).parents[1] / "examples" / "corpus" / "gem_examples.jsonl"
CHOSEN = (
    "return-online-order",
    "calendar-meeting",
    "history-printing",
    "smart-thermostat",
    "bank-transfer",
)


@pytest.fixture
def teacher() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(teacher_reply) as server:
        yield server


def _llm(server: FakeOpenAI, **options: Any) -> LLM:
    return LLM(
        "openai/teacher",
        api_base=server.url,
        api_key="k",
        cache=False,
        backoff_base=0.01,
        **options,
    )


def _docs() -> list[Document]:
    return [d for d in read_corpus(EXAMPLES) if d.id in CHOSEN]


def test_gem_preset_end_to_end(teacher: FakeOpenAI, tmp_path: Path) -> None:
    pipe = Pipeline.gem(_llm(teacher))
    result = pipe.run(_docs(), run_dir=tmp_path / "run")

    assert result.stats.funnel() == [
        ("segmenter", 5, 5, 0),
        ("relevance_filter", 5, 4, 1),
        ("workflow_extractor", 4, 4, 1),
        ("trajectory_generator", 4, 3, 1),
        ("complexity_refiner", 3, 3, 0),
        ("rule_validator", 3, 2, 1),
        ("llm_judge", 2, 1, 1),
    ]
    rejections = {(r.stage, r.rule, r.document_id) for r in result.rejections}
    assert rejections == {
        ("relevance_filter", "not_procedural", "history-printing"),
        ("workflow_extractor", "invalid_tool", "calendar-meeting"),
        ("trajectory_generator", "unparseable_reply", "bank-transfer"),
        ("rule_validator", "ungrounded_argument", "smart-thermostat"),
        ("llm_judge", "capability_hallucination", "calendar-meeting"),
    }
    assert {r.item_id for r in result.rejections if r.stage != "rule_validator"} >= {
        "history-printing:0",
        "calendar-meeting:0/w1",
        "bank-transfer:0/w0",
    }
    invented = next(r for r in result.rejections if r.stage == "rule_validator")
    rules = [p["rule"] for p in invented.detail["problems"]]
    assert rules == ["ungrounded_argument", "changed_value"], "the invented ID T-13 is caught twice"
    assert "thermostat_id='T-13'" in invented.reason
    judged = next(r for r in result.rejections if r.stage == "llm_judge")
    assert "R2 capability_hallucination: it booked a room without asking" in judged.reason
    unparseable = next(r for r in result.rejections if r.rule == "unparseable_reply")
    assert "<func> at line 3, column 18: not valid JSON" in unparseable.reason
    assert unparseable.raw is not None
    assert "send_transfer" in unparseable.raw
    invalid = next(r for r in result.rejections if r.rule == "invalid_tool")
    assert "tool 'cancel_event': unknown type 'banana'" in invalid.reason

    (northwind,) = result.trajectories
    assert northwind.document_id == "return-online-order"
    assert northwind.labels["judge"] == {"R1": 1, "R2": 1, "R3": 1}
    assert northwind.labels["domains"] == ["shopping"]
    assert northwind.labels["task"] == "ecommerce_and_retail"
    assert "find_post_office" in {t.name for t in northwind.tools}, "refinement added a tool"
    assert northwind.document is not None
    assert "Northwind" in northwind.document.text
    stages = [s.stage for s in northwind.provenance.stages]  # type: ignore[union-attr]
    assert stages == [
        "relevance_filter",
        "workflow_extractor",
        "trajectory_generator",
        "complexity_refiner",
        "llm_judge",
    ]
    for record in northwind.provenance.stages:  # type: ignore[union-attr]
        assert record.model == "openai/teacher"
        assert record.prompt_hash
        assert record.usage["requests"] >= 1
    assert northwind.provenance.workflow_index == 0  # type: ignore[union-attr]

    # Every tool reply is linked to the call it answers, in order.
    for trajectory in result.trajectories:
        pending: list[str] = []
        for message in trajectory.messages:
            if message.role == "assistant":
                pending = [c.id for c in message.tool_calls]
                assert len(message.tool_calls) <= 1, "refined: one call per assistant turn"
            elif message.role == "tool":
                assert message.tool_call_id == pending.pop(0)
    assert len(teacher.requests) == 22
    assert result.usage["trajectory_generator"]["openai/teacher"].requests == 7
    assert result.usage["llm_judge"]["openai/teacher"].requests == 2


def test_stable_ids_across_runs(teacher: FakeOpenAI) -> None:
    first = Pipeline.gem(_llm(teacher)).run(_docs())
    second = Pipeline.gem(_llm(teacher)).run(_docs())
    assert sorted(t.id for t in first.trajectories) == sorted(t.id for t in second.trajectories)
    calls = lambda r: sorted(c.id for t in r.trajectories for c in t.tool_calls)  # noqa: E731
    assert calls(first) == calls(second)


def test_repair_loop_fixes_a_broken_func(teacher: FakeOpenAI) -> None:
    docs = [d for d in _docs() if d.id == "smart-thermostat"]
    result = Pipeline.gem(_llm(teacher), refine=False, validate=False, judge=False).run(docs)
    (trajectory,) = result.trajectories
    assert [c.name for c in trajectory.tool_calls] == [
        "list_thermostats",
        "get_schedule",
        "set_schedule",
    ]
    repairs = [r for r in teacher.requests if len(r["messages"]) > 1]
    assert len(repairs) == 1
    assert "<func> at line 5, column 18: not valid JSON" in repairs[0]["messages"][-1]["content"]


def test_refinement_enforces_one_call_per_turn_through_repair(teacher: FakeOpenAI) -> None:
    docs = [d for d in _docs() if d.id == "smart-thermostat"]
    result = Pipeline.gem(_llm(teacher), validate=False, judge=False).run(docs)
    (trajectory,) = result.trajectories
    assert all(len(m.tool_calls) <= 1 for m in trajectory.messages)
    refinement_repairs = [
        r
        for r in teacher.requests
        if len(r["messages"]) > 1 and r["messages"][0]["content"].startswith("Rewrite")
    ]
    assert "makes 2 tool calls; exactly one" in refinement_repairs[0]["messages"][-1]["content"]


def test_refinement_can_allow_several_calls(teacher: FakeOpenAI) -> None:
    docs = [d for d in _docs() if d.id == "smart-thermostat"]
    result = Pipeline.gem(_llm(teacher), one_call_per_turn=False, validate=False, judge=False).run(
        docs
    )
    (trajectory,) = result.trajectories
    assert max(len(m.tool_calls) for m in trajectory.messages) == 2


def test_skipping_refinement_ends_after_generation(teacher: FakeOpenAI) -> None:
    pipe = Pipeline.gem(_llm(teacher), refine=False, validate=False, judge=False)
    assert [s.name for s in pipe.stages][-1] == "trajectory_generator"
    result = pipe.run(_docs())
    assert len(result.trajectories) == 3
    assert not any(r["messages"][0]["content"].startswith("Rewrite") for r in teacher.requests)


def test_unknown_labels_map_to_other_and_are_kept(teacher: FakeOpenAI) -> None:
    docs = [d for d in _docs() if d.id == "bank-transfer"]
    labelled = Pipeline([RelevanceFilter(_llm(teacher))]).run(docs).outputs[0]
    assert labelled.meta["labels"]["platform"] == "other"
    assert labelled.meta["labels"]["unknown_labels"] == ["web browser"]


def test_per_stage_models_share_llms_by_name(teacher: FakeOpenAI) -> None:
    pipe = Pipeline.gem(
        "openai/big",
        stage_models={"relevance": "openai/small"},
        api_base=teacher.url,
        api_key="k",
        cache=False,
    )
    models = {s.name: s.model for s in pipe.stages if hasattr(s, "model")}
    assert models["relevance_filter"].model == "openai/small"
    assert models["workflow_extractor"] is models["trajectory_generator"]
    with pytest.raises(ValueError, match="unknown stage keys"):
        Pipeline.gem("openai/big", stage_models={"judging": "x"})


def test_extraction_rejects_workflows_naming_undefined_tools(tmp_path: Path) -> None:
    reply = """<workflow><description>ok</description><execution_graph>(a)->(b)</execution_graph>
<actions>[{"name": "a", "arguments": {}}]</actions>
<tools>[{"name": "a"}, {"name": "b"}]</tools></workflow>
<workflow><description>graph names c</description><execution_graph>(a)->(c)</execution_graph>
<tools>[{"name": "a"}]</tools></workflow>
<workflow><description>actions call d</description><actions>[{"name": "d"}]</actions>
<tools>[{"name": "a"}]</tools></workflow>
<workflow><description>twice</description><tools>[{"name": "a"}, {"name": "a"}]</tools></workflow>
<workflow><description>none</description><tools>[]</tools></workflow>"""
    with FakeOpenAI(lambda body, n: Reply(reply)) as server:
        result = Pipeline([WorkflowExtractor(_llm(server))]).run(["Open the app and tap go."])
    (workflow,) = result.outputs
    assert isinstance(workflow, Workflow)
    assert [t.name for t in workflow.tools] == ["a", "b"]
    assert [r.rule for r in result.rejections] == [
        "unknown_tool_in_graph",
        "unknown_tool_in_actions",
        "duplicate_tool",
        "no_tools",
    ]
    assert result.rejections[0].item_id.endswith("/w1")


def test_corpus_text_with_template_syntax_goes_through_untouched(tmp_path: Path) -> None:
    hostile = (
        "Open the app. {{ 7 * 7 }} {% for x in range(3) %}loop{% endfor %} "
        "{{ ''.__class__.__mro__ }} Then tap Save."
    )
    with FakeOpenAI(
        lambda body, n: Reply(
            "<multi_step>True</multi_step><summary>s</summary><domain>games</domain>"
            "<platform>phone</platform><task>gaming_entertainment</task>"
        )
    ) as server:
        result = Pipeline([RelevanceFilter(_llm(server))]).run([hostile])
        prompt = server.requests[0]["messages"][0]["content"]
    assert hostile in prompt, "the text must reach the model verbatim"
    assert "49" not in prompt
    assert "loop" not in prompt.replace(hostile, "")
    assert result.outputs[0].text == hostile


def test_templates_can_be_overridden_by_string_or_path(tmp_path: Path) -> None:
    reply = (
        "<multi_step>True</multi_step><summary>s</summary><domain>games</domain>"
        "<platform>phone</platform><task>gaming_entertainment</task>"
    )
    path = tmp_path / "mine.j2"
    path.write_text("FILE TEMPLATE: {{ text }}")
    with FakeOpenAI(lambda body, n: Reply(reply)) as server:
        by_string = RelevanceFilter(_llm(server), template="CUSTOM: {{ text | upper }}")
        by_path = RelevanceFilter(_llm(server), template=path)
        Pipeline([by_string]).run(["open the app"])
        Pipeline([by_path]).run(["open the app"])
        prompts = [r["messages"][0]["content"] for r in server.requests]
    assert prompts == ["CUSTOM: OPEN THE APP", "FILE TEMPLATE: open the app"]
    assert by_string.prompt_hash() != by_path.prompt_hash()


def test_user_templates_render_in_the_sandbox(teacher: FakeOpenAI) -> None:
    unsafe = "{{ text.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(RunAborted, match=r"unsafe|__class__"):  # the template's fault: it stops
        Pipeline([RelevanceFilter(_llm(teacher), template=unsafe)]).run(["open the app"])
    assert not teacher.requests, "nothing is sent when the template is refused"


def test_changing_a_prompt_changes_the_run_fingerprint(teacher: FakeOpenAI) -> None:
    a = Pipeline([RelevanceFilter(_llm(teacher))])
    b = Pipeline([RelevanceFilter(_llm(teacher), template="{{ text }}")])
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == Pipeline([RelevanceFilter(_llm(teacher))]).fingerprint()


def test_trajectories_round_trip_through_json(teacher: FakeOpenAI) -> None:
    result = Pipeline.gem(_llm(teacher)).run(_docs())
    for trajectory in result.trajectories:
        assert Trajectory.model_validate_json(trajectory.model_dump_json()) == trajectory
