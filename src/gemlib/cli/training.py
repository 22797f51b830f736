"""`gemlib train-classifier`, `synth-data` and `train`: commands that train models."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _synth_data(args: argparse.Namespace) -> int:
    from gemlib.pipeline.rundir import read_trajectories
    from gemlib.synthesizer import write_synth_data

    data = write_synth_data(
        read_trajectories(args.run_dir), args.out, validation_share=args.validation_share
    )
    print(
        f"{data.train_examples} training and {data.validation_examples} validation examples "
        f"from {data.documents} source documents in {args.out}"
    )
    if data.skipped_without_source:
        print(f"{data.skipped_without_source} trajectories had no source text and were skipped")
    return 0


def _train(args: argparse.Namespace) -> int:
    from gemlib.synthesizer.train import TrainConfig, train_synthesizer

    overrides = {
        k: v
        for k, v in {
            "learning_rate": args.learning_rate,
            "num_train_epochs": args.epochs,
            "per_device_train_batch_size": args.batch_size,
            "max_length": args.max_length,
            "max_steps": args.max_steps,
            "gradient_accumulation_steps": args.accumulation,
        }.items()
        if v is not None
    }
    if args.no_bf16:
        overrides["bf16"] = False
    result = train_synthesizer(args.data, args.base_model, args.out, TrainConfig(**overrides))
    first, last = (result.losses[0], result.losses[-1]) if result.losses else (0.0, 0.0)
    print(
        f"trained on {result.train_examples} examples; loss {first:.3f} -> {last:.3f}; "
        f"model saved to {result.output_dir}"
    )
    return 0


def _train_classifier(args: argparse.Namespace) -> int:
    from gemlib.classifier import RelevanceClassifier
    from gemlib.formats.corpus import read_corpus
    from gemlib.gem.classifier_labels import candidate_segments, label_with_llm
    from gemlib.llm import LLM
    from gemlib.pipeline.sampling import reservoir_sample

    candidates = candidate_segments(
        read_corpus(args.corpus, text_field=args.text_field), prefilter=not args.no_prefilter
    )
    sample = reservoir_sample(candidates, args.sample, seed=args.seed)
    print(f"labelling {len(sample)} sampled segments with {args.model}")
    model = LLM(args.model, api_base=args.api_base)
    labels_dir = Path(args.out).with_name(Path(args.out).name + ".labels")
    labels, failed = label_with_llm(sample, model, run_dir=labels_dir, progress_interval=None)
    print(
        f"{sum(x.procedural for x in labels)} procedural, "
        f"{sum(not x.procedural for x in labels)} not, {failed} without a label "
        f"(labelling run in {labels_dir})"
    )
    classifier = RelevanceClassifier.train(labels, target_recall=args.recall, seed=args.seed)
    classifier.save(args.out)
    assert classifier.report is not None
    print(classifier.report.format())
    print(f"saved to {args.out}; use it with: gemlib run CORPUS --classifier {args.out} ...")
    return 0


def add_commands(commands: Any) -> None:
    """Add this module's commands to the `gemlib` parser's subcommands."""

    clf = commands.add_parser(
        "train-classifier",
        help="label a sample with the LLM and train a relevance classifier on it",
        description="Sample segments of a corpus (after the prefilter), label them with the "
        "LLM's relevance stage, train a relevance classifier, choose its threshold for a "
        "target recall and report held-out precision and recall.",
        epilog="example: gemlib train-classifier corpus.jsonl --model openai/gpt-4.1-mini "
        "--sample 2000 --out relevance.json",
    )
    clf.add_argument("corpus", help="a JSONL, text or Parquet file or a folder")
    clf.add_argument("--model", required=True, help="the labelling model (litellm string)")
    clf.add_argument("--api-base", help="server URL for the model")
    clf.add_argument("--out", required=True, help="where to save the classifier (JSON)")
    clf.add_argument("--sample", type=int, default=2000, help="segments to label (%(default)s)")
    clf.add_argument("--recall", type=float, default=0.95, help="target recall (%(default)s)")
    clf.add_argument("--seed", type=int, default=0)
    clf.add_argument("--text-field", default="text", help="JSONL/Parquet field with the text")
    clf.add_argument(
        "--no-prefilter",
        action="store_true",
        help="sample from every segment, not only those the prefilter keeps",
    )
    clf.set_defaults(handler=_train_classifier)

    synth = commands.add_parser(
        "synth-data",
        help="build Trajectory Synthesizer training data from a run",
        epilog="example: gemlib synth-data runs/one --out data/synth",
    )
    synth.add_argument("run_dir", help="a run directory (or a JSONL file of trajectories)")
    synth.add_argument("--out", required=True, help="folder for train/validation JSONL")
    synth.add_argument(
        "--validation-share",
        type=float,
        default=0.1,
        help="share of source documents held out (default %(default)s)",
    )
    synth.set_defaults(handler=_synth_data)

    train = commands.add_parser(
        "train-synthesizer",
        help="fine-tune a Trajectory Synthesizer (needs gemlib[train])",
        description="Supervised fine-tuning with TRL; defaults are the paper's recipe "
        "(lr 5e-6, warmup 0.1, cosine, 2 epochs, weight decay 0.05, max length 32K, batch 64, "
        "bf16).",
        epilog="example: gemlib train-synthesizer data/synth --base-model Qwen/Qwen3-8B "
        "--out models/synth",
    )
    train.add_argument("data", help="folder written by gemlib synth-data")
    train.add_argument("--base-model", required=True, help="a local path or hub name")
    train.add_argument("--out", required=True, help="where to save the fine-tuned model")
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--epochs", type=float)
    train.add_argument("--batch-size", type=int, help="per device")
    train.add_argument("--accumulation", type=int, help="gradient accumulation steps")
    train.add_argument("--max-length", type=int)
    train.add_argument("--max-steps", type=int)
    train.add_argument("--no-bf16", action="store_true", help="train in fp32 (CPUs)")
    train.set_defaults(handler=_train)
