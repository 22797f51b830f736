"""A run that a test kills with SIGKILL: `python crash_worker.py RUN_DIR N_DOCS DELAY`."""

from __future__ import annotations

import asyncio
import sys

from gemlib import Document, Pipeline, Rejection, Stage


class Sentences(Stage):
    def process(self, doc: Document) -> list[Document]:
        parts = [p.strip() for p in doc.text.split(".") if p.strip()]
        return [Document(text=p, parent_id=doc.id, segment_index=i) for i, p in enumerate(parts)]


class SlowCheck(Stage):
    delay = 0.01

    async def process(self, doc: Document) -> Document | Rejection:
        await asyncio.sleep(self.delay)
        if doc.text.endswith("3"):
            return Rejection(rule="ends_in_3", reason=doc.text)
        return doc


def corpus(n: int) -> list[str]:
    return [f"Doc {i} step 1. Doc {i} step 2. Doc {i} step 3" for i in range(n)]


if __name__ == "__main__":
    run_dir, n_docs, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    SlowCheck.delay = delay
    Pipeline([Sentences(), SlowCheck()]).run(corpus(n_docs), run_dir=run_dir, max_in_flight=16)
