"""ShareGPT with function calls: the LLaMA-Factory / APIGen-MT convention.

One record per trajectory::

    {"id": "traj-1f0c...",
     "system": "You are a shop assistant...",
     "tools": "[{\\"name\\": \\"cancel\\", \\"description\\": \\"...\\", \\"parameters\\": {...}}]",
     "conversations": [
       {"from": "human", "value": "Cancel W1"},
       {"from": "function_call",
        "value": "{\\"name\\": \\"cancel\\", \\"arguments\\": {\\"order_id\\": \\"W1\\"}}"},
       {"from": "observation", "value": "{\\"ok\\": true}"},
       {"from": "gpt", "value": "Done."}]}

Turns alternate strictly (human or observation, then gpt or function_call),
as LLaMA-Factory requires. Several calls in one assistant turn become one
``function_call`` whose value is a JSON list, and their replies one
``observation`` holding a JSON list of the reply strings. What the format
drops: call IDs (importing gives stable new ones), assistant text written
alongside a call, labels and provenance. A user turn that offers tools
mid-conversation (``Message.tools``) carries them in its own ``tools`` key, as
a JSON string like the record's (a key outside LLaMA-Factory's ``from`` and
``value`` tags). An assistant turn's reasoning opens its ``gpt`` or
``function_call`` value as ``<think>\n...\n</think>\n\n``, which
LLaMA-Factory's reasoning templates (``qwen3``, ``deepseekr1``) read.
:func:`dataset_info` writes the LLaMA-Factory ``dataset_info.json`` entry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from gemlib._atomic import write_atomic
from gemlib._nesting import check_depth, loads
from gemlib.errors import FormatError, ToolSchemaError
from gemlib.formats._common import renumber_calls, split_thought, with_thought
from gemlib.formats.format import ExportRequest, Format
from gemlib.model import Message, Tool, ToolCall, Trajectory, validation_summary

__all__ = ["FORMAT", "dataset_info", "dump", "load"]


def dump(trajectory: Trajectory) -> dict[str, Any]:
    """One ShareGPT record."""
    messages = list(trajectory.messages)
    system = messages.pop(0).content if messages and messages[0].role == "system" else ""
    turns: list[dict[str, str]] = []
    replies: list[str] = []
    for message in messages:
        if message.role == "tool":
            replies.append(message.content)
            continue
        if replies:
            value = replies[0] if len(replies) == 1 else json.dumps(replies, ensure_ascii=False)
            turns.append({"from": "observation", "value": value})
            replies = []
        if message.role == "user":
            turns.append({"from": "human", "value": message.content})
            if message.tools:  # tools this turn offers (Message.tools); LLaMA-Factory skips it
                turns[-1]["tools"] = _tool_list(message.tools)
        elif message.tool_calls:
            calls = [{"name": c.name, "arguments": c.arguments} for c in message.tool_calls]
            payload = calls[0] if len(calls) == 1 else calls
            value = json.dumps(payload, ensure_ascii=False)
            turns.append({"from": "function_call", "value": with_thought(message.reasoning, value)})
        else:
            turns.append({"from": "gpt", "value": with_thought(message.reasoning, message.content)})
    if replies:
        value = replies[0] if len(replies) == 1 else json.dumps(replies, ensure_ascii=False)
        turns.append({"from": "observation", "value": value})
    return {
        "id": trajectory.id,
        "system": system,
        "tools": _tool_list(trajectory.tools),
        "conversations": turns,
    }


def _tool_list(tools: tuple[Tool, ...]) -> str:
    listed = [
        {"name": t.name, "description": t.description, "parameters": t.parameters} for t in tools
    ]
    return json.dumps(listed, ensure_ascii=False)


def _read_tools(raw: Any) -> tuple[Tool, ...]:
    listed = loads(raw) if isinstance(raw, str) else raw
    if not isinstance(listed, list):
        raise FormatError("'tools' must be a JSON list of tool definitions")
    return tuple(Tool.from_any(t) for t in listed)


def load(record: dict[str, Any]) -> Trajectory:
    """Read one ShareGPT record; raises :class:`FormatError` saying what is wrong."""
    if not isinstance(record, Mapping):
        raise FormatError(f"a ShareGPT record is an object, not {type(record).__name__}")
    check_depth(record)
    try:
        tools = _read_tools(record.get("tools") or "[]")
        messages: list[Message] = []
        if record.get("system"):
            messages.append(Message(role="system", content=record["system"]))
        pending = 0
        for index, turn in enumerate(record["conversations"]):
            role, value = turn["from"], turn["value"]
            if not isinstance(value, str):
                raise FormatError(f"conversations[{index}]: 'value' must be a string")
            if role == "human":
                offered = _read_tools(turn["tools"]) if turn.get("tools") else ()
                messages.append(Message(role="user", content=value, tools=offered))
            elif role == "gpt":
                reasoning, text = split_thought(value)
                messages.append(Message(role="assistant", content=text, reasoning=reasoning))
            elif role == "function_call":
                reasoning, value = split_thought(value)
                payload = loads(value)
                calls = payload if isinstance(payload, list) else [payload]
                messages.append(
                    Message(
                        role="assistant",
                        tool_calls=tuple(
                            ToolCall(name=c["name"], arguments=c.get("arguments") or {})
                            for c in calls
                        ),
                        reasoning=reasoning,
                    )
                )
                pending = len(calls)
            elif role == "observation":
                contents = loads(value) if pending > 1 else [value]
                messages += [Message(role="tool", content=c) for c in contents]
                pending = 0
            else:
                raise FormatError(f"conversations[{index}]: unknown speaker {role!r}")
    except ValidationError as exc:
        raise FormatError(f"not a ShareGPT record: {validation_summary(exc)}") from None
    except (KeyError, TypeError, json.JSONDecodeError, ToolSchemaError) as exc:
        raise FormatError(f"not a ShareGPT record: {exc!r}") from None
    return renumber_calls(
        Trajectory(id=str(record.get("id") or ""), tools=tools, messages=tuple(messages))
    )


def dataset_info(name: str, file_name: str) -> dict[str, Any]:
    """The LLaMA-Factory ``dataset_info.json`` entry for a file of these records."""
    return {
        name: {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
            "tags": {
                "role_tag": "from",
                "content_tag": "value",
                "user_tag": "human",
                "assistant_tag": "gpt",
                "function_tag": "function_call",
                "observation_tag": "observation",
            },
        }
    }


def _export(request: ExportRequest) -> str:
    """The records, and their LLaMA-Factory entry in ``dataset_info.json`` beside them."""
    written = FORMAT.export_records(request)
    info = request.out.with_name("dataset_info.json")
    write_atomic(info, json.dumps(dataset_info(request.out.stem, request.out.name), indent=2))
    return f"{written}\nLLaMA-Factory entry: {info}"


FORMAT = Format(
    name="sharegpt",
    description="JSONL: ShareGPT with function_call / observation turns (LLaMA-Factory)",
    dump=dump,
    load=load,
    recognise=lambda record: "conversations" in record,
    write=_export,
)
"""The ``sharegpt`` entry of the format registry."""
