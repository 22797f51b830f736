"""The relevance classifier: a stdlib-scored linear model trained on the LLM's own labels.

:mod:`~gemlib.classifier.scoring` holds the model (training needs the
``classifier`` extra; scoring needs only the standard library);
:func:`gemlib.gem.classifier_labels.label_with_llm` asks GEM's relevance stage for
the labels to train it on.
"""

from gemlib.classifier.scoring import (
    ClassifierReport,
    LabelledText,
    RelevanceClassifier,
    precision_recall,
)

__all__ = ["ClassifierReport", "LabelledText", "RelevanceClassifier", "precision_recall"]
