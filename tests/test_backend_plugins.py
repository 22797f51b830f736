"""A backend from another package serves its model prefix; an unknown prefix stops a run.

The plug-in is tests/plugins/gemlib-example-backend, installed by noxfile.py (which
sets GEMLIB_REQUIRE_PLUGINS, so its absence fails these tests there). Elsewhere:
``pip install --no-deps tests/plugins/gemlib-example-backend``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path
from typing import Any

import pytest

from gemlib import Document, Pipeline
from gemlib.cli import main
from gemlib.llm import LLM
from gemlib.llm.backends import BACKENDS, backend_type
from gemlib.llm.structured import ParseError
from gemlib.stages.llm_stage import LLMStage


def _plugin() -> Any:
    """The plug-in's backend class, found the way gemlib finds it: by its entry point."""
    points = importlib.metadata.entry_points(group="gemlib.backends", name="example")
    if not points:
        reason = (
            "the example backend plug-in is not installed: "
            "pip install --no-deps tests/plugins/gemlib-example-backend"
        )
        if os.environ.get("GEMLIB_REQUIRE_PLUGINS"):
            pytest.fail(f"{reason} (GEMLIB_REQUIRE_PLUGINS is set)")
        pytest.skip(reason)
    return BACKENDS.get("example")


class Shout(LLMStage):
    """Asks the model to shout a document back; keeps the answer in ``meta``."""

    name = "shout"

    def prompt(self, doc: Document) -> list[dict[str, str]]:
        return [{"role": "user", "content": doc.text}]

    def parse(self, text: str, doc: Document) -> Document:
        if ": " not in text:
            raise ParseError("no answer")
        return doc.model_copy(update={"meta": {"answer": text}})


def test_a_plug_in_backend_serves_its_prefix_in_a_pipeline_run(tmp_path: Path) -> None:
    """Fails without the registry: the model went to litellm, which knows no `example/`."""
    plugin = _plugin()
    assert "example" in BACKENDS.names()
    assert backend_type("example/shout") is plugin
    llm = LLM("example/shout", cache=False, backoff_base=0.01)
    assert type(llm.backend) is plugin
    assert llm.limits.max_concurrency == plugin.default_concurrency == 3

    texts = ["open the app", "tap go", "fail-once then press save"]
    result = Pipeline([Shout(llm)]).run(texts, run_dir=tmp_path / "run")
    answers = sorted(d.meta["answer"] for d in result.outputs)
    assert answers == ["shout: FAIL-ONCE THEN PRESS SAVE", "shout: OPEN THE APP", "shout: TAP GO"]
    assert result.rejections == []
    usage = result.usage["shout"]["example/shout"]
    assert (usage.requests, usage.retries) == (4, 1), "gemlib's retries wrap the plug-in"
    assert usage.prompt_tokens == 3 + 2 + 4  # words, as the plug-in counts them
    assert llm.backend.closed >= 1, "the run closed its backend"  # type: ignore[union-attr]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"][0]["config"]["model"]["model"] == "example/shout"


def _corpus(tmp_path: Path) -> Path:
    """Three copies of a procedural text from the bundled examples (it reaches the model)."""
    examples = Path(__file__).parents[1] / "src" / "gemlib" / "data" / "gem_examples.jsonl"
    text = next(
        json.loads(line)["text"]
        for line in examples.read_text().splitlines()
        if "Northwind" in line
    )
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"id": f"d{i}", "text": f"{text}\n\n(copy {i})"}) + "\n" for i in range(3)
        )
    )
    return corpus


@pytest.mark.parametrize("model", ["opnai/teacher", "teacher"])
def test_an_unknown_prefix_stops_the_run_with_one_line_naming_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    """Fails on the code before the registry: the line named no prefix gemlib knows."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GEMLIB_CACHE_DIR", str(tmp_path / "cache"))
    code = main(["run", str(_corpus(tmp_path)), "--model", model, "--out", "r", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert f"unknown provider in the model name {model!r}" in err
    known = err.partition("known prefixes:")[2]
    for prefix in BACKENDS.names():  # gemlib's own, and any installed plug-in's
        assert f"{prefix}/" in known, err
    assert {"hosted_vllm", "local", "openai"} <= set(BACKENDS.names())
    assert "anthropic/" in known, "litellm's providers are named too"
    assert (
        not (tmp_path / "r" / "outputs.jsonl").exists()
        or not (tmp_path / "r" / "outputs.jsonl").read_text()
    )
