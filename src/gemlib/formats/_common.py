"""Helpers shared by the format modules."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

from gemlib.model import Message, ToolCall, Trajectory, stable_id
from gemlib.model._base import built_valid

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


def link_replies(
    messages: Iterable[Message], call_ids: Callable[[int], str] | None = None
) -> list[Message]:
    """``messages`` with each tool reply linked to the call it answers: every reader's rule.

    A reply naming its call (``tool_call_id``) answers that call. A reply without
    one answers the first call of the latest assistant turn that no reply has
    answered yet, taking its ID (and its name, if the reply has none). Any other
    message ends the calls before it, so a reply with no call left to answer
    keeps ``tool_call_id=None``, for the validators (or the reader) to report.
    With ``call_ids``, the n-th call (from 0) is first renamed ``call_ids(n)``,
    for formats that carry no call IDs; replies naming an old ID follow it.
    """
    links = ReplyLinks(call_ids)
    return [links.link(message) for message in messages]


class ReplyLinks:
    """:func:`link_replies` one message at a time, for readers that build messages in order."""

    def __init__(self, call_ids: Callable[[int], str] | None = None) -> None:
        self.call_ids = call_ids
        self.calls: tuple[ToolCall, ...] = ()
        """The calls of the latest assistant turn that replies may still answer ..."""
        self.answered = 0
        """... from this one on (those before it are answered)."""
        self.renamed: dict[str, str] = {}
        self.count = 0

    def link(self, message: Message) -> Message:
        """``message``, linked (a tool reply) or renamed (an assistant turn's calls)."""
        if message.role != "tool":
            if self.call_ids is not None and message.tool_calls:
                calls = self._renamed(message.tool_calls, self.call_ids)
                message = message.model_copy(update={"tool_calls": calls})
            self.calls, self.answered = message.tool_calls, 0
        elif message.tool_call_id is not None:
            answered = self.renamed.get(message.tool_call_id, message.tool_call_id)
            pending = self.calls[self.answered :]
            self.calls, self.answered = tuple(c for c in pending if c.id != answered), 0
            if answered != message.tool_call_id:
                message = message.model_copy(update={"tool_call_id": answered})
        elif self.answered < len(self.calls):
            call = self.calls[self.answered]
            self.answered += 1
            message = message.model_copy(
                update={"tool_call_id": call.id, "name": message.name or call.name}
            )
        return message

    def turn(self, calls: tuple[ToolCall, ...]) -> None:
        """What :meth:`link` notes of a message that is not a tool reply and needs no
        renaming, given its ``calls``: the replies after it answer them."""
        self.calls, self.answered = calls, 0

    def reply(self, content: str) -> Message:
        """What :meth:`link` makes of ``Message(role="tool", content=content)``, built once
        (and without validating: a tool reply with a ``str`` content and a call's ID and name
        is a valid message)."""
        if self.answered == len(self.calls):
            return built_valid(Message, role="tool", content=content)
        call = self.calls[self.answered]
        self.answered += 1
        return built_valid(
            Message, role="tool", content=content, tool_call_id=call.id, name=call.name
        )

    def _renamed(
        self, calls: tuple[ToolCall, ...], call_ids: Callable[[int], str]
    ) -> tuple[ToolCall, ...]:
        """``calls`` with the next IDs ``call_ids`` gives, each old ID remembered."""
        renamed = []
        for call in calls:
            self.renamed[call.id] = call_ids(self.count)
            renamed.append(call.model_copy(update={"id": self.renamed[call.id]}))
            self.count += 1
        return tuple(renamed)


def renumber_calls(trajectory: Trajectory) -> Trajectory:
    """Give calls the stable IDs importers assign when a format does not carry IDs.

    The n-th call gets ``stable_id("call", trajectory.id, n)``, and tool replies are
    linked to the calls they answer (:func:`link_replies`).
    """
    call_ids = functools.partial(stable_id, "call", trajectory.id)
    return trajectory.model_copy(
        update={"messages": tuple(link_replies(trajectory.messages, call_ids))}
    )
