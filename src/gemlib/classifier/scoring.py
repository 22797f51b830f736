"""A small relevance classifier trained on the LLM's own relevance labels.

GEM asks an LLM about every segment. At corpus scale most of those calls can be
replaced: label a sample with the LLM
(:func:`gemlib.gem.classifier_labels.label_with_llm`), train a linear model on
it (:meth:`RelevanceClassifier.train`), and let
:class:`~gemlib.stages.classifier_filter.ClassifierFilter` drop the segments it
is confident about, so that only the rest reach the LLM's relevance stage.

The features are the word unigrams and bigrams present in a segment (binary,
L2-normalised), identified by their CRC-32; the model is a logistic regression
(scikit-learn, ``classifier`` extra, needed for training only). Scoring needs
nothing but the standard library: a set of CRCs and a dictionary lookup each,
tens of microseconds per segment. The threshold is chosen on held-out labels
for a target recall, and the held-out precision and recall travel with the
model. A saved model is plain JSON (never a pickle), so loading one runs no code.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import zlib
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import attrs
from pydantic import BaseModel

from gemlib.errors import GemlibError

__all__ = [
    "ClassifierReport",
    "LabelledText",
    "RelevanceClassifier",
    "precision_recall",
]

FORMAT = "gemlib-relevance-classifier/1"

# Lower-cased UTF-8; ASCII bytes other than letters and digits become spaces
# (bytes of non-ASCII letters stay, so any script still tokenises into words).
_SEPARATORS = bytes(c if (48 <= c <= 57 or 97 <= c <= 122 or c >= 128) else 32 for c in range(256))


def features(text: str) -> set[int]:
    """The CRC-32 of every word and adjacent word pair in ``text`` (lower-cased)."""
    words = text.lower().encode("utf-8", "replace").translate(_SEPARATORS).split()
    grams = set(map(zlib.crc32, words))
    grams.update(map(zlib.crc32, map(b" ".join, pairwise(words))))
    return grams


class LabelledText(BaseModel):
    """One text and whether the LLM judged it to describe a multi-step operation."""

    id: str
    text: str
    procedural: bool


class ClassifierReport(BaseModel):
    """How the classifier did on labels it was not trained on."""

    threshold: float
    target_recall: float
    precision: float
    recall: float
    kept_share: float
    """Share of held-out texts at or above the threshold (the ones still sent to the LLM)."""
    train_size: int
    calibration_size: int
    """Held-out texts the threshold was chosen on."""
    holdout_size: int
    """Held-out texts precision and recall were measured on (used for nothing else)."""
    holdout_positives: int

    def format(self) -> str:
        """One readable paragraph."""
        return (
            f"threshold {self.threshold:.4f} (for recall >= {self.target_recall:.2f}): "
            f"precision {self.precision:.3f}, recall {self.recall:.3f} on "
            f"{self.holdout_size} held-out texts ({self.holdout_positives} procedural); "
            f"{self.kept_share:.1%} would still go to the LLM; trained on {self.train_size}"
        )


def precision_recall(kept: Sequence[bool], labels: Sequence[bool]) -> tuple[float, float]:
    """Precision and recall of a filter's ``kept`` decisions against ``labels`` (True:
    procedural); 1.0 where nothing was kept or nothing was procedural."""
    true_pos = sum(k and y for k, y in zip(kept, labels, strict=True))
    precision = true_pos / sum(kept) if any(kept) else 1.0
    recall = true_pos / sum(labels) if any(labels) else 1.0
    return precision, recall


@attrs.define(repr=False)
class RelevanceClassifier:
    """A linear model over hashed word n-grams; ``score`` is the probability of "procedural"."""

    weights: dict[int, float]
    intercept: float
    threshold: float = 0.5
    report: ClassifierReport | None = None

    def __repr__(self) -> str:
        return (
            f"RelevanceClassifier({len(self.weights)} weights, threshold={self.threshold:.4f}, "
            f"digest={self.digest()[:12]})"
        )

    def score(self, text: str) -> float:
        """The probability that ``text`` describes a multi-step operation."""
        grams = features(text)
        if not grams:
            return 1.0 / (1.0 + math.exp(-self.intercept))
        total = sum(filter(None, map(self.weights.get, grams)))
        z = self.intercept + total / math.sqrt(len(grams))
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def keeps(self, text: str) -> bool:
        """Whether ``text`` scores at or above the threshold."""
        return self.score(text) >= self.threshold

    def evaluate(
        self, texts: Sequence[str], labels: Sequence[bool], threshold: float | None = None
    ) -> tuple[float, float, float]:
        """Precision, recall and kept share on labelled texts at ``threshold`` (default: own)."""
        cut = self.threshold if threshold is None else threshold
        kept = [self.score(t) >= cut for t in texts]
        precision, recall = precision_recall(kept, labels)
        return precision, recall, sum(kept) / len(texts) if texts else 0.0

    @classmethod
    def train(
        cls,
        examples: Iterable[LabelledText],
        *,
        target_recall: float = 0.95,
        holdout: float = 0.25,
        regularization: float = 4.0,
        seed: int = 0,
    ) -> RelevanceClassifier:
        """Fit on LLM-labelled texts; pick the threshold for ``target_recall`` on held-out texts.

        A seeded, stratified ``holdout`` share is kept out of training and
        halved: on the first half the threshold is set to the highest score
        that keeps at least ``target_recall`` of the procedural texts; on the
        second, never used for any choice, :attr:`report` measures precision
        and recall at that threshold. ``regularization`` is scikit-learn's ``C``.
        """
        try:
            import numpy as np
            from scipy.sparse import csr_matrix
            from sklearn.linear_model import LogisticRegression
        except ImportError:
            raise GemlibError(
                "training a relevance classifier needs scikit-learn: "
                "pip install 'gemlib[classifier]'"
            ) from None
        if not 0 < target_recall <= 1:
            raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
        rows = list(examples)
        positives = [r for r in rows if r.procedural]
        negatives = [r for r in rows if not r.procedural]
        if len(positives) < 8 or len(negatives) < 8:
            raise GemlibError(
                f"training needs at least 8 procedural and 8 other labelled texts, got "
                f"{len(positives)} and {len(negatives)}: label a larger sample"
            )
        rng = random.Random(seed)
        train: list[LabelledText] = []
        calibration: list[LabelledText] = []
        held: list[LabelledText] = []
        for group in (positives, negatives):
            group = sorted(group, key=lambda r: r.id)
            rng.shuffle(group)
            cut = max(4, round(len(group) * holdout))
            calibration += group[:cut:2]
            held += group[1:cut:2]
            train += group[cut:]

        columns: dict[int, int] = {}
        indptr, indices, values = [0], [], []
        for row in train:
            grams = features(row.text)
            for gram in grams:
                indices.append(columns.setdefault(gram, len(columns)))
            values += [1.0 / math.sqrt(len(grams))] * len(grams) if grams else []
            indptr.append(len(indices))
        matrix = csr_matrix((values, indices, indptr), shape=(len(train), max(len(columns), 1)))
        model = LogisticRegression(C=regularization, class_weight="balanced", max_iter=1000)
        model.fit(matrix, np.array([r.procedural for r in train]))
        coef = model.coef_[0]
        weights = {gram: float(coef[col]) for gram, col in columns.items() if coef[col] != 0.0}
        classifier = cls(weights=weights, intercept=float(model.intercept_[0]))

        scores = sorted(classifier.score(r.text) for r in calibration if r.procedural)
        # The highest cut that keeps ceil(target * n) of the calibration positives.
        need = math.ceil(target_recall * len(scores) - 1e-9)
        threshold = scores[len(scores) - need]
        texts = [r.text for r in held]
        labels = [r.procedural for r in held]
        precision, recall, kept = classifier.evaluate(texts, labels, threshold)
        classifier.threshold = threshold
        classifier.report = ClassifierReport(
            threshold=threshold,
            target_recall=target_recall,
            precision=precision,
            recall=recall,
            kept_share=kept,
            train_size=len(train),
            calibration_size=len(calibration),
            holdout_size=len(held),
            holdout_positives=sum(labels),
        )
        return classifier

    def to_json(self) -> dict[str, Any]:
        """The model as plain JSON data."""
        return {
            "format": FORMAT,
            "intercept": self.intercept,
            "threshold": self.threshold,
            "report": None if self.report is None else self.report.model_dump(),
            "weights": [[gram, weight] for gram, weight in sorted(self.weights.items())],
        }

    def digest(self) -> str:
        """A hash of the model: it identifies the filter in run fingerprints."""
        canonical = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON (atomically) and return the path."""
        target = Path(path)
        partial = target.with_name(target.name + ".partial")
        partial.write_text(json.dumps(self.to_json()))
        partial.replace(target)
        return target

    @classmethod
    def load(cls, path: str | Path) -> RelevanceClassifier:
        """Read a model written by :meth:`save`; anything else is refused with the reason."""
        source = Path(path)
        try:
            data = json.loads(source.read_text())
        except FileNotFoundError:
            raise GemlibError(f"{source}: no such classifier file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise GemlibError(f"{source}: not a gemlib classifier (not JSON: {exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise GemlibError(f"{source}: not a gemlib classifier (expected format {FORMAT!r})")
        try:
            weights = {int(gram): float(weight) for gram, weight in data["weights"]}
            report = data.get("report")
            return cls(
                weights=weights,
                intercept=float(data["intercept"]),
                threshold=float(data["threshold"]),
                report=None if report is None else ClassifierReport.model_validate(report),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GemlibError(f"{source}: malformed classifier ({exc})") from None
