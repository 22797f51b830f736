"""gemlib's own CPU per document in the GEM preset, side by side with an older commit.

No network: the teacher is a scripted backend answering the tests' canned
Northwind replies in-process, so the CPU measured is gemlib's (rendering
prompts, parsing replies, validating, committing to the run directory) and
the script's few microseconds. Each round runs ``--docs`` documents through
``Pipeline.gem`` in a fresh process, once with this checkout's ``src`` and
once with ``--base`` as its wheel installs it (built from the commit's tree
and unpacked in a scratch directory), in alternating order; the figures are
the medians over ``--rounds`` rounds, so a machine shared with other work
slows both sides alike.

    python benchmarks/bench_cpu.py [--base df033e0] [--docs 300] [--rounds 5]
    python benchmarks/bench_cpu.py --profile   # cProfile of this checkout, top 30
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _base

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT / "examples" / "corpus" / "gem_examples.jsonl"


def measure(n: int, profile: bool) -> float:
    """CPU milliseconds per document for ``n`` documents, in this process."""
    sys.path.insert(0, str(ROOT / "tests"))
    from gemlib import Document, Pipeline
    from gemlib.llm import LLM, ScriptedBackend
    from teacher import canned_reply

    northwind = json.loads(TEXT.read_text().splitlines()[0])["text"]
    docs = [Document(id=f"doc-{i}", text=f"{northwind}\n\n(copy {i})") for i in range(n)]

    def script(request: object) -> str:
        body = {"model": request.model, "messages": list(request.messages)}  # type: ignore[attr-defined]
        return str(canned_reply(body, 0).content)

    def once(docs: list[Document], run_dir: Path) -> None:
        llm = LLM("openai/teacher", backend=ScriptedBackend(script), cache=False)
        Pipeline.gem(llm).run(docs, run_dir=run_dir, progress_interval=None)

    with tempfile.TemporaryDirectory() as tmp:
        once(docs[:5], Path(tmp) / "warm-up")  # imports, compiled templates and regexes
        if profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile(time.thread_time)  # CPU, not GIL waits
            profiler.enable()
            once(docs, Path(tmp) / "run")
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(90)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            return 0.0
        started = time.process_time()
        once(docs, Path(tmp) / "run")
        return (time.process_time() - started) / n * 1000


def child(src: Path, n: int) -> float:
    """Run :func:`measure` in a fresh process importing gemlib from ``src``."""
    return float(_base.child(Path(__file__), src, ["--child", str(n)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="df033e0", help="commit to compare with")
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(f"{measure(args.child, profile=False):.4f}")
        return
    if args.profile:
        sys.path.insert(0, str(ROOT / "src"))
        measure(args.docs, profile=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        old_src, new_src = _base.extract(args.base, Path(tmp)), ROOT / "src"
        old: list[float] = []
        new: list[float] = []
        print(f"GEM preset, scripted teacher, {args.docs} documents per run, CPU ms per document")
        print(f"{'round':>5} {args.base:>10} {'this tree':>10}")
        for i in range(args.rounds):
            for base_first in _base.pairs(args.rounds)[i]:
                figures, src = (old, old_src) if base_first else (new, new_src)
                figures.append(child(src, args.docs))
            print(f"{i + 1:>5} {old[-1]:>10.2f} {new[-1]:>10.2f}")
    o, n = statistics.median(old), statistics.median(new)
    load = os.getloadavg()[0]
    print(f"median {o:.2f} ms/doc ({args.base}) vs {n:.2f} ms/doc (this tree): {n / o:.2f}x")
    print(f"load average {load:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
