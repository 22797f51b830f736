"""The data model: stable IDs, provenance, and the OpenAI chat round trip."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from gemlib import (
    Document,
    FormatError,
    Message,
    Provenance,
    StageRecord,
    Tool,
    ToolCall,
    Trajectory,
)
from gemlib.formats.chat import from_chat, to_chat

OPENAI_RECORD = {
    "messages": [
        {"role": "system", "content": "You are a store assistant. Confirm before cancelling."},
        {"role": "user", "content": "Cancel order W123 please, it came late."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_order", "arguments": '{"order_id": "W123"}'},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_1",
            "name": "get_order",
            "content": '{"order_id": "W123", "status": "pending"}',
        },
        {"role": "assistant", "content": "Order W123 is pending. Shall I cancel it?"},
        {"role": "user", "content": "Yes."},
        {
            "role": "assistant",
            "content": "Cancelling now.",
            "tool_calls": [
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {
                        "name": "cancel_order",
                        "arguments": '{"order_id": "W123", "reasons": ["late"]}',
                    },
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_2",
            "name": "cancel_order",
            "content": '{"status": "cancelled"}',
        },
        {"role": "assistant", "content": "Done: W123 is cancelled."},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_order",
                "description": "Read an order.",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}},
                    "required": ["order_id"],
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "cancel_order",
                "description": "Cancel an order.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "order_id": {"type": "string"},
                        "reasons": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["order_id"],
                },
            },
        },
    ],
}


def test_document_id_is_stable_and_derived_from_text() -> None:
    a, b, c = Document(text="step 1"), Document(text="step 1"), Document(text="step 2")
    assert a.id == b.id != c.id
    assert a.id.startswith("doc-")
    assert Document(id="given", text="x").id == "given"
    segment = Document(text="part", parent_id=a.id, segment_index=0)
    assert segment.document_id == a.id


def test_openai_round_trip_is_exact() -> None:
    trajectory = from_chat(OPENAI_RECORD)
    assert to_chat(trajectory) == OPENAI_RECORD
    assert from_chat(to_chat(trajectory)) == trajectory
    calls = trajectory.tool_calls
    assert [c.name for c in calls] == ["get_order", "cancel_order"]
    assert calls[1].arguments == {"order_id": "W123", "reasons": ["late"]}
    assert trajectory.messages[3].tool_call_id == "call_1"


def test_trajectory_id_is_stable_and_content_derived() -> None:
    first = from_chat(OPENAI_RECORD)
    second = from_chat(json.loads(json.dumps(OPENAI_RECORD)))
    assert first.id == second.id
    changed = json.loads(json.dumps(OPENAI_RECORD))
    changed["messages"][1]["content"] = "Cancel order W124 please."
    assert from_chat(changed).id != first.id
    assert from_chat(OPENAI_RECORD, id="mine").id == "mine"


def test_missing_call_ids_get_stable_ids_and_replies_link_in_order() -> None:
    record = {
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"function": {"name": "a", "arguments": {}}},
                    {"function": {"name": "b", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "content": "1"},
            {"role": "tool", "content": "2"},
        ]
    }
    t1, t2 = from_chat(record), from_chat(record)
    ids = [c.id for c in t1.tool_calls]
    assert ids == [c.id for c in t2.tool_calls]
    assert len(set(ids)) == 2
    assert [m.tool_call_id for m in t1.messages[2:]] == ids
    assert [m.name for m in t1.messages[2:]] == ["a", "b"]


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ([{"role": "wizard", "content": "x"}], "messages[0]: unknown role 'wizard'"),
        (
            [
                {
                    "role": "assistant",
                    "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}],
                }
            ],
            "messages[0]: tool call 0.0 (f): arguments are not valid JSON",
        ),
        (
            [
                {
                    "role": "assistant",
                    "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}],
                }
            ],
            "arguments must be a JSON object",
        ),
        (
            [{"role": "user", "content": "x"}, {"role": "tool", "content": "r"}],
            "messages[1]: a tool message without tool_call_id",
        ),
        (["not a message"], "messages[0]: expected an object"),
    ],
)
def test_unreadable_openai_records_name_the_message(messages: list[object], problem: str) -> None:
    with pytest.raises(
        FormatError, match=problem.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        from_chat({"messages": messages})


def test_a_bad_tool_in_a_record_is_named() -> None:
    with pytest.raises(FormatError, match=r"tools\[1\]: tool 'x y'"):
        from_chat({"messages": [], "tools": [{"name": "ok"}, {"name": "x y"}]})


def test_messages_check_role_specific_fields() -> None:
    with pytest.raises(ValidationError, match="cannot carry tool calls"):
        Message(role="user", content="x", tool_calls=(ToolCall(name="f"),))
    with pytest.raises(ValidationError, match="cannot answer a tool call"):
        Message(role="assistant", tool_call_id="c1")


def test_provenance_records_stage_history_and_serialises() -> None:
    prov = Provenance(document_id="doc-1", workflow_index=2)
    prov = prov.add(StageRecord(stage="extract", model="m", prompt_hash="h", usage={"tokens": 5}))
    prov = prov.add(StageRecord(stage="generate"))
    assert prov.stage == "generate"
    assert Provenance.model_validate_json(prov.model_dump_json()) == prov
    tool = Tool.from_any({"name": "f"})
    traj = Trajectory(tools=(tool,), messages=(Message(role="user", content="x"),), provenance=prov)
    assert traj.document_id == "doc-1"
    assert Trajectory.model_validate_json(traj.model_dump_json()) == traj
