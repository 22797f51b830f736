"""A run directory's files, byte for byte, against records built here from plain dicts.

The pipeline asks a scripted model (provenance with usage), fans out, rejects at
three stages (a reply that never parses, a stage's ``Rejection``, a ``ValueError``)
and leaves one item for the next run (a ``KeyError``). Every committed line of
``outputs.jsonl`` and ``rejections.jsonl`` must be the expected JSON exactly, each
item's lines together in the order the progress database records the items, and
the database's counts, file lengths and totals must add up; a second session
appends after the first's bytes.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gemlib import Document, Pipeline, Rejection, RunAborted
from gemlib.llm import LLM, ScriptedBackend
from gemlib.llm.protocol import ChatRequest
from gemlib.llm.structured import ParseError
from gemlib.pipeline import rundir
from gemlib.pipeline.stage import stage
from gemlib.stages import LLMStage

TEXTS = {
    "plain": "a plain text",
    "accents": 'Zoë\'s café: naïve ☕ — "quoted" \\ back\tslash\nnew line',
    "control": "bell \x07 and \x1f unit separator, DEL \x7f, line sep \u2028",
    "astral": "emoji 🧪🐍 and CJK 漢字",
    "never-parses": "REFUSE to be labelled",
    "splits-to-nothing": "NONE here",
    "odd-child": "ODD one out",
    "bad-value": "VALUE error please",
    "stage-bug": "KEY error please",
}


def _reply(request: ChatRequest) -> str:
    content = str(request.messages[0]["content"])  # repairs too: a refusal never parses
    return "" if "REFUSE" in content else f"label<{content[:12]}>"


def _tokens(text: str) -> float:
    return float(max(1, len(text) // 4))


class Label(LLMStage):
    def prompt(self, doc: Document) -> list[dict[str, str]]:
        return [{"role": "user", "content": doc.text}]

    def parse(self, text: str, doc: Document) -> Document:
        if not text:
            raise ParseError("the label is empty")
        return doc.model_copy(update={"meta": {**doc.meta, "label": text}})


def split(doc: Document) -> list[Document] | Rejection:
    if "NONE" in doc.text:
        return Rejection(rule="empty", reason="nothing to split")
    return [
        doc.model_copy(update={"id": f"{doc.id}.{k}", "parent_id": doc.id, "segment_index": k})
        for k in range(2)
    ]


async def check(doc: Document) -> Document | Rejection:
    if "ODD" in doc.text and doc.segment_index == 1:
        return Rejection(rule="odd", reason="the second half of an odd one")
    if "VALUE" in doc.text:
        raise ValueError("a value the stage refuses")
    if "KEY" in doc.text:
        raise KeyError("a bug in the stage")
    return doc


def _pipeline() -> Pipeline:
    llm = LLM("openai/teacher", backend=ScriptedBackend(_reply), cache=False, max_retries=0)
    return Pipeline([Label(llm, max_repairs=1), stage(split), stage(check)])


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _expected(doc_id: str) -> tuple[list[bytes], list[bytes], dict[str, dict[str, Any]]]:
    """The item's output lines, rejection lines and stage counts, built from its text."""
    text = TEXTS[doc_id]
    reply = _reply(
        ChatRequest(model="openai/teacher", messages=({"role": "user", "content": text},))
    )
    counts: dict[str, dict[str, Any]] = {
        name: {"received": 0, "emitted": 0, "rejected": 0, "errors": 0, "rejections_by_rule": {}}
        for name in ("label", "split", "check")
    }

    def reject(name: str, rule: str) -> None:
        counts[name]["rejected"] += 1
        by_rule = counts[name]["rejections_by_rule"]
        by_rule[rule] = by_rule.get(rule, 0) + 1

    counts["label"]["received"] = 1
    if not reply:
        raw = {
            "rule": "unparseable_reply",
            "reason": "the label is empty (still wrong after 1 repair attempts)",
            "stage": "label",
            "item_id": doc_id,
            "document_id": doc_id,
            "raw": "",
            "detail": {},
        }
        reject("label", "unparseable_reply")
        return [], [_line(raw)], counts
    counts["label"]["emitted"] = 1
    counts["split"]["received"] = 1
    if "NONE" in text:
        reject("split", "empty")
        rejection = {
            "rule": "empty",
            "reason": "nothing to split",
            "stage": "split",
            "item_id": doc_id,
            "document_id": doc_id,
            "raw": None,
            "detail": {},
        }
        return [], [_line(rejection)], counts
    counts["split"]["emitted"] = 2
    counts["check"]["received"] = 2
    record = {
        "stage": "label",
        "version": "1",
        "model": "openai/teacher",
        "prompt_hash": None,
        "usage": {
            "prompt_tokens": _tokens(text),
            "completion_tokens": _tokens(reply),
            "reasoning_tokens": 0.0,
            "cost": 0.0,
            "requests": 1.0,
            "cache_hits": 0.0,
        },
        "reasoning": None,
    }
    outputs, rejections = [], []
    for k in range(2):
        child = {
            "id": f"{doc_id}.{k}",
            "text": text,
            "meta": {"label": reply},
            "parent_id": doc_id,
            "segment_index": k,
            "provenance": {
                "document_id": doc_id,
                "segment_index": None,
                "workflow_index": None,
                "stages": [record],
            },
        }
        if "ODD" in text and k == 1:
            reject("check", "odd")
            rejections.append(
                {
                    "rule": "odd",
                    "reason": "the second half of an odd one",
                    "stage": "check",
                    "item_id": child["id"],
                    "document_id": doc_id,
                    "raw": None,
                    "detail": {},
                }
            )
        elif "VALUE" in text:
            counts["check"]["errors"] += 1  # an exception, though the item's own fault
            reject("check", "exception")
            rejections.append(
                {
                    "rule": "exception",
                    "reason": "ValueError: a value the stage refuses",
                    "stage": "check",
                    "item_id": child["id"],
                    "document_id": doc_id,
                    "raw": None,
                    "detail": {"exception": "ValueError"},
                }
            )
        else:
            counts["check"]["emitted"] += 1
            outputs.append(child)
    return [_line(o) for o in outputs], [_line(r) for r in rejections], counts


def _run(run_dir: Path, ids: list[str]) -> None:
    docs = [Document(id=i, text=TEXTS[i]) for i in ids]
    _pipeline().run(docs, run_dir=run_dir, progress_interval=None, max_in_flight=3)


def _check_files(run_dir: Path, ids: list[str], requests: int) -> dict[str, int]:
    """Compare the run directory with the expectations; return the items' sessions."""
    db = sqlite3.connect(run_dir / "progress.sqlite")
    try:
        items = db.execute(
            "SELECT id, session, outputs, rejections FROM items ORDER BY rowid"
        ).fetchall()
        lengths = dict(db.execute("SELECT name, length FROM files").fetchall())
        kv = dict(db.execute("SELECT key, value FROM kv").fetchall())
    finally:
        db.close()
    done = [i for i in ids if i != "stage-bug"]  # a KeyError leaves the item for retry
    assert sorted(row[0] for row in items) == sorted(done)
    outputs = (run_dir / "outputs.jsonl").read_bytes()
    rejections = (run_dir / "rejections.jsonl").read_bytes()
    assert lengths == {"outputs.jsonl": len(outputs), "rejections.jsonl": len(rejections)}
    want_out, want_rej = b"", b""
    totals: dict[str, dict[str, Any]] = {}
    for item_id, _, n_out, n_rej in items:
        lines_out, lines_rej, counts = _expected(item_id)
        assert (n_out, n_rej) == (len(lines_out), len(lines_rej)), item_id
        want_out += b"".join(lines_out)
        want_rej += b"".join(lines_rej)
        for name, c in counts.items():
            into = totals.setdefault(name, {k: 0 for k in c if k != "rejections_by_rule"})
            for key, value in c.items():
                if key == "rejections_by_rule":
                    rules = into.setdefault(key, {})
                    for rule, n in value.items():
                        rules[rule] = rules.get(rule, 0) + n
                else:
                    into[key] += value
    assert outputs == want_out
    assert rejections == want_rej
    stats = json.loads(kv["stage_stats"])
    assert list(stats) == ["label", "split", "check"]
    for name, stage_stats in stats.items():
        assert list(stage_stats) == [
            "received",
            "emitted",
            "rejected",
            "errors",
            "rejections_by_rule",
            "seconds",
        ]
        seconds = stage_stats.pop("seconds")
        assert isinstance(seconds, float)
        assert seconds >= 0
        assert stage_stats == totals[name], name
    usage = json.loads(kv["usage"])
    assert usage["label"]["openai/teacher"]["requests"] == requests
    return {row[0]: row[1] for row in items}


def test_a_runs_files_are_the_records_built_from_the_input(tmp_path: Path) -> None:
    first = ["plain", "accents", "never-parses", "odd-child", "stage-bug"]
    _run(tmp_path, first)
    # every item asks once, the one whose reply never parses twice (one repair)
    sessions = _check_files(tmp_path, first, requests=6)
    assert set(sessions.values()) == {1}
    committed = (tmp_path / "outputs.jsonl").read_bytes()

    everything = [*first, "control", "astral", "splits-to-nothing", "bad-value"]
    _run(tmp_path, everything)
    sessions = _check_files(tmp_path, everything, requests=6 + 5)  # stage-bug asks again
    assert (tmp_path / "outputs.jsonl").read_bytes().startswith(committed)
    assert {i for i, s in sessions.items() if s == 2} == {
        "control",
        "astral",
        "splits-to-nothing",
        "bad-value",
    }


def _unwritable(doc: Document) -> list[Document | Rejection]:
    if "bad" not in doc.text:
        return [doc]
    unwritable = Rejection(
        rule="odd", reason="its detail cannot be written", detail={"x": object()}
    )
    return [doc.model_copy(update={"id": f"{doc.id}.0"}), unwritable]


def test_an_item_whose_record_cannot_be_written_leaves_no_line_behind(tmp_path: Path) -> None:
    pipeline = Pipeline([stage(_unwritable)])
    with pytest.raises(RunAborted, match="run directory failed: PydanticSerializationError"):
        pipeline.run(["good", "bad", "never"], run_dir=tmp_path, progress_interval=None)
    # the item before it is kept, and no line of the unwritable item is
    assert (tmp_path / "outputs.jsonl").read_text().splitlines() == [
        Document(text="good").model_dump_json()
    ]
    assert (tmp_path / "rejections.jsonl").read_bytes() == b""
    result = pipeline.run(["good", "better"], run_dir=tmp_path, progress_interval=None)
    assert result.stats.resumed == 1
    assert [d.text for d in result.outputs] == ["good", "better"]


@pytest.mark.parametrize("bits", [8, rundir._FILTER_BITS])
def test_finished_and_repeated_ids_are_found_whatever_the_filter_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bits: int
) -> None:
    # With 8 bits every ID seems finished and each is looked up; with the real size
    # almost none is: either way the answers are the database's.
    monkeypatch.setattr(rundir, "_FILTER_BITS", bits)
    texts = [f"text {i}" for i in range(40)]
    first = Pipeline([stage(_unwritable)]).run(
        [*texts[:20], texts[3], texts[19]],  # each repeat comes after its first is committed
        run_dir=tmp_path,
        progress_interval=None,
        commit_interval=0,
        max_in_flight=1,
    )
    assert (first.stats.outputs, first.stats.duplicates) == (20, 2)
    second = Pipeline([stage(_unwritable)]).run(
        [*texts, texts[30], texts[0]], run_dir=tmp_path, progress_interval=None, max_in_flight=1
    )
    assert (second.stats.resumed, second.stats.duplicates) == (21, 1)
    assert sorted(d.text for d in second.outputs) == sorted(texts)
