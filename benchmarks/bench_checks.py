"""CPU of each rule check on the GEM preset's refined trajectory, side by side with an older commit.

The trajectory is the one the GEM preset hands its ``RuleValidator`` for the
first Northwind example (scripted teacher, tests/teacher.py), captured once
with this checkout. Each side then runs in a fresh process importing its own
gemlib (this checkout's ``src``; ``--base`` as its wheel installs it, see
``_base.extract``): every default check alone, ``validate`` with all of them,
and ``RuleValidator.process``, in microseconds of process time per call (the
minimum over ``--rounds`` processes per side, run in alternating order, of
``--samples`` samples of ``--calls`` calls each, so a machine shared with
other work shows through as little as possible).

    python benchmarks/bench_checks.py [--base ffa5699] [--rounds 3] [--samples 100] [--calls 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import _base

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT / "examples" / "corpus" / "gem_examples.jsonl"


def capture() -> dict[str, Any]:
    """The trajectory the GEM preset validates for the first Northwind example, as JSON."""
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "src"))
    from gemlib import Document, Pipeline
    from gemlib.llm import LLM, ScriptedBackend
    from gemlib.stages import validators
    from teacher import canned_reply

    seen: list[dict[str, Any]] = []
    process = validators.RuleValidator.process

    def keep(stage: validators.RuleValidator, trajectory: Any) -> Any:
        seen.append(trajectory.model_dump(mode="json"))
        return process(stage, trajectory)

    def script(request: Any) -> str:
        body = {"model": request.model, "messages": list(request.messages)}
        return str(canned_reply(body, 0).content)

    validators.RuleValidator.process = keep  # type: ignore[method-assign]
    northwind = json.loads(TEXT.read_text().splitlines()[0])["text"]
    with tempfile.TemporaryDirectory() as tmp:
        llm = LLM("openai/teacher", backend=ScriptedBackend(script), cache=False)
        Pipeline.gem(llm).run([Document(id="doc", text=northwind)], run_dir=Path(tmp))
    return seen[0]


def measure(path: Path, samples: int, calls: int) -> dict[str, float]:
    """Per check, and for all of them, microseconds per call in this process."""
    from gemlib.model import Trajectory
    from gemlib.stages.validators import RuleValidator
    from gemlib.validation import DEFAULT_CHECKS, validate

    trajectory = Trajectory.model_validate(json.loads(path.read_text()))
    stage = RuleValidator()
    for _ in range(calls):  # warm up: memos, compiled schemas and regexes
        stage.process(trajectory)
    figures = {
        check.rule: _base.cpu_us(lambda check=check: list(check(trajectory)), samples, calls)
        for check in DEFAULT_CHECKS
    }
    figures["validate"] = _base.cpu_us(lambda: validate(trajectory), samples, calls)
    figures["RuleValidator"] = _base.cpu_us(lambda: stage.process(trajectory), samples, calls)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="ffa5699", help="commit to compare with")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.samples, args.calls)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        trajectory = Path(tmp) / "trajectory.json"
        trajectory.write_text(json.dumps(capture()))
        options = [str(trajectory), "--samples", str(args.samples), "--calls", str(args.calls)]
        sources = {True: _base.extract(args.base, Path(tmp)), False: ROOT / "src"}
        old, new = _base.fastest(Path(__file__), sources, ["--child", *options], args.rounds)
    fewest = f"min of {args.rounds} x {args.samples}"
    print(f"rule checks, refined Northwind trajectory, us of CPU per call ({fewest})")
    print(f"{'check':<22} {args.base:>10} {'this tree':>10} {'ratio':>6}")
    for name, before in old.items():
        after = new.get(name, float("nan"))
        print(f"{name:<22} {before:>10.1f} {after:>10.1f} {after / before:>6.2f}")


if __name__ == "__main__":
    main()
