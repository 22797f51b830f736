"""Runtime benchmark: small documents through three trivial stages into a run directory.

Prints documents per second, the ratio to a bare loop calling the same three
functions (the limit for this work on one core), and peak memory for 10k and
100k documents, each measured in a fresh subprocess so peaks do not mix. Flat
memory means the 100k/10k peak ratio stays near 1.

    python benchmarks/bench_runtime.py            # 10k and 100k
    python benchmarks/bench_runtime.py --sizes 10000 1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from _memory import peak_rss_mib

from gemlib import Document, Pipeline, Stage


class Strip(Stage):
    def process(self, doc: Document) -> Document:
        return doc.model_copy(update={"text": doc.text.strip()})


class Tag(Stage):
    async def process(self, doc: Document) -> Document:
        return doc.model_copy(update={"meta": {"length": len(doc.text)}})


class KeepEven(Stage):
    def process(self, doc: Document) -> Document | list[Document]:
        return doc if doc.meta["length"] % 2 == 0 else []


def corpus(n: int) -> Iterator[Document]:
    """Generated lazily: the corpus is never held in memory."""
    for i in range(n):
        yield Document(id=f"d{i}", text=f"  open the app, tap item {i}, confirm  ")


def measure(n: int) -> dict[str, float]:
    stages = (Strip(), Tag(), KeepEven())
    started = time.perf_counter()
    for doc in corpus(n):  # the bare limit: the same work with no runtime around it
        d = stages[0].process(doc)
        d = d.model_copy(update={"meta": {"length": len(d.text)}})
        stages[2].process(d)
    bare = n / (time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as run_dir:
        started = time.perf_counter()
        result = Pipeline(list(stages)).run(corpus(n), run_dir=run_dir, progress_interval=None)
        elapsed = time.perf_counter() - started
    peak_mib = peak_rss_mib()
    return {
        "docs": n,
        "outputs": result.stats.outputs,
        "docs_per_s": n / elapsed,
        "bare_docs_per_s": bare,
        "peak_mib": peak_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    rows = []
    for n in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout))
    print("runtime: 3 trivial stages, run directory, 1 process")
    print(f"{'docs':>10} {'docs/s':>10} {'ratio to bare loop':>20} {'peak MiB':>10}")
    for r in rows:
        ratio = r["docs_per_s"] / r["bare_docs_per_s"]
        print(f"{r['docs']:>10} {r['docs_per_s']:>10.0f} {ratio:>20.3f} {r['peak_mib']:>10.1f}")
    if len(rows) > 1:
        growth = rows[-1]["peak_mib"] / rows[0]["peak_mib"]
        print(
            f"peak memory {rows[-1]['docs']} / {rows[0]['docs']} docs: {growth:.2f}x (flat = 1.00)"
        )


if __name__ == "__main__":
    main()
