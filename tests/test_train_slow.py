"""Training the synthesizer on the CPU with a tiny model built offline (slow tier)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gemlib import Document, Message, Tool, ToolCall, Trajectory
from gemlib.formats.hermes import CHAT_TEMPLATE
from gemlib.synthesizer import write_synth_data
from gemlib.synthesizer.train import TrainConfig, train_synthesizer

pytestmark = pytest.mark.slow


def _trajectories(n: int) -> list[Trajectory]:
    tool = Tool.from_any(
        {"name": "get_order", "parameters": {"properties": {"order_id": {"type": "string"}}}}
    )
    out = []
    for i in range(n):
        order = f"W{100 + i}"
        out.append(
            Trajectory(
                tools=(tool,),
                messages=(
                    Message(role="user", content=f"Where is order {order}?"),
                    Message(
                        role="assistant",
                        tool_calls=(
                            ToolCall(id="c", name="get_order", arguments={"order_id": order}),
                        ),
                    ),
                    Message(
                        role="tool",
                        content='{"status": "shipped"}',
                        tool_call_id="c",
                        name="get_order",
                    ),
                    Message(role="assistant", content=f"Order {order} has shipped."),
                ),
                document=Document(id=f"doc{i}", text=f"To track order {order}, open Orders."),
            )
        )
    return out


def _tiny_base_model(path: Path, texts: list[str]) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel()
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=600, special_tokens=["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"]
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, unk_token="<unk>", pad_token="<pad>", eos_token="<|im_end|>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


def test_tiny_model_loss_falls_and_the_checkpoint_reloads(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = write_synth_data(_trajectories(40), tmp_path / "data", validation_share=0.1)
    texts = [
        m["content"]
        for line in data.train.read_text().splitlines()
        for m in json.loads(line)["messages"]
    ]
    _tiny_base_model(tmp_path / "base", texts)
    config = TrainConfig(
        learning_rate=3e-3,
        max_steps=20,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        bf16=False,
        logging_steps=2,
        max_length=512,
        warmup_ratio=0.0,
    )
    result = train_synthesizer(tmp_path / "data", tmp_path / "base", tmp_path / "out", config)
    assert result.train_examples == data.train_examples
    assert len(result.losses) >= 5
    assert result.losses[-1] < result.losses[0] * 0.7, result.losses

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    prompt = tokenizer.apply_chat_template(
        [
            {
                "role": "user",
                "content": "Turn the following text into multi-turn tool-use "
                "trajectories\n\nTo track order W105, open Orders.",
            }
        ],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    generated = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert generated.shape[-1] > prompt["input_ids"].shape[-1]
