"""The prefilter and the learned classifier on real text from outside the project."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from cli_runner import gemlib as run_gemlib
from fake_openai import FakeOpenAI, Reply
from gemlib import Pipeline
from gemlib.classifier import LabelledText, RelevanceClassifier, precision_recall
from gemlib.errors import GemlibError
from gemlib.gem.classifier_labels import candidate_segments, label_with_llm
from gemlib.gem.prefilter import ProcedurePrefilter
from gemlib.gem.segmenter import Segmenter
from gemlib.llm import LLM
from gemlib.model import Document, Rejection
from gemlib.pipeline.sampling import reservoir_sample
from gemlib.stages.classifier_filter import ClassifierFilter
from real_text import labelled_segments


def test_prefilter_recall_and_precision_on_real_text() -> None:
    rows = labelled_segments()
    labels = [procedural for _, procedural in rows]
    prefilter = ProcedurePrefilter()
    kept = [not isinstance(prefilter.process(doc), Rejection) for doc, _ in rows]
    precision, recall = precision_recall(kept, labels)
    base_rate = sum(labels) / len(labels)
    dropped_other = sum(not k for k, y in zip(kept, labels, strict=True) if not y)
    print(
        f"\nprefilter on {len(rows)} real segments ({sum(labels)} procedural): "
        f"recall {recall:.3f}, precision {precision:.3f} (base rate {base_rate:.3f}), "
        f"drops {dropped_other / (len(labels) - sum(labels)):.1%} of the others"
    )
    assert recall >= 0.8, "tuned for recall: it keeps most procedures"
    assert precision > base_rate * 1.3
    assert dropped_other >= 0.35 * (len(labels) - sum(labels)), "and still saves calls"


def _labeller(rows: list[tuple[Any, bool]], noise_every: int = 0) -> Any:
    """A relevance 'LLM' that answers from the source label (and fails on some)."""
    keys = [(doc.text[:160], procedural) for doc, procedural in rows]

    def reply(body: dict[str, Any], n: int) -> Reply:
        prompt = "\n".join(m["content"] for m in body["messages"])  # repairs come after
        procedural = next(y for key, y in keys if key in prompt)
        if noise_every and n % noise_every == 0:
            return Reply("I am not sure what you mean.")  # unparseable, every time
        return Reply(
            f"<multi_step>{procedural}</multi_step>\n<summary>a segment</summary>\n"
            "<domain>Computers & Electronics</domain>\n<platform>computer</platform>\n"
            "<task>software_installation</task>"
        )

    return reply


def test_classifier_learns_the_llm_labels_and_filters_real_text(tmp_path: Path) -> None:
    rows = labelled_segments(max_chars=2000)
    with FakeOpenAI(_labeller(rows)) as server:
        model = LLM("openai/labeller", api_base=server.url, api_key="none", cache=False)
        labels, failed = label_with_llm(
            [doc for doc, _ in rows], model, run_dir=tmp_path / "labels", max_in_flight=32
        )
    assert failed == 0
    assert len(labels) == len(rows)
    classifier = RelevanceClassifier.train(labels, target_recall=0.9, seed=1)
    report = classifier.report
    assert report is not None
    print("\nclassifier:", report.format())
    base_rate = report.holdout_positives / report.holdout_size
    assert report.recall >= 0.75, "measured on texts used for no choice, near the target"
    assert report.precision >= 2 * base_rate
    assert report.kept_share < 0.5, "most non-procedural text never reaches the LLM"

    path = classifier.save(tmp_path / "relevance.json")
    loaded = RelevanceClassifier.load(path)
    sample = [doc.text for doc, _ in rows[:50]]
    assert [loaded.score(t) for t in sample] == [classifier.score(t) for t in sample]
    assert loaded.digest() == classifier.digest()
    assert loaded.report == report

    stage = ClassifierFilter(path)
    result = Pipeline([stage]).run([doc for doc, _ in rows], run_dir=tmp_path / "run")
    assert len(result.outputs) + len(result.rejections) == len(rows)
    assert {r.rule for r in result.rejections} == {"classifier_not_procedural"}
    assert all(r.detail["score"] < classifier.threshold for r in result.rejections)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"][0]["config"]["classifier"] == classifier.digest()


def test_labelling_counts_replies_that_give_no_label(tmp_path: Path) -> None:
    rows = labelled_segments()[:40]
    with FakeOpenAI(_labeller(rows, noise_every=1)) as server:
        model = LLM("openai/labeller", api_base=server.url, api_key="none", cache=False)
        labels, failed = label_with_llm([doc for doc, _ in rows], model, max_in_flight=8)
    assert (labels, failed) == ([], 40), "no guesses: an unparseable reply is no label"


def _examples(n: int, procedural: bool) -> list[LabelledText]:
    words = "open the app tap settings" if procedural else "the history of the press"
    return [
        LabelledText(id=f"{procedural}{i}", text=f"{words} {i}", procedural=procedural)
        for i in range(n)
    ]


def test_training_needs_both_kinds_of_label() -> None:
    with pytest.raises(GemlibError, match=r"at least 8 procedural and 8 other.*got 20 and 3"):
        RelevanceClassifier.train(_examples(20, True) + _examples(3, False))


def test_loading_refuses_anything_but_a_classifier_and_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (marker.write_text, ("pwned",))

    (tmp_path / "model.pkl").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(GemlibError, match=r"model\.pkl: not a gemlib classifier \(not JSON"):
        RelevanceClassifier.load(tmp_path / "model.pkl")
    assert not marker.exists()
    (tmp_path / "other.json").write_text('{"weights": []}')
    with pytest.raises(GemlibError, match=r"other\.json: not a gemlib classifier"):
        RelevanceClassifier.load(tmp_path / "other.json")
    bad = {"format": "gemlib-relevance-classifier/1", "intercept": 0, "threshold": 0.5}
    (tmp_path / "bad.json").write_text(json.dumps({**bad, "weights": [["x", 1]]}))
    with pytest.raises(GemlibError, match=r"bad\.json: malformed classifier"):
        RelevanceClassifier.load(tmp_path / "bad.json")
    with pytest.raises(GemlibError, match="no such classifier file"):
        ClassifierFilter(tmp_path / "missing.json")


def test_reservoir_sample_is_uniform_and_repeatable() -> None:
    assert reservoir_sample(range(10), 20) == list(range(10))
    first = reservoir_sample(iter(range(100_000)), 100, seed=3)
    assert first == reservoir_sample(iter(range(100_000)), 100, seed=3)
    assert len(set(first)) == 100
    counts = [0] * 10
    for seed in range(2000):
        for value in reservoir_sample(range(10), 3, seed=seed):
            counts[value] += 1
    assert all(500 < c < 700 for c in counts), counts  # 600 expected each


def test_candidate_segments_are_what_the_relevance_stage_would_see() -> None:
    rows = labelled_segments(max_chars=2000)
    documents = [doc for doc, _ in rows[:60]]
    every = list(candidate_segments(documents, prefilter=False))
    kept = list(candidate_segments(documents))
    segmenter, prefilter = Segmenter(), ProcedurePrefilter()
    expected: list[Document] = []
    for document in documents:
        segments = segmenter.process(document)
        assert isinstance(segments, list)
        expected += segments
    assert [s.id for s in every] == [s.id for s in expected]
    assert [s.id for s in kept] == [
        s.id for s in expected if isinstance(prefilter.process(s), Document)
    ]
    assert 0 < len(kept) < len(every)  # real text: the prefilter drops some, keeps some


def test_train_classifier_command_and_the_gem_preset(tmp_path: Path) -> None:
    rows = labelled_segments(max_chars=2000)
    corpus = tmp_path / "corpus.jsonl"
    with corpus.open("w") as out:
        for doc, _ in rows:
            out.write(json.dumps({"id": doc.id, "text": doc.text}) + "\n")
    command = ["train-classifier", str(corpus), "--model", "openai/labeller", "--out", "clf.json"]
    command += ["--no-prefilter", "--sample", "250", "--recall", "0.9"]
    with FakeOpenAI(_labeller(rows)) as server:
        done = run_gemlib(
            *command, "--api-base", server.url, cwd=tmp_path, env={"OPENAI_API_KEY": "none"}
        )
        assert done.returncode == 0, done.stderr
        assert len(server.requests) == 250
    assert "labelling 250 sampled segments with openai/labeller" in done.stdout
    assert re.search(r"precision \d\.\d{3}, recall \d\.\d{3} on \d+ held-out", done.stdout)
    classifier = RelevanceClassifier.load(tmp_path / "clf.json")
    assert classifier.report is not None
    assert (
        classifier.report.train_size
        + classifier.report.calibration_size
        + (classifier.report.holdout_size)
        == 250
    )

    pipe = Pipeline.gem("openai/teacher", prefilter=True, classifier=tmp_path / "clf.json")
    names = [s.name for s in pipe.stages]
    assert names[:4] == [
        "segmenter",
        "procedure_prefilter",
        "classifier_filter",
        "relevance_filter",
    ]
