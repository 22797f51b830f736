"""What several checks read from one trajectory, worked out once per :func:`~gemlib.validate`.

The tool replies are JSON that the state ledger, the prompt limits, the tool
reply check and the ID consistency check each decode; three checks look tools
up by name. While :func:`~gemlib.validation.ladder.validate` runs its checks on
a trajectory, :func:`facts` hands every check the same :class:`Facts` of it, so
each text is decoded once and the tools are indexed once; a check called on its
own gets fresh ones. Decoded values are shared between checks: checks read them
and never change them.

The facts also hold the fields of the messages, calls and tools as plain values
(:attr:`Facts.turns`, :class:`Call`), read once per trajectory: reading a field
of a pydantic model goes through the model class's ``__getattr__`` hook, which
costs about ten times a plain attribute or a tuple item, and the checks read
each message's fields once each and each call's many times."""

from __future__ import annotations

import contextvars
from typing import Any

from gemlib._nesting import loads
from gemlib.model import Message, Tool, ToolCall, Trajectory

__all__ = ["Call", "Facts", "Placed", "Reply", "Turn", "facts", "shared_facts"]


class Call:
    """A tool call's fields (:class:`gemlib.ToolCall`'s), as plain attributes."""

    __slots__ = ("arguments", "id", "name")

    def __init__(self, call: ToolCall) -> None:
        fields = call.__dict__  # a pydantic model keeps its fields there (vars() costs more)
        self.id: str = fields["id"]
        self.name: str = fields["name"]
        self.arguments: dict[str, Any] = fields["arguments"]


Turn = tuple[str, str, tuple[Call, ...], str | None, tuple[Tool, ...]]
"""A message's role, content, calls, the call it answers (``tool_call_id``) and the
tools it offers."""

OfferedTool = tuple[str, dict[str, Any], Tool]
"""A tool's name and parameters, and the tool."""


Placed = tuple[int, Call]
"""A call and the index of the message that makes it."""


Reply = tuple[int, str, str | None]
"""A tool reply: its message's index, its content and the call it answers."""


def _turns(
    messages: tuple[Message, ...],
) -> tuple[list[Turn], list[Placed], list[tuple[int, tuple[Tool, ...]]], list[Reply]]:
    """The :data:`Turn` of each message; every call with its message's index; the
    messages that offer tools, with their index; the tool replies (one loop: this runs
    for every trajectory)."""
    turns: list[Turn] = []
    placed: list[Placed] = []
    offers: list[tuple[int, tuple[Tool, ...]]] = []
    replies: list[Reply] = []
    for index, message in enumerate(messages):
        fields = message.__dict__
        role = fields["role"]
        content = fields["content"]
        reply_to = fields["tool_call_id"]
        if role == "tool":
            replies.append((index, content, reply_to))
        calls = fields["tool_calls"]
        made: tuple[Call, ...] = ()
        if calls:
            made = (Call(calls[0]),) if len(calls) == 1 else tuple([Call(c) for c in calls])
            for call in made:
                placed.append((index, call))
        tools = fields["tools"]
        if tools:
            offers.append((index, tools))
        turns.append((role, content, made, reply_to, tools))
    return turns, placed, offers, replies


class Facts:
    """Decoded JSON texts of one trajectory, each decoded on first use; its messages,
    calls and tools as plain values."""

    def __init__(self, trajectory: Trajectory) -> None:
        self.trajectory = trajectory
        self._decoded: dict[str, Any] = {}
        self._turns: list[Turn] | None = None
        self._calls: list[Placed] = []
        self._offers: list[tuple[int, tuple[Tool, ...]]] = []
        self._replies: list[Reply] = []
        self._tools: list[OfferedTool] | None = None
        self._offered: dict[str, Tool] | None = None
        self._parameters: dict[str, dict[str, Any]] | None = None

    @property
    def turns(self) -> list[Turn]:
        """Every message's :data:`Turn`, in order."""
        if self._turns is None:
            messages = self.trajectory.__dict__["messages"]
            self._turns, self._calls, self._offers, self._replies = _turns(messages)
        return self._turns

    @property
    def calls(self) -> list[Placed]:
        """Every call, with the index of the message that makes it, in order."""
        if self._turns is None:
            self.turns  # noqa: B018  # read with the turns
        return self._calls

    @property
    def replies(self) -> list[Reply]:
        """Every tool reply (a message of role ``tool``), in order."""
        if self._turns is None:
            self.turns  # noqa: B018  # read with the turns
        return self._replies

    @property
    def offers(self) -> list[tuple[int, tuple[Tool, ...]]]:
        """The messages that offer tools (:attr:`gemlib.Message.tools`): their index and
        tools, in order."""
        if self._turns is None:
            self.turns  # noqa: B018  # read with the turns
        return self._offers

    @property
    def own_tools(self) -> list[OfferedTool]:
        """The trajectory's own tools (:attr:`gemlib.Trajectory.tools`), in order."""
        return self.tools[: len(self.trajectory.__dict__["tools"])]

    @property
    def tools(self) -> list[OfferedTool]:
        """Every tool offered in the conversation (:attr:`gemlib.Trajectory.offered_tools`):
        the trajectory's, then those its messages add, in order."""
        if self._tools is None:
            own = self.trajectory.__dict__["tools"]
            added = [tool for _, offered in self.offers for tool in offered]
            self._tools = tools = []
            for tool in [*own, *added] if added else own:
                fields = tool.__dict__
                tools.append((fields["name"], fields["parameters"], tool))
        return self._tools

    @property
    def offered(self) -> dict[str, Tool]:
        """Every tool offered in the conversation by name (the last of a name)."""
        if self._offered is None:
            self._offered = {name: tool for name, _, tool in self.tools}
        return self._offered

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        """The parameters of every tool offered in the conversation by name (the last of
        a name)."""
        if self._parameters is None:
            self._parameters = {name: parameters for name, parameters, _ in self.tools}
        return self._parameters

    def loads(self, text: str) -> Any:
        """:func:`gemlib._nesting.loads` of ``text``: its value, or the error it raises.

        Only values are kept: a kept error would hold, through its traceback, the
        frame holding these facts, a cycle that kept every trajectory with a
        plain-text tool reply alive until the cycle collector ran. Text that is not
        JSON mostly fails at its first character, so decoding it again costs little.
        """
        if text in self._decoded:
            return self._decoded[text]
        value = self._decoded[text] = loads(text)  # JSONDecodeError, TooDeep: not kept
        return value


_SHARED: contextvars.ContextVar[Facts | None] = contextvars.ContextVar(
    "gemlib_validation_facts", default=None
)


def facts(trajectory: Trajectory) -> Facts:
    """The facts of ``trajectory``: those :func:`shared_facts` shares, or fresh ones."""
    shared = _SHARED.get()
    if shared is not None and shared.trajectory is trajectory:
        return shared
    return Facts(trajectory)


class shared_facts:
    """Within the block, every check of the trajectory of ``known`` reads ``known``
    (a class rather than a generator: entered once per trajectory, it costs less)."""

    __slots__ = ("_facts", "_token")

    def __init__(self, known: Facts) -> None:
        self._facts = known

    def __enter__(self) -> None:
        self._token = _SHARED.set(self._facts)

    def __exit__(self, *exc: object) -> None:
        _SHARED.reset(self._token)
