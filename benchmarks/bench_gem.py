"""End-to-end GEM benchmark: the full preset against a canned teacher with fixed latency.

Each document costs five model requests (relevance, extraction, generation,
refinement, judge). With C requests in flight and latency L the limit is
C / L requests per second; the benchmark prints achieved / limit for several
concurrencies, then reruns the last run directory: a finished run must make
zero requests and take a small fraction of the first run's time.

Each concurrency C gets ``--docs-per-slot`` x C documents, so every run lasts
about the same time (docs-per-slot x 5 x L at the limit) and the ramp-down at
the end, when fewer than C requests remain, weighs the same at every C. The
default latency, 1 s, is a fast reply for a teacher writing whole
conversations; ``--latency 0.1`` shows where CPU becomes the limit instead.

    python benchmarks/bench_gem.py [--latency 1.0] [--concurrency 16 64 256] [--docs-per-slot 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _server import fake_server

from gemlib import Document, Pipeline
from gemlib.llm import LLM, Limits

TEXT = (Path(__file__).parents[1] / "examples" / "corpus" / "gem_examples.jsonl").read_text()


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
    parser.add_argument("--docs-per-slot", type=int, default=20)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256])
    args = parser.parse_args()
    print(f"GEM preset, 5 requests per document, latency {args.latency * 1000:.0f} ms")
    print(
        f"{'concurrency':>11} {'documents':>9} {'req/s':>8} {'limit':>7} {'ratio':>7} "
        f"{'docs/s':>7} {'CPU/doc':>8} {'server CPU/req':>14}"
    )
    with fake_server(args.latency, teacher=True) as server, tempfile.TemporaryDirectory() as tmp:
        api_base = server.api_base
        for c in args.concurrency:
            docs = corpus(args.docs_per_slot * c)
            run_dir = Path(tmp) / f"c{c}"
            cpu, server_cpu = time.process_time(), server.cpu_seconds()
            elapsed, requests = run(api_base, docs, c, run_dir)
            cpu_ms = (time.process_time() - cpu) / len(docs) * 1000
            server_ms = (server.cpu_seconds() - server_cpu) / max(requests, 1) * 1000
            limit = c / args.latency
            print(
                f"{c:>11} {len(docs):>9} {requests / elapsed:>8.0f} {limit:>7.0f} "
                f"{requests / elapsed / limit:>7.3f} {len(docs) / elapsed:>7.1f} "
                f"{cpu_ms:>6.1f}ms {server_ms:>12.2f}ms"
            )
        again, sent = run(api_base, docs, args.concurrency[-1], run_dir)
    print(
        f"rerun of the finished run: {again:.2f} s = {again / elapsed:.1%} of the first run, "
        f"{sent} requests"
    )


if __name__ == "__main__":
    main()
