"""Hugging Face: datasets round trip, and the chat template agreeing with the Hermes export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gemlib import Message, Tool, ToolCall, Trajectory
from gemlib.formats import hermes, write_jsonl
from gemlib.formats.chat import from_chat
from gemlib.formats.hf import from_dataset, read_parquet, to_dataset, write_parquet
from test_model import OPENAI_RECORD

datasets = pytest.importorskip("datasets")


def _corpus() -> list[Trajectory]:
    first = from_chat(OPENAI_RECORD)
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
    corpus = _corpus()
    path = tmp_path / "train.jsonl"
    write_jsonl(corpus, path, "openai")
    loaded = datasets.load_dataset("json", data_files=str(path), split="train")
    assert loaded.num_rows == len(corpus)

    # A tokenizer built offline, carrying gemlib's chat template.
    texts = [hermes.dump(t)["text"] for t in corpus]
    tokenizer = _tokenizer(texts, hermes.CHAT_TEMPLATE)
    for row, expected in zip(loaded, texts, strict=True):
        rendered = tokenizer.apply_chat_template(
            row["messages"], tools=row["tools"], tokenize=False
        )
        assert rendered == expected
    ids = tokenizer.apply_chat_template(loaded[0]["messages"], tools=loaded[0]["tools"])
    assert tokenizer.decode(ids if isinstance(ids, list) else ids["input_ids"]).count(
        "<|im_start|>"
    ) == json.dumps(texts[0]).count("<|im_start|>")


QWEN3_STYLE = (
    # Written for this test in the manner of Qwen3's template: an assistant turn's
    # reasoning_content opens it in a <think> block; tools and calls kept minimal.
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message.role + '\\n' -}}"
    "{%- if message.role == 'assistant' and message.reasoning_content -%}"
    "{{- '<think>\\n' + (message.reasoning_content | trim) + '\\n</think>\\n\\n' -}}"
    "{%- endif -%}"
    "{{- message.content or '' -}}"
    "{%- for call in message.tool_calls or [] -%}"
    "{{- '<tool_call>' + call.function.name + ' ' + call.function.arguments + '</tool_call>' -}}"
    "{%- endfor -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
)


def _thinking() -> Trajectory:
    tool = Tool.from_any(
        {"name": "lookup", "parameters": {"properties": {"city": {"type": "string"}}}}
    )
    return Trajectory(
        tools=(tool,),
        messages=(
            Message(role="user", content="Weather in Köln?"),
            Message(
                role="assistant",
                tool_calls=(ToolCall(id="a", name="lookup", arguments={"city": "Köln"}),),
                reasoning="The user wants today's weather; lookup takes a city.",
            ),
            Message(role="tool", content='{"temp": 3}', tool_call_id="a", name="lookup"),
            Message(role="assistant", content="3 degrees.", reasoning="Report the temperature."),
        ),
    )


def _tokenizer(texts: list[str], template: str) -> Any:
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel()
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>"]),
    )
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, unk_token="<unk>", eos_token="<|im_end|>"
    )
    tokenizer.chat_template = template
    return tokenizer


def test_reasoning_export_loads_and_renders_through_reasoning_templates(tmp_path: Path) -> None:
    corpus = [_thinking(), *_corpus()]
    path = tmp_path / "train.jsonl"
    write_jsonl(corpus, path, "openai")
    loaded = datasets.load_dataset("json", data_files=str(path), split="train")
    first = loaded[0]["messages"]
    assert first[1]["reasoning_content"] == "The user wants today's weather; lookup takes a city."
    assert loaded[1]["messages"][1].get("reasoning_content") is None, "absent where none"

    expected = [hermes.dump(t)["text"] for t in corpus]
    gemlib_template = _tokenizer(expected, hermes.CHAT_TEMPLATE)
    for row, text in zip(loaded, expected, strict=True):
        assert (
            gemlib_template.apply_chat_template(row["messages"], tools=row["tools"], tokenize=False)
            == text
        )
    assert (
        "<|im_start|>assistant\n<think>\nThe user wants today's weather; lookup takes a city."
        "\n</think>\n\n<tool_call>\n" in expected[0]
    )
    assert (
        "<|im_start|>assistant\n<think>\nReport the temperature.\n</think>\n\n3 degrees."
        in (expected[0])
    )

    qwen3 = _tokenizer(expected, QWEN3_STYLE)
    rendered = qwen3.apply_chat_template(first, tokenize=False)
    assert rendered.count("<think>\n") == 2
    assert "<think>\nReport the temperature.\n</think>\n\n3 degrees.<|im_end|>" in rendered

    assert list(from_dataset(to_dataset(corpus))) == corpus
    assert hermes.load(hermes.dump(corpus[0])).messages[3].reasoning == "Report the temperature."
