"""gemlib's own CPU per model request, side by side with an older commit.

The request path between a stage asking its model and the backend's
``acomplete`` (``LLM.acomplete``, the retrying sender and its timeout, the
limiter, the reasoning split, usage accounting, ``structured.ask``, the turn
queue), driven at ``--concurrency`` tasks by a backend that answers in-process
after one pass of the event loop with the tests' canned Northwind generation
reply. Cases, in microseconds of process time per request:

- ``backend``: the backend called directly (the floor: event loop and backend);
- ``acomplete``: ``LLM.acomplete`` (cache off, as ``bench_gem.py`` runs);
- ``ask``: ``structured.ask`` with a parser returning the text;
- ``stage``: ``LLMStage.process`` of a stage whose prompt and parse do nothing;
- ``queued``: ``ask`` with twice as many tasks as the model's ``max_concurrency``
  (half of them wait for a slot, as in ``Pipeline.run``'s default window);
- ``cached``: ``LLM.acomplete`` answered from a warm SQLite request cache.

Each case's figure is the fastest of ``--repeat`` batches of ``--number``
requests per task; ``own`` lines subtract the ``backend`` floor. Each side runs
``--rounds`` times in a fresh process importing its own gemlib (this
checkout's ``src``; ``--base`` as its wheel installs it, see ``_base.extract``),
the sides alternating.

    python benchmarks/bench_request.py [--base 9535f38] [--rounds 3] [--repeat 5] [--number 40]
    python benchmarks/bench_request.py --child --only ask   # one case, e.g. under callgrind
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import _base

ROOT = Path(__file__).resolve().parents[1]

Call = Callable[[], Awaitable[object]]


def cases(tmp: Path, concurrency: int) -> dict[str, tuple[int, Call]]:
    """What is timed: a name, the tasks that run it at once, and one request."""
    sys.path.insert(0, str(ROOT / "tests"))
    from gemlib.llm import LLM, ChatReply, ChatRequest, Limits
    from gemlib.llm.structured import ask
    from gemlib.stages.llm_stage import LLMStage
    from teacher import GENERATION

    text = GENERATION["Northwind"]
    prompt = [{"role": "user", "content": "Write a conversation.\n" + "word " * 1500}]

    class Instant:
        """Answers after one pass of the event loop, as a reply read from a socket would."""

        async def aclose(self) -> None:
            pass

        async def acomplete(self, request: ChatRequest) -> ChatReply:
            await asyncio.sleep(0)
            return ChatReply(text, "stop", 2000, 700, 0.0, request.model, latency=0.001)

    backend = Instant()
    request = ChatRequest("openai/teacher", prompt, {"temperature": 0.7})

    def model(**options: Any) -> LLM:
        limits = Limits(max_concurrency=concurrency)
        return LLM("openai/teacher", backend=Instant(), temperature=0.7, limits=limits, **options)

    llm, queued = model(cache=False), model(cache=False)
    cached = model(cache=tmp / "cache.sqlite")

    class Echo(LLMStage):
        def prompt(self, item: str) -> list[dict[str, str]]:
            return prompt

        def parse(self, text: str, item: str) -> str:
            return text

    stage = Echo(model(cache=False))

    def echo(reply: str) -> str:
        return reply

    return {
        "backend": (concurrency, lambda: backend.acomplete(request)),
        "acomplete": (concurrency, lambda: llm.acomplete(prompt, stage="s")),
        "ask": (concurrency, lambda: ask(llm, prompt, echo, stage="s")),
        "stage": (concurrency, lambda: stage.process("item")),
        "queued": (2 * concurrency, lambda: ask(queued, prompt, echo, stage="s")),
        "cached": (concurrency, lambda: cached.acomplete(prompt, stage="s")),
    }


async def _batch(tasks: int, call: Call, number: int) -> float:
    """Seconds of process time for ``tasks`` tasks making ``number`` calls each."""

    async def worker() -> None:
        for _ in range(number):
            await call()

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return time.process_time() - started


def measure(concurrency: int, repeat: int, number: int, only: str | None) -> dict[str, float]:
    """Microseconds per request of each case, in this process."""
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (tasks, call) in cases(Path(tmp), concurrency).items():
            if only and name != only:
                continue

            async def run(tasks: int = tasks, call: Call = call) -> float:
                await _batch(tasks, call, 2)  # warm-up (and the cache filled)
                return min([await _batch(tasks, call, number) for _ in range(repeat)])

            figures[name] = asyncio.run(run()) / (tasks * number) * 1e6
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="9535f38", help="commit to compare with")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--number", type=int, default=40, help="requests per task per batch")
    parser.add_argument("--rounds", type=int, default=3, help="child runs per side, alternating")
    parser.add_argument("--child", action="store_true", help="measure this tree only")
    parser.add_argument("--only", help="one case (with --child)")
    args = parser.parse_args()
    sizes = ["--concurrency", str(args.concurrency), "--repeat", str(args.repeat)]
    sizes += ["--number", str(args.number)]
    if args.child:
        print(json.dumps(measure(args.concurrency, args.repeat, args.number, args.only)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        sources = {True: _base.extract(args.base, Path(tmp)), False: ROOT / "src"}
        old, new = _base.fastest(Path(__file__), sources, ["--child", *sizes], args.rounds)
    runs = f"{args.rounds} x {args.repeat} x {args.number} x {args.concurrency} tasks"
    print(f"us of CPU per request (min of {runs}, process time, sides interleaved)")
    print(f"{'':16}{args.base:>10}{'this tree':>11}{'ratio':>8}")
    for name, before in old.items():
        after = new[name]
        print(f"{name:16}{before:>10.1f}{after:>11.1f}{before / after:>7.2f}x")
    for name in old.keys() - {"backend"}:
        before, after = old[name] - old["backend"], new[name] - new["backend"]
        print(f"{'own ' + name:16}{before:>10.1f}{after:>11.1f}{before / after:>7.2f}x")


if __name__ == "__main__":
    main()
