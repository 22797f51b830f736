"""Choosing items: pilot runs (the first N corpus items, or a seeded uniform sample of N) and
one-pass reservoir sampling.

Pilot runs come before the full run.

A pilot's run directory measures what the estimate can only assume (pass
rates, reply sizes, repairs); ``gemlib estimate CORPUS --pilot DIR`` then
predicts the full run from it. Running the full corpus later into the same
directory resumes it: the pilot's items are not done again.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["pilot_items", "reservoir_sample"]


def pilot_items(
    items: Iterable[Any], *, limit: int | None = None, sample: int | None = None, seed: int = 0
) -> Iterator[Any]:
    """The first ``limit`` items, or a uniform ``sample`` of that many drawn with ``seed``.

    A sample keeps the corpus order and holds only the sampled items (one pass,
    reservoir sampling); the same corpus and seed give the same sample.
    """
    if limit is not None and sample is not None:
        raise ValueError("give either limit (the first N items) or sample (N at random), not both")
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, got {limit}")
        return itertools.islice(items, limit)
    if sample is not None:
        if sample < 0:
            raise ValueError(f"sample must be 0 or more, got {sample}")
        chosen = reservoir_sample(enumerate(items), sample, seed=seed)
        return (item for _, item in sorted(chosen, key=lambda pair: pair[0]))
    return iter(items)


def reservoir_sample(items: Iterable[Any], size: int, seed: int = 0) -> list[Any]:
    """A uniform sample of ``size`` items from a stream of unknown length, in one pass."""
    rng = random.Random(seed)
    sample: list[Any] = []
    for seen, item in enumerate(items):
        if seen < size:
            sample.append(item)
        else:
            slot = rng.randrange(seen + 1)
            if slot < size:
                sample[slot] = item
    return sample
