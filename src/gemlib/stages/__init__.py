"""Reusable stages that are not the GEM method's own: an LLM prompt stage, deduplication,
the classifier filter and the validation stages. The method's stages are in :mod:`gemlib.gem`."""

from gemlib.stages.classifier_filter import ClassifierFilter
from gemlib.stages.dedup import Deduplicate
from gemlib.stages.llm_stage import LLMStage
from gemlib.stages.validators import RuleValidator, TurnValidator

__all__ = [
    "ClassifierFilter",
    "Deduplicate",
    "LLMStage",
    "RuleValidator",
    "TurnValidator",
]
