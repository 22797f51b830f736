"""Where items come from and what happened to them: documents, provenance, problems, rejections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from gemlib.model._base import _Model, copied, stable_id

__all__ = ["Document", "Problem", "Provenance", "Rejection", "StageRecord"]


class StageRecord(_Model):
    """What one stage did to an item: which model and prompt it used, what it cost."""

    stage: str
    version: str = "1"
    model: str | None = None
    prompt_hash: str | None = None
    usage: dict[str, float] = Field(default_factory=dict)
    reasoning: str | None = None
    """The model's reasoning behind the reply the stage used, when it wrote any."""


class Provenance(_Model):
    """Where a derived object comes from: its document, segment, workflow, and stages."""

    document_id: str
    segment_index: int | None = None
    workflow_index: int | None = None
    stages: tuple[StageRecord, ...] = ()

    @property
    def stage(self) -> str | None:
        """The stage that last changed the object, if any."""
        return self.stages[-1].stage if self.stages else None

    def add(self, record: StageRecord) -> Provenance:
        """A copy with ``record`` appended to the stage history."""
        return copied(self, stages=(*self.stages, record))


class Document(_Model):
    """A piece of source text. Its ID comes from the corpus or, if absent, from its text."""

    id: str = ""
    text: str
    meta: dict[str, Any] = Field(default_factory=dict)
    parent_id: str | None = None
    """For a segment split out of a longer document: that document's ID."""
    segment_index: int | None = None
    provenance: Provenance | None = None
    """The stages that labelled or changed this text, if any."""

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not data.get("id"):
            data = dict(data)
            data["id"] = stable_id("doc", data.get("text", ""))
        return data

    @property
    def document_id(self) -> str:
        """The ID of the corpus document this item comes from."""
        return self.parent_id or self.id


class Problem(_Model):
    """One problem a validation check found: its rule, the message it is in, what is wrong."""

    rule: str
    message_index: int | None = None
    text: str


class Rejection(_Model):
    """Why an item was dropped: the stage, a rule name that aggregates, and a reason.

    A stage returns ``Rejection(rule=..., reason=...)``; the runner fills in the
    stage name and the item's IDs. ``raw`` keeps an LLM reply for inspection.
    """

    rule: str
    reason: str
    stage: str = ""
    item_id: str = ""
    document_id: str = ""
    raw: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
