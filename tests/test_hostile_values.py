"""Hostile values that are valid JSON syntax but break Python's readers.

A number longer than Python converts to ``int`` (4300 digits by default)
makes ``json.loads`` raise a bare ``ValueError``; a tool reply nested a
hundred thousand levels deep makes it recurse without bound. Each must cost
only its own line or trajectory, with a gemlib error or a problem.
"""

from __future__ import annotations

import codecs
import datetime
import json
import logging
import os
from pathlib import Path

import pytest

from gemlib import Document, Pipeline, Tool, Trajectory, read_corpus
from gemlib.errors import CorpusReadError, FormatError, ToolSchemaError
from gemlib.formats import bfcl, read_trajectories
from gemlib.formats.chat import from_chat
from gemlib.gem.segmenter import Segmenter
from gemlib.validation import validate
from test_cli import _gemlib

LONG_NUMBER = "9" * 5000


def test_a_corpus_line_with_a_long_number_costs_only_itself(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        '{"text": "first document", "n": ' + LONG_NUMBER + "}\n"
        '{"text": "second document", "id": ' + LONG_NUMBER + "}\n"
        '{"text": "third document"}\n',
        encoding="utf-8",
    )
    assert [d.text for d in read_corpus(corpus)] == ["third document"]
    result = Pipeline([Segmenter()]).run(corpus)
    assert result.stats.inputs == 1


def test_read_trajectories_reports_a_long_number_as_a_format_error(tmp_path: Path) -> None:
    good = {"messages": [{"role": "user", "content": "hi"}]}
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"messages": [], "n": ' + LONG_NUMBER + "}\n" + json.dumps(good) + "\n", encoding="utf-8"
    )
    errors: list[Exception] = []
    read = list(read_trajectories(path, on_error=errors.append))
    assert len(read) == 1
    assert len(errors) == 1
    assert isinstance(errors[0], FormatError)
    assert "4300 digits" in str(errors[0])


def _with_reply(reply: str) -> Trajectory:
    arguments = json.dumps({"order_id": "12"})
    return from_chat(
        {
            "messages": [
                {"role": "system", "content": "You are an agent."},
                {"role": "user", "content": "What is the status of order 12?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "get_order", "arguments": arguments},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": reply},
                {"role": "assistant", "content": "Order 12 has shipped."},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_order",
                        "description": "Look up an order.",
                        "parameters": {
                            "type": "object",
                            "properties": {"order_id": {"type": "string"}},
                            "required": ["order_id"],
                        },
                    },
                }
            ],
        }
    )


@pytest.mark.parametrize(
    "reply",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 5_000 + "1" + "}" * 5_000,
        '{"order_id": ' + LONG_NUMBER + "}",
    ],
    ids=["deep-array", "deep-object", "long-number"],
)
def test_validate_reports_a_hostile_tool_reply_as_a_problem(reply: str) -> None:
    problems = validate(_with_reply(reply)).problems
    assert [p.rule for p in problems] == ["tool_reply"]


def test_tool_from_any_refuses_keys_that_are_not_strings() -> None:
    with pytest.raises(ToolSchemaError):
        Tool.from_any({"name": "f", "parameters": {(1, 2): 3, "type": "object"}})


@pytest.mark.parametrize("value", [None, 3, ["f()"]])
def test_bfcl_call_string_that_is_not_a_string(value: object) -> None:
    with pytest.raises(FormatError):
        bfcl.parse_call_string(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_corpora_with_a_byte_order_mark_are_read(tmp_path: Path, encoding: str) -> None:
    bom = codecs.BOM_UTF16_LE if encoding.endswith("le") else codecs.BOM_UTF16_BE
    lines = "".join(
        json.dumps({"text": f"doc {i} caf\u00e9 \U0001f600"}) + "\r\n" for i in range(30000)
    )
    (tmp_path / "c.jsonl").write_bytes(bom + lines.encode(encoding))  # several 1 MiB blocks
    texts = [d.text for d in read_corpus(tmp_path / "c.jsonl")]
    assert len(texts) == 30000
    assert texts[-1] == "doc 29999 caf\u00e9 \U0001f600"
    # Excel's "Unicode text" export: UTF-16 TSV.
    (tmp_path / "t.tsv").write_bytes(bom + "id\ttext\r\n7\tcaf\u00e9\r\n".encode(encoding))
    assert [(d.id, d.text) for d in read_corpus(tmp_path / "t.tsv")] == [("7", "caf\u00e9")]


def test_a_fifo_in_a_folder_is_named_as_skipped_not_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a.txt").write_text("a document", encoding="utf-8")
    os.mkfifo(tmp_path / "pipe.txt")  # reading it would block forever
    (tmp_path / "gone.md").symlink_to(tmp_path / "missing.md")
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        texts = [d.text for d in read_corpus(tmp_path)]
    assert texts == ["a document"]
    assert "pipe.txt" in caplog.text
    assert "gone.md" in caplog.text


def test_a_text_field_that_is_not_a_string_is_named_as_such(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": 12, "id": "a"}\n{"text": ["x"]}\n{"text": "ok"}\n', "utf-8")
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        assert [d.text for d in read_corpus(corpus)] == ["ok"]
    # Before: "no string field 'text' (fields: id)", as if the field were missing.
    assert (
        f"{corpus} line 1: field 'text' is not a string (its value is of type int); skipped"
        in caplog.text
    )
    assert "field 'text' is not a string on 2 lines (line 1, line 2)" in caplog.text


def _unreadable(path: Path) -> Path:
    """``path``, a file every read of which fails with an I/O error (even for root)."""
    if not os.path.exists("/proc/self/mem"):
        pytest.skip("needs Linux's /proc/self/mem to make a file that cannot be read")
    path.symlink_to("/proc/self/mem")
    return path


@pytest.mark.parametrize("name", ["c.jsonl", "c.csv"])
def test_an_unreadable_corpus_stops_with_one_gemlib_error(tmp_path: Path, name: str) -> None:
    corpus = _unreadable(tmp_path / name)
    # Before: a bare OSError out of Pipeline.run, a traceback and exit code 1 from gemlib run.
    with pytest.raises(CorpusReadError, match=f"cannot read the corpus {corpus}"):
        Pipeline([Segmenter()]).run(corpus)
    done = _gemlib(
        "run", str(corpus), "--model", "openai/x", "--api-base", "http://127.0.0.1:9/v1",
        "--out", str(tmp_path / "run"), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"gemlib: error: cannot read the corpus {corpus}" in done.stderr
    assert not (tmp_path / "run").exists()


def test_python_items_whose_metadata_cannot_be_stored_cost_only_themselves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: the Document with a datetime raised TypeError (json.dumps in the surrogate check);
    # undecodable bytes aborted the whole run in the store ("the run directory failed").
    items = [
        {"text": "first", "meta": {"raw": b"\xff"}},
        Document(text="second", meta={"raw": b"\xfe"}),
        Document(text="third", meta={"when": datetime.datetime(2020, 1, 1), "s": "a\ud800"}),
        "fourth",
    ]
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        result = Pipeline([Segmenter()]).run(items, run_dir=tmp_path / "run")
    assert result.stats.inputs == 2
    assert "input item 0: cannot be stored as JSON" in caplog.text
    assert "input item 1: cannot be stored as JSON" in caplog.text


def test_a_parquet_corpus_with_a_binary_column_is_read_without_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pa = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {"text": [b"one doc", b"two doc"], "blob": [b"\xff\xfe", b"\x89PNG"], "n": [1, 2]}
    )
    nested = pa.table({"text": ["three", "four"], "parts": [[b"\xff"], []]})
    parquet.write_table(nested, tmp_path / "nested.parquet")
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        result = Pipeline([Segmenter()]).run(tmp_path / "nested.parquet", run_dir=tmp_path / "n")
    assert result.stats.inputs == 1  # the row with binary inside a list is skipped
    assert "row 1: a cell that cannot be stored as JSON" in caplog.text
    parquet.write_table(table, tmp_path / "c.parquet")
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        # Before: the run aborted ("the run directory failed: UnicodeDecodeError").
        result = Pipeline([Segmenter()]).run(tmp_path / "c.parquet", run_dir=tmp_path / "run")
    assert result.stats.inputs == 2
    assert [d.meta for d in read_corpus(tmp_path / "c.parquet")] == [{"n": 1}, {"n": 2}]
    assert "column 'blob' holds binary data; not kept" in caplog.text
