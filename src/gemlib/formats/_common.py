"""Helpers shared by the format modules."""

from __future__ import annotations

from gemlib.model import Message, Trajectory, stable_id

THINK_OPEN, THINK_CLOSE = "<think>\n", "\n</think>\n\n"
"""How a reasoning model's chat template (Qwen3, DeepSeek-R1) puts an assistant turn's
reasoning before its text; LLaMA-Factory's reasoning templates read the same."""


def with_thought(reasoning: str, text: str) -> str:
    """``text`` preceded by ``reasoning`` in a ``<think>`` block (``text`` alone without one)."""
    return f"{THINK_OPEN}{reasoning}{THINK_CLOSE}{text}" if reasoning else text


def split_thought(text: str) -> tuple[str, str]:
    """``(reasoning, text)`` of a turn written by :func:`with_thought`."""
    if text.startswith(THINK_OPEN):
        end = text.find(THINK_CLOSE, len(THINK_OPEN))
        if end >= 0:
            return text[len(THINK_OPEN) : end], text[end + len(THINK_CLOSE) :]
    return "", text


def renumber_calls(trajectory: Trajectory) -> Trajectory:
    """Give calls the stable IDs importers assign when a format does not carry IDs.

    The n-th call gets ``stable_id("call", trajectory.id, n)``; tool replies are
    relinked to the calls they answer, in order.
    """
    messages: list[Message] = []
    mapping: dict[str, str] = {}
    count = 0
    for message in trajectory.messages:
        if message.tool_calls:
            calls = []
            for call in message.tool_calls:
                new_id = stable_id("call", trajectory.id, count)
                count += 1
                mapping[call.id] = new_id
                calls.append(call.model_copy(update={"id": new_id}))
            message = message.model_copy(update={"tool_calls": tuple(calls)})
        elif message.tool_call_id is not None:
            message = message.model_copy(
                update={"tool_call_id": mapping.get(message.tool_call_id, message.tool_call_id)}
            )
        messages.append(message)
    return trajectory.model_copy(update={"messages": tuple(messages)})


def link_replies(trajectory_id: str, messages: list[Message]) -> list[Message]:
    """Assign stable call IDs and link each tool reply to the pending call it answers."""
    linked: list[Message] = []
    pending: list[tuple[str, str]] = []
    count = 0
    for message in messages:
        if message.tool_calls:
            calls = []
            for call in message.tool_calls:
                calls.append(
                    call.model_copy(update={"id": stable_id("call", trajectory_id, count)})
                )
                count += 1
            message = message.model_copy(update={"tool_calls": tuple(calls)})
            pending = [(c.id, c.name) for c in calls]
        elif message.role == "tool" and pending:
            call_id, name = pending.pop(0)
            message = message.model_copy(update={"tool_call_id": call_id, "name": name})
        linked.append(message)
    return linked
