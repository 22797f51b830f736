"""Run the GEM pipeline on the example corpus against any model.

    python examples/run_gem.py --model openai/gpt-4.1-mini
    python examples/run_gem.py --model hosted_vllm/Qwen/Qwen3-8B --api-base http://127.0.0.1:8000/v1
    python examples/run_gem.py --model openai/x --api-base http://127.0.0.1:8080/v1 --no-refine

Outputs land in a resumable run directory (default runs/gem-examples).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gemlib import Pipeline
from gemlib.analysis.report import format_funnel, format_rejections

CORPUS = Path(__file__).parent / "corpus" / "gem_examples.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="litellm model string")
    parser.add_argument("--api-base", help="OpenAI-compatible server URL")
    parser.add_argument("--relevance-model", help="a smaller model for the relevance filter")
    parser.add_argument("--no-refine", action="store_true", help="skip complexity refinement")
    parser.add_argument("--out", default="runs/gem-examples", help="run directory")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="JSONL corpus or folder")
    args = parser.parse_args()
    stage_models = {"relevance": args.relevance_model} if args.relevance_model else None
    pipe = Pipeline.gem(
        args.model, api_base=args.api_base, stage_models=stage_models, refine=not args.no_refine
    )
    result = pipe.run(args.corpus, run_dir=args.out, progress_interval=5)
    print(format_funnel(result.stats))
    print(format_rejections(result.rejections, limit=20))
    for stage, models in result.usage.items():
        for model, usage in models.items():
            print(
                f"{stage:<24} {model:<28} {usage.requests:>5} requests "
                f"{usage.prompt_tokens + usage.completion_tokens:>8} tokens ${usage.cost:.4f}"
            )
    print(f"{len(result.trajectories)} trajectories in {args.out}/outputs.jsonl")


if __name__ == "__main__":
    main()
