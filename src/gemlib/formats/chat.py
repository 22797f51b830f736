"""The OpenAI chat form of a trajectory, both ways: ``{"messages": [...], "tools": [...]}``.

This is the message layout of the chat-completions API and of most training
frameworks; :mod:`gemlib.formats.openai` adds gemlib's metadata around it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from gemlib._nesting import check_depth, loads
from gemlib.errors import FormatError, ToolSchemaError
from gemlib.formats._common import link_replies
from gemlib.model import Message, Tool, ToolCall, Trajectory, stable_id, validation_summary
from gemlib.model.conversation import jsonable

__all__ = ["from_chat", "to_chat"]


def from_chat(record: Mapping[str, Any], *, id: str | None = None) -> Trajectory:
    """Read an OpenAI chat record ``{"messages": [...], "tools": [...]}``.

    Tool-call arguments may be JSON strings (as the API sends them) or
    objects. Calls without IDs get stable ones, and tool messages without a
    ``tool_call_id`` are linked to the pending calls in order
    (:func:`~gemlib.formats._common.link_replies`). An assistant
    message with ``"weight": 0`` or ``"train": false`` is a masked turn; its
    ``reasoning_content`` (or ``reasoning``) is its reasoning. Raises
    :class:`FormatError` naming the message and the problem.
    """
    if not isinstance(record, Mapping) or not isinstance(record.get("messages"), list):
        raise FormatError("an OpenAI chat record needs a 'messages' list")
    check_depth(record)
    raw_tools = record.get("tools") or []
    if not isinstance(raw_tools, list):
        raise FormatError(f"'tools' must be a list, got {type(raw_tools).__name__}")
    tools = []
    for i, raw_tool in enumerate(raw_tools):
        try:
            tools.append(Tool.from_any(raw_tool))
        except ToolSchemaError as exc:
            raise FormatError(f"tools[{i}]: {exc}") from None
    seed = jsonable(record["messages"])
    messages: list[Message] = []
    for index, raw in enumerate(record["messages"]):
        try:
            messages.append(_message_from_openai(raw, index, seed))
        except (ValueError, TypeError) as exc:
            raise FormatError(f"messages[{index}]: {exc}") from None
    messages = link_replies(messages)
    for index, message in enumerate(messages):
        if message.role == "tool" and message.tool_call_id is None:
            raise FormatError(
                f"messages[{index}]: a tool message without tool_call_id and no call to answer"
            )
    data: dict[str, Any] = {"tools": tools, "messages": messages}
    if id or record.get("id"):
        data["id"] = id or record["id"]
    try:
        return Trajectory(**data)
    except ValidationError as exc:
        raise FormatError(validation_summary(exc)) from None


def to_chat(trajectory: Trajectory) -> dict[str, Any]:
    """The OpenAI chat record: ``messages`` with JSON-string arguments, and ``tools``.

    A masked assistant turn carries ``"weight": 0`` (OpenAI fine-tuning) and
    ``"train": false`` (Axolotl's ``message_field_training: train``); an
    assistant turn's reasoning is its ``reasoning_content`` (the field TRL
    and reasoning models' chat templates read).
    """
    messages: list[dict[str, Any]] = []
    for m in trajectory.messages:
        out: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            out["content"] = m.content or None
            out["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {
                        "name": c.name,
                        "arguments": json.dumps(c.arguments, ensure_ascii=False),
                    },
                }
                for c in m.tool_calls
            ]
        if m.reasoning:  # as vLLM, DeepSeek and TRL name it
            out["reasoning_content"] = m.reasoning
        if m.tool_call_id is not None:
            out["tool_call_id"] = m.tool_call_id
        if m.name is not None:
            out["name"] = m.name
        if not m.train:  # OpenAI fine-tuning reads "weight", Axolotl "train"
            out["weight"] = 0
            out["train"] = False
        messages.append(out)
    return {"messages": messages, "tools": [t.to_openai() for t in trajectory.tools]}


def _message_from_openai(raw: Any, index: int, seed: Any) -> Message:
    if not isinstance(raw, Mapping):
        raise TypeError(f"expected an object, got {type(raw).__name__}")
    role = raw.get("role")
    content = raw.get("content") or ""
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    if role == "assistant":
        calls = tuple(
            _call_from_openai(c, f"{index}.{j}", seed)
            for j, c in enumerate(raw.get("tool_calls") or [])
        )
        train = raw.get("weight", 1) != 0 and raw.get("train", True) is not False
        reasoning = raw.get("reasoning_content") or raw.get("reasoning") or ""
        if not isinstance(reasoning, str):
            raise TypeError(f"reasoning_content must be a string, got {type(reasoning).__name__}")
        return Message(
            role="assistant", content=content, tool_calls=calls, train=train, reasoning=reasoning
        )
    if role == "tool":  # linked to its call by link_replies if it names none
        call_id, name = raw.get("tool_call_id") or None, raw.get("name")
        return Message(role="tool", content=content, tool_call_id=call_id, name=name)
    if role in ("system", "user"):
        return Message(role=role, content=content)
    raise ValueError(f"unknown role {role!r}")


def _call_from_openai(raw: Any, where: str, seed: Any) -> ToolCall:
    if not isinstance(raw, Mapping):
        raise TypeError(f"tool call {where} is not an object")
    fn = raw.get("function", raw)
    if not isinstance(fn, Mapping):
        raise TypeError(f"tool call {where}: 'function' is not an object")
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"tool call {where} has no function name")
    args = fn.get("arguments", {})
    if isinstance(args, str):
        try:
            args = loads(args) if args.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"tool call {where} ({name}): arguments are not valid JSON: {exc}"
            ) from None
    if not isinstance(args, Mapping):
        raise ValueError(f"tool call {where} ({name}): arguments must be a JSON object")
    call_id = raw.get("id") or stable_id("call", seed, where)
    return ToolCall(id=call_id, name=name, arguments=dict(args))
