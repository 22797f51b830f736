"""Malformed trajectory records: every public parser raises a gemlib error, nothing else.

Each case below raised ``TypeError``, ``AttributeError``, ``KeyError``,
``RecursionError`` or a bare pydantic ``ValidationError`` before (checked);
``test_parser_fuzz.py`` searches for more with hypothesis in the faults tier.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gemlib import Tool, Trajectory
from gemlib.errors import FormatError, GemlibError
from gemlib.formats import bfcl, gem_tags, hermes, openai, read_trajectories, sharegpt
from gemlib.formats.chat import from_chat
from gemlib.formats.hf import from_dataset
from test_cli import _gemlib

DEEP = 5000


def _nested_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _nested_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


GOOD = Trajectory(
    messages=(
        {"role": "user", "content": "Cancel W1"},
        {"role": "assistant", "content": "Done."},
    )
)

CASES: list[tuple[str, Callable[[Any], Any], Any]] = [
    ("openai tools not a list", from_chat, {"messages": [], "tools": 5}),
    (
        "openai function not an object",
        from_chat,
        {"messages": [{"role": "assistant", "tool_calls": [{"function": 3}]}]},
    ),
    ("openai id not a string", from_chat, {"messages": [], "id": [1]}),
    ("openai metadata not an object", openai.load, {**openai.dump(GOOD), "metadata": "[1]"}),
    (
        "openai metadata labels a list",
        openai.load,
        {**openai.dump(GOOD), "metadata": {"labels": [1]}},
    ),
    (
        "openai provenance garbage",
        openai.load,
        {**openai.dump(GOOD), "metadata": {"provenance": {"document_id": [1]}}},
    ),
    (
        "openai deep tools",
        from_chat,
        {"messages": [], "tools": [{"name": "t", "parameters": _nested_schema(DEEP)}]},
    ),
    (
        "openai deep arguments",
        from_chat,
        {
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"function": {"name": "t", "arguments": "[" * DEEP + "]" * DEEP}}
                    ],
                }
            ]
        },
    ),
    ("sharegpt not a record", sharegpt.load, None),
    (
        "sharegpt value None",
        sharegpt.load,
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": None}]},
    ),
    (
        "sharegpt content a number",
        sharegpt.load,
        {"conversations": [{"from": "human", "value": 4}]},
    ),
    (
        "sharegpt deep call",
        sharegpt.load,
        {"conversations": [{"from": "function_call", "value": "[" * DEEP + "]" * DEEP}]},
    ),
    ("hermes not a record", hermes.load, None),
    (
        "hermes tools without listing",
        hermes.load,
        {"text": "<|im_start|>system\nhi\n\n# Tools\n\nnone here<|im_end|>\n"},
    ),
    (
        "hermes call name a list",
        hermes.load,
        {"text": '<|im_start|>assistant\n<tool_call>\n{"name": [1]}\n</tool_call><|im_end|>\n'},
    ),
    ("gem not a record", gem_tags.load, []),
    (
        "gem deep toolsets",
        gem_tags.load,
        {"text": "<toolsets>" + "[" * DEEP + "]" * DEEP + "</toolsets><user>x</user>"},
    ),
    (
        "gem deep call",
        gem_tags.parse_conversation,
        '<user>x</user><assistant><func>{"name": "t", "arguments": '
        + '{"a":' * DEEP
        + "1"
        + "}" * DEEP
        + "}</func></assistant>",
    ),
    (
        "gem python literal with a list key",
        gem_tags.parse_conversation,
        "<user>x</user><assistant><func>{'name': 't', 'arguments': {[1]: 2}}</func></assistant>",
    ),
    ("bfcl unhashable key", bfcl.parse_call_string, "f(x={[1]: 2})"),
    ("bfcl deep argument", bfcl.parse_call_string, "f(x=" + "[" * 180 + "]" * 180 + ")"),
    ("bfcl a set", bfcl.parse_call_string, "f(x={1, 2})"),
    ("tool deep parameters", Tool.from_any, {"name": "t", "parameters": _nested_schema(DEEP)}),
    ("tool deep JSON string", Tool.from_any, "[" * DEEP + "]" * DEEP),
    ("tool name a deep list", Tool.from_any, {"name": _nested_list(DEEP)}),
    ("parquet row without messages", lambda row: next(from_dataset([row])), {"id": "x"}),
    ("parquet row not a row", lambda row: next(from_dataset([row])), None),
]


@pytest.mark.parametrize(("function", "record"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_parser_raises_only_gemlib_errors(function: Callable[[Any], Any], record: Any) -> None:
    with pytest.raises(GemlibError):
        function(record)


def test_read_trajectories_names_each_bad_line_and_can_go_on(tmp_path: Path) -> None:
    good = json.dumps(openai.dump(GOOD))
    path = tmp_path / "data.jsonl"
    lines = [good, "[]", "3", "[" * DEEP + "]" * DEEP, '{"messages": [], "tools": 5}', good]
    lines.append('{"labels": null}')  # a native record without messages
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe\n")
    with pytest.raises(
        FormatError, match=r"data.jsonl line 2: a record is a JSON object, not list"
    ):
        list(read_trajectories(path))
    errors: list[FormatError] = []
    read = list(read_trajectories(path, on_error=errors.append))
    assert len(read) == 2
    assert [str(e).split(": ", 1)[0].rsplit(" ", 2)[-2:] for e in errors] == [
        ["line", "2"],
        ["line", "3"],
        ["line", "4"],
        ["line", "5"],
        ["line", "7"],
        ["line", "8"],
    ]
    assert "nested more than" in str(errors[2])
    assert "messages: Field required" in str(errors[4])
    assert "not valid UTF-8" in str(errors[5])


def test_gemlib_validate_reports_bad_lines_and_goes_on(tmp_path: Path) -> None:
    good = json.dumps(openai.dump(GOOD))
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join([good, "[]", "[" * DEEP + "]" * DEEP, good]) + "\n")
    done = _gemlib("validate", str(path), "--no-grounding", cwd=tmp_path)
    assert "Traceback" not in done.stderr, done.stderr
    assert f"{path} line 2: a record is a JSON object" in done.stdout
    assert f"{path} line 3: nested more than" in done.stdout
    assert "2 of 2 trajectories pass" in done.stdout
    assert "2 records could not be read" in done.stdout
    assert done.returncode == 1


def test_gemlib_reads_back_its_own_parquet_export(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    from teacher import REFINEMENT

    jsonl = tmp_path / "data.jsonl"
    records = [{"id": name, "text": reply} for name, reply in REFINEMENT.items()]
    jsonl.write_text("".join(json.dumps(gem_tags.dump(gem_tags.load(r))) + "\n" for r in records))
    exported = _gemlib(
        "export", str(jsonl), "--format", "parquet", "--out", "data.parquet", cwd=tmp_path
    )
    assert exported.returncode == 0, exported.stderr
    expected = list(read_trajectories(jsonl))
    assert list(read_trajectories(tmp_path / "data.parquet")) == expected
    for command in (
        ["validate", "data.parquet", "--no-grounding"],
        ["stats", "data.parquet", "--fast"],
    ):
        done = _gemlib(*command, cwd=tmp_path)
        assert "Traceback" not in done.stderr, done.stderr
        assert "UnicodeDecodeError" not in done.stderr
    validated = _gemlib("validate", "data.parquet", "--no-grounding", cwd=tmp_path)
    assert f"of {len(expected)} trajectories pass" in validated.stdout
    synth = _gemlib("synth-data", "data.parquet", "--out", "synth", cwd=tmp_path)
    assert synth.returncode == 0, synth.stderr
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 not really")
    junk = _gemlib("validate", "junk.parquet", cwd=tmp_path)
    assert junk.returncode == 2
    assert "not a readable Parquet file" in junk.stderr
    assert "Traceback" not in junk.stderr
