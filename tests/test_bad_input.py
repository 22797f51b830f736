"""Bad input: each problem named (file and line, or document), the run goes on."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gemlib import Pipeline, read_corpus
from gemlib.stages.prefilter import ProcedurePrefilter
from gemlib.stages.segmenter import Segmenter

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
    assert "photo.jpg" not in warnings, "files that are not text by name are not read at all"
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
    assert any("skipping item a: its ID came earlier in this corpus" in w for w in warnings)
    assert result.stats.duplicates == 1
    assert {d.document_id for d in result.outputs} == {"a", "d"}
    assert [(r.document_id, r.rule) for r in result.rejections] == [("e", "empty_document")]
