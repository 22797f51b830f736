"""CPU of parsing teacher replies, per reply, side by side with an older commit.

Times each reply parser of the GEM preset, and each stage's whole ``parse``
(records and all), on the tests' canned Northwind replies: process time, the
minimum over ``--rounds`` x ``--repeat`` runs of ``--number`` calls, in
microseconds per reply. Each side runs ``--rounds`` times in a fresh process
importing its own gemlib (this checkout's ``src``; ``--base`` as its wheel
installs it, see ``_base.extract``), the sides alternating, so that a busy machine slows both alike.

    python benchmarks/bench_parse.py [--base ffa5699] [--rounds 3] [--repeat 7] [--number 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _base

ROOT = Path(__file__).resolve().parents[1]


def cases() -> dict[str, Callable[[], Any]]:
    """What is timed: a name and a call, each on one Northwind reply."""
    sys.path.insert(0, str(ROOT / "tests"))
    from gemlib import Document
    from gemlib.formats import gem_tags
    from gemlib.gem.extraction import WorkflowExtractor
    from gemlib.gem.generation import TrajectoryGenerator, tools_json
    from gemlib.gem.refinement import ComplexityRefiner
    from gemlib.llm import LLM, ScriptedBackend
    from gemlib.model import stable_id
    from teacher import EXTRACTION, GENERATION, REFINEMENT, RELEVANCE

    text = json.loads((ROOT / "examples/corpus/gem_examples.jsonl").read_text().splitlines()[0])
    doc = Document(id="doc-0", text=text["text"])
    llm = LLM("openai/teacher", backend=ScriptedBackend(lambda request: ""), cache=False)
    extractor = WorkflowExtractor(llm)
    generator = TrajectoryGenerator(llm)
    refiner = ComplexityRefiner(llm)
    extraction, generation = EXTRACTION["Northwind"], GENERATION["Northwind"]
    refinement = REFINEMENT["Northwind"]
    workflow = extractor.parse(extraction, doc)[0]
    trajectory = generator.parse(generation, workflow)

    def ids(n: int) -> str:
        return stable_id("call", "traj-0", n)

    return {
        "parse_relevance": lambda: gem_tags.parse_relevance(RELEVANCE["Northwind"]),
        "parse_workflows": lambda: gem_tags.parse_workflows(extraction),
        "WorkflowExtractor.parse": lambda: extractor.parse(extraction, doc),
        "parse_conversation": lambda: gem_tags.parse_conversation(generation, ids),
        "TrajectoryGenerator.parse": lambda: generator.parse(generation, workflow),
        "tools_json": lambda: tools_json(workflow.tools),
        "parse_refined": lambda: gem_tags.parse_refined(refinement, ids),
        "ComplexityRefiner.parse": lambda: refiner.parse(refinement, trajectory),
    }


def measure(repeat: int, number: int) -> dict[str, float]:
    """Microseconds per call of each case, in this process."""
    figures = {}
    for name, call in cases().items():
        call()  # warm-up: memos and compiled patterns, as in a run
        figures[name] = _base.cpu_us(call, repeat, number)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="ffa5699", help="commit to compare with")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="child runs per side, alternating")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.repeat, args.number)))
        return
    options = ["--child", "--repeat", str(args.repeat), "--number", str(args.number)]
    with tempfile.TemporaryDirectory() as tmp:
        sources = {True: _base.extract(args.base, Path(tmp)), False: ROOT / "src"}
        old, new = _base.fastest(Path(__file__), sources, options, args.rounds)
    runs = f"{args.rounds} x {args.repeat} x {args.number}"
    print(f"us per reply (min of {runs}, process time, sides interleaved)")
    print(f"{'':28}{args.base:>10}{'this tree':>11}{'ratio':>8}")
    for name, before in old.items():
        after = new[name]
        print(f"{name:28}{before:>10.1f}{after:>11.1f}{before / after:>7.2f}x")


if __name__ == "__main__":
    main()
