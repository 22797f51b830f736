"""Exact and near-duplicate detection for source segments and trajectories.

Texts are normalised (case, whitespace), cut into word 5-shingles (character
5-grams for texts of fewer words), and summarised by a 64-value MinHash
signature. Locality-sensitive hashing (16 bands of 4 rows) finds candidate
pairs cheaply; a candidate counts as a duplicate when the signatures agree on
at least ``threshold`` of their values (an estimate of the shingle sets'
Jaccard similarity). Identical normalised texts are caught first by hash.

Hashing uses BLAKE2b, so signatures are the same in every process and run.
The index lives in memory: one signature (64 integers) per item kept.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator

import attrs

from gemlib.model import Document, Rejection, Trajectory
from gemlib.pipeline.stage import Stage

__all__ = ["Deduplicate", "Duplicate", "DuplicateIndex", "find_duplicates", "trajectory_text"]

_PRIME = (1 << 61) - 1
_PERMUTATIONS = 64
_BANDS = 16
_ROWS = _PERMUTATIONS // _BANDS
_rng = random.Random(20260121)
_COEFFICIENTS = [
    (_rng.randrange(1, _PRIME), _rng.randrange(0, _PRIME)) for _ in range(_PERMUTATIONS)
]


def _normalise(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _shingles(text: str, size: int = 5) -> set[str]:
    words = text.split()
    if len(words) >= size:
        return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}
    return {text[i : i + size] for i in range(max(1, len(text) - size + 1))}


def _hash(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")


def signature(text: str) -> tuple[int, ...]:
    """The MinHash signature of a (normalised) text."""
    hashes = [_hash(s) for s in _shingles(text)]
    return tuple(min((a * h + b) % _PRIME for h in hashes) for a, b in _COEFFICIENTS)


def trajectory_text(trajectory: Trajectory) -> str:
    """What makes two trajectories the same: their messages and calls."""
    return "\n".join(
        m.content + " ".join(f"{c.name} {sorted(c.arguments.items())}" for c in m.tool_calls)
        for m in trajectory.messages
    )


@attrs.frozen
class Duplicate:
    """``item_id`` repeats ``duplicate_of`` with the given estimated similarity."""

    item_id: str
    duplicate_of: str
    similarity: float


@attrs.define
class DuplicateIndex:
    """Items seen so far; :meth:`add` says whether a new one repeats one of them."""

    threshold: float = attrs.field(
        default=0.8, validator=[attrs.validators.gt(0.0), attrs.validators.le(1.0)]
    )
    _exact: dict[str, str] = attrs.field(factory=dict)
    _signatures: dict[str, tuple[int, ...]] = attrs.field(factory=dict)
    _buckets: defaultdict[tuple[int, int], list[str]] = attrs.field(
        factory=lambda: defaultdict(list)
    )

    def add(self, item_id: str, text: str) -> Duplicate | None:
        """Index ``text`` unless it duplicates an earlier item; then return that match."""
        normal = _normalise(text)
        digest = hashlib.sha256(normal.encode()).hexdigest()
        if digest in self._exact:
            return Duplicate(item_id, self._exact[digest], 1.0)
        sig = signature(normal)
        bands = [(b, _hash(repr(sig[b * _ROWS : (b + 1) * _ROWS]))) for b in range(_BANDS)]
        best: Duplicate | None = None
        for key in bands:
            for other in self._buckets.get(key, ()):
                agree = sum(x == y for x, y in zip(sig, self._signatures[other], strict=True))
                similarity = agree / _PERMUTATIONS
                if similarity >= self.threshold and (best is None or similarity > best.similarity):
                    best = Duplicate(item_id, other, similarity)
        if best is not None:
            return best
        self._exact[digest] = item_id
        self._signatures[item_id] = sig
        for key in bands:
            self._buckets[key].append(item_id)
        return None


def find_duplicates(
    items: Iterable[tuple[str, str]], threshold: float = 0.8
) -> Iterator[Duplicate]:
    """Every item (by ``(id, text)``) that repeats an earlier one, with what it repeats."""
    index = DuplicateIndex(threshold)
    for item_id, text in items:
        found = index.add(item_id, text)
        if found is not None:
            yield found


@attrs.define
class Deduplicate(Stage):
    """Reject documents or trajectories that repeat an earlier one (rule ``duplicate``).

    The first of a group is kept. The index lives for the stage object's life,
    so duplicates are found within a run, not across resumed sessions.
    """

    threshold: float = 0.8
    _index: DuplicateIndex = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._index = DuplicateIndex(self.threshold)

    def process(self, item: Document | Trajectory) -> Document | Trajectory | Rejection:
        """Pass ``item`` through, or reject it naming the item it repeats."""
        text = item.text if isinstance(item, Document) else trajectory_text(item)
        found = self._index.add(item.id, text)
        if found is None:
            return item
        return Rejection(
            rule="duplicate",
            reason=f"repeats {found.duplicate_of} (similarity {found.similarity:.2f})",
            detail={"duplicate_of": found.duplicate_of, "similarity": found.similarity},
        )
