"""The LLM layer through litellm against the loopback OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from fake_openai import FakeOpenAI, Handler, Reply
from gemlib import Document, Pipeline, RunAborted
from gemlib.errors import (
    ModelAuthError,
    ModelRequestError,
    RateLimited,
    ReplyError,
    TransientModelError,
)
from gemlib.llm import LLM, ChatReply, Limits, RequestCache, ScriptedBackend, ask, json_reply
from gemlib.llm.limits import Limiter
from gemlib.llm.structured import ParseError
from gemlib.stages.llm_stage import LLMStage
from virtual_clock import VirtualClock

SECRET = "sk-test-SECRET-7f3a9c"
MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[FakeOpenAI] = []

    def start(reply: Handler | None = None, latency: float = 0.0) -> FakeOpenAI:
        server = FakeOpenAI(reply, latency).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


TRANSPORTS = pytest.mark.parametrize("transport", ["litellm", "openai-compatible"])


def make_llm(server: FakeOpenAI, tmp_path: Path | None = None, **options: Any) -> LLM:
    options.setdefault("backoff_base", 0.01)
    options.setdefault("transport", "litellm")
    return LLM(
        "openai/gpt-4o-mini",
        api_base=server.url,
        api_key=SECRET,
        cache=(tmp_path / "cache.sqlite") if tmp_path else False,
        **options,
    )


@TRANSPORTS
def test_reply_text_usage_and_cost_come_back(serve: Any, transport: str) -> None:
    server = serve(lambda body, n: Reply("hi there", prompt_tokens=12, completion_tokens=3))
    llm = make_llm(server, transport=transport)
    reply = llm.complete(MESSAGES, stage="s", temperature=0.2)
    assert reply.text == "hi there"
    assert (reply.prompt_tokens, reply.completion_tokens) == (12, 3)
    assert reply.cost > 0, "gpt-4o-mini is priced in litellm's local table"
    assert server.requests[0]["temperature"] == 0.2
    assert server.requests[0]["messages"] == MESSAGES
    assert server.headers_seen[0]["authorization"] == f"Bearer {SECRET}"
    usage = llm.usage["s"]
    assert (usage.requests, usage.prompt_tokens, usage.completion_tokens) == (1, 12, 3)


@TRANSPORTS
def test_transient_failures_are_retried_with_backoff(serve: Any, transport: str) -> None:
    faults = [
        Reply(status=500),
        Reply(status=503),
        Reply(raw_body=b"{oops"),
        Reply(empty_choices=True),
    ]
    server = serve(lambda body, n: faults[n] if n < len(faults) else Reply("finally"))
    llm = make_llm(server, transport=transport, backoff_base=0.05)
    assert llm.complete(MESSAGES, stage="s").text == "finally"
    assert len(server.requests) == 5
    assert llm.usage["s"].retries == 4
    gaps = [b - a for a, b in zip(server.arrivals, server.arrivals[1:], strict=False)]
    # Attempt n sleeps between half and all of base * 2**n, so the fourth wait is
    # at least 0.2 s against at most 0.05 s for the first. Only the lower bound
    # is asserted: a loaded machine (or litellm's first-call set-up) stretches
    # any gap, so comparing two measured gaps fails for reasons of its own.
    assert gaps[3] >= 0.2, "backoff grows"


@TRANSPORTS
def test_retries_are_bounded(serve: Any, transport: str) -> None:
    server = serve(lambda body, n: Reply(status=502))
    llm = make_llm(server, transport=transport, max_retries=2)
    with pytest.raises(TransientModelError):
        llm.complete(MESSAGES)
    assert len(server.requests) == 3
    assert llm.usage[""].errors == 1


@TRANSPORTS
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ModelRequestError),
        (422, ModelRequestError),
        (401, ModelAuthError),
        (404, ModelAuthError),
    ],
)
def test_client_errors_are_not_retried(
    serve: Any, status: int, error: type[Exception], transport: str
) -> None:
    server = serve(lambda body, n: Reply(status=status))
    with pytest.raises(error) as info:
        make_llm(server, transport=transport).complete(MESSAGES)
    assert len(server.requests) == 1
    assert SECRET not in str(info.value)


@TRANSPORTS
def test_retry_after_is_honoured(serve: Any, transport: str) -> None:
    server = serve(
        lambda body, n: Reply(status=429, headers={"Retry-After": "1"}) if n == 0 else Reply("ok")
    )
    llm = make_llm(server, transport=transport)
    clock = _on_virtual_time(llm)
    llm.complete(MESSAGES)
    assert len(server.requests) == 2
    assert 1.0 <= clock.now() <= 1.1, "the Retry-After header, not the 0.01 s backoff"


@TRANSPORTS
def test_concurrency_cap_is_never_exceeded(serve: Any, transport: str) -> None:
    server = serve(latency=0.05)
    llm = make_llm(server, transport=transport, limits=Limits(max_concurrency=5))

    async def main() -> None:
        await asyncio.gather(
            *(llm.acomplete([{"role": "user", "content": str(i)}]) for i in range(40))
        )

    asyncio.run(main())
    assert server.peak == 5


def _on_virtual_time(llm: LLM) -> VirtualClock:
    """Give ``llm`` a limiter on virtual time; return its clock."""
    clock = VirtualClock()
    llm.limiter = Limiter(llm.limits, clock=clock)
    return clock


def test_requests_per_minute_limit() -> None:
    sent: list[float] = []
    llm = LLM(
        "x/y",
        backend=ScriptedBackend(lambda request: sent.append(clock.now()) or "ok"),
        cache=False,
        limits=Limits(max_concurrency=50, rpm=1200),  # 20/s, a burst of 20
    )
    clock = _on_virtual_time(llm)

    async def main() -> None:
        await asyncio.gather(
            *(llm.acomplete([{"role": "user", "content": str(i)}]) for i in range(40))
        )

    asyncio.run(main())
    # The burst goes at once; then one request every 1/20 s: (40 - 20) / 20 = 1 s.
    expected = [0.0] * 20 + [(k - 19) / 20 for k in range(20, 40)]
    assert sent == pytest.approx(expected, abs=1e-6)


def test_tokens_per_minute_limit_and_the_settled_budget() -> None:
    clock = VirtualClock()
    limiter = Limiter(Limits(max_concurrency=10, tpm=120_000), clock=clock)  # 2000/s, burst 2000

    async def main() -> list[float]:
        granted = []

        async def one(tokens: int) -> None:
            await limiter.acquire(tokens)
            granted.append(clock.now())

        await asyncio.gather(*(one(1000) for _ in range(5)))
        # A request estimated at 1000 tokens that used 200 gives 800 back: the
        # next 1000 wait for the 200 missing only, 0.1 s instead of 0.5 s.
        limiter.settle_tokens(1000, 200)
        await one(1000)
        return granted

    granted = asyncio.run(main())
    assert granted == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.5, 1.6], abs=1e-6)


def test_a_reply_claiming_absurd_usage_holds_the_next_request_a_minute_at_most() -> None:
    """The usage in a reply is the server's word: ``completion_tokens: 10**15`` (a broken or
    hostile server) under a tpm limit is charged one minute's worth, not 16,000 years."""
    clock = VirtualClock()
    limiter = Limiter(Limits(tpm=120_000), clock=clock)  # 2000/s

    async def main() -> float:
        await limiter.acquire(1000)
        limiter.release(ok=True)
        limiter.settle_tokens(1000, 10**15)
        await limiter.acquire(1000)
        return clock.now()

    assert asyncio.run(main()) <= 61.0


def test_a_429_pause_holds_every_request_on_the_limiters_clock() -> None:
    started: dict[str, list[float]] = {}

    def script(request: Any) -> Any:
        text = request.messages[0]["content"]
        started.setdefault(text, []).append(clock.now())
        if len(started[text]) == 1 and text == "first":
            return RateLimited("HTTP 429", retry_after=2.0)
        return "ok"

    llm = LLM("x/y", backend=ScriptedBackend(script), cache=False, limits=Limits(8))
    clock = _on_virtual_time(llm)

    async def main() -> None:
        first = asyncio.create_task(llm.acomplete([{"role": "user", "content": "first"}]))
        while llm.limiter.pause_left() == 0:  # noqa: ASYNC110  # until the 429 is back
            await asyncio.sleep(0)
        assert llm.pause_note() == "x/y paused 2s after a 429"
        others = [llm.acomplete([{"role": "user", "content": f"other {i}"}]) for i in range(3)]
        await asyncio.gather(first, *others)

    asyncio.run(main())
    assert started["first"][0] == 0.0
    # Retry-After 2 s plus up to 0.1 s of jitter, for the refused request and the
    # ones that never saw the 429 alike.
    for times in started.values():
        assert 2.0 <= times[-1] <= 2.1
    assert len(started) == 4
    assert llm.pause_note() is None


def test_adaptive_concurrency_halves_on_429_and_grows_back() -> None:
    limiter = Limiter(Limits(max_concurrency=8, adaptive=True))

    async def main() -> list[int]:
        seen = []
        limiter.rate_limited(0.0)
        seen.append(limiter.concurrency)
        limiter.rate_limited(0.0)
        seen.append(limiter.concurrency)
        for _ in range(30):
            await limiter.acquire(1)
            limiter.release(ok=True)
        seen.append(limiter.concurrency)
        return seen

    halved_once, halved_twice, grown = asyncio.run(main())
    assert (halved_once, halved_twice) == (4, 2)
    assert 2 < grown <= 8


@TRANSPORTS
def test_timeouts_are_retried_then_raised(serve: Any, transport: str) -> None:
    server = serve(lambda body, n: Reply("warm") if n == 0 else Reply(delay=3.0))
    # A first, quick request pays the transport's one-off costs in this process (litellm's
    # lazy imports take more than 0.3 s on a loaded machine), so the timed ones are alike.
    assert make_llm(server, transport=transport).complete(MESSAGES).text == "warm"
    llm = make_llm(server, transport=transport, timeout=0.3, max_retries=1)
    started = time.monotonic()
    with pytest.raises(TransientModelError):
        llm.complete(MESSAGES)
    assert time.monotonic() - started < 2.5
    assert len(server.requests) == 3


def test_cache_hits_skip_the_server_and_samples_bypass_it(serve: Any, tmp_path: Path) -> None:
    server = serve(lambda body, n: Reply(f"answer {n}"))
    llm = make_llm(server, tmp_path)
    first = llm.complete(MESSAGES, stage="s")
    second = llm.complete(MESSAGES, stage="s")
    assert len(server.requests) == 1
    assert second.cached
    assert second.text == first.text == "answer 0"
    fresh = llm.complete(MESSAGES, stage="s", sample=1)
    assert fresh.text == "answer 1"
    assert not fresh.cached
    assert len(server.requests) == 2
    assert llm.usage["s"].cache_hits == 1
    # Shared across instances and runs: a new LLM on the same file hits too.
    again = make_llm(server, tmp_path).complete(MESSAGES)
    assert again.cached
    assert len(server.requests) == 2
    # Other parameters are another request.
    make_llm(server, tmp_path).complete(MESSAGES, temperature=1.0)
    assert len(server.requests) == 3


def test_cache_key_ignores_the_api_key(tmp_path: Path) -> None:
    calls = []
    backend = ScriptedBackend(lambda request: calls.append(1) or "same")
    one = LLM("m", api_key="a", cache=tmp_path / "c.sqlite", backend=backend)
    two = LLM("m", api_key="b", cache=tmp_path / "c.sqlite", backend=backend)
    one.complete(MESSAGES)
    two.complete(MESSAGES)
    assert len(calls) == 1


def test_cache_is_safe_with_concurrent_writer_processes(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from gemlib.llm import RequestCache, ChatReply\n"
        "c = RequestCache(sys.argv[1])\n"
        "for i in range(200): c.put(f'{sys.argv[2]}-{i}', ChatReply(text=str(i)))\n"
    )
    path = tmp_path / "shared.sqlite"
    RequestCache(path).close()
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(w)]) for w in range(4)]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    cache = RequestCache(path)
    assert len(cache) == 800
    assert cache.get("3-199") == ChatReply(text="199")


class Verdict(BaseModel):
    ok: bool
    reason: str


def test_repair_loop_fixes_a_bad_reply(serve: Any) -> None:
    replies = ["no json here", '```json\n{"ok": true, "reason": "fine"}\n```']
    server = serve(lambda body, n: Reply(replies[n]))
    answer = asyncio.run(ask(make_llm(server), MESSAGES, json_reply(Verdict), stage="judge"))
    assert answer.value == Verdict(ok=True, reason="fine")
    assert len(answer.replies) == 2
    repair = server.requests[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "no json here"}
    assert "the reply holds no JSON object" in repair[-1]["content"]


def test_repair_loop_is_bounded_and_keeps_the_raw_reply(serve: Any) -> None:
    server = serve(lambda body, n: Reply('{"ok": "maybe"}'))
    with pytest.raises(ReplyError) as info:
        asyncio.run(ask(make_llm(server), MESSAGES, json_reply(Verdict), max_repairs=2))
    assert len(server.requests) == 3
    assert info.value.rule == "unparseable_reply"
    assert "ok: Input should be a valid boolean" in info.value.reason
    assert "reason: Field required" in info.value.reason
    assert info.value.raw == '{"ok": "maybe"}'


def test_a_truncated_reply_is_a_failure_not_parsed_nor_cached(serve: Any, tmp_path: Path) -> None:
    server = serve(lambda body, n: Reply('{"ok": true, "reason": "cut', finish_reason="length"))
    llm = make_llm(server, tmp_path)
    with pytest.raises(ReplyError) as info:
        asyncio.run(ask(llm, MESSAGES, json_reply(Verdict)))
    assert info.value.rule == "truncated_reply"
    assert len(server.requests) == 1, "a cut-off reply is not sent back for repair"
    llm.complete(MESSAGES, stage="again")
    assert len(server.requests) == 2, "a cut-off reply must not be served from the cache"


class Summarise(LLMStage):
    def prompt(self, doc: Document) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"Summarise: {doc.text}"}]

    def parse(self, text: str, doc: Document) -> Document:
        if not text.startswith("SUMMARY:"):
            raise ParseError("start the reply with 'SUMMARY:'")
        return doc.model_copy(update={"meta": {"summary": text[8:].strip()}})


def _summary_server(body: dict[str, Any], n: int) -> Reply:
    text = body["messages"][0]["content"]
    if "broken" in text:
        return Reply("I refuse to follow the format")
    if "long" in text:
        return Reply("SUMMARY: and then", finish_reason="length")
    return Reply(f"SUMMARY: {text[11:].upper()}", prompt_tokens=20, completion_tokens=4)


def test_llm_stage_in_a_pipeline_records_usage_and_rejects_with_raw_replies(
    serve: Any, tmp_path: Path
) -> None:
    server = serve(_summary_server)
    stage = Summarise(make_llm(server, tmp_path), max_repairs=1)
    pipe = Pipeline([stage])
    texts = ["open the app", "tap go", "broken one", "long one"]
    result = pipe.run(texts, run_dir=tmp_path / "run")
    assert sorted(d.meta["summary"] for d in result.outputs) == ["OPEN THE APP", "TAP GO"]
    rules = {r.item_id: (r.rule, r.raw) for r in result.rejections}
    assert rules[Document(text="broken one").id] == (
        "unparseable_reply",
        "I refuse to follow the format",
    )
    assert rules[Document(text="long one").id][0] == "truncated_reply"
    usage = result.usage["summarise"]["openai/gpt-4o-mini"]
    assert usage.requests == 5  # 2 good, broken + 1 repair, 1 truncated
    assert usage.cost > 0
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert (
        manifest["last_session"]["stats"]["usage"]["summarise"]["openai/gpt-4o-mini"]["requests"]
        == 5
    )
    assert manifest["stages"][0]["config"]["model"]["model"] == "openai/gpt-4o-mini"

    # Resume: nothing left to do, no request sent, usage kept from the first session.
    again = Pipeline([Summarise(make_llm(server, tmp_path), max_repairs=1)]).run(
        texts, run_dir=tmp_path / "run"
    )
    assert len(server.requests) == 5
    assert again.usage["summarise"]["openai/gpt-4o-mini"].requests == 5


def test_api_key_is_absent_from_every_file_a_run_writes(serve: Any, tmp_path: Path) -> None:
    server = serve(_summary_server)
    llm = make_llm(server, tmp_path)
    assert SECRET not in repr(llm)
    assert SECRET not in json.dumps(llm.describe())
    Pipeline([Summarise(llm)]).run(["open the app", "broken one"], run_dir=tmp_path / "run")
    assert any(SECRET in h.get("authorization", "") for h in server.headers_seen)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 5
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path


def test_bad_credentials_stop_the_run_at_once(serve: Any) -> None:
    server = serve(lambda body, n: Reply(status=401))
    with pytest.raises(RunAborted, match="401"):
        Pipeline([Summarise(make_llm(server))]).run(
            [f"doc {i}" for i in range(50)], max_in_flight=2
        )
    assert len(server.requests) <= 3


def test_scripted_backend_serves_unit_tests_without_a_server() -> None:
    backend = ScriptedBackend(lambda request: f"echo {request.messages[-1]['content']}")
    llm = LLM("scripted", backend=backend, cache=False)
    assert llm.complete(MESSAGES).text == "echo hello"
    assert backend.requests[0].messages == tuple(MESSAGES)
    full = ChatReply(text="x", finish_reason="length")
    assert LLM("s", backend=ScriptedBackend(lambda r: full), cache=False).complete(MESSAGES) == full


def test_the_direct_transport_closes_its_connections_when_a_run_ends(serve: Any) -> None:
    from gemlib.llm.backends import OpenAICompatBackend

    server = serve(_summary_server)
    llm = LLM("openai/x", api_base=server.url, api_key="k", cache=False)
    assert isinstance(llm.backend, OpenAICompatBackend), "auto picks it for openai/ + api_base"
    Pipeline([Summarise(llm)]).run(["open the app", "tap go"])
    assert llm.backend._client is None or llm.backend._client._pools == {}
    llm.complete([{"role": "user", "content": "Summarise: x"}])
    assert llm.backend._client is None or llm.backend._client._pools == {}
    assert LLM("openai/gpt-4.1").backend.__class__.__name__ == "LiteLLMBackend"
    assert LLM("hosted_vllm/q", api_base="http://127.0.0.1:1/v1").backend.__class__ is (
        OpenAICompatBackend
    )


def test_the_direct_transport_prices_replies_without_importing_litellm(serve: Any) -> None:
    # Importing litellm takes seconds; done at the first reply it stalled every
    # request in flight. Checked in a fresh interpreter, where nothing imported it yet.
    server = serve(lambda body, n: Reply("hi", prompt_tokens=1000, completion_tokens=1000))
    script = (
        "import sys; from gemlib.llm import LLM\n"
        f"llm = LLM('openai/gpt-4o-mini', api_base={server.url!r}, api_key='x', cache=False)\n"
        "reply = llm.complete([{'role': 'user', 'content': 'hi'}])\n"
        "print(reply.cost, 'litellm' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    cost, imported = done.stdout.split()
    assert float(cost) == pytest.approx(1000 * 0.15e-6 + 1000 * 0.6e-6), "gpt-4o-mini's price"
    assert imported == "False"


def test_local_models_default_to_one_request_in_flight() -> None:
    assert LLM("local/gemma3-270m", cache=False).limits.max_concurrency == 1
    assert (
        LLM("openai/x", api_base="http://127.0.0.1:1/v1", cache=False).limits.max_concurrency == 16
    )
    assert LLM("local/m", limits=Limits(max_concurrency=3)).limits.max_concurrency == 3
