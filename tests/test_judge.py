"""The LLM judge through the loopback server: strict parsing, rubrics, rejections."""

from __future__ import annotations

import pytest

from fake_openai import FakeOpenAI, Reply
from gemlib import Message, Pipeline, Tool, ToolCall, Trajectory
from gemlib.gem.judge import LLMJudge
from gemlib.llm import LLM

TRAJECTORY = Trajectory(
    tools=(
        Tool.from_any(
            {"name": "get_order", "parameters": {"properties": {"id": {"type": "string"}}}}
        ),
    ),
    messages=(
        Message(role="user", content="Where is order W1?"),
        Message(
            role="assistant",
            tool_calls=(ToolCall(id="c", name="get_order", arguments={"id": "W1"}),),
        ),
        Message(role="tool", content='{"status": "shipped"}', tool_call_id="c", name="get_order"),
        Message(role="assistant", content="It has shipped."),
    ),
)


def judge_with(*replies: str, **options: object) -> tuple[list, list, FakeOpenAI]:  # type: ignore[type-arg]
    server = FakeOpenAI(lambda body, n: Reply(replies[min(n, len(replies) - 1)])).start()
    try:
        llm = LLM("openai/judge", api_base=server.url, api_key="k", cache=False)
        result = Pipeline([LLMJudge(llm, **options)]).run([TRAJECTORY])  # type: ignore[arg-type]
        return result.outputs, result.rejections, server
    finally:
        server.stop()


def test_passing_grades_keep_the_trajectory_with_labels() -> None:
    outputs, rejections, server = judge_with('{"R1": 1, "R2": 1, "R3": 1}')
    assert outputs[0].labels["judge"] == {"R1": 1, "R2": 1, "R3": 1}
    assert not rejections
    prompt = server.requests[0]["messages"][0]["content"]
    assert '<func>{"name": "get_order", "arguments": {"id": "W1"}}</func>' in prompt


def test_failed_rubrics_are_named() -> None:
    outputs, rejections, _ = judge_with(
        'Verdict: {"R1": 0, "R2": 1, "R3": 0, "reasons": {"R1": "W1 was invented"}}'
    )
    assert not outputs
    (rejection,) = rejections
    assert rejection.rule == "tool_call_hallucination"
    assert rejection.reason == (
        "the judge failed R1 tool_call_hallucination: W1 was invented; R3 context_hallucination"
    )
    assert rejection.detail == {"grades": {"R1": 0, "R2": 1, "R3": 0}, "failed": ["R1", "R3"]}


def test_only_required_rubrics_count() -> None:
    outputs, rejections, _ = judge_with('{"R1": 1, "R2": 0, "R3": 1}', require=["R1", "R3"])
    assert len(outputs) == 1
    assert not rejections
    with pytest.raises(ValueError, match="require names rubrics"):
        LLMJudge("openai/x", require=["R4"])


@pytest.mark.parametrize(
    "malformed",
    [
        '{"R1": 1, "R2": 1}',
        '{"R1": 2, "R2": 1, "R3": 1}',
        '{"R1": "1", "R2": 1, "R3": 1}',
        '{"R1": true, "R2": 1, "R3": 1}',
        "all good!",
        '{"R1": 1, "R2": 1, "R3": 1, "R4": 0}',
    ],
)
def test_malformed_or_partial_replies_are_repaired_then_rejected(malformed: str) -> None:
    outputs, rejections, server = judge_with(malformed)
    assert not outputs
    assert rejections[0].rule == "unparseable_reply"
    assert rejections[0].raw == malformed
    assert len(server.requests) == 3  # the reply and two repairs


def test_a_repaired_reply_is_used() -> None:
    outputs, _rejections, server = judge_with('{"R1": 1}', '{"R1": 1, "R2": 1, "R3": 1}')
    assert len(outputs) == 1
    assert "R2: Field required" in server.requests[1]["messages"][-1]["content"]
