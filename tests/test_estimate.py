"""The estimate before spending, and pilot runs: no request sent, figures that hold up."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from cli_runner import gemlib as run_gemlib
from fake_openai import FakeOpenAI, Reply
from gemlib import Document, Pipeline, read_corpus
from gemlib.llm import LLM
from gemlib.llm.tokens import tiktoken_encoding
from gemlib.pipeline.estimate import Assumption, estimate
from gemlib.pipeline.sampling import pilot_items
from teacher import RELEVANCE, canned_reply

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "corpus" / "gem_examples.jsonl"


def _llm(server: FakeOpenAI, model: str = "openai/gpt-4.1-mini") -> LLM:
    return LLM(model, api_base=server.url, api_key="k", cache=False, backoff_base=0.01)


def test_the_cli_estimate_of_the_bundled_corpus_sends_nothing_and_is_quick(tmp_path: Path) -> None:
    with FakeOpenAI(canned_reply) as server:
        started = time.perf_counter()
        done = run_gemlib(
            "estimate", str(CORPUS), "--model", "openai/gpt-4.1-mini",
            "--api-base", server.url, "--prefilter",
            cwd=tmp_path, env={"OPENAI_API_KEY": "k"},
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        assert done.returncode == 0, done.stderr
        assert server.requests == [], "an estimate must not call the model"
    out = done.stdout
    assert elapsed < 15, f"took {elapsed:.1f}s"
    assert "20 documents -> 16 segments reach the models (procedure_prefilter dropped 4)" in out
    assert "relevance_filter [default]: replies of 50-120 (80) tokens; passes 0.14" in out
    assert "tokenizers: openai/gpt-4.1-mini: o200k_base" in out
    assert "batch $0.2 / $0.8 (table)" in out, "batch prices come from litellm's table"
    assert "no model was called" in out


def test_first_stage_prompts_are_counted_exactly_with_the_models_tokenizer() -> None:
    with FakeOpenAI(canned_reply) as server:
        pipe = Pipeline.gem(_llm(server))
        result = pipe.estimate(CORPUS, assumptions={"relevance": Assumption(repairs=0)})
        assert server.requests == []
    encoding = tiktoken_encoding("o200k_base")
    relevance = pipe.stages[1]
    docs = list(read_corpus(CORPUS))
    segments = [s for d in docs for s in pipe.stages[0].process(d)]  # type: ignore[union-attr]
    expected = sum(
        len(encoding.encode(m["content"])) + 4
        for s in segments
        for m in relevance.prompt(s)  # type: ignore[attr-defined]
    )
    first = result.stages[0]
    assert first.stage == "relevance_filter"
    assert first.requests == (len(segments),) * 3
    assert first.prompt_tokens == (expected, expected, expected)
    assert result.documents == 20
    assert result.segments == len(segments)


def test_assumptions_drive_the_later_stages_and_costs_scale_with_price() -> None:
    with FakeOpenAI(canned_reply) as server:
        pipe = Pipeline.gem(_llm(server))
        half = pipe.estimate(CORPUS, assumptions={"relevance": Assumption(pass_rate=0.5)})
        all_pass = pipe.estimate(CORPUS, assumptions={"relevance": Assumption(pass_rate=1.0)})
    extraction_half = half.stages[1]
    assert extraction_half.stage == "workflow_extractor"
    assert extraction_half.items == (10, 10, 10)
    assert all_pass.stages[1].items == (20, 20, 20)
    for s in half.stages:
        low, mid, high = s.requests
        assert low <= mid <= high
    # gpt-4.1-mini: batch prices are half the direct ones in litellm's table
    low, _, high = half.total("cost")
    blow, _, bhigh = half.total("batch_cost")
    assert blow == pytest.approx(low / 2, rel=0.01)
    assert bhigh == pytest.approx(high / 2, rel=0.01)


def test_pilot_items_take_the_first_n_or_a_seeded_sample_in_corpus_order() -> None:
    items = list(range(100))
    assert list(pilot_items(iter(items), limit=7)) == list(range(7))
    sample = list(pilot_items(iter(items), sample=10, seed=3))
    assert len(sample) == 10
    assert sample == sorted(sample)
    assert sample == list(pilot_items(iter(items), sample=10, seed=3)), "same seed, same sample"
    assert sample != list(pilot_items(iter(items), sample=10, seed=4))
    with pytest.raises(ValueError, match="not both"):
        list(pilot_items(items, limit=1, sample=1))


def test_a_pilot_runs_n_documents_and_the_full_run_resumes_past_it(tmp_path: Path) -> None:
    with FakeOpenAI(canned_reply) as server:
        pipe = Pipeline.gem(_llm(server))
        pilot = pipe.run(CORPUS, run_dir=tmp_path / "run", limit=5, progress_interval=None)
        assert pilot.stats.inputs == 5
        pilot_docs = {t.provenance.document_id for t in pilot.trajectories if t.provenance}
        full = pipe.run(CORPUS, run_dir=tmp_path / "run", progress_interval=None)
    assert full.stats.resumed == 5
    assert full.stats.inputs == 20
    first_five = [d.id for d in list(read_corpus(CORPUS))[:5]]
    assert pilot_docs, "the pilot kept trajectories"
    assert pilot_docs <= set(first_five), "the pilot ran the first five only"
    lines = (tmp_path / "run" / "outputs.jsonl").read_text().splitlines()
    everyone = {json.loads(line)["provenance"]["document_id"] for line in lines}
    assert len(everyone) > len(pilot_docs), "the full run went past the pilot"


# ------------------------------------------------------------------ the pilot's accuracy


def _procedural(text: str) -> bool:
    """About 14% of segments are procedural, chosen by a hash of their text."""
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % 100 < 14


def _varied_teacher(body: dict[str, Any], n: int) -> Reply:
    prompt = body["messages"][0]["content"]
    if prompt.startswith("You are screening text"):
        marker = prompt.index("SEGMENT-")
        key = prompt[marker : marker + 14]
        return Reply(RELEVANCE["Northwind" if _procedural(key) else "printing press"])
    return canned_reply(body, n)


def _big_corpus(count: int) -> list[Document]:
    """Documents of one to three segments (paragraphs of ~2,500 characters)."""
    docs = []
    filler = "Open the settings page and choose the option you need. " * 45
    for i in range(count):
        parts = [f"SEGMENT-{i:04d}-{p}\n{filler}" for p in range(1 + i % 3)]
        docs.append(Document(id=f"doc-{i}", text="\n\n".join(parts)))
    return docs


def test_an_estimate_from_a_pilot_predicts_the_full_runs_requests_within_ten_percent(
    tmp_path: Path,
) -> None:
    corpus = _big_corpus(300)
    with FakeOpenAI(_varied_teacher) as server:
        pipe = Pipeline.gem(_llm(server, "openai/teacher"), max_chars=3000)
        pipe.run(corpus, run_dir=tmp_path / "pilot", sample=60, seed=1, progress_interval=None)
        predicted = estimate(pipe.stages, corpus, pilot=tmp_path / "pilot")
        before = len(server.requests)
        pipe.run(corpus, run_dir=tmp_path / "full", progress_interval=None)
        actual = len(server.requests) - before
    low, expected, high = predicted.total("requests")
    assert abs(expected - actual) / actual < 0.10, (low, expected, high, actual)
    assert low <= actual <= high


def test_the_cli_recalibrates_from_a_pilot_run_directory_and_rejects_bad_assumptions(
    tmp_path: Path,
) -> None:
    def gemlib(*args: str) -> subprocess.CompletedProcess[str]:
        return run_gemlib(*args, cwd=tmp_path, env={"OPENAI_API_KEY": "k"})

    with FakeOpenAI(canned_reply) as server:
        pilot = gemlib(
            "run", str(CORPUS), "--model", "openai/teacher", "--api-base", server.url,
            "--out", str(tmp_path / "pilot"), "--sample", "6", "--seed", "2", "--quiet",
        )  # fmt: skip
        assert pilot.returncode == 0, pilot.stderr
        spent = len(server.requests)
        done = gemlib("estimate", str(CORPUS), "--pilot", str(tmp_path / "pilot"))
        assert done.returncode == 0, done.stderr
        assert len(server.requests) == spent, "the estimate sent nothing"
    # six of six passed: the measured rate with its 95% interval
    assert "relevance_filter [pilot]: replies of 5 tokens; passes 0.61-1 (1) of" in done.stdout
    assert "20 documents -> 20 segments" in done.stdout
    bad = gemlib("estimate", str(CORPUS), "--model", "m", "--assume", "relevance.speed=2")
    assert bad.returncode == 2
    assert "--assume takes STAGE.FIELD=VALUE" in bad.stderr
