"""Reasoning models: thinking separated from the answer in every form, on both transports."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI, Reply
from gemlib import Document, Pipeline, Trajectory, read_corpus
from gemlib.analysis.report import format_costs
from gemlib.llm import LLM, ChatReply, RequestCache, ScriptedBackend, ask
from gemlib.llm.reasoning import separate_reasoning, split_reasoning
from gemlib.stages.llm_stage import LLMStage
from teacher import reasoning_teacher, teacher_reply

EXAMPLES = Path(__file__).parents[1] / "examples" / "corpus" / "gem_examples.jsonl"
CHOSEN = ("return-online-order", "calendar-meeting", "smart-thermostat", "bank-transfer")
TRANSPORTS = pytest.mark.parametrize("transport", ["litellm", "openai-compatible"])


@pytest.mark.parametrize(
    ("text", "reasoning", "answer"),
    [
        (
            "<think>plan <system> and <user></think>\n\n<user>hi</user>",
            "plan <system> and <user>",
            "\n\n<user>hi</user>",
        ),
        ("  <THINKING>\nplan\n</Thinking>answer", "plan", "answer"),
        ("<reasoning>a</reasoning><think>b</think>answer", "a\n\nb", "answer"),
        ("plan with </user> in it\n</think>\n\nanswer", "plan with </user> in it", "\n\nanswer"),
        (
            "<think>still thinking when it stopped <user>",
            "still thinking when it stopped <user>",
            "",
        ),
        ("plain answer", "", "plain answer"),
        (
            "<user>a</user><assistant><think>x</think>ok</assistant>",
            "",
            "<user>a</user><assistant><think>x</think>ok</assistant>",
        ),
        (
            "<user>the page said </think> in code</user>",
            "",
            "<user>the page said </think> in code</user>",
        ),
        ("<tool><html>\n</think></html></tool>", "", "<tool><html>\n</think></html></tool>"),
        ("answer <think>later</think>", "", "answer <think>later</think>"),
        # a closing tag alone on its line, but for blanks, after tags and text on theirs
        ("  </THINK> \t\nanswer", "", "\nanswer"),
        ("plan </think>\n</think>\nanswer", "plan </think>", "\nanswer"),
        ("plan\n\t </reasoning>  \nanswer", "plan", "\nanswer"),
        ("plan\n</think>\r\nanswer", "", "plan\n</think>\r\nanswer"),
        (
            "plan</user>\n<user>x</user>\n</Thinking>\nanswer",
            "plan</user>\n<user>x</user>",
            "\nanswer",
        ),
        ("plan\n</think>", "plan", ""),
        (
            "<user>x</user>\n  </think> x\n</think>\nanswer",
            "<user>x</user>\n  </think> x",
            "\nanswer",
        ),
    ],
)
def test_split_reasoning_takes_only_what_comes_before_the_answer(
    text: str, reasoning: str, answer: str
) -> None:
    assert split_reasoning(text) == (reasoning, answer)


def test_separation_keeps_reported_tokens_and_estimates_missing_ones() -> None:
    reported = ChatReply("<think>abc</think>answer", completion_tokens=50, reasoning_tokens=7)
    assert separate_reasoning(reported).reasoning_tokens == 7
    estimated = separate_reasoning(
        ChatReply("<think>" + "r" * 30 + "</think>" + "a" * 10, completion_tokens=40)
    )
    assert (estimated.text, estimated.reasoning_tokens) == ("a" * 10, 30)
    both = separate_reasoning(ChatReply("<think>inline</think>answer", reasoning="field"))
    assert (both.reasoning, both.text) == ("field\n\ninline", "answer")
    plain = ChatReply("answer", completion_tokens=5)
    assert separate_reasoning(plain) is plain


def test_splitting_is_linear_on_hostile_text() -> None:
    import time

    hostile = "<think>" * 20_000 + "</think" * 20_000 + " \t" * 50_000
    started = time.perf_counter()
    split_reasoning(hostile)
    split_reasoning("</think>" + hostile)
    split_reasoning("\n \t" * 50_000 + "\n" + " " * 100_000 + "</think")
    assert time.perf_counter() - started < 2.0  # linear: about 0.05 s


FORMS = [
    Reply("<think>plan: <system> then <user></think>\n\nanswer", completion_tokens=40),
    Reply("<thinking>plan: <user> asks</thinking>\nanswer", completion_tokens=40),
    Reply("plan: <assistant> calls <func>\n</think>\n\nanswer", completion_tokens=40),
    Reply("answer", reasoning_content="plan", completion_tokens=40, reasoning_tokens=30),
    Reply("answer", reasoning="plan", completion_tokens=40),
]


@TRANSPORTS
def test_every_reasoning_form_is_separated_and_counted(transport: str) -> None:
    with FakeOpenAI(lambda body, n: FORMS[n]) as server:
        llm = LLM("openai/x", api_base=server.url, api_key="k", cache=False, transport=transport)
        replies = [llm.complete([{"role": "user", "content": "hi"}]) for _ in FORMS]
    assert [r.text for r in replies] == ["answer"] * len(FORMS)
    assert [r.reasoning.split(":")[0] for r in replies] == ["plan"] * len(FORMS)
    assert "<user>" in replies[0].reasoning
    assert "<func>" in replies[2].reasoning
    assert replies[3].reasoning_tokens == 30, "the provider's count wins"
    assert all(r.reasoning_tokens > 0 for r in replies)
    usage = llm.usage_for("")
    assert usage.reasoning_tokens == sum(r.reasoning_tokens for r in replies)
    assert usage.completion_tokens == 40 * len(FORMS)


def test_a_reply_cached_before_separation_is_separated_on_a_hit(tmp_path: Path) -> None:
    cache = RequestCache(tmp_path / "cache.sqlite")
    backend = ScriptedBackend(lambda request: "unused")
    llm = LLM("openai/x", backend=backend, cache=cache)
    messages = [{"role": "user", "content": "hi"}]
    from gemlib.llm.protocol import ChatRequest

    key = ChatRequest("openai/x", messages, {}).cache_key()
    cache.put(key, ChatReply("<think>old</think>answer", completion_tokens=20))
    reply = llm.complete(messages)
    assert (reply.text, reply.reasoning, reply.cached) == ("answer", "old", True)
    assert not backend.requests


def test_a_reply_with_only_reasoning_is_repaired_with_a_precise_error() -> None:
    replies = iter(["<think>I never got to the answer", "<think>ok</think>42"])
    backend = ScriptedBackend(lambda request: next(replies))
    llm = LLM("openai/x", backend=backend, cache=False)
    answer = ask(llm, [{"role": "user", "content": "n?"}], int)  # type: ignore[arg-type]
    value = __import__("asyncio").run(answer)
    assert value.value == 42
    assert value.reasoning == "ok"
    repair = backend.requests[1].messages
    assert repair[1] == {"role": "assistant", "content": "(no answer)"}, "no reasoning sent back"
    assert "reasoning but no answer" in repair[2]["content"]


class Echo(LLMStage):
    def prompt(self, doc: Document) -> list[dict[str, str]]:
        return [{"role": "user", "content": doc.text}]

    def parse(self, text: str, doc: Document) -> Document:
        return doc.model_copy(update={"meta": {"answer": text}})


class Quiet(Echo):
    pass


@TRANSPORTS
def test_stage_params_reach_the_server_over_the_models_own(transport: str) -> None:
    with FakeOpenAI(lambda body, n: Reply("fine")) as server:
        llm = LLM(
            "openai/x",
            api_base=server.url,
            api_key="k",
            cache=False,
            transport=transport,
            params={"reasoning_effort": "high"},
        )
        quiet = {"chat_template_kwargs": {"enable_thinking": False}, "reasoning_effort": "low"}
        Pipeline([Quiet(model=llm, params=quiet), Echo(model=llm)]).run(["q"])
    first, second = server.requests
    assert first["chat_template_kwargs"] == {"enable_thinking": False}
    assert first["reasoning_effort"] == "low"
    assert second["reasoning_effort"] == "high"
    assert "chat_template_kwargs" not in second


def _docs() -> list[Document]:
    return [d for d in read_corpus(EXAMPLES) if d.id in CHOSEN]


def _run(server: FakeOpenAI, transport: str) -> tuple[list[Trajectory], Any]:
    llm = LLM(
        "openai/teacher",
        api_base=server.url,
        api_key="k",
        cache=False,
        backoff_base=0.01,
        transport=transport,
    )
    result = Pipeline.gem(llm).run(_docs())
    return sorted(result.trajectories, key=lambda t: t.id), result


@pytest.fixture(scope="module")
def clean_run() -> Iterator[tuple[list[Trajectory], int, Any]]:
    with FakeOpenAI(teacher_reply) as server:
        trajectories, result = _run(server, "openai-compatible")
        yield trajectories, len(server.requests), result


@TRANSPORTS
def test_a_reasoning_teacher_gives_the_clean_teachers_trajectories(
    transport: str, clean_run: tuple[list[Trajectory], int, Any]
) -> None:
    clean, clean_requests, clean_result = clean_run
    with FakeOpenAI(reasoning_teacher) as server:
        thinking, result = _run(server, transport)
        requests = len(server.requests)
    assert clean, "the clean teacher's run produced trajectories"
    assert [(t.id, t.tools, t.messages) for t in thinking] == [
        (t.id, t.tools, t.messages) for t in clean
    ]
    assert requests == clean_requests, "no extra repair requests"
    assert result.stats.funnel() == clean_result.stats.funnel()
    assert {(r.stage, r.rule, r.document_id) for r in result.rejections} == {
        (r.stage, r.rule, r.document_id) for r in clean_result.rejections
    }
    for stage, models in result.usage.items():
        assert models["openai/teacher"].reasoning_tokens > 0, stage
    costs = format_costs(result.stats).splitlines()
    assert "reasoning" in costs[0]
    assert int(costs[-1].split()[2]) > 0, "the report's total of reasoning tokens"
    records = [r for t in thinking for r in t.provenance.stages]  # type: ignore[union-attr]
    assert records
    assert all(r.reasoning and "<system>" in r.reasoning for r in records)
    assert all(r.usage["reasoning_tokens"] > 0 for r in records)


def _with_turn_reasoning(text: str) -> str:
    turns = iter(range(1000))
    return re.sub(
        r"<assistant>",
        lambda m: f"<assistant><think>Step {next(turns)}: check the rules.</think>",
        text,
    )


def reasoning_traces_teacher(body: dict[str, Any], n: int) -> Reply:
    """The clean teacher; asked for reasoning traces, it writes them, but only after a
    repair request for the first generation."""
    clean = teacher_reply(body, n)
    messages = body["messages"]
    asked = "<assistant><think>...</think>" in messages[0]["content"]
    lazy = messages[0]["content"].startswith("Write one complete") and len(messages) == 1
    if not asked or lazy or "<assistant>" not in clean.content:
        return clean
    return replace(clean, content=_with_turn_reasoning(clean.content))


def test_reasoning_traces_are_asked_for_kept_and_exported(tmp_path: Path) -> None:
    northwind = [d for d in _docs() if d.id == "return-online-order"]
    with FakeOpenAI(reasoning_traces_teacher) as server:
        llm = LLM("openai/teacher", api_base=server.url, api_key="k", cache=False)
        result = Pipeline.gem(llm, reasoning_traces=True).run(northwind)
        plain = Pipeline.gem(llm).run(northwind)
        prompts = [r["messages"] for r in server.requests]
    (trajectory,) = result.trajectories
    turns = [m for m in trajectory.messages if m.role == "assistant"]
    assert turns
    assert all(m.reasoning.startswith("Step ") for m in turns)
    assert all("<think>" not in m.content for m in trajectory.messages)
    repairs = [p for p in prompts if len(p) > 1]
    assert len(repairs) == 1
    assert "has no reasoning: begin every assistant turn with <think>" in repairs[0][-1]["content"]
    refinement = next(p for p in prompts if p[0]["content"].startswith("Rewrite the conversation"))
    assert "<assistant><think>Step 0: check the rules.</think>" in refinement[0]["content"]

    (without,) = plain.trajectories
    assert not any(m.reasoning for m in without.messages), "off by default: the paper's format"
    assert [m.content for m in without.messages] == [m.content for m in trajectory.messages]

    from gemlib.formats import read_jsonl, write_jsonl

    for name in ("openai", "sharegpt", "hermes", "gem"):
        path = tmp_path / f"{name}.jsonl"
        write_jsonl([trajectory], path, name)
        (back,) = read_jsonl(path, name)
        assert [m.reasoning for m in back.messages] == [m.reasoning for m in trajectory.messages]
