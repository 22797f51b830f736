"""The `gemlib` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from gemlib._version import __version__
from gemlib.errors import GemlibError

EXAMPLES = "gem_examples.jsonl"


def _demo(args: argparse.Namespace) -> int:
    from gemlib.corpus import read_corpus
    from gemlib.pipeline.pipeline import Pipeline
    from gemlib.report import format_funnel, format_rejections
    from gemlib.stages.prefilter import ProcedurePrefilter
    from gemlib.stages.segmenter import Segmenter

    corpus = resources.files("gemlib") / "data" / EXAMPLES
    pipe = Pipeline([Segmenter(), ProcedurePrefilter()])
    print(f"gemlib {__version__} demo")
    print("corpus:   the bundled example corpus (20 short texts, 16 procedural, 4 not)")
    print(f"pipeline: {' -> '.join(s.name for s in pipe.stages)}")
    print(
        "models:   none. This version has the runtime and the model-free stages only;\n"
        "          the GEM LLM stages (relevance, extraction, generation, refinement,\n"
        "          judge) are not built yet, so no trajectories are produced.\n"
    )
    with resources.as_file(corpus) as path:
        result = pipe.run(read_corpus(path), run_dir=args.out, progress_interval=None)
    print(format_funnel(result.stats))
    print("\nrejected, with reasons:")
    print(format_rejections(result.rejections))
    out = Path(args.out)
    print(f"\nkept segments:  {out / 'outputs.jsonl'}")
    print(f"rejections:     {out / 'rejections.jsonl'}")
    print(f"manifest:       {out / 'manifest.json'}")
    print("run it again to see the resume: finished items are skipped.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `gemlib` command."""
    parser = argparse.ArgumentParser(
        prog="gemlib",
        description="Turn text corpora into validated multi-turn tool-use trajectories.",
    )
    parser.add_argument("--version", action="version", version=f"gemlib {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="run the pipeline on the bundled example corpus, offline",
        description="Run gemlib's pipeline end to end on the bundled example corpus, offline.",
    )
    demo.add_argument(
        "--out", default="gemlib-demo-run", help="run directory (default: %(default)s)"
    )
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gemlib` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    try:
        code: int = args.handler(args)
    except GemlibError as exc:
        print(f"gemlib: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "gemlib: interrupted; finished items are kept, rerun the command to resume",
            file=sys.stderr,
        )
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
