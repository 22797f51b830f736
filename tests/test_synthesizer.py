"""The Trajectory Synthesizer: its training data, its stage, and the comparison."""

from __future__ import annotations

import json
from pathlib import Path

from fake_openai import FakeOpenAI
from gemlib import Document, Message, Pipeline, Trajectory
from gemlib.formats import gem_tags
from gemlib.pipeline.rundir import read_trajectories
from gemlib.synthesizer import INSTRUCTION, build_examples, write_synth_data
from gemlib.synthesizer.compare import compare
from teacher import teacher_reply
from test_gem_stages import _docs, _llm


def _trajectory(doc_id: str, n: int) -> Trajectory:
    doc = Document(id=doc_id, text=f"How to do task {doc_id}: 1. open 2. tap")
    return Trajectory(
        id=f"{doc_id}-t{n}",
        messages=(
            Message(role="user", content=f"do {doc_id} {n}"),
            Message(role="assistant", content="ok"),
        ),
        document=doc,
    )


def test_examples_pair_the_instruction_and_segment_with_the_tag_format() -> None:
    (example,) = build_examples([_trajectory("d1", 0)])
    user, assistant = example["messages"]
    assert user == {
        "role": "user",
        "content": f"{INSTRUCTION}\n\nHow to do task d1: 1. open 2. tap",
    }
    assert assistant["role"] == "assistant"
    assert assistant["content"] == gem_tags.dump(_trajectory("d1", 0))["text"]
    assert assistant["content"].startswith("<toolsets>")
    assert example["document_id"] == "d1"


def test_split_by_document_never_leaks_and_skips_trajectories_without_source(
    tmp_path: Path,
) -> None:
    trajectories = [_trajectory(f"doc{d}", n) for d in range(40) for n in range(3)]
    orphan = Trajectory(messages=(Message(role="user", content="x"),))
    data = write_synth_data([*trajectories, orphan], tmp_path, validation_share=0.25)
    assert data.skipped_without_source == 1
    assert data.documents == 40
    assert data.train_examples + data.validation_examples == 120
    train = [json.loads(line) for line in data.train.read_text().splitlines()]
    validation = [json.loads(line) for line in data.validation.read_text().splitlines()]
    train_docs = {e["document_id"] for e in train}
    validation_docs = {e["document_id"] for e in validation}
    assert not train_docs & validation_docs, "no document on both sides"
    assert 4 <= len(validation_docs) <= 18
    assert all(len(e["messages"]) == 2 for e in train + validation)
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["gem_synth_train"]["file_name"] == "train.jsonl"
    again = write_synth_data(trajectories, tmp_path / "again", validation_share=0.25)
    assert again.validation.read_text() == data.validation.read_text(), "the split is stable"


def test_synthesizer_path_runs_the_same_checks(tmp_path: Path) -> None:
    with FakeOpenAI(teacher_reply) as server:
        pipe = Pipeline.synthesizer(_llm(server))
        assert [s.name for s in pipe.stages] == [
            "segmenter",
            "synthesize",
            "rule_validator",
            "llm_judge",
        ]
        docs = [
            d
            for d in _docs()
            if d.id in ("return-online-order", "calendar-meeting", "smart-thermostat")
        ]
        result = pipe.run(docs)
        prompts = [r["messages"][0]["content"] for r in server.requests]
    assert sum(p.startswith(INSTRUCTION) for p in prompts) == 3, "one synthesizer call per segment"
    (kept,) = result.trajectories
    assert kept.document_id == "return-online-order"
    assert "find_post_office" in {t.name for t in kept.tools}
    assert [s.stage for s in kept.provenance.stages] == ["synthesize", "llm_judge"]  # type: ignore[union-attr]
    rules = {(r.stage, r.rule) for r in result.rejections}
    assert rules == {
        ("rule_validator", "one_call_per_turn"),
        ("llm_judge", "capability_hallucination"),
    }


def test_relevance_can_lead_the_synthesizer_path() -> None:
    pipe = Pipeline.synthesizer(
        "openai/synth", relevance_model="openai/small", judge=False, cache=False
    )
    assert [s.name for s in pipe.stages] == [
        "segmenter",
        "relevance_filter",
        "synthesize",
        "rule_validator",
    ]


def test_compare_prints_both_paths_side_by_side(tmp_path: Path) -> None:
    docs = [d for d in _docs() if d.id in ("return-online-order", "calendar-meeting")]
    with FakeOpenAI(teacher_reply) as server:
        comparison = compare(
            docs, Pipeline.gem(_llm(server)), Pipeline.synthesizer(_llm(server)), run_dir=tmp_path
        )
    table = comparison.format()
    rows = {name: (a, b) for name, a, b in comparison.rows()}
    assert rows["kept trajectories"] == ("1", "1")
    assert rows["yield (kept / input)"] == ("50%", "50%")
    full_requests, synth_requests = (float(x) for x in rows["model requests per kept"])
    assert synth_requests < full_requests, "the synthesizer needs fewer calls per trajectory"
    assert "full pipeline" in table
    assert "synthesizer" in table
    assert (tmp_path / "synthesizer" / "manifest.json").exists()


def test_synth_data_command_on_a_run(tmp_path: Path) -> None:
    from test_cli import LOCAL_KEY, _gemlib, _run_command

    with FakeOpenAI(teacher_reply) as server:
        assert (
            _gemlib(*_run_command(tmp_path, server.url), cwd=tmp_path, env=LOCAL_KEY).returncode
            == 0
        )
    done = _gemlib("synth-data", "run", "--out", "synth", "--validation-share", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 training and 0 validation examples from 1 source documents" in done.stdout
    (example,) = [
        json.loads(line) for line in (tmp_path / "synth" / "train.jsonl").read_text().splitlines()
    ]
    kept = next(read_trajectories(tmp_path / "run"))
    assert example["messages"][1]["content"] == gem_tags.dump(kept)["text"]
