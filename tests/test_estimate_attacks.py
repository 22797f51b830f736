"""The estimate and pilot runs under hostile options: no request ever, no absurd figure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from gemlib import Pipeline, read_corpus
from gemlib.llm import LLM
from gemlib.pipeline.estimate import Assumption
from teacher import canned_reply
from test_estimate import CORPUS, _llm


@pytest.mark.parametrize(
    "value", [-1.0, math.nan, math.inf, 1e308, (0.1, 0.2, 1e308), (-1.0, 0.0, 1.0)]
)
def test_an_assumption_outside_sense_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="from 0 to"):
        Assumption(pass_rate=value)  # type: ignore[arg-type]


def test_an_assumption_for_a_stage_the_pipeline_lacks_is_refused_before_reading() -> None:
    with FakeOpenAI(canned_reply) as server:
        pipe = Pipeline.gem(_llm(server))
        with pytest.raises(ValueError, match="relevence"):
            pipe.estimate(CORPUS, assumptions={"relevence": Assumption(pass_rate=0.5)})
        judged = pipe.estimate(CORPUS, assumptions={"judge": Assumption(pass_rate=0.5)})
        assert server.requests == []
    assert next(s for s in judged.stages if s.stage == "llm_judge").assumption.source == "given"


def test_an_empty_corpus_costs_nothing_and_no_time(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    with FakeOpenAI(canned_reply) as server:
        found = Pipeline.gem(_llm(server)).estimate(tmp_path / "empty.jsonl")
        assert server.requests == []
    assert found.total("requests") == (0, 0, 0)
    assert found.direct_seconds == found.batch_seconds == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("limit", [0, 1000])
def test_a_limit_of_zero_or_beyond_the_corpus(tmp_path: Path, limit: int) -> None:
    with FakeOpenAI(canned_reply) as server:
        result = Pipeline.gem(_llm(server)).run(
            CORPUS, run_dir=tmp_path / "run", limit=limit, progress_interval=None
        )
    assert result.stats.inputs == min(limit, 20)


def test_a_sample_then_the_full_run_into_the_same_directory_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    with FakeOpenAI(canned_reply) as server:
        pipe = Pipeline.gem(_llm(server))
        pipe.run(CORPUS, run_dir=tmp_path / "run", sample=7, seed=5, progress_interval=None)
        full = pipe.run(CORPUS, run_dir=tmp_path / "run", progress_interval=None)
    with FakeOpenAI(canned_reply) as server:
        alone = Pipeline.gem(_llm(server)).run(CORPUS, progress_interval=None)
    assert full.stats.resumed == 7
    lines = (tmp_path / "run" / "outputs.jsonl").read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == len(set(ids)), "no trajectory twice"
    assert sorted(ids) == sorted(t.id for t in alone.trajectories), "nothing lost"
    assert len(list(read_corpus(CORPUS))) == 20


def test_replies_are_assumed_no_longer_than_the_models_max_tokens() -> None:
    with FakeOpenAI(canned_reply) as server:
        llm = LLM("openai/gpt-4.1-mini", api_base=server.url, api_key="k", max_tokens=5)
        capped = Pipeline.gem(llm).estimate(CORPUS)
        free = Pipeline.gem(_llm(server)).estimate(CORPUS)
        assert server.requests == []
    for stage in capped.stages:
        if stage.model is not None:
            assert stage.assumption.output_tokens == (5.0, 5.0, 5.0)
            assert stage.completion_tokens[2] <= 5 * stage.requests[2]
    assert capped.total("cost")[1] < free.total("cost")[1]


def test_a_pilot_of_another_model_does_not_calibrate_its_stages(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeOpenAI(canned_reply) as server:
        pilot = tmp_path / "pilot"
        Pipeline.gem(_llm(server, "openai/teacher")).run(
            CORPUS, run_dir=pilot, limit=5, progress_interval=None
        )
        same = Pipeline.gem(_llm(server, "openai/teacher")).estimate(CORPUS, pilot=pilot)
        requests = len(server.requests)
        other = Pipeline.gem(_llm(server)).estimate(CORPUS, pilot=pilot)
        assert len(server.requests) == requests, "the estimate sent nothing"
    assert same.stages[0].assumption.source == "pilot"
    models = [s for s in other.stages if s.model is not None]
    assert {s.assumption.source for s in models} == {"default"}
    assert "ran with openai/teacher, not openai/gpt-4.1-mini" in caplog.text
