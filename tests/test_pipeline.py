"""Composing pipelines and what a run returns: fan-out, rejections, failures, Jupyter."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gemlib import (
    Document,
    FatalError,
    Pipeline,
    PipelineError,
    Rejection,
    RunAborted,
    Stage,
    Trajectory,
    stage,
)


class Upper(Stage):
    def process(self, doc: Document) -> Document:
        return doc.model_copy(update={"text": doc.text.upper()})


class Sentences(Stage):
    """Fan-out: one segment per sentence."""

    def process(self, doc: Document) -> list[Document]:
        parts = [p.strip() for p in doc.text.split(".") if p.strip()]
        return [Document(text=p, parent_id=doc.id, segment_index=i) for i, p in enumerate(parts)]


class DropShort(Stage):
    async def process(self, doc: Document) -> Document | Rejection:
        await asyncio.sleep(0)
        if len(doc.text) < 4:
            return Rejection(rule="too_short", reason=f"{len(doc.text)} characters")
        return doc


def test_subclass_with_one_method_runs_and_is_named_from_the_class() -> None:
    assert Upper().name == "upper"
    assert DropShort().name == "drop_short"
    result = Pipeline([Upper()]).run(["a b", "c"])
    assert [d.text for d in result.outputs] == ["A B", "C"]


def test_fan_out_and_rejections_flow_into_outputs_and_funnel() -> None:
    texts = ["Open the app. Tap go. Done now", "No"]
    result = (Pipeline([Upper(), Sentences()]) | DropShort()).run(texts)
    assert sorted(d.text for d in result.outputs) == ["DONE NOW", "OPEN THE APP", "TAP GO"]
    assert {(r.stage, r.rule) for r in result.rejections} == {("drop_short", "too_short")}
    rejected = result.rejections[0]
    assert rejected.document_id == Document(text="No").id
    assert rejected.item_id.startswith("doc-")
    assert result.stats.funnel() == [
        ("upper", 2, 2, 0),
        ("sentences", 2, 4, 0),
        ("drop_short", 4, 3, 1),
    ]
    assert result.rejections_by_rule() == {"drop_short/too_short": 1}
    assert all(d.parent_id for d in result.outputs)


def test_function_stages_and_pipe_composition() -> None:
    @stage
    def shout(doc: Document) -> Document:
        return doc.model_copy(update={"text": doc.text + "!"})

    pipe = Pipeline([Upper()]) | shout | Pipeline([lambda d: d])
    assert [s.name for s in pipe.stages] == ["upper", "shout", "<lambda>"]
    assert pipe.run(["hi"]).outputs[0].text == "HI!"


def test_composition_rejects_stages_that_do_not_fit() -> None:
    @stage
    def judge(t: Trajectory) -> Trajectory:
        return t

    with pytest.raises(
        PipelineError,
        match="'judge' takes Trajectory, but the stage before it, 'upper', emits Document",
    ):
        Pipeline([Upper(), judge])
    with pytest.raises(PipelineError, match="both named 'upper'"):
        Pipeline([Upper(), Upper()])
    with pytest.raises(PipelineError, match="at least one stage"):
        Pipeline([])
    with pytest.raises(PipelineError, match="expected a Stage or a function"):
        Pipeline([Upper(), 3])  # type: ignore[list-item]


def test_an_exception_rejects_only_its_item() -> None:
    @stage
    def fragile(doc: Document) -> Document:
        if "bad" in doc.text:
            raise ValueError("cannot handle this one")
        return doc

    result = Pipeline([fragile]).run(["good", "bad", "fine"])
    assert sorted(d.text for d in result.outputs) == ["fine", "good"]
    (rejection,) = result.rejections
    assert rejection.rule == "exception"
    assert rejection.reason == "ValueError: cannot handle this one"
    assert result.stats.stages["fragile"].errors == 1


def test_run_stops_when_the_failure_rate_passes_its_bound() -> None:
    calls = 0

    @stage
    def broken(doc: Document) -> Document:
        nonlocal calls
        calls += 1
        raise RuntimeError("service down")

    with pytest.raises(RunAborted, match="service down"):
        Pipeline([broken]).run(
            [f"doc {i}" for i in range(500)], max_in_flight=4, min_calls_for_abort=10
        )
    assert calls < 50, "the run must stop soon after the bound, not reject the whole corpus"


def test_a_fatal_error_stops_at_once() -> None:
    calls = 0

    @stage
    def unauthorised(doc: Document) -> Document:
        nonlocal calls
        calls += 1
        raise FatalError("invalid API key")

    with pytest.raises(RunAborted, match="invalid API key"):
        Pipeline([unauthorised]).run([f"doc {i}" for i in range(100)], max_in_flight=1)
    assert calls == 1


def test_returning_none_is_a_rejection_with_advice() -> None:
    result = Pipeline([lambda d: None]).run(["x"])
    assert result.rejections[0].rule == "no_result"
    assert "return an item, a list or a Rejection" in result.rejections[0].reason


def test_run_works_inside_a_running_event_loop_like_jupyter() -> None:
    async def notebook_cell() -> list[str]:
        result = Pipeline([Upper()]).run(["inside a loop"])  # sync call, loop running
        return [d.text for d in result.outputs]

    assert asyncio.run(notebook_cell()) == ["INSIDE A LOOP"]


def test_arun_is_the_async_form_and_accepts_async_iterables() -> None:
    async def corpus():  # type: ignore[no-untyped-def]
        for text in ["one", "two"]:
            yield Document(text=text)

    async def main() -> list[str]:
        result = await Pipeline([Upper()]).arun(corpus())
        return sorted(d.text for d in result.outputs)

    assert asyncio.run(main()) == ["ONE", "TWO"]


def test_bare_string_input_is_refused_with_advice() -> None:
    with pytest.raises(TypeError, match="a bare string would be read one character at a time"):
        Pipeline([Upper()]).run("just one text")  # type: ignore[arg-type]


def test_mappings_are_read_as_the_first_stage_input_model() -> None:
    @stage
    def count_calls(t: Trajectory) -> Trajectory:
        return t.model_copy(update={"labels": {"calls": len(t.tool_calls)}})

    record = {"messages": [{"role": "user", "content": "hi"}]}
    result = Pipeline([count_calls]).run([record])
    assert result.trajectories[0].labels == {"calls": 0}


def test_duplicate_ids_in_a_corpus_are_processed_once() -> None:
    result = Pipeline([Upper()]).run(["same", "same", "other"])
    assert len(result.outputs) == 2
    assert result.stats.duplicates == 1


def test_many_duplicates_make_one_warning_with_examples(caplog: pytest.LogCaptureFixture) -> None:
    # One warning per duplicate used to flood the log of a corpus with repeated IDs.
    docs = [Document(id=f"d{i % 10}", text=f"text {i}") for i in range(1000)]
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        result = Pipeline([Upper()]).run(docs)
    assert result.stats.duplicates == 990
    about = [r.getMessage() for r in caplog.records if "came earlier" in r.getMessage()]
    assert about == [
        "skipped 990 item(s) whose ID came earlier in this corpus ('d0', 'd1', 'd2', ...); "
        "give each document its own id to process them"
    ]
