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
import time
from collections.abc import Awaitable, Callable

from _server import fake_server

from gemlib.llm import LLM, Limits
from gemlib.llm.litellm_backend import import_litellm

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
    args = parser.parse_args()
    c, n = args.concurrency, args.requests
    limit = c / args.latency
    rows = []
    with fake_server(args.latency) as server:
        api_base = server.api_base
        for transport in ("openai-compatible", "litellm"):
            llm = LLM(
                MODEL,
                api_base=api_base,
                api_key="bench",
                cache=False,
                limits=Limits(max_concurrency=c),
                transport=transport,
            )

            async def via_gemlib(i: int, llm: LLM = llm) -> object:
                return await llm.acomplete([{"role": "user", "content": f"request {i}"}])

            async def timed(
                llm: LLM = llm,
                call: Callable[[int], Awaitable[object]] = via_gemlib,
            ) -> tuple[float, float]:
                try:
                    return await _timed(n, call)
                finally:
                    await llm.aclose()

            rows.append((f"gemlib, {transport}", *asyncio.run(timed())))

        litellm = import_litellm()

        async def via_litellm() -> tuple[float, float]:
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

            return await _timed(n, call)

        rows.append(("bare litellm", *asyncio.run(via_litellm())))
    print(
        f"LLM layer: {n} requests, concurrency {c}, latency {args.latency * 1000:.0f} ms, "
        f"limit {limit:.0f} req/s"
    )
    print(f"{'path':<28} {'req/s':>8} {'ratio to limit':>15} {'CPU ms/request':>15}")
    for name, wall, cpu in rows:
        print(f"{name:<28} {n / wall:>8.0f} {n / wall / limit:>15.3f} {cpu / n * 1000:>15.2f}")
    added = (rows[1][2] - rows[2][2]) / n * 1000
    print(f"gemlib's own layer adds {added:.2f} ms CPU per request over bare litellm")


if __name__ == "__main__":
    main()
