"""LLM layer benchmark: throughput against the limit, and gemlib's CPU cost per request.

A fake OpenAI-compatible server in another process answers after a fixed
latency. With concurrency C and latency L the limit is C / L requests per
second; the benchmark prints achieved / limit through gemlib's LLM (limits,
retries, accounting; cache off) with each transport (the direct
OpenAI-compatible one, which ``auto`` picks for such servers, and litellm),
then through bare ``litellm.acompletion`` under a semaphore, with the CPU time
per request of each path.

    python benchmarks/bench_llm.py [--concurrency 64] [--latency 0.1] [--requests 1280]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from _server import fake_server

from gemlib.llm import LLM, Limits
from gemlib.llm.backends.litellm import import_litellm

MODEL = "openai/gpt-4o-mini"


async def _timed(n: int, call: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    await call(-1)  # warm up: import, connection pool
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(call(i) for i in range(n)))
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--requests", type=int, default=1280)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved; medians shown")
    args = parser.parse_args()
    c, n = args.concurrency, args.requests
    limit = c / args.latency
    litellm = import_litellm()

    def via_gemlib(api_base: str, transport: str) -> tuple[float, float]:
        llm = LLM(
            MODEL,
            api_base=api_base,
            api_key="bench",
            cache=False,
            limits=Limits(max_concurrency=c),
            transport=transport,
        )

        async def call(i: int) -> object:
            return await llm.acomplete([{"role": "user", "content": f"request {i}"}])

        async def timed() -> tuple[float, float]:
            try:
                return await _timed(n, call)
            finally:
                await llm.aclose()

        return asyncio.run(timed())

    def via_litellm(api_base: str) -> tuple[float, float]:
        gate = asyncio.Semaphore(c)

        async def call(i: int) -> object:
            async with gate:
                return await litellm.acompletion(
                    model=MODEL,
                    api_base=api_base,
                    api_key="bench",
                    num_retries=0,
                    messages=[{"role": "user", "content": f"request {i}"}],
                )

        return asyncio.run(_timed(n, call))

    paths: dict[str, Callable[[str], tuple[float, float]]] = {
        "gemlib, openai-compatible": lambda api: via_gemlib(api, "openai-compatible"),
        "gemlib, litellm": lambda api: via_gemlib(api, "litellm"),
        "bare litellm": via_litellm,
    }
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    with fake_server(args.latency) as server:
        for r in range(args.rounds):  # alternate the order: a loaded machine slows all alike
            for name in list(paths) if r % 2 == 0 else reversed(paths):
                runs[name].append(paths[name](server.api_base))
    print(
        f"LLM layer: {n} requests, concurrency {c}, latency {args.latency * 1000:.0f} ms, "
        f"limit {limit:.0f} req/s; medians of {args.rounds} interleaved rounds"
    )
    print(f"{'path':<28} {'req/s':>8} {'ratio to limit':>15} {'CPU ms/request':>15}")
    cpu_ms = {}
    for name, results in runs.items():
        wall = statistics.median(w for w, _ in results)
        cpu_ms[name] = statistics.median(cpu for _, cpu in results) / n * 1000
        print(f"{name:<28} {n / wall:>8.0f} {n / wall / limit:>15.3f} {cpu_ms[name]:>15.2f}")
    spread = [
        round(cpu / n * 1000, 2)
        for name in ("gemlib, litellm", "bare litellm")
        for _, cpu in runs[name]
    ]
    added = cpu_ms["gemlib, litellm"] - cpu_ms["bare litellm"]
    print(f"gemlib's litellm transport: {added:+.2f} ms CPU per request over bare litellm")
    print(f"(per round, ms/request: gemlib litellm rounds, then bare litellm rounds: {spread})")


if __name__ == "__main__":
    main()
