"""Hugging Face: datasets round trip, and the chat template agreeing with the Hermes export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gemlib import Message, Tool, ToolCall, Trajectory
from gemlib.formats import hermes, write_jsonl
from gemlib.formats.hf import from_dataset, read_parquet, to_dataset, write_parquet
from test_model import OPENAI_RECORD

datasets = pytest.importorskip("datasets")


def _corpus() -> list[Trajectory]:
    first = Trajectory.from_openai(OPENAI_RECORD)
    tool = Tool.from_any(
        {
            "name": "lookup",
            "parameters": {
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "array", "items": {"type": "integer"}},
                }
            },
            "outputSchema": {"type": "object"},
        }
    )
    parallel = Trajectory(
        tools=(tool, *first.tools),
        messages=(
            Message(role="user", content="Weather in Köln and Paris for days 1 and 2?"),
            Message(
                role="assistant",
                content="Checking both.",
                tool_calls=(
                    ToolCall(id="a", name="lookup", arguments={"city": "Köln", "days": [1, 2]}),
                    ToolCall(id="b", name="lookup", arguments={"city": "Paris", "days": [1, 2]}),
                ),
            ),
            Message(role="tool", content='{"temp": [3, 4]}', tool_call_id="a", name="lookup"),
            Message(role="tool", content="Error: no station", tool_call_id="b", name="lookup"),
            Message(role="assistant", content="Köln: 3 and 4 degrees; Paris has no station."),
        ),
        labels={"domains": ["travel_and_transportation"]},
    )
    no_tools = Trajectory(
        messages=(Message(role="user", content="hi"), Message(role="assistant", content="hello"))
    )
    return [first, parallel, no_tools]


def test_dataset_and_parquet_round_trip(tmp_path: Path) -> None:
    corpus = _corpus()
    dataset = to_dataset(corpus)
    assert dataset.column_names == ["id", "messages", "tools", "metadata"]
    assert list(from_dataset(dataset)) == corpus
    path = tmp_path / "t.parquet"
    assert write_parquet(corpus, path) == len(corpus)
    assert list(read_parquet(path)) == corpus


def test_openai_jsonl_loads_and_renders_like_the_hermes_export(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    corpus = _corpus()
    path = tmp_path / "train.jsonl"
    write_jsonl(corpus, path, "openai")
    loaded = datasets.load_dataset("json", data_files=str(path), split="train")
    assert loaded.num_rows == len(corpus)

    # A tokenizer built offline, carrying gemlib's chat template.
    texts = [hermes.dump(t)["text"] for t in corpus]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel()
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>"]),
    )
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, unk_token="<unk>", eos_token="<|im_end|>"
    )
    tokenizer.chat_template = hermes.CHAT_TEMPLATE
    for row, expected in zip(loaded, texts, strict=True):
        rendered = tokenizer.apply_chat_template(
            row["messages"], tools=row["tools"], tokenize=False
        )
        assert rendered == expected
    ids = tokenizer.apply_chat_template(loaded[0]["messages"], tools=loaded[0]["tools"])
    assert tokenizer.decode(ids if isinstance(ids, list) else ids["input_ids"]).count(
        "<|im_start|>"
    ) == json.dumps(texts[0]).count("<|im_start|>")
