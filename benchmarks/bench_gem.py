"""End-to-end GEM benchmark: the full preset against a canned teacher.

Each document costs five model requests (relevance, extraction, generation,
refinement, judge). The limit is the time a run would take if gemlib cost
nothing: the sum of the server's reply latencies divided by the C requests
allowed in flight (the server reports that sum). The benchmark prints
limit / wall time for several concurrencies, with gemlib's CPU per document
and peak memory, then reruns the last run directory: a finished run must
make zero requests and take a small fraction of the first run's time.

Latency shapes (``--shape``):

- ``fixed``: every reply after ``--latency`` s (1 s by default, a fast reply
  for a teacher writing whole conversations).
- ``lognormal``: heavy-tailed, mean ``--latency`` per 1000 characters of reply
  (so generation and refinement take longest), spread ``--sigma``.
- ``lockstep``: fixed latency with two documents per slot, the worst case for
  CPU: replies arrive together, and gemlib's parsing of one wave delays the
  next wave's requests.

Each concurrency C gets ``--docs-per-slot`` x C documents, so every run lasts
about the same time and the ramp-down at the end weighs the same at every C.
A warm-up run of a few documents comes first in each process, so the figures
are per document and not the process's one-off costs (imports, the price
table, TLS contexts, compiled templates: about 0.3 s of CPU).

``--base COMMIT`` runs each concurrency side by side with that commit as its
wheel installs it (built from the commit's tree, unpacked in a scratch
directory), each side in a fresh process with its own
fake teacher, in ``--rounds`` interleaved rounds (order alternating), and prints
the medians and the ratio of CPU per document (this tree over the base).

    python benchmarks/bench_gem.py [--shape fixed|lognormal|lockstep] [--latency 1.0]
                                   [--concurrency 16 64 256] [--docs-per-slot 20]
                                   [--base df033e0 --rounds 3]
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
from _memory import peak_rss_mib
from _server import fake_server

from gemlib import Document, Pipeline
from gemlib.llm import LLM, Limits

TEXT = (Path(__file__).parents[1] / "examples" / "corpus" / "gem_examples.jsonl").read_text()
WARM_UP = 4  # documents run before any measurement


def corpus(n: int) -> list[Document]:
    import json

    northwind = json.loads(TEXT.splitlines()[0])["text"]
    return [Document(id=f"doc-{i}", text=f"{northwind}\n\n(copy {i})") for i in range(n)]


def run(api_base: str, docs: list[Document], concurrency: int, run_dir: Path) -> tuple[float, int]:
    """Seconds taken, and requests this session sent to the teacher."""
    llm = LLM(
        "openai/teacher",
        api_base=api_base,
        api_key="bench",
        cache=False,
        limits=Limits(max_concurrency=concurrency),
    )
    started = time.perf_counter()
    Pipeline.gem(llm).run(
        docs, run_dir=run_dir, max_in_flight=concurrency * 2, progress_interval=None
    )
    return time.perf_counter() - started, sum(u.requests for u in llm.usage.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", choices=("fixed", "lognormal", "lockstep"), default="fixed")
    parser.add_argument("--docs-per-slot", type=int, default=None, help="20; 2 for lockstep")
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--sigma", type=float, default=1.0, help="spread of lognormal latency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--base", help="commit to run side by side with (interleaved rounds)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.base:
        compare(args)
        return
    per_slot = args.docs_per_slot or (2 if args.shape == "lockstep" else 20)
    server_shape = "lognormal" if args.shape == "lognormal" else "fixed"
    print(
        f"GEM preset, 5 requests per document, {args.shape} latency {args.latency * 1000:.0f} ms"
        + (f" (sigma {args.sigma})" if args.shape == "lognormal" else "")
        + f", {per_slot} documents per slot"
    )
    print(
        f"{'concurrency':>11} {'documents':>9} {'req/s':>8} {'wall s':>7} {'limit s':>7} "
        f"{'ratio':>6} {'CPU/doc':>8} {'peak RSS':>9} {'server CPU/req':>14}"
    )
    with (
        fake_server(args.latency, teacher=True, shape=server_shape, sigma=args.sigma) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        # One-off costs (imports, the price table, TLS contexts, compiled templates)
        # are paid once per process, not per document: a warm-up run pays them first.
        run(server.api_base, corpus(WARM_UP), WARM_UP, Path(tmp) / "warm-up")
        for c in args.concurrency:
            docs = corpus(per_slot * c)
            run_dir = Path(tmp) / f"c{c}"
            cpu, server_cpu = time.process_time(), server.cpu_seconds()
            served = server.served_seconds()
            elapsed, requests = run(server.api_base, docs, c, run_dir)
            ideal = (server.served_seconds() - served) / c
            cpu_ms = (time.process_time() - cpu) / len(docs) * 1000
            server_ms = (server.cpu_seconds() - server_cpu) / max(requests, 1) * 1000
            if args.json:  # one concurrency, for compare()
                print(json.dumps({"ratio": ideal / elapsed, "cpu_ms": cpu_ms}))
                return
            print(
                f"{c:>11} {len(docs):>9} {requests / elapsed:>8.0f} {elapsed:>7.2f} "
                f"{ideal:>7.2f} {ideal / elapsed:>6.3f} {cpu_ms:>6.1f}ms "
                f"{peak_rss_mib():>6.1f}MiB {server_ms:>12.2f}ms"
            )
        again, sent = run(server.api_base, docs, args.concurrency[-1], run_dir)
    print(
        f"rerun of the finished run: {again:.2f} s = {again / elapsed:.1%} of the first run, "
        f"{sent} requests"
    )


def compare(args: argparse.Namespace) -> None:
    """Each concurrency with the base's ``src`` and this tree's, in interleaved rounds."""
    shape = ["--shape", args.shape, "--latency", str(args.latency), "--sigma", str(args.sigma)]
    if args.docs_per_slot:
        shape += ["--docs-per-slot", str(args.docs_per_slot)]
    print(f"GEM preset, {args.shape} latency, {args.base} vs this tree, {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as tmp:
        sides = {"base": _base.extract(args.base, Path(tmp)), "tree": _base.ROOT / "src"}
        for c in args.concurrency:
            figures: dict[str, list[dict[str, float]]] = {"base": [], "tree": []}
            for order in _base.pairs(args.rounds):
                for base_first in order:
                    side = "base" if base_first else "tree"
                    arguments = [*shape, "--concurrency", str(c), "--json"]
                    line = _base.child(Path(__file__), sides[side], arguments)
                    figures[side].append(json.loads(line))
                base, tree = figures["base"][-1], figures["tree"][-1]
                print(
                    f"c={c}: ratio {base['ratio']:.3f} / {tree['ratio']:.3f}, CPU/doc "
                    f"{base['cpu_ms']:.2f} / {tree['cpu_ms']:.2f} ms ({args.base} / this tree)"
                )
            medians = {
                side: {k: statistics.median(f[k] for f in runs) for k in ("ratio", "cpu_ms")}
                for side, runs in figures.items()
            }
            base, tree = medians["base"], medians["tree"]
            print(
                f"c={c} median: ratio {base['ratio']:.3f} ({args.base}) vs {tree['ratio']:.3f} "
                f"(this tree); CPU/doc {base['cpu_ms']:.2f} vs {tree['cpu_ms']:.2f} ms: "
                f"{tree['cpu_ms'] / base['cpu_ms']:.2f}x"
            )
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    main()
