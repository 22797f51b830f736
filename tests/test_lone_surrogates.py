"""A lone surrogate (a stray ``\\ud800`` JSON escape) from a model is stored as U+FFFD, never
an item's failure: UTF-8 files and SQLite cannot hold it, and it is no one's fault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI, Reply
from gemlib import Document, Pipeline, Stage
from gemlib.llm import LLM
from gemlib.stages.llm_stage import LLMStage

BODY = {
    "id": "x",
    "object": "chat.completion",
    "created": 1,
    "model": "x",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "bad @ char"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
# json.dumps escapes non-ASCII, so the lone surrogate reaches the client as "\ud800".
RAW = json.dumps(BODY).replace("@", "\\ud800").encode()


class Echo(LLMStage):
    def prompt(self, doc: Document) -> list[dict[str, str]]:
        return [{"role": "user", "content": doc.text}]

    def parse(self, text: str, doc: Document) -> Document:
        return doc.model_copy(update={"meta": {"reply": text}})


@pytest.mark.parametrize("transport", ["openai-compatible", "litellm"])
def test_a_reply_with_a_lone_surrogate_is_kept_and_cached(tmp_path: Path, transport: str) -> None:
    # Before: the request cache's write raised UnicodeEncodeError and every item
    # became an `exception` rejection.
    with FakeOpenAI(lambda body, n: Reply(raw_body=RAW)) as server:

        def run(run_dir: Path) -> list[Document]:
            llm = LLM(
                "openai/x",
                api_base=server.url,
                api_key="k",
                cache=tmp_path / "cache.sqlite",
                transport=transport,
            )
            result = Pipeline([Echo(llm)]).run(["a", "b"], run_dir=run_dir)
            assert result.rejections == []
            return result.outputs

        outputs = run(tmp_path / "first")
        assert [o.meta["reply"] for o in outputs] == ["bad \ufffd char"] * 2
        assert len(server.requests) == 2
        again = run(tmp_path / "second")  # a new run directory: answered by the cache
        assert [o.meta["reply"] for o in again] == ["bad \ufffd char"] * 2
        assert len(server.requests) == 2


class Decodes(Stage):
    """Like a parser reading model-written JSON: a ``\\ud800`` escape decodes to a lone one."""

    def process(self, doc: Document) -> Document:
        return doc.model_copy(update={"meta": json.loads('{"value": "x\\ud800y"}')})


def test_an_output_holding_a_lone_surrogate_is_stored(tmp_path: Path) -> None:
    result = Pipeline([Decodes()]).run(["a"], run_dir=tmp_path)
    assert result.rejections == []
    assert [o.meta for o in result.outputs] == [{"value": "x\ufffdy"}]
    assert "\ufffd" in (tmp_path / "outputs.jsonl").read_text(encoding="utf-8")
