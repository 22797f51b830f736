"""gemlib's data model: the objects that cross boundaries (files, LLM replies, datasets).

All models are frozen pydantic v2 models: they validate on the way in and
serialise to JSON on the way out. IDs are stable: the same input always gives
the same ID, and every derived object records its :class:`Provenance`.
Run accounting (:class:`~gemlib.pipeline.accounting.RunStats`, model usage) is
mutable and lives with the pipeline; the OpenAI chat form is in
:mod:`gemlib.formats.chat`.
"""

from gemlib.model._base import stable_id, validation_summary
from gemlib.model.conversation import Message, Role, Trajectory, Workflow
from gemlib.model.records import Document, Problem, Provenance, Rejection, StageRecord
from gemlib.model.tool import Tool, ToolCall

__all__ = [
    "Document",
    "Message",
    "Problem",
    "Provenance",
    "Rejection",
    "Role",
    "StageRecord",
    "Tool",
    "ToolCall",
    "Trajectory",
    "Workflow",
    "stable_id",
    "validation_summary",
]
