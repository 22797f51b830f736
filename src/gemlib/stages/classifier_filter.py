"""`ClassifierFilter`: drop segments a trained relevance classifier scores as not procedural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from gemlib.classifier import RelevanceClassifier
from gemlib.model import Document, Rejection
from gemlib.pipeline.stage import Stage

__all__ = ["ClassifierFilter"]


def _as_classifier(value: RelevanceClassifier | str | Path) -> RelevanceClassifier:
    if isinstance(value, RelevanceClassifier):
        return value
    return RelevanceClassifier.load(value)


@attrs.define
class ClassifierFilter(Stage):
    """Keep segments scoring at or above the threshold; reject the rest with their score.

    ``classifier``: a :class:`~gemlib.classifier.RelevanceClassifier` or the
    path of a saved one. ``threshold``: overrides the one chosen at training
    (for the target recall). Put it after the prefilter and before the LLM's
    relevance stage: what it keeps still goes to the LLM, so it only has to
    be sure about what it drops.
    """

    classifier: RelevanceClassifier = attrs.field(converter=_as_classifier)
    threshold: float | None = None

    def config(self) -> dict[str, Any]:
        """The model's digest and the threshold in use (what decides the output)."""
        return {"classifier": self.classifier.digest(), "threshold": self._threshold}

    @property
    def _threshold(self) -> float:
        return self.classifier.threshold if self.threshold is None else self.threshold

    def process(self, doc: Document) -> Document | Rejection:
        """Pass ``doc`` through, or reject it with rule ``classifier_not_procedural``."""
        score = self.classifier.score(doc.text)
        if score >= self._threshold:
            return doc
        return Rejection(
            rule="classifier_not_procedural",
            reason=f"relevance score {score:.4f} below the threshold {self._threshold:.4f}",
            detail={"score": score},
        )
