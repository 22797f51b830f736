"""What a model cost: requests, tokens, retries and dollars, by stage and model; and the
provider batches of a run in batch mode."""

from __future__ import annotations

import attrs
from pydantic import BaseModel

__all__ = ["BatchCounts", "ModelUsage", "UsageByStage", "merge_usage"]


class ModelUsage(BaseModel):
    """What one stage spent on one model: requests, tokens, retries, cache hits, cost."""

    requests: int = 0
    """Requests that reached the provider (retries included, cache hits not)."""
    cache_hits: int = 0
    retries: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    """The part of ``completion_tokens`` spent on reasoning (reported by the provider,
    else estimated by the reasoning's share of the reply's length)."""
    cost: float = 0.0
    """US dollars, from litellm's local price table (0 for models it does not price);
    requests sent in provider batches at the batch price."""
    batched: int = 0
    """Of ``requests``, those sent in provider batches (batch mode)."""

    def count(self, name: str, amount: float = 1) -> None:
        """Add ``amount`` to the figure ``name``, as ``+=`` would, for a fraction of the CPU.

        The request path books every request and reply: pydantic's ``__setattr__``
        costs several times a dict write, and assignment here validates nothing.
        """
        self.__dict__[name] += amount
        self.__pydantic_fields_set__.add(name)

    def count_reply(self, prompt: int, completion: int, reasoning: int, cost: float) -> None:
        """Add a reply's tokens and cost (see :meth:`count`); zeros leave their figure alone."""
        figures, counted = self.__dict__, self.__pydantic_fields_set__
        figures["prompt_tokens"] += prompt
        figures["completion_tokens"] += completion
        counted.update(_TOKENS)
        if reasoning:
            figures["reasoning_tokens"] += reasoning
            counted.add("reasoning_tokens")
        if cost:
            figures["cost"] += cost
            counted.add("cost")

    def merge(self, other: ModelUsage) -> None:
        """Add ``other``'s figures into this one (every figure counts as set, as with ``+=``)."""
        figures, theirs = self.__dict__, other.__dict__
        for name in _FIGURES:  # dict writes: see count()
            figures[name] += theirs[name]
        self.__pydantic_fields_set__.update(_FIGURES)

    def minus(self, other: ModelUsage) -> ModelUsage:
        """The figures spent since ``other`` was a snapshot of this ledger."""
        mine, theirs = self.__dict__, other.__dict__
        return ModelUsage(**{name: mine[name] - theirs[name] for name in _FIGURES})


_TOKENS = ("prompt_tokens", "completion_tokens")
_FIGURES = tuple(ModelUsage.model_fields)
"""Every figure of a ledger (``model_fields`` is a class property rebuilt on each read)."""

UsageByStage = dict[str, dict[str, ModelUsage]]
"""Model usage by stage name, then by model name."""


def merge_usage(total: UsageByStage, part: UsageByStage) -> None:
    """Add ``part`` into ``total``."""
    for stage, models in part.items():
        into = total.setdefault(stage, {})
        for model, usage in models.items():
            ledger = into.get(model)
            if ledger is None:  # not setdefault: that would build a ModelUsage per call
                ledger = into[model] = ModelUsage()
            ledger.merge(usage)


@attrs.frozen
class BatchCounts:
    """Provider batches of a run in batch mode, and the requests in them."""

    submitted: int = 0
    in_progress: int = 0
    done: int = 0
    requests_submitted: int = 0
    requests_in_progress: int = 0
    requests_done: int = 0

    def __add__(self, other: BatchCounts) -> BatchCounts:
        return BatchCounts(
            *(a + b for a, b in zip(attrs.astuple(self), attrs.astuple(other), strict=True))
        )

    def line(self) -> str:
        """``batches 5 submitted (120 requests), 1 in progress (10), 4 done (110)``."""
        return (
            f"batches {self.submitted} submitted ({self.requests_submitted} requests), "
            f"{self.in_progress} in progress ({self.requests_in_progress}), "
            f"{self.done} done ({self.requests_done})"
        )
