"""`RelevanceFilter`: keep segments that teach a multi-step operation, and label them.

The model answers ``<multi_step>`` True or False with a one-line summary and
labels from the GEM label sets (:mod:`gemlib.gem.labels`): domains, platform and
task category. A segment judged not multi-step is rejected with rule
``not_procedural`` (the model's summary as the reason). Labels outside the
sets are mapped to ``other`` and kept verbatim under ``unknown_labels``. The
labels go to ``document.meta["labels"]`` and travel with every workflow and
trajectory made from the segment.
"""

from __future__ import annotations

import attrs

from gemlib.formats.gem_tags import parse_relevance
from gemlib.gem.labels import DOMAINS, PLATFORMS, TASKS, normalize_labels
from gemlib.model import Document, Rejection
from gemlib.model._base import copied
from gemlib.stages.llm_stage import LLMStage

__all__ = ["RelevanceFilter"]

_DOMAINS, _PLATFORMS, _TASKS = sorted(DOMAINS), sorted(PLATFORMS), sorted(TASKS)
"""The label sets as the prompt lists them, sorted once (each prompt gets its own copy,
for a template that would change it)."""


@attrs.define
class RelevanceFilter(LLMStage):
    """Ask the model whether a segment describes a multi-step operation; label it."""

    prompt_name = "relevance"

    def prompt(self, doc: Document) -> list[dict[str, str]]:
        """The relevance prompt for one segment."""
        return self.render(
            text=doc.text,
            domains=list(_DOMAINS),
            platforms=list(_PLATFORMS),
            tasks=list(_TASKS),
        )

    def parse(self, text: str, doc: Document) -> Document | Rejection:
        """The labelled segment, or a ``not_procedural`` rejection."""
        reply = parse_relevance(text)
        if not reply["multi_step"]:
            return Rejection(
                rule="not_procedural",
                reason=reply["summary"] or "the model found no multi-step operation",
            )
        domains, unknown_domains = normalize_labels(reply["domain"], DOMAINS)
        platforms, unknown_platforms = normalize_labels(reply["platform"], PLATFORMS)
        tasks, unknown_tasks = normalize_labels(reply["task"], TASKS)
        labels = {
            "summary": reply["summary"],
            "domains": domains or ["other"],
            "platform": platforms[0] if platforms else "other",
            "task": tasks[0] if tasks else "other",
        }
        unknown = unknown_domains + unknown_platforms + unknown_tasks
        if unknown:
            labels["unknown_labels"] = unknown
        return copied(doc, meta={**doc.meta, "labels": labels})
