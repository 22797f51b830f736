"""Bad input: each problem named (file and line, or document), the run goes on."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cli_runner import gemlib as run_gemlib
from gemlib import Document, Pipeline, read_corpus
from gemlib.gem.prefilter import ProcedurePrefilter
from gemlib.gem.segmenter import Segmenter

STEPS = "\n".join(f"{i}. Open the app and tap the button on screen {i}." for i in range(1, 6))


def test_a_folder_of_junk_and_good_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "good.md").write_text("How to pair the phone\n\n" + STEPS)
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 menu".encode("latin-1"))
    (tmp_path / "binary.txt").write_bytes(b"PK\x03\x04\x00\x00binary\x00stuff")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0")
    big = ("Open the settings menu, tap Accounts, then choose Add account.\n\n" * 170_000)[
        :10_000_000
    ]
    (tmp_path / "huge.txt").write_text(big)
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        result = Pipeline([Segmenter(), ProcedurePrefilter()]).run(tmp_path)
    warnings = " | ".join(r.getMessage() for r in caplog.records)
    assert f"{tmp_path / 'latin1.txt'}: not UTF-8 text; skipped" in warnings
    assert f"{tmp_path / 'binary.txt'}: holds NUL bytes, so it looks binary; skipped" in warnings
    assert f"{tmp_path / 'photo.jpg'}: not a text file by its name" in warnings, (
        "files that are not text by name are not read, but named"
    )
    rejected = {(r.document_id, r.rule) for r in result.rejections}
    empty_id = next(r.document_id for r in result.rejections if r.rule == "empty_document")
    assert (empty_id, "empty_document") in rejected
    huge = [d for d in result.outputs if d.meta.get("source") == "huge.txt"]
    assert len(huge) > 1500, "a 10 MB document is segmented, not rejected"
    assert any(d.meta.get("source") == "good.md" for d in result.outputs)
    assert result.stats.inputs == 3  # good, empty, huge


def test_jsonl_with_broken_lines_bad_bytes_missing_fields_and_duplicates(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "corpus.jsonl"
    lines = [
        json.dumps({"id": "a", "text": "How to pair\n\n" + STEPS}).encode(),
        b'{"id": "b", "text": "broken',
        json.dumps({"id": "c", "title": "no text field"}).encode(),
        json.dumps({"id": "d", "text": "cafX " + STEPS}).encode().replace(b"cafX", b"caf\xe9"),
        json.dumps({"id": "a", "text": "How to pair\n\n" + STEPS}).encode(),
        json.dumps({"id": "e", "text": ""}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        result = Pipeline([Segmenter(), ProcedurePrefilter()]).run(read_corpus(path))
    warnings = [r.getMessage() for r in caplog.records]
    assert any(f"{path} line 2: not valid JSON" in w for w in warnings)
    assert any(f"{path} line 3: no string field 'text'" in w for w in warnings)
    assert any(f"{path} line 4: not valid UTF-8" in w for w in warnings)
    assert any(
        "skipped 1 item(s) whose ID came earlier in this corpus ('a')" in w for w in warnings
    )
    assert result.stats.duplicates == 1
    assert {d.document_id for d in result.outputs} == {"a", "d"}
    assert [(r.document_id, r.rule) for r in result.rejections] == [("e", "empty_document")]


def _good_line(doc_id: str) -> str:
    return json.dumps({"id": doc_id, "text": f"How to pair {doc_id}\n\n" + STEPS})


def test_one_hostile_line_never_stops_the_corpus_and_reruns_finish(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A line nested thousands deep and an ID with a lone surrogate cost only themselves."""
    path = tmp_path / "corpus.jsonl"
    lines = [
        _good_line("a"),
        '{"text": "x", "meta": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"id": "bad\\ud800id", "text": "How to pair\\n\\n' + STEPS.replace("\n", "\\n") + '"}',
        '{"id": "c", "text": "lone \\udc00 surrogate in the text", "note": "\\ud83d\\ude00 ok"}',
        _good_line("d"),
    ]
    path.write_text("\n".join(lines) + "\n")
    for attempt in range(2):  # the rerun resumes over the same lines
        with caplog.at_level(logging.WARNING, logger="gemlib"):
            result = Pipeline([Segmenter()]).run(read_corpus(path), run_dir=tmp_path / "run")
        assert result.stats.inputs == 3, attempt
    warnings = " | ".join(r.getMessage() for r in caplog.records)
    assert f"{path} line 2: JSON nested more than" in warnings
    assert f"{path} line 3: an ID with a lone surrogate; skipped" in warnings
    texts = {d.parent_id or d.id: d for d in read_corpus(path)}
    assert texts["c"].text == "lone \ufffd surrogate in the text"
    assert texts["c"].meta == {"note": "\U0001f600 ok"}


def test_byte_order_mark_and_any_line_ending(tmp_path: Path) -> None:
    records = [json.loads(_good_line(name)) for name in "abc"]
    body = [json.dumps(r) for r in records]
    for name, data in {
        "bom.jsonl": b"\xef\xbb\xbf" + "\n".join(body).encode(),
        "cr.jsonl": "\r".join(body).encode(),
        "crlf.jsonl": "\r\n".join(body).encode() + b"\r\n",
    }.items():
        (tmp_path / name).write_bytes(data)
        assert [d.id for d in read_corpus(tmp_path / name)] == ["a", "b", "c"], name
    (tmp_path / "bom.md").write_bytes(b"\xef\xbb\xbfHow to pair\r\rStep one.")
    (doc,) = read_corpus(tmp_path / "bom.md")
    assert doc.text == "How to pair\n\nStep one."


def test_warnings_are_summarised_per_cause(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"body": f"text {i}"}) + "\n" for i in range(500)))
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        assert list(read_corpus(path)) == []
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) <= 3, warnings
    assert f"{path} line 1: no string field 'text' (fields: body); skipped" in warnings
    assert (
        f"{path}: no string field 'text' on 500 lines (line 1, line 2, line 3 and 497 more); "
        "skipped" in warnings
    )
    assert f"{path}: no documents read" in warnings


def test_files_skipped_in_a_folder_are_counted_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "guide.md").write_text("How to pair\n\n" + STEPS)
    for name in ("manual.pdf", "photo.jpg", "scan.png", "diagram.svg"):
        (tmp_path / name).write_bytes(b"%PDF-1.4 \x00\x01")
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        docs = list(read_corpus(tmp_path))
    assert [d.meta["source"] for d in docs] == ["guide.md"]
    warnings = [r.getMessage() for r in caplog.records]
    summary = [w for w in warnings if w.startswith(f"{tmp_path}: not a text file by its name")]
    assert summary == [
        f"{tmp_path}: not a text file by its name on 4 files "
        "(diagram.svg, manual.pdf, photo.jpg and 1 more); skipped"
    ]


def test_a_json_array_file_gets_a_hint(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for name, document in {
        "array.json": [{"text": "one"}, {"text": "two"}],
        "object.json": {"text": "one", "id": "a"},
    }.items():
        path = tmp_path / name
        path.write_text(json.dumps(document, indent=2))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="gemlib"):
            assert list(read_corpus(path)) == []
        assert "convert it to JSON Lines" in caplog.text, name
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        (tmp_path / "fine.jsonl").write_text('{"text": "one"}\n{broken\n')
        assert len(list(read_corpus(tmp_path / "fine.jsonl"))) == 1
    assert "JSON Lines" not in caplog.text, "a JSONL file with one bad line gets no hint"


def test_csv_and_tsv_are_tables(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    long_text = "How to pair\n\n" + STEPS * 30_000  # past the csv module's 128 KiB field limit
    (tmp_path / "c.csv").write_text(
        "id,body,lang\r\n"
        f'a,"{long_text}",en\r\n'
        'b,"Say ""hi"", then wait",fr\r\n'
        "c,too,many,cells\r\n"
        ",no id,de\r\n"
    )
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        docs = list(read_corpus(tmp_path / "c.csv", text_field="body"))
    assert [(d.id, d.meta) for d in docs[:2]] == [("a", {"lang": "en"}), ("b", {"lang": "fr"})]
    assert docs[0].text == long_text
    assert docs[1].text == 'Say "hi", then wait'
    assert docs[2].text == "no id"
    assert docs[2].id.startswith("doc-")
    warnings = " | ".join(r.getMessage() for r in caplog.records)
    assert "cell count differs from the header's (4 cells, 3 columns)" in warnings
    (tmp_path / "t.tsv").write_text("id\ttext\nx\tfirst\ny\tsecond\n")
    assert [(d.id, d.text) for d in read_corpus(tmp_path / "t.tsv")] == [
        ("x", "first"),
        ("y", "second"),
    ]
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        assert list(read_corpus(tmp_path / "t.tsv", text_field="body")) == []
    assert "the header names no column 'body' (columns: id, text)" in caplog.text


def test_gemlib_run_on_an_empty_corpus_says_so_and_fails(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text('{"body": "wrong field"}\n\n')
    done = run_gemlib(
        "run", "empty.jsonl", "--model", "openai/x", "--out", "r",
        cwd=tmp_path, env={"OPENAI_API_KEY": "none"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "gemlib: error: no documents in empty.jsonl" in done.stderr
    assert "no string field 'text' (fields: body)" in done.stderr
    assert not (tmp_path / "r").exists(), "nothing is written for an empty corpus"


def test_lone_surrogates_from_python_never_stop_a_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Strings, mappings and Documents from Python (a scraper's output, say): same guarantee."""
    items = [
        "How to pair\n\n" + STEPS,
        "bad \ud800 text\n\n" + STEPS,
        {"id": "m", "text": "lone \udc00 in a mapping", "meta": {"k": "v\ud800"}},
        {"id": "m\ud800", "text": "an ID no file can hold"},
        Document(id="d", text="doc \udfff text", meta={"k": "\ud801"}),
        Document(id="d\udfff", text="an ID no file can hold"),
    ]
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        result = Pipeline([Segmenter()]).run(items, run_dir=tmp_path / "run")
    assert result.stats.inputs == 4
    assert "input item 3: an ID with a lone surrogate; skipped" in caplog.text
    assert "input item 5: an ID with a lone surrogate; skipped" in caplog.text
    texts = " ".join(d.text for d in result.outputs)
    assert "bad \ufffd text" in texts
    assert "lone \ufffd in a mapping" in texts
    assert "doc \ufffd text" in texts
