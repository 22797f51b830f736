"""The backend seam: one model-id parser, one HTTP-status mapper, shared by every backend."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI, Reply
from gemlib import Document, Pipeline
from gemlib.errors import (
    ModelAuthError,
    ModelError,
    ModelRequestError,
    PromptTooLong,
    RateLimited,
    TransientModelError,
)
from gemlib.llm import LLM, ChatReply, ChatRequest, ScriptedBackend
from gemlib.llm.http_status import error_for_status, retry_after_seconds
from gemlib.llm.model_id import ModelId
from gemlib.stages.llm_stage import LLMStage

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize(
    ("model", "provider", "name", "leaf"),
    [
        ("openai/gpt-4.1-mini", "openai", "gpt-4.1-mini", "gpt-4.1-mini"),
        ("hosted_vllm/Qwen/Qwen3-8B", "hosted_vllm", "Qwen/Qwen3-8B", "Qwen3-8B"),
        ("local//models/synth.gguf", "local", "/models/synth.gguf", "synth.gguf"),
        ("openrouter/anthropic/claude-3", "openrouter", "anthropic/claude-3", "claude-3"),
        ("gpt-4o", "", "gpt-4o", "gpt-4o"),
        ("/abs/model.gguf", "", "/abs/model.gguf", "model.gguf"),
        ("local/", "local", "", ""),
    ],
)
def test_a_model_string_is_split_once_and_given_back_unchanged(
    model: str, provider: str, name: str, leaf: str
) -> None:
    parsed = ModelId.parse(model)
    assert (parsed.provider, parsed.name, parsed.leaf) == (provider, name, leaf)
    assert str(parsed) == model


def test_the_served_name_drops_only_the_prefixes_a_server_speaks_for() -> None:
    speaks = ("openai", "hosted_vllm")
    assert ModelId.parse("hosted_vllm/Qwen/Qwen3-8B").served_as(speaks) == "Qwen/Qwen3-8B"
    assert ModelId.parse("openai/gpt-4o").served_as(speaks) == "gpt-4o"
    # A Hugging Face name forced onto an OpenAI-compatible server is sent as written.
    assert ModelId.parse("meta-llama/Llama-3-8B").served_as(speaks) == "meta-llama/Llama-3-8B"
    assert ModelId.parse("gpt-4o").served_as(speaks) == "gpt-4o"


@pytest.mark.parametrize(
    ("status", "detail", "error"),
    [
        (400, "This model's maximum context length is 8192 tokens", PromptTooLong),
        (413, "prompt is too long: 9000 tokens", PromptTooLong),
        (400, "unknown parameter: foo", ModelRequestError),
        (413, "payload too large", ModelRequestError),
        (422, "invalid", ModelRequestError),
        (429, "slow down", RateLimited),
        (401, "bad key", ModelAuthError),
        (403, "forbidden", ModelAuthError),
        (404, "no such model", ModelAuthError),
        (301, "moved", ModelAuthError),
        (307, "moved for now", ModelAuthError),
        (500, "boom", TransientModelError),
        (503, "maximum context length", TransientModelError),
        (None, "no status at all", TransientModelError),
    ],
)
def test_one_table_maps_statuses_to_errors(
    status: int | None, detail: str, error: type[ModelError]
) -> None:
    found = error_for_status(status, detail, "m", retry_after=3.0)
    assert type(found) is error
    assert found.status == status
    assert found.model == "m"
    assert detail in str(found)
    if isinstance(found, RateLimited):
        assert found.retry_after == 3.0


def test_auth_errors_say_which_key_to_set_and_retry_after_reads_seconds_only() -> None:
    assert "OPENAI_API_KEY" in str(error_for_status(401, "no", "m"))
    assert "MY_KEY" in str(error_for_status(403, "no", "m", key_hint="set MY_KEY"))
    assert "check the model name" in str(error_for_status(404, "no", "m"))
    assert retry_after_seconds({"retry-after": "2.5"}) == 2.5
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}) is None
    assert retry_after_seconds({}) is None
    assert retry_after_seconds(None) is None


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.mark.parametrize("transport", ["litellm", "openai-compatible"])
@pytest.mark.parametrize(
    ("status", "message", "error"),
    [
        (400, "prompt is too long: 9000 tokens, the limit is 8192", PromptTooLong),
        (401, "invalid key", ModelAuthError),
        (404, "model not found", ModelAuthError),
        (409, "conflict", ModelRequestError),
    ],
)
def test_both_transports_map_a_status_to_the_same_error(
    server: FakeOpenAI, transport: str, status: int, message: str, error: type[Exception]
) -> None:
    """Fails on the code before one mapper: through litellm a 400 that says the prompt is
    too long was a plain ModelRequestError (left for retry, never a rejection)."""

    def answer(body: dict[str, Any], n: int) -> Reply:
        return Reply(status=status, raw_body=f'{{"error": {{"message": "{message}"}}}}'.encode())

    server.reply = answer
    llm = LLM(
        "openai/gpt-4o-mini",
        api_base=server.url,
        api_key="sk-x",
        transport=transport,
        cache=False,
        max_retries=0,
    )
    with pytest.raises(error) as raised:
        llm.complete(MESSAGES)
    assert type(raised.value) is error
    assert raised.value.status == status  # type: ignore[attr-defined]
    if error is ModelAuthError:
        assert "(" in str(raised.value), "the error says what to fix"


def test_a_backend_without_aclose_is_refused_when_the_llm_is_built() -> None:
    """Before aclose joined the protocol it was looked up with getattr, so a backend
    without it ran; now the protocol says what to add, before any request is sent."""

    class OnlyComplete:
        async def acomplete(self, request: Any) -> Any:
            raise AssertionError("never called")

    with pytest.raises(
        TypeError, match=r"OnlyComplete is no gemlib backend: it lacks async def aclose"
    ):
        LLM("x/y", backend=OnlyComplete(), cache=False)  # type: ignore[arg-type]


class Echo(LLMStage):
    """Keeps a document if the model answers ``ok``."""

    def prompt(self, doc: Document) -> list[dict[str, str]]:
        return [{"role": "user", "content": doc.text}]

    def parse(self, text: str, doc: Document) -> Document:
        return doc


def test_a_backend_failing_to_close_does_not_break_the_finished_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Fails on the code before (checked): the OSError out of aclose escaped Pipeline.run after
    the items were done, skipping the other stages' closes and the run's statistics."""
    closed: list[str] = []

    class CloseFails:
        async def acomplete(self, request: ChatRequest) -> ChatReply:
            return ChatReply(text="ok", model=request.model)

        async def aclose(self) -> None:
            raise OSError("the socket is gone sk-live-0123456789abcdef0123")

    class ClosesFine(ScriptedBackend):
        async def aclose(self) -> None:
            closed.append("fine")

    class Second(Echo):
        name = "second"

    first = Echo(LLM("x/a", backend=CloseFails(), cache=False))
    second = Second(LLM("x/b", backend=ClosesFine(lambda r: "ok"), cache=False))
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        result = Pipeline([first, second]).run(["one", "two"], run_dir=tmp_path / "run")
    assert len(result.outputs) == 2
    assert result.stats.outputs == 2
    assert closed == ["fine"], "the other model was still closed"
    assert "closing its backend failed (OSError: the socket is gone" in caplog.text
    assert "sk-live-0123456789abcdef0123" not in caplog.text


def test_a_backend_whose_close_hangs_does_not_hang_the_finished_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Fails on the code before (checked): LLM.aclose awaited the backend's aclose with no
    bound, so a plug-in whose close never returned hung Pipeline.run after its items."""

    class CloseHangs:
        async def acomplete(self, request: ChatRequest) -> ChatReply:
            return ChatReply(text="ok", model=request.model)

        async def aclose(self) -> None:
            await asyncio.Event().wait()

    pipeline = Pipeline([Echo(LLM("x/a", backend=CloseHangs(), cache=False, timeout=0.5))])
    run = pipeline.arun(["one", "two"], run_dir=tmp_path / "run")
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        result = asyncio.run(asyncio.wait_for(run, 30))
    assert result.stats.outputs == 2
    assert "closing its backend failed (no answer within 0.5s)" in caplog.text


class _NoConcurrency:
    @classmethod
    def build(cls, options: Any) -> Any:
        return ScriptedBackend(lambda r: "ok")


class _BuildFails:
    default_concurrency = 2

    @classmethod
    def build(cls, options: Any) -> Any:
        raise RuntimeError("no credentials in sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX0123")


@pytest.mark.parametrize("entry", [42, _NoConcurrency])
def test_a_plugin_backend_that_is_no_backend_type_is_named(
    entry: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fails on the code before (checked): an AttributeError out of LLM(...), a traceback
    from `gemlib run`, for a plug-in entry that is no BackendType."""
    from gemlib.cli import main
    from gemlib.errors import ModelConfigError
    from gemlib.llm.backends import BACKENDS

    monkeypatch.setitem(BACKENDS._entries, "oddplug", entry)
    with pytest.raises(ModelConfigError, match=r"the backend of oddplug/ models, .+, is no gemlib"):
        LLM("oddplug/x", cache=False)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "a", "text": "Open the settings and tap save."}\n')
    code = main(["run", str(corpus), "--model", "oddplug/x", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert "is no gemlib backend type" in err[0]


def test_a_backend_failing_to_start_is_a_config_error_without_its_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fails on the code before (checked): the plug-in's RuntimeError escaped LLM(...) as it
    was, key included (a traceback showing it from `gemlib run`)."""
    from gemlib.errors import ModelConfigError
    from gemlib.llm.backends import BACKENDS

    monkeypatch.setitem(BACKENDS._entries, "buildfails", _BuildFails)
    with pytest.raises(ModelConfigError) as refused:
        LLM("buildfails/x", cache=False)
    assert "buildfails/x: its backend failed to start: RuntimeError: no credentials" in str(
        refused.value
    )
    assert "ABCDEFGHIJKLMNOPQRSTUVWX0123" not in str(refused.value)


def test_a_plugin_backend_with_an_empty_name_does_not_take_unprefixed_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fails on the code before (checked): an entry point named "" (a typo in a plug-in's
    pyproject) served every model without a prefix, `gpt-4o-mini` included."""
    from gemlib.llm.backends import BACKENDS, LiteLLMBackend, backend_type

    monkeypatch.setitem(BACKENDS._entries, "", _BuildFails)
    assert backend_type("gpt-4o-mini") is LiteLLMBackend
    assert type(LLM("gpt-4o-mini", cache=False).backend) is LiteLLMBackend
