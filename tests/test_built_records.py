"""The tag parser builds its records without validating them (``model._base.built_valid``).

What it builds must be exactly what validating the same fields gives: the same values
of the same types, in the same field order, with the same ``model_fields_set`` (which
``model_dump(exclude_unset=True)`` and ``model_copy`` read). And input that validating
refused is still refused, with the same error.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from gemlib import Document, Message, Provenance, StageRecord, Tool, ToolCall
from gemlib.errors import ParseError
from gemlib.formats import gem_tags
from gemlib.gem.extraction import WorkflowExtractor
from gemlib.gem.generation import TrajectoryGenerator
from gemlib.llm import LLM, ScriptedBackend
from gemlib.model import Trajectory, Workflow
from gemlib.model._base import _Model, built_valid, copied
from teacher import EXTRACTION, GENERATION, REFINEMENT, THOUGHT


def assert_identical(built: Any, validated: Any) -> None:
    """``built`` and ``validated`` hold the same values of the same types, records alike."""
    assert type(built) is type(validated)
    if isinstance(built, BaseModel):
        assert built.model_fields_set == validated.model_fields_set
        assert list(built.__dict__) == list(validated.__dict__)
        assert built.__pydantic_extra__ == validated.__pydantic_extra__
        assert built.__pydantic_private__ == validated.__pydantic_private__
        for name, value in built.__dict__.items():
            assert_identical(value, validated.__dict__[name])
        assert built == validated
        assert repr(built) == repr(validated)
        assert built.model_dump(exclude_unset=True) == validated.model_dump(exclude_unset=True)
    elif isinstance(built, (tuple, list)):
        assert len(built) == len(validated)
        for a, b in zip(built, validated, strict=True):
            assert_identical(a, b)
    elif isinstance(built, dict):
        assert list(built) == list(validated)
        for key, value in built.items():
            assert_identical(value, validated[key])
    else:
        assert built == validated


GIVEN = {  # the fields the parser has always given each role (model_dump(exclude_unset=True))
    "system": {"role", "content"},
    "user": {"role", "content"},
    "assistant": {"role", "content", "tool_calls", "reasoning"},
    "tool": {"role", "content"},
}


def assert_parsed(message: Message) -> None:
    """``message`` is the record validating its fields gives, and the parser gave them."""
    assert_identical(message, validated(message))
    linked = {"tool_call_id", "name"} if message.tool_call_id is not None else set()
    assert message.model_fields_set == GIVEN[message.role] | linked
    for call in message.tool_calls:
        assert call.model_fields_set == {"id", "name", "arguments"}


def validated(record: Message | ToolCall) -> Message | ToolCall:
    """``record`` built again by validating the fields it was given."""
    given = {name: getattr(record, name) for name in record.model_fields_set}
    if isinstance(record, ToolCall):
        return ToolCall(**given)
    if "tool_calls" in given:
        given["tool_calls"] = tuple(validated(call) for call in given["tool_calls"])
    return Message(**given)


CALL = ToolCall(id="c1", name="get_order", arguments={"order_id": "NW-1"})
TOOL = Tool(name="get_order", description="Read an order.")


@pytest.mark.parametrize(
    ("cls", "values"),
    [
        (Message, {"role": "user", "content": "hi"}),
        (Message, {"role": "system", "content": "", "tools": (TOOL,)}),
        (Message, {"role": "assistant", "content": "x", "tool_calls": (CALL,), "reasoning": ""}),
        (Message, {"role": "assistant", "content": "", "tool_calls": (), "reasoning": "why"}),
        (Message, {"role": "assistant", "content": "no", "train": False}),
        (Message, {"role": "tool", "content": "{}", "tool_call_id": "c1", "name": "get_order"}),
        (Message, {"role": "tool", "content": "{}"}),
        (ToolCall, {"id": "c1", "name": "f", "arguments": {"a": [1, {"b": None}], "c": 1.5}}),
        (ToolCall, {"name": "f", "arguments": {}}),
    ],
)
def test_a_built_record_is_the_validated_one(cls: type[Any], values: dict[str, Any]) -> None:
    assert_identical(built_valid(cls, **values), cls(**values))


def parses(text: str) -> bool:
    """Whether ``text`` is a conversation (the canned replies hold deliberate faults too)."""
    try:
        gem_tags.parse_conversation(text)
    except ParseError:
        return False
    return True


REPLIES = [
    *(text for text in GENERATION.values() if parses(text)),
    *(
        text.replace("<assistant>", f"<assistant><think>{THOUGHT}</think>")
        for text in GENERATION.values()
        if parses(text)
    ),
    "<user>Hi</user><assistant>Words only.</assistant>",
    '<user>Hi</user><assistant>Let me look. <func>{"name": "f", "arguments": "{\\"a\\": 1}"}</func>'
    " and <tool_call>{'name': 'g', 'parameters': {'b': True,}}</tool_call></assistant>"
    "<tool>one</tool><tool>two</tool><tool>none left</tool>",
    '<user>Hi</user>\n<assistant>\n <FUNC a="1">{"name": "f", "arguments": {"a": [1]}}</func >\n'
    '</Assistant>\n<tool x="y"> r </tool><user><func>{"name": "g"}</func></user>',
]


@pytest.mark.parametrize("text", REPLIES)
@pytest.mark.parametrize("exact", [False, True])
def test_parsed_conversations_hold_the_validated_records(text: str, exact: bool) -> None:
    messages = gem_tags.parse_conversation(text, lambda n: f"id-{n}", exact=exact)
    assert any(m.tool_calls for m in messages) or "Words only" in text
    for message in messages:
        assert_parsed(message)


@pytest.mark.parametrize("text", list(REFINEMENT.values()))
def test_refined_conversations_hold_the_validated_records(text: str) -> None:
    _, messages = gem_tags.parse_refined(text)
    for message in messages:
        assert_parsed(message)


def test_what_validating_refused_is_still_refused() -> None:
    python_keys = (
        "<user>Hi</user><assistant><func>{'name': 'f', 'arguments': {1: 2}}</func></assistant>"
    )
    with pytest.raises(ValidationError, match=r"arguments\.1\.\[key\]"):
        gem_tags.parse_conversation(python_keys)
    call = '<user>Hi</user><assistant><func>{"name": "f", "arguments": {}}</func></assistant>'
    with pytest.raises(ValidationError, match="id\n  Input should be a valid string"):
        gem_tags.parse_conversation(call, lambda n: n)  # type: ignore[arg-type,return-value]


@pytest.mark.parametrize("name", sorted(set(EXTRACTION) & set(GENERATION)))
def test_generated_trajectories_are_the_validated_records(name: str) -> None:
    llm = LLM("openai/t", backend=ScriptedBackend(lambda r: ""), cache=False)
    doc = Document(id="d", text="t", meta={"labels": {"domains": ["shopping"]}})
    workflow = WorkflowExtractor(llm).parse(EXTRACTION[name], doc)[0]
    assert isinstance(workflow, Workflow)
    try:
        trajectory = TrajectoryGenerator(llm).parse(GENERATION[name], workflow)
    except ParseError:
        return  # a canned reply with a deliberate fault
    given = {field: getattr(trajectory, field) for field in trajectory.model_fields_set}
    assert_identical(trajectory, Trajectory(**given))
    assert trajectory.labels == workflow.labels == {"domains": ["shopping"]}
    assert trajectory.labels is not workflow.labels  # copied, as validating copies it


@pytest.mark.parametrize("name", sorted(EXTRACTION))
@pytest.mark.parametrize("meta", [{}, {"labels": {"domains": ["shopping"], "task": "t"}}])
def test_extracted_workflows_are_the_validated_records(name: str, meta: dict[str, Any]) -> None:
    llm = LLM("openai/t", backend=ScriptedBackend(lambda r: ""), cache=False)
    doc = Document(id="d", text="t", meta=meta)
    try:
        workflows = WorkflowExtractor(llm).parse(EXTRACTION[name], doc)
    except ParseError:
        return  # a canned reply with a deliberate fault
    for workflow in workflows:
        if isinstance(workflow, Workflow):
            given = {field: getattr(workflow, field) for field in workflow.model_fields_set}
            assert_identical(workflow, Workflow(**given))
            assert workflow.labels == meta.get("labels", {})
            assert workflow.labels is not meta.get("labels")  # copied, as validating copies it


@pytest.mark.parametrize("labels", [["a"], {1: "a"}, "x"])
def test_labels_validating_refuses_are_still_refused(labels: Any) -> None:
    llm = LLM("openai/t", backend=ScriptedBackend(lambda r: ""), cache=False)
    doc = Document(id="d", text="t", meta={"labels": labels})
    with pytest.raises(ValidationError, match="labels"):
        WorkflowExtractor(llm).parse(EXTRACTION["Northwind"], doc)


def _records(cls: type[_Model]) -> list[type[_Model]]:
    return [cls, *(record for sub in cls.__subclasses__() for record in _records(sub))]


def test_records_are_made_by_object_new() -> None:
    # built_valid and copied call object.__new__ without looking the class's up
    records = _records(_Model)
    assert {Message, ToolCall, Document} <= set(records)
    for record in records:
        assert record.__new__ is object.__new__, record


class _WithPrivate(_Model):
    text: str
    _cache: dict[str, int] = PrivateAttr(default_factory=dict)


class _WithExtra(_Model):
    model_config = ConfigDict(extra="allow")
    text: str


@pytest.mark.parametrize(
    ("record", "update"),
    [
        (Provenance(document_id="d", segment_index=2), {"stages": (StageRecord(stage="s"),)}),
        (Document(id="x", text="t"), {"provenance": Provenance(document_id="x")}),
        (Document(text="t", meta={"a": 1}), {"meta": {}, "parent_id": "p"}),
        (Message(role="user", content="hi"), {}),
        (_WithPrivate(text="t"), {"text": "u"}),
        (_WithExtra(text="t", more=1), {"text": "u"}),
    ],
)
def test_a_copied_record_is_what_model_copy_makes(record: Any, update: dict[str, Any]) -> None:
    made = copied(record, **update)
    assert_identical(made, record.model_copy(update=update))
    assert made is not record
    assert made.model_dump_json() == record.model_copy(update=update).model_dump_json()


def test_records_built_alike_share_a_fields_set_that_copies_never_change() -> None:
    # frozen records built with the same field names share one model_fields_set (fewer
    # objects for the garbage collector); pydantic copies it before updating a copy's
    first = built_valid(Message, role="user", content="a")
    second = built_valid(Message, role="user", content="b")
    assert first.model_fields_set is second.model_fields_set
    changed = first.model_copy(update={"name": "x", "content": "c"})
    assert changed.model_fields_set == {"role", "content", "name"}
    deep = first.model_copy(update={"train": True}, deep=True)
    assert deep.model_fields_set == {"role", "content", "train"}
    same = copied(second, content="d")  # no new field set: the set is shared again
    assert same.model_fields_set is second.model_fields_set
    grown = copied(second, name="n")
    assert grown.model_fields_set == {"role", "content", "name"}
    for record in (first, second, same):
        assert record.model_fields_set == {"role", "content"}
    assert built_valid(Message, role="user", content="e").model_fields_set == {"role", "content"}


class _Unfrozen(_Model):
    model_config = ConfigDict(frozen=False)

    text: str = ""


def test_records_of_an_unfrozen_subclass_keep_their_own_fields_set() -> None:
    # assignment adds to a record's own set: it must not reach another record's
    first = built_valid(_Unfrozen, text="a")
    second = built_valid(_Unfrozen, text="b")
    assert first.model_fields_set is not second.model_fields_set
    first.text = "c"
    assert copied(second, text="d").model_fields_set is not second.model_fields_set
    assert second.model_fields_set == {"text"}
