"""Fine-tuning data for the Trajectory Synthesizer, built from validated trajectories.

Each example is a two-turn chat: the user turn is the fixed instruction and
the source segment, the assistant turn is the trajectory in the GEM tag format
(``<toolsets>`` and the conversation), exactly what the ``Synthesize`` stage
asks for and parses. Examples are split into train and validation *by source
document*, so no document feeds both. Trajectories without their source text
(imported datasets) cannot teach the synthesizer and are counted as skipped.

Written as chat JSONL: ``{"id", "document_id", "messages": [user, assistant]}``,
the ``messages`` format TRL and LLaMA-Factory (``formatting: openai``... or
``sharegpt`` with role tags) read; ``dataset_info.json`` describes both files
for LLaMA-Factory.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from gemlib._atomic import replacing, write_atomic
from gemlib.formats import gem_tags
from gemlib.model import Trajectory

__all__ = ["INSTRUCTION", "SynthData", "build_examples", "synth_prompt", "write_synth_data"]

INSTRUCTION = "Turn the following text into multi-turn tool-use trajectories"
"""The fixed instruction the paper's synthesizer is trained and prompted with."""


def synth_prompt(text: str) -> str:
    """The synthesizer's input for one segment."""
    return f"{INSTRUCTION}\n\n{text}"


def build_examples(trajectories: Iterable[Trajectory]) -> Iterator[dict[str, Any]]:
    """One chat example per trajectory that carries its source document."""
    for trajectory in trajectories:
        if trajectory.document is None:
            continue
        yield {
            "id": trajectory.id,
            "document_id": trajectory.document.document_id,
            "messages": [
                {"role": "user", "content": synth_prompt(trajectory.document.text)},
                {"role": "assistant", "content": gem_tags.dump(trajectory)["text"]},
            ],
        }


def _in_validation(document_id: str, share: float) -> bool:
    digest = hashlib.sha256(document_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


@attrs.frozen
class SynthData:
    """What :func:`write_synth_data` wrote."""

    train: Path
    validation: Path
    train_examples: int
    validation_examples: int
    skipped_without_source: int
    documents: int


def write_synth_data(
    trajectories: Iterable[Trajectory],
    out_dir: str | os.PathLike[str],
    *,
    validation_share: float = 0.1,
) -> SynthData:
    """Write ``train.jsonl``, ``validation.jsonl`` and ``dataset_info.json`` into ``out_dir``.

    A document lands in validation when its ID hashes below ``validation_share``,
    so the split is stable and every example of a document stays on one side.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = {"train": 0, "validation": 0, "skipped": 0}
    documents: set[str] = set()
    paths = {"train": out / "train.jsonl", "validation": out / "validation.jsonl"}
    with (
        replacing(paths["train"]) as train_path,
        replacing(paths["validation"]) as validation_path,
        open(train_path, "w", encoding="utf-8") as train,
        open(validation_path, "w", encoding="utf-8") as validation,
    ):
        for trajectory in trajectories:
            examples = list(build_examples([trajectory]))
            if not examples:
                counts["skipped"] += 1
                continue
            example = examples[0]
            documents.add(example["document_id"])
            side = (
                "validation"
                if _in_validation(example["document_id"], validation_share)
                else ("train")
            )
            (validation if side == "validation" else train).write(
                json.dumps(example, ensure_ascii=False) + "\n"
            )
            counts[side] += 1
    info = {
        f"gem_synth_{side}": {
            "file_name": path.name,
            "formatting": "sharegpt",
            "columns": {"messages": "messages"},
            "tags": {
                "role_tag": "role",
                "content_tag": "content",
                "user_tag": "user",
                "assistant_tag": "assistant",
            },
        }
        for side, path in paths.items()
    }
    write_atomic(out / "dataset_info.json", json.dumps(info, indent=2))
    return SynthData(
        paths["train"],
        paths["validation"],
        counts["train"],
        counts["validation"],
        counts["skipped"],
        len(documents),
    )
