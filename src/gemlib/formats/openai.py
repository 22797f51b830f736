"""OpenAI chat JSONL: ``{"id", "messages", "tools", "metadata"}`` per line.

The format TRL's SFT trainer and most APIs read: ``messages`` with
``tool_calls`` (arguments as JSON strings) and ``tool_call_id``; ``tools`` as
OpenAI function definitions. ``metadata`` is a JSON *string* holding labels,
provenance, the source document, the tools' output schemas (which OpenAI's
tool format has no place for) and the tools a message offers mid-conversation
(``message_tools``: message index to tool list; see ``Message.tools``), so
Arrow-based loaders (Hugging Face ``datasets``) need not unify its varying keys. Carries everything.

Sample line (wrapped)::

    {"id": "traj-1f0c...", "messages": [{"role": "user", "content": "Cancel W1"},
     {"role": "assistant", "content": null, "tool_calls": [{"id": "call-9a...",
      "type": "function", "function": {"name": "cancel",
      "arguments": "{\\"order_id\\": \\"W1\\"}"}}]},
     {"role": "tool", "content": "{\\"ok\\": true}", "tool_call_id": "call-9a...",
      "name": "cancel"},
     {"role": "assistant", "content": "Done."}],
     "tools": [{"type": "function", "function": {"name": "cancel", "description": "...",
      "parameters": {...}}}], "metadata": "{\\"labels\\": {...}, ...}"}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from gemlib._nesting import loads
from gemlib.errors import FormatError, ToolSchemaError
from gemlib.formats.chat import from_chat, to_chat
from gemlib.formats.format import Format
from gemlib.model import Document, Message, Provenance, Tool, Trajectory, validation_summary

__all__ = ["FORMAT", "dump", "load"]


def dump(trajectory: Trajectory) -> dict[str, Any]:
    """One OpenAI chat record."""
    metadata = {
        "labels": trajectory.labels,
        "provenance": trajectory.provenance.model_dump(mode="json")
        if trajectory.provenance
        else None,
        "document": trajectory.document.model_dump(mode="json") if trajectory.document else None,
        "output_schemas": {t.name: t.output_schema for t in trajectory.tools if t.output_schema},
    }
    added = {
        str(i): [t.to_mcp() for t in m.tools] for i, m in enumerate(trajectory.messages) if m.tools
    }
    if added:  # tools a message offers mid-conversation (Message.tools)
        metadata["message_tools"] = added
    return {
        "id": trajectory.id,
        **to_chat(trajectory),
        "metadata": json.dumps(metadata, ensure_ascii=False),
    }


def load(record: dict[str, Any]) -> Trajectory:
    """Read one record (``metadata`` optional; plain OpenAI records work too)."""
    trajectory = from_chat(record)
    raw = record.get("metadata")
    if not raw:
        return trajectory
    try:
        metadata = loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise FormatError(f"metadata is not valid JSON: {exc}") from None
    if not isinstance(metadata, Mapping):
        raise FormatError("metadata must be a JSON object")
    labels = metadata.get("labels") or {}
    outputs = metadata.get("output_schemas") or {}
    if not isinstance(labels, Mapping) or not isinstance(outputs, Mapping):
        raise FormatError("metadata: 'labels' and 'output_schemas' must be objects")
    update: dict[str, Any] = {"labels": dict(labels)}
    try:
        if metadata.get("provenance"):
            update["provenance"] = Provenance.model_validate(metadata["provenance"])
        if metadata.get("document"):
            update["document"] = Document.model_validate(metadata["document"])
        added = metadata.get("message_tools") or {}
        if added:
            update["messages"] = _with_message_tools(trajectory, added)
        if outputs:
            update["tools"] = tuple(
                Tool.from_any({**t.to_mcp(), "outputSchema": outputs[t.name]})
                if t.name in outputs
                else t
                for t in trajectory.tools
            )
    except ValidationError as exc:
        raise FormatError(f"metadata: {validation_summary(exc)}") from None
    except ToolSchemaError as exc:
        raise FormatError(f"metadata: {exc}") from None
    return trajectory.model_copy(update=update)


def _with_message_tools(trajectory: Trajectory, added: Any) -> tuple[Message, ...]:
    """The messages with the tools ``metadata["message_tools"]`` says they offer."""
    if not isinstance(added, Mapping):
        raise FormatError("metadata.message_tools must map message indexes to tool lists")
    messages = list(trajectory.messages)
    for key, tools in added.items():
        index = (
            int(key)
            if isinstance(key, str) and key.isascii() and key.isdigit() and len(key) < 10
            else -1
        )
        if not 0 <= index < len(messages):
            raise FormatError(f"metadata.message_tools names message {key!r:.40}, not there")
        if not isinstance(tools, list):
            raise FormatError(f"metadata.message_tools[{key}] must be a list of tools")
        try:
            offered = tuple(Tool.from_any(tool) for tool in tools)
            messages[index] = messages[index].model_copy(update={"tools": offered})
            Message.model_validate(messages[index].model_dump())
        except (ToolSchemaError, ValueError) as exc:
            raise FormatError(f"metadata.message_tools[{key}]: {exc}") from None
    return tuple(messages)


FORMAT = Format(
    name="openai",
    description="JSONL: OpenAI chat messages + tools (TRL, most APIs); carries everything",
    dump=dump,
    load=load,
    recognise=lambda record: "messages" in record,
    carries_masks=True,
)
"""The ``openai`` entry of the format registry."""
