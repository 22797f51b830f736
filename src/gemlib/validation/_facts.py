"""What several checks read from one trajectory, worked out once per :func:`~gemlib.validate`.

The tool replies are JSON that the state ledger, the prompt limits, the tool
reply check and the ID consistency check each decode; three checks look tools
up by name. While :func:`~gemlib.validation.ladder.validate` runs its checks on
a trajectory, :func:`facts` hands every check the same :class:`Facts` of it, so
each text is decoded once and the tools are indexed once; a check called on its
own gets fresh ones. Decoded values are shared between checks: checks read them
and never change them."""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from typing import Any

from gemlib._nesting import loads
from gemlib.model import Tool, Trajectory

__all__ = ["Facts", "facts", "shared_facts"]


class Facts:
    """Decoded JSON texts of one trajectory, each decoded on first use, and its tools."""

    def __init__(self, trajectory: Trajectory) -> None:
        self.trajectory = trajectory
        self._decoded: dict[str, Any] = {}

    @functools.cached_property
    def offered(self) -> dict[str, Tool]:
        """Every tool offered in the conversation by name (the last of a name)."""
        return {tool.name: tool for tool in self.trajectory.offered_tools}

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


@contextlib.contextmanager
def shared_facts(trajectory: Trajectory) -> Iterator[None]:
    """Within the block, every check of ``trajectory`` reads the same :class:`Facts`."""
    token = _SHARED.set(Facts(trajectory))
    try:
        yield
    finally:
        _SHARED.reset(token)
