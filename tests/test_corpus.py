"""Reading corpora: JSONL, folders, bad records skipped with the file and line named."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gemlib import Document, read_corpus


def test_jsonl_fields_ids_and_meta(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "a", "text": "one", "url": "u"}\n\n{"text": "two"}\n')
    docs = list(read_corpus(path))
    assert docs[0] == Document(id="a", text="one", meta={"url": "u"})
    assert docs[1].id == Document(text="two").id


def test_custom_field_names(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"key": "k1", "body": "text"}\n')
    (doc,) = read_corpus(path, text_field="body", id_field="key")
    assert (doc.id, doc.text) == ("k1", "text")


def test_bad_lines_are_skipped_naming_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "ok"}\n{broken\n[1, 2]\n{"title": "no text"}\n{"text": "fine"}\n')
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        docs = list(read_corpus(path))
    assert [d.text for d in docs] == ["ok", "fine"]
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"{path} line 2: not valid JSON" in m for m in messages)
    assert any(f"{path} line 3: not a JSON object" in m for m in messages)
    assert any(f"{path} line 4: no string field 'text'" in m for m in messages)


def test_folders_yield_text_files_in_order_and_skip_binary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "b.md").write_text("second")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("nested")
    (tmp_path / "a.txt").write_text("first")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        docs = list(read_corpus(tmp_path))
    assert [d.meta["source"] for d in docs] == ["a.txt", "b.md", "sub/a.txt"]
    assert any("bad.txt: not UTF-8 text" in r.getMessage() for r in caplog.records)


def test_missing_corpus_fails_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="corpus not found"):
        read_corpus(tmp_path / "nope.jsonl")
