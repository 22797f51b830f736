"""What the `gemlib` commands share: exit codes, the embedded model, common options."""

from __future__ import annotations

import argparse

__all__ = [
    "EMBEDDED_MODEL",
    "EXIT_LEFT_FOR_RETRY",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_STOPPED",
    "card_options",
    "pipeline_arguments",
]

EXAMPLES = "gem_examples.jsonl"

EXIT_STOPPED = 2
"""A refused or stopped run (bad settings, model unreachable, too many failures)."""
EXIT_LEFT_FOR_RETRY = 3
"""The run went through the corpus but left items not done (model or network failures)."""
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


EMBEDDED_MODEL = "local/gemma3-270m"
PORTABLE_BUILD = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON '
    '-DGGML_BMI2=ON -DLLAVA_BUILD=OFF" pip install --no-cache-dir "gemlib[local]"'
)
CAPABLE = (
    "  gemlib demo --model openai/gpt-4.1-mini          (OPENAI_API_KEY set)\n"
    "  gemlib demo --model hosted_vllm/MODEL --api-base http://127.0.0.1:8000/v1   "
    "(a vLLM server)\n"
    "  gemlib demo --model local//path/to/model.gguf    (your own GGUF, offline)\n"
    "  gemlib run CORPUS --model MODEL --out DIR        (your own corpus)"
)


def pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that describe the GEM pipeline and its corpus (`run` and `estimate`)."""
    parser.add_argument(
        "corpus",
        nargs="?",
        help="a JSONL, text or Parquet file, a folder of .txt/.md files, or - for "
        "JSONL on standard input",
    )
    parser.add_argument("--model", help="litellm model string for every stage")
    parser.add_argument("--config", help="a TOML file with any of these settings (flags win)")
    parser.add_argument("--judge-model", help="the judge's model (default: --model)")
    parser.add_argument("--api-base", help="URL of an OpenAI-compatible server")
    parser.add_argument(
        "--stage-model",
        action="append",
        default=[],
        metavar="STAGE=MODEL",
        help="another model for one stage (relevance, extraction, generation, "
        "refinement); repeatable",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help="requests in flight per model (default 16; 1 for local/ models)",
    )
    parser.add_argument(
        "--max-tokens", type=int, help="cap on tokens per model reply (default: the model's)"
    )
    parser.add_argument(
        "--text-field", help="JSONL or Parquet field holding the text (default text)"
    )
    parser.add_argument("--no-refine", action="store_true", help="skip complexity refinement")
    parser.add_argument("--no-judge", action="store_true", help="skip the LLM judge")
    parser.add_argument(
        "--reasoning-traces",
        action="store_true",
        help="have the teacher write the assistant's private reasoning before each turn",
    )
    parser.add_argument(
        "--mask-turns",
        type=float,
        nargs="?",
        const=0.5,
        metavar="SHARE",
        help="turn-level verdicts: mask the assistant turns a problem points at (up to SHARE "
        "of them, 0.5 if not given) instead of rejecting the whole trajectory",
    )
    parser.add_argument(
        "--prefilter",
        action="store_true",
        help="drop non-procedural text with the model-free prefilter first",
    )
    parser.add_argument(
        "--classifier",
        help="a relevance classifier file (gemlib train-classifier): only the segments "
        "it keeps reach the LLM",
    )


def card_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The dataset card's options, for `export --format hf` and `push`."""
    parser.add_argument(
        "--license", default="other", help=f"{prefix}the card's license (default other)"
    )
    parser.add_argument("--name", default="", help=f"{prefix}the card's pretty name")
