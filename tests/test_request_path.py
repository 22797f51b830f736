"""The request path after its CPU cuts: the same cache keys, usage figures and slots as before."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from gemlib.errors import TransientModelError
from gemlib.llm import LLM, ChatReply, ChatRequest, Limits, RequestCache, ScriptedBackend

MESSAGES = [{"role": "system", "content": "sys é"}, {"role": "user", "content": "hi"}]

WRITTEN_BY_9535F38 = (
    "954e7f74bd3ec20eb660c131eba54867bb36d6c8423f5fd16cb50e179f721273",
    '{"cached":false,"completion_tokens":5,"cost":0.0,"finish_reason":"stop",'
    '"latency":3.240099613321945e-05,"model":"openai/teacher","prompt_tokens":1,'
    '"reasoning":"","reasoning_tokens":0,"text":"answer <think>x</think>"}',
)
"""The row 9535f38 (this session's start) wrote to its request cache for the request below."""


def never(request: ChatRequest) -> str:
    raise AssertionError("the model was asked although its cache holds the reply")


def test_a_cache_written_by_earlier_code_is_hit(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    RequestCache(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO replies VALUES (?, ?)", WRITTEN_BY_9535F38)
    llm = LLM(
        "openai/teacher",
        api_base="http://127.0.0.1:9/v1",
        backend=ScriptedBackend(never),
        temperature=0.7,
        max_tokens=300,
        params={"top_p": 0.9},
        cache=path,
    )
    reply = llm.complete(MESSAGES, stage="s", sample=2, seed=7)
    assert (reply.text, reply.cached) == ("answer <think>x</think>", True)  # a later tag: answer
    assert llm.usage_for("s").cache_hits == 1


def test_usage_is_booked_per_attempt_and_per_reply() -> None:
    calls = []

    def script(request: ChatRequest) -> ChatReply | Exception:
        calls.append(request)
        if len(calls) % 3 == 1:
            return TransientModelError("a hiccup", model=request.model)
        text = "<think>why</think>\n\nanswer" if len(calls) == 2 else "plain"
        return ChatReply(text, prompt_tokens=10, completion_tokens=20, cost=0.25)

    llm = LLM("openai/teacher", backend=ScriptedBackend(script), cache=False, backoff_base=0.001)
    replies = [llm.complete(MESSAGES, stage="s") for _ in range(2)]
    usage = llm.usage_for("s")
    assert [r.text for r in replies] == ["answer", "plain"]
    assert usage.model_dump() == {
        "requests": 3,  # one failed, then two replies
        "cache_hits": 0,
        "retries": 1,
        "errors": 0,
        "prompt_tokens": 20,
        "completion_tokens": 40,
        "reasoning_tokens": replies[0].reasoning_tokens,
        "cost": 0.5,
        "batched": 0,
    }
    assert replies[0].reasoning_tokens >= 1
    assert usage.model_fields_set == {
        "requests",
        "retries",
        "prompt_tokens",
        "completion_tokens",
        "reasoning_tokens",
        "cost",
    }


def test_slots_are_taken_in_turn_and_all_given_back() -> None:
    async def script(request: ChatRequest) -> str:
        await asyncio.sleep(0.01)
        return "ok"

    llm = LLM(
        "openai/teacher",
        backend=ScriptedBackend(script),
        cache=False,
        limits=Limits(max_concurrency=3),
    )

    async def main() -> list[str]:
        replies = await asyncio.gather(*(llm.acomplete(MESSAGES) for _ in range(10)))
        return [r.text for r in replies]

    assert asyncio.run(main()) == ["ok"] * 10
    assert (llm.limiter.peak, llm.limiter.active) == (3, 0)


def test_a_model_serves_one_event_loop_after_another() -> None:
    llm = LLM("openai/teacher", backend=ScriptedBackend(lambda r: "ok"), cache=False)
    for _ in range(2):
        assert asyncio.run(llm.acomplete(MESSAGES)).text == "ok"
    assert llm.limiter.active == 0
