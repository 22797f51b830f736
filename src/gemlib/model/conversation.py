"""Conversations: messages, workflows and trajectories."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from gemlib.model._base import _Model, stable_id
from gemlib.model.records import Document, Provenance
from gemlib.model.tool import Tool, ToolCall

__all__ = ["Message", "Role", "Trajectory", "Workflow", "jsonable"]

Role = Literal["system", "user", "assistant", "tool"]


class Message(_Model):
    """One turn of a conversation.

    Assistant messages may carry ``tool_calls``; a tool message answers exactly
    one call, named by ``tool_call_id`` (and the tool's ``name``).
    """

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    train: bool = True
    """For an assistant turn: whether a trainer learns from it. A masked turn
    (``False``) stays in the conversation as context; exporters carry the flag
    (see docs/formats.md). It is not part of the trajectory's ID."""
    reasoning: str = ""
    """For an assistant turn: the private reasoning written before it (see the
    ``reasoning`` option in docs/gem.md). Exporters write it as
    ``reasoning_content`` or as a ``<think>`` block, and importers read it back."""
    tools: tuple[Tool, ...] = ()
    """For a user or system message: tools offered to the assistant from this
    message on, besides the trajectory's own (BFCL's ``miss_func`` category adds a
    held-out function mid-conversation). Most chat formats show tools only once,
    at the start, so the message's text should offer them in words too; the
    OpenAI JSONL export carries the field itself (see docs/formats.md)."""

    @model_validator(mode="after")
    def _check_role_fields(self) -> Message:
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"a {self.role} message cannot carry tool calls")
        if self.tool_call_id is not None and self.role != "tool":
            raise ValueError(f"a {self.role} message cannot answer a tool call")
        if self.reasoning and self.role != "assistant":
            raise ValueError(f"only assistant turns carry reasoning, not a {self.role} message")
        if not self.train and self.role != "assistant":
            raise ValueError(f"only assistant turns are trained on, not a {self.role} message")
        if self.tools and self.role not in ("user", "system"):
            raise ValueError(f"only user or system messages offer tools, not a {self.role} message")
        return self


class Workflow(_Model):
    """One workflow found in a document: its steps, execution graph, example calls and tools."""

    id: str
    description: str
    steps: tuple[str, ...] = ()
    execution_graph: str = ""
    actions: tuple[ToolCall, ...] = ()
    tools: tuple[Tool, ...] = ()
    document: Document
    provenance: Provenance
    labels: dict[str, Any] = Field(default_factory=dict)

    @property
    def document_id(self) -> str:
        """The ID of the corpus document this workflow comes from."""
        return self.provenance.document_id


class Trajectory(_Model):
    """A multi-turn tool-use conversation with the tools it may call.

    ``document`` holds the source text the trajectory was grounded in (absent for
    imported datasets); ``labels`` holds classifications such as domain,
    platform or interaction patterns.
    """

    id: str = ""
    tools: tuple[Tool, ...] = ()
    messages: tuple[Message, ...]
    provenance: Provenance | None = None
    document: Document | None = None
    labels: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not data.get("id"):
            data = dict(data)
            data["id"] = stable_id(
                "traj", jsonable(data.get("tools")), jsonable(data.get("messages"))
            )
        return data

    @property
    def document_id(self) -> str | None:
        """The ID of the corpus document this trajectory comes from, if known."""
        return self.provenance.document_id if self.provenance else None

    @property
    def offered_tools(self) -> tuple[Tool, ...]:
        """Every tool offered in the conversation: the trajectory's, then those its
        messages add (:attr:`Message.tools`), in order."""
        added = tuple(tool for message in self.messages for tool in message.tools)
        return self.tools + added if added else self.tools

    @property
    def tool_calls(self) -> list[ToolCall]:
        """Every tool call of the conversation, in order."""
        return [call for m in self.messages for call in m.tool_calls]


def jsonable(value: Any) -> Any:
    """``value`` as the JSON data an ID is hashed from."""
    if isinstance(value, Message):  # masking a turn does not make another trajectory
        # nor does a field the message leaves empty: IDs stay those of before reasoning
        return value.model_dump(
            mode="json", exclude={"train"} if value.reasoning else {"train", "reasoning"}
        )
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
