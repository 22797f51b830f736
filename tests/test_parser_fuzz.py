"""Fuzzing every public parser: on any input it returns or raises a gemlib error, nothing else.

Inputs are valid records of each format with parts replaced by arbitrary JSON,
arbitrary JSON on its own, token soup for the text formats, and deep nesting.
Thousands of examples per parser, bounded in time; faults tier (``nox -s faults``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gemlib import Tool, Trajectory, read_corpus
from gemlib.errors import GemlibError
from gemlib.formats import bfcl, gem_tags, hermes, openai, read_trajectories, sharegpt
from gemlib.formats.chat import from_chat, to_chat
from gemlib.formats.hf import _row, from_row
from gemlib.model import Message, ToolCall
from gemlib.model.tool_schema import normalize_parameters, normalize_schema
from gemlib.validation import default_checks, validate

pytestmark = pytest.mark.faults

EXAMPLES = 2000
FILE_EXAMPLES = 400  # each writes a file and reads it back
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

KEYS = [
    "messages", "tools", "metadata", "role", "content", "tool_calls", "function", "name",
    "arguments", "id", "type", "parameters", "properties", "required", "items", "conversations",
    "from", "value", "system", "text", "tool_call_id", "labels", "provenance", "document",
    "output_schemas", "inputSchema", "input_schema", "response", "description", "anyOf", "enum",
    "pattern", "$ref", "additionalProperties", "patternProperties", "reasoning_content",
    "document_id", "stages", "train",
]  # fmt: skip
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["user", "assistant", "tool", "system", "object", "string", "{}", "[]"])
)
JSON = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=15,
)

SAMPLE = Trajectory(
    id="traj-1",
    tools=(
        Tool.from_any(
            {
                "name": "cancel",
                "description": "Cancel an order.",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string", "pattern": "^W\\d+$"}},
                    "required": ["order_id"],
                },
            }
        ),
    ),
    messages=(
        Message(role="system", content="You are a shop assistant."),
        Message(role="user", content="Cancel W1"),
        Message(
            role="assistant",
            tool_calls=(ToolCall(id="c1", name="cancel", arguments={"order_id": "W1"}),),
        ),
        Message(role="tool", content='{"ok": true}', tool_call_id="c1", name="cancel"),
        Message(role="assistant", content="Done."),
    ),
    labels={"domain": "shopping"},
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(copy[path[0]], path[1:], new)
    return copy


@st.composite
def mutated(draw: st.DrawFn, record: dict[str, Any]) -> Any:
    """``record`` with one to three parts (a key's value, a list item, the whole) replaced."""
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(record)))
        record = _replace(record, path, draw(JSON))
    return record


def _expanded(record: dict[str, Any]) -> dict[str, Any]:
    """A record whose JSON-string fields are objects, so mutations reach inside them."""
    out = dict(record)
    for key in ("metadata", "tools"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


TAGS = [
    "<system>", "</system>", "<user>", "</user>", "<assistant>", "</assistant>", "<tool>",
    "</tool>", "<func>", "</func>", "<toolsets>", "</toolsets>", "<workflow>", "</workflow>",
    "<tools>", "</tools>", "<actions>", "</actions>", "<description>", "</description>",
    "<multi_step>", "</multi_step>", "<think>", "</think>", "<tool_call>", "</tool_call>",
    "<|im_start|>", "<|im_end|>", "system\n", "assistant\n", "user\n", "# Tools\n\n",
    "<tool_response>\n", "\n</tool_response>", '{"name": "cancel", "arguments": ',
    '"arguments"', "{", "}", "[", "]", '"', "'", ",", ":", "(", ")", "\n", " ", "True", "a",
    "1", "```", "\\", "=",
]  # fmt: skip
TEXT = st.lists(st.sampled_from(TAGS) | st.text(max_size=4), max_size=40).map("".join)


def _only_gemlib_errors(parse: Callable[[Any], Any], value: Any) -> None:
    try:
        result = parse(value)
        if hasattr(result, "__next__"):
            list(result)
    except GemlibError:
        pass


def _splice(text: str) -> st.SearchStrategy[str]:
    """``text`` with a few cuts and insertions of tags or arbitrary text."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        out = text
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(out)))
            cut = draw(st.integers(0, 20))
            out = out[:at] + draw(TEXT) + out[at + cut :]
        return out

    return build()


def _validated(record: Any) -> Any:
    from pydantic import ValidationError

    try:
        return Trajectory.model_validate(record)
    except ValidationError:
        return None


RECORD_PARSERS: dict[str, tuple[Callable[[Any], Any], dict[str, Any]]] = {
    "from_chat": (from_chat, to_chat(SAMPLE)),
    "openai.load": (openai.load, _expanded(openai.dump(SAMPLE))),
    "sharegpt.load": (sharegpt.load, _expanded(sharegpt.dump(SAMPLE))),
    "hermes.load": (hermes.load, hermes.dump(SAMPLE)),
    "gem_tags.load": (gem_tags.load, gem_tags.dump(SAMPLE)),
    "hf.from_row": (from_row, _row(SAMPLE)),
    # pydantic's own ValidationError is this one's contract
    "Trajectory.model_validate": (_validated, SAMPLE.model_dump(mode="json")),
    "Tool.from_any": (Tool.from_any, SAMPLE.tools[0].to_openai()),
    "normalize_parameters": (
        lambda schema: normalize_parameters(schema, "t"),
        SAMPLE.tools[0].parameters,
    ),
    "normalize_schema": (lambda schema: normalize_schema(schema, "t"), SAMPLE.tools[0].parameters),
}


def test_record_parsers_raise_only_gemlib_errors() -> None:
    """Each input goes to every record parser: generating inputs is the slow part."""
    parsers = [parse for parse, _ in RECORD_PARSERS.values()]
    samples = [valid for _, valid in RECORD_PARSERS.values()]

    @FUZZ
    @given(st.sampled_from(samples).flatmap(mutated) | JSON)
    def check(record: Any) -> None:
        for parse in parsers:
            _only_gemlib_errors(parse, record)

    check()


TEXT_PARSERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "gem_tags.parse_conversation": (
        gem_tags.parse_conversation,
        gem_tags.render_conversation(SAMPLE.messages),
    ),
    "gem_tags.parse_refined": (gem_tags.parse_refined, gem_tags.dump(SAMPLE)["text"]),
    "gem_tags.parse_workflows": (
        gem_tags.parse_workflows,
        "<workflow><description>Cancel</description><steps>1. ask</steps>"
        '<actions>[{"name": "cancel", "arguments": {"order_id": "W1"}}]</actions>'
        '<tools>[{"name": "cancel", "parameters": {}}]</tools></workflow>',
    ),
    "gem_tags.parse_relevance": (
        gem_tags.parse_relevance,
        "<multi_step>True</multi_step><summary>s</summary><domain>d</domain>",
    ),
    "gem_tags.loads_lenient": (
        lambda text: gem_tags.loads_lenient(text, "here"),
        "{'a': [1, 2,], \"b\": True}",
    ),
    "gem_tags.graph_tool_names": (gem_tags.graph_tool_names, "(login)->(search, cart)"),
    "hermes.load(text)": (lambda text: hermes.load({"text": text}), hermes.dump(SAMPLE)["text"]),
    "bfcl.parse_call_string": (
        lambda text: bfcl.parse_call_string(text, SAMPLE.tools[0]),
        "cancel('W1', reason=['late', {'n': 1.5}])",
    ),
    "Tool.from_any(text)": (Tool.from_any, json.dumps(SAMPLE.tools[0].to_openai())),
}


def test_text_parsers_raise_only_gemlib_errors() -> None:
    parsers = [parse for parse, _ in TEXT_PARSERS.values()]
    samples = [valid for _, valid in TEXT_PARSERS.values()]

    @FUZZ
    @given(st.sampled_from(samples).flatmap(_splice) | TEXT | st.text(max_size=60))
    def check(text: str) -> None:
        for parse in parsers:
            _only_gemlib_errors(parse, text)

    check()


DEEP = [
    "[" * 3000 + "]" * 3000,
    '{"a":' * 3000 + "1" + "}" * 3000,
    "(" * 3000 + ")" * 3000,
]


@pytest.mark.parametrize("text", DEEP, ids=["list", "object", "parens"])
def test_deep_nesting_in_every_text_parser(text: str) -> None:
    for parse, valid in TEXT_PARSERS.values():
        _only_gemlib_errors(parse, text)
        _only_gemlib_errors(parse, valid[: len(valid) // 2] + text + valid[len(valid) // 2 :])


@st.composite
def jsonl_bytes(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            lines.append(json.dumps(draw(JSON)).encode())
        elif choice == 1:
            lines.append(json.dumps(draw(mutated(openai.dump(SAMPLE)))).encode())
        elif choice == 2:
            lines.append(draw(st.binary(max_size=30)))
        else:
            lines.append(draw(st.sampled_from(DEEP)).encode())
    ending = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return bom + ending.join(lines)


def test_read_trajectories_and_validate_never_crash(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    checks = default_checks(grounding=True)

    @settings(FUZZ, max_examples=FILE_EXAMPLES)
    @given(jsonl_bytes())
    def check(data: bytes) -> None:
        path = folder / "data.jsonl"
        path.write_bytes(data)
        errors: list[GemlibError] = []
        for trajectory in read_trajectories(path, on_error=errors.append):
            validate(trajectory, checks)

    check()


def test_read_corpus_never_crashes(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("corpus")
    gemlib_log = logging.getLogger("gemlib")
    gemlib_log.setLevel(logging.CRITICAL)  # the warnings are expected here

    @settings(FUZZ, max_examples=FILE_EXAMPLES)
    @given(
        st.sampled_from([".jsonl", ".csv", ".tsv", ".md"]), jsonl_bytes() | st.binary(max_size=200)
    )
    def check(suffix: str, data: bytes) -> None:
        path = folder / f"corpus{suffix}"
        path.write_bytes(data)
        for document in read_corpus(path):
            document.model_dump_json().encode("utf-8")  # storable: no lone surrogates

    try:
        check()
    finally:
        gemlib_log.setLevel(logging.NOTSET)


def test_fuzz_inputs_are_real(tmp_path: Path) -> None:
    """The valid samples the fuzzers mutate parse as they are (so mutations start from sense)."""
    for name, (parse, valid) in RECORD_PARSERS.items():
        assert parse(valid) is not None, name
    for name, (parse, valid) in TEXT_PARSERS.items():
        assert parse(valid) is not None, name
