"""The collection of realistic teacher replies parses as expected (tests/realistic_replies.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import pytest

from gemlib.errors import ParseError, ReplyError
from gemlib.formats.gem_tags import parse_conversation
from gemlib.llm import LLM, ChatReply, ScriptedBackend, ask
from gemlib.llm.reasoning import separate_reasoning
from realistic_replies import CASES, Case


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reply(case: Case) -> None:
    reply = separate_reasoning(ChatReply(case.reply, completion_tokens=100))
    assert case.reasoning in reply.reasoning
    if case.error:
        with pytest.raises(ParseError) as info:
            parse_conversation(reply.text)
        for part in case.error:
            assert part in str(info.value)
        return
    messages = parse_conversation(reply.text)
    turns = [
        (m.role, m.content, tuple((c.name, c.arguments) for c in m.tool_calls)) for m in messages
    ]
    assert turns == list(case.turns)
    reasoning = tuple(m.reasoning for m in messages if m.reasoning)
    assert reasoning == case.turn_reasoning


def test_the_repair_request_quotes_the_problem() -> None:
    broken = next(c for c in CASES if c.name.startswith("JSON broken"))
    fixed = next(c for c in CASES if c.name == "clean")
    replies = iter([broken.reply, fixed.reply])
    backend = ScriptedBackend(lambda request: next(replies))
    llm = LLM("openai/x", backend=backend, cache=False)
    answer = asyncio.run(ask(llm, [{"role": "user", "content": "write"}], parse_conversation))
    assert len(answer.value) == len(fixed.turns)
    repair = backend.requests[1].messages[-1]["content"]
    for part in broken.error:
        assert part in repair


def test_a_reply_still_wrong_keeps_the_precise_error() -> None:
    truncated = next(c for c in CASES if c.name.startswith("a forgotten closing tag"))
    backend = ScriptedBackend(lambda request: truncated.reply)
    llm = LLM("openai/x", backend=backend, cache=False)
    with pytest.raises(ReplyError) as info:
        asyncio.run(ask(llm, [{"role": "user", "content": "write"}], parse_conversation))
    assert truncated.error[0] in info.value.reason


HOSTILE = {
    "turns quoting their own tag": lambda n: "<user>a <user></user>\n" * n,
    "openings only": lambda n: "<user>" * (10 * n),
    "calls never closed": lambda n: "<user>x</user><assistant>" + "<func " * (10 * n),
    "reasoning never closed": lambda n: "<user>x</user><assistant><think>" + "</think" * (10 * n),
    "markup never closed": lambda n: "<tool>" + "<user id='1'>" * (5 * n) + "</tool>",
}


def _seconds(text: str) -> float:
    """The best of three parses: a loaded machine only ever adds time."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        with contextlib.suppress(ParseError):
            parse_conversation(text)
        times.append(time.perf_counter() - started)
    return min(times)


@pytest.mark.parametrize("make", HOSTILE.values(), ids=list(HOSTILE))
def test_hostile_replies_take_time_linear_in_their_length(make: Callable[[int], str]) -> None:
    small, large = _seconds(make(600)), _seconds(make(2400))
    assert large < 8 * small + 0.5, f"4x the text took {large / max(small, 1e-9):.1f}x the time"
