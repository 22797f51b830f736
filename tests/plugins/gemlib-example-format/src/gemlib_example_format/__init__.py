"""The ``transcript`` format: one readable transcript per trajectory, as JSONL.

``{"id": ..., "transcript": "user: ...\\nassistant -> cancel({...})\\ntool: ...\\n..."}``.
It only writes (it gives ``dump`` and no ``load``): a format needs no more than a
name, a one-line description and one of ``dump``/``write``/``load``/``read``.
"""

from __future__ import annotations

import json
from typing import Any

from gemlib import Trajectory
from gemlib.formats import Format


def _line(role: str, text: str) -> str:
    return f"{role}: {text}"


def dump(trajectory: Trajectory) -> dict[str, Any]:
    """``{"id", "transcript"}``: a line per message, and one per tool call."""
    lines = []
    for message in trajectory.messages:
        if message.content or not message.tool_calls:
            lines.append(_line(message.role, message.content))
        for call in message.tool_calls:
            arguments = json.dumps(call.arguments, ensure_ascii=False, sort_keys=True)
            lines.append(f"{message.role} -> {call.name}({arguments})")
    return {"id": trajectory.id, "transcript": "\n".join(lines)}


TRANSCRIPT = Format(
    name="transcript",
    description="JSONL: a readable transcript per trajectory (example plug-in, write only)",
    dump=dump,
)
