"""Training the Trajectory Synthesizer with TRL's SFT trainer (the ``train`` extra).

    gemlib train-synthesizer data/synth --base-model Qwen/Qwen3-8B --out models/synth

The data is what :func:`gemlib.synthesizer.write_synth_data` writes. Each
two-turn chat becomes a conversational prompt/completion pair, so the loss
falls on the assistant's answer only, whatever the base model's chat template.
Defaults are the paper's recipe for full-size runs: full-parameter SFT,
learning rate 5e-6, warmup ratio 0.1, cosine schedule, 2 epochs, weight decay
0.05, maximum length 32K, batch 64 (1 per device x 64 accumulation steps),
bf16. Every field of :class:`TrainConfig` can be overridden.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from pathlib import Path
from typing import Any

import attrs

from gemlib.errors import GemlibError

__all__ = ["TrainConfig", "TrainResult", "train_synthesizer"]


@attrs.frozen
class TrainConfig:
    """Hyperparameters; the defaults are the paper's."""

    learning_rate: float = 5e-6
    warmup_ratio: float = 0.1
    lr_scheduler_type: str = "cosine"
    num_train_epochs: float = 2.0
    weight_decay: float = 0.05
    max_length: int = 32_768
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 64
    bf16: bool = True
    max_steps: int = -1
    logging_steps: int = 10
    seed: int = 42


@attrs.frozen
class TrainResult:
    """Where the model went and how the loss moved."""

    output_dir: Path
    losses: tuple[float, ...]
    train_examples: int
    validation_examples: int


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise GemlibError(
            f"training needs {module}: pip install 'gemlib[train]' "
            "(on a CPU-only machine install torch==2.13.0 first to avoid the CUDA build)"
        ) from None


def _pairs(path: Path) -> list[dict[str, Any]]:
    pairs = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                user, assistant = json.loads(line)["messages"]
                pairs.append({"prompt": [user], "completion": [assistant]})
    return pairs


def train_synthesizer(
    data_dir: str | os.PathLike[str],
    base_model: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    config: TrainConfig | None = None,
) -> TrainResult:
    """Fine-tune ``base_model`` (a path or hub name) on the synthesizer data.

    The model and tokenizer are saved to ``output_dir``.
    """
    config = config or TrainConfig()
    datasets = _require("datasets")
    transformers = _require("transformers")
    trl = _require("trl")
    data = Path(data_dir)
    train = _pairs(data / "train.jsonl")
    validation = _pairs(data / "validation.jsonl")
    if not train:
        raise GemlibError(f"no training examples in {data / 'train.jsonl'}; run gemlib synth-data")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(base_model))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(base_model))
    settings = attrs.asdict(config)
    if "warmup_ratio" not in inspect.signature(trl.SFTConfig.__init__).parameters:
        # transformers 5 takes the ratio as a float warmup_steps in [0, 1)
        settings["warmup_steps"] = settings.pop("warmup_ratio")
    args = trl.SFTConfig(
        output_dir=str(output_dir),
        completion_only_loss=True,
        report_to=[],
        save_strategy="no",
        eval_strategy="epoch" if validation else "no",
        **settings,
    )
    trainer = trl.SFTTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(train),
        eval_dataset=datasets.Dataset.from_list(validation) if validation else None,
        processing_class=tokenizer,
    )
    trainer.train()
    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    losses = tuple(float(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry)
    return TrainResult(Path(output_dir), losses, len(train), len(validation))
