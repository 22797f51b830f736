"""Turn a finished run into training data for common trainers.

    python examples/export_for_training.py runs/gem data/

Writes OpenAI chat JSONL (TRL), ShareGPT plus dataset_info.json (LLaMA-Factory),
Hermes text (the paper's template), and the Trajectory Synthesizer's own
training split, then prints the dataset's statistics.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from gemlib.analysis.stats import dataset_stats
from gemlib.formats import write_jsonl
from gemlib.formats.sharegpt import dataset_info
from gemlib.pipeline.rundir import read_trajectories
from gemlib.synthesizer import write_synth_data


def main() -> None:
    run_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    trajectories = list(read_trajectories(run_dir))
    for name in ("openai", "sharegpt", "hermes"):
        count = write_jsonl(trajectories, out / f"gem.{name}.jsonl", name)
        print(f"{count} trajectories -> {out / f'gem.{name}.jsonl'}")
    info = dataset_info("gem_sharegpt", "gem.sharegpt.jsonl")
    (out / "dataset_info.json").write_text(json.dumps(info, indent=2))
    synth = write_synth_data(trajectories, out / "synthesizer")
    print(f"synthesizer data: {synth.train_examples} train, {synth.validation_examples} validation")
    print(dataset_stats(trajectories, count_tokens=False).format())


if __name__ == "__main__":
    main()
