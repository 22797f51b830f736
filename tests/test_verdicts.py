"""Turn-level verdicts: keep whole, mask bad assistant turns, or reject; the yield both ways."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from gemlib import Document, Message, Pipeline, Problem, Rejection, Tool, ToolCall, Trajectory
from gemlib.formats import read_jsonl, write_jsonl
from gemlib.llm import LLM
from gemlib.stages.validators import TurnValidator
from gemlib.validation.verdicts import TurnPolicy, blamed_turn
from teacher import teacher_reply
from test_formats import JSONL_FORMATS

EXAMPLES = Path(__file__).parents[1] / "examples" / "corpus" / "gem_examples.jsonl"
CHOSEN = ("return-online-order", "calendar-meeting", "smart-thermostat")


def _trajectory() -> Trajectory:
    tool = Tool.from_any(
        {
            "name": "get_order_details",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        }
    )
    order = {"order_id": "W1", "status": "pending"}
    messages = [Message(role="user", content="Where is order W1?")]
    for n, status in enumerate(("pending", "shipped")):
        call = ToolCall(id=f"c{n}", name="get_order_details", arguments={"order_id": "W1"})
        messages += [
            Message(role="assistant", tool_calls=(call,)),
            Message(
                role="tool",
                content=json.dumps({**order, "status": status}),
                tool_call_id=call.id,
                name=call.name,
            ),
            Message(role="assistant", content=f"It is {status}."),
        ]
        if n == 0:
            messages.append(Message(role="user", content="Check again, please."))
    return Trajectory(tools=(tool,), messages=tuple(messages))


def test_problems_are_blamed_on_assistant_turns() -> None:
    t = _trajectory()
    assert blamed_turn(t, Problem(rule="x", message_index=1, text="")) == 1
    assert blamed_turn(t, Problem(rule="x", message_index=6, text="")) == 7  # a tool reply
    assert blamed_turn(t, Problem(rule="x", message_index=0, text="")) is None
    assert blamed_turn(t, Problem(rule="x", text="")) is None


def test_a_state_contradiction_masks_the_turn_that_reads_it() -> None:
    t = _trajectory()
    out = TurnValidator().process(t)
    assert isinstance(out, Trajectory)
    assert [i for i, m in enumerate(out.messages) if not m.train] == [7]
    assert out.labels["masked"] == {"7": ["state_ledger"]}
    assert out.messages[7].content == "It is shipped."  # kept as context
    whole = TurnValidator(policy=TurnPolicy(max_masked=0)).process(t)
    assert isinstance(whole, Rejection)
    assert whole.rule == "state_ledger"


def test_structural_problems_and_too_many_masks_reject() -> None:
    t = _trajectory()
    policy = TurnPolicy()
    broken = [Problem(rule="turn_order", message_index=1, text="bad order")]
    assert policy.decide(t, broken).decision == "reject"
    every = [Problem(rule="x", message_index=i, text="") for i in (1, 3, 5, 7)]
    assert policy.decide(t, every).decision == "reject"
    assert TurnPolicy(max_masked=1.0).decide(t, every).decision == "reject"  # nothing left
    assert policy.decide(t, every[:2]).masked == (1, 3)
    assert policy.decide(t, []).decision == "keep"
    with pytest.raises(ValueError, match="share"):
        TurnPolicy(max_masked=2)


@pytest.fixture
def teacher() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(teacher_reply) as server:
        yield server


def _run(
    server: FakeOpenAI, **options: object
) -> tuple[list[Trajectory], list[tuple[str, int, int, int]], int]:
    from gemlib import read_corpus

    llm = LLM("openai/teacher", api_base=server.url, api_key="k", cache=False, backoff_base=0.01)
    docs: list[Document] = [d for d in read_corpus(EXAMPLES) if d.id in CHOSEN]
    before = len(server.requests)
    result = Pipeline.gem(llm, **options).run(docs)  # type: ignore[arg-type]
    return list(result.outputs), result.stats.funnel(), len(server.requests) - before


def _trainable(trajectories: list[Trajectory]) -> int:
    return sum(m.role == "assistant" and m.train for t in trajectories for m in t.messages)


def test_turn_masking_keeps_more_training_turns_per_request(
    teacher: FakeOpenAI, tmp_path: Path
) -> None:
    whole, whole_funnel, whole_requests = _run(teacher)
    masked, masked_funnel, masked_requests = _run(teacher, turn_policy=TurnPolicy())
    assert masked_requests == whole_requests + 1  # the thermostat trajectory is judged too
    assert whole_funnel[-2:] == [("rule_validator", 3, 2, 1), ("llm_judge", 2, 1, 1)]
    assert masked_funnel[-2:] == [("turn_validator", 3, 3, 0), ("turn_judge", 3, 3, 0)]
    assert _trainable(masked) / masked_requests > _trainable(whole) / whole_requests
    flagged = {t.provenance.document_id: t.labels.get("masked") for t in masked if t.provenance}
    assert flagged["calendar-meeting"] == {"6": ["capability_hallucination"]}
    assert flagged["smart-thermostat"] == {
        "8": ["ungrounded_argument", "changed_value", "tool_call_hallucination"]
    }
    # no masked turn is ever exported as trainable, in any format
    masked_texts = {
        json.dumps([c.arguments for c in m.tool_calls]) + m.content
        for t in masked
        for m in t.messages
        if not m.train
    }
    for name in JSONL_FORMATS:
        out = tmp_path / f"{name}.jsonl"
        write_jsonl(masked, out, name)
        for back in read_jsonl(out, name):
            for m in back.messages:
                if m.role == "assistant" and m.train:
                    assert json.dumps([c.arguments for c in m.tool_calls]) + m.content not in (
                        masked_texts
                    ), name
