"""Structural checks of a trajectory: tools, calls, arguments, turn order, tool replies.

Each check is a small callable object with a ``rule`` name: call it on a
:class:`~gemlib.Trajectory` and it yields every :class:`~gemlib.model.Problem` it
finds (never only the first). Build them with the factory functions below and
combine them into a list for :func:`gemlib.validate` or
:class:`~gemlib.stages.validators.RuleValidator`; write your own as any callable
with a ``rule`` attribute.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, ClassVar, Protocol

import attrs
from jsonschema.protocols import Validator
from referencing.exceptions import Unresolvable

from gemlib._nesting import TooDeep
from gemlib.errors import ToolSchemaError
from gemlib.model import Problem, Trajectory
from gemlib.model.tool_schema import check_schema
from gemlib.validation._facts import facts
from gemlib.validation._identity import IdentityMemo
from gemlib.validation._names import short_memo
from gemlib.validation.fast_schema import Test
from gemlib.validation.schema_validator import RegexTooCostly, argument_checks, regex_budget

__all__ = [
    "Check",
    "known_tools",
    "tool_replies",
    "tools_well_formed",
    "turn_order",
    "unique_call_ids",
    "valid_arguments",
]

TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
_valid_name = short_memo(lambda name: TOOL_NAME.match(name) is not None)


class Check(Protocol):
    """A validation check: a rule name, and a call that yields problems."""

    @property
    def rule(self) -> str:
        """The rule name its problems carry (aggregated in the run's funnel)."""
        ...

    def __call__(self, trajectory: Trajectory) -> Iterator[Problem]:
        """Every problem of ``trajectory`` this check finds."""
        ...


def _schema_problem(parameters: dict[str, Any], tool: str) -> str | None:
    try:
        check_schema(parameters, tool)
    except ToolSchemaError as exc:
        return str(exc)
    return None


def _argument_checks(
    parameters: dict[str, Any], allow_unknown: bool
) -> tuple[Validator, Test | None]:
    return argument_checks(parameters if allow_unknown else _strict(parameters))


_SCHEMA_PROBLEMS: IdentityMemo[str | None] = IdentityMemo()
_ARGUMENT_CHECKS: IdentityMemo[tuple[Validator, Test | None]] = IdentityMemo()


@attrs.frozen
class _ToolsWellFormed:
    rule: ClassVar[str] = "tool_definition"

    def __call__(self, trajectory: Trajectory) -> Iterator[Problem]:
        seen: set[str] = set()
        for name, parameters, _ in facts(trajectory).tools:
            if not _valid_name(name):
                yield Problem(
                    rule=self.rule,
                    text=f"tool name {name!r} is not a valid "
                    "function name (letters, digits, _ . -; at most 64; not a digit first)",
                )
            if name in seen:
                yield Problem(rule=self.rule, text=f"tool {name!r} is defined twice")
            seen.add(name)
            problem = _SCHEMA_PROBLEMS.get(parameters, _schema_problem, extra=name)
            if problem is not None:
                yield Problem(rule=self.rule, text=problem)


@attrs.frozen
class _KnownTools:
    rule: ClassVar[str] = "unknown_tool"

    def __call__(self, trajectory: Trajectory) -> Iterator[Problem]:
        known = facts(trajectory)
        names = {name for name, _, _ in known.own_tools}
        later = known.offered
        offers = known.offers
        offered = 0  # the offers added to names
        for index, call in known.calls:
            while offered < len(offers) and offers[offered][0] <= index:
                names.update(t.name for t in offers[offered][1])  # a message's, before its calls
                offered += 1
            if call.name not in names:
                yield Problem(
                    rule=self.rule,
                    message_index=index,
                    text=f"call {call.id or call.name!r} names {call.name!r}, "
                    + (
                        "which is offered only in a later message"
                        if call.name in later
                        else "which is not a tool of this trajectory"
                    ),
                )


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Unknown argument names are errors unless the schema says otherwise."""
    if schema.get("type") == "object" and "additionalProperties" not in schema:
        return {**schema, "additionalProperties": False}
    return schema


@attrs.frozen
class _ValidArguments:
    rule: ClassVar[str] = "argument_schema"
    allow_unknown: bool = False

    def __call__(self, trajectory: Trajectory) -> Iterator[Problem]:
        # Collected before any is yielded, so the regex budget covers exactly this trajectory.
        with regex_budget():
            problems = list(self._problems(trajectory))
        yield from problems

    def _problems(self, trajectory: Trajectory) -> Iterator[Problem]:
        known = facts(trajectory)
        tools = known.parameters
        validators: dict[str, tuple[Validator, Test | None]] = {}
        for index, call in known.calls:
            parameters = tools.get(call.name)
            if parameters is None:
                continue  # known_tools reports it
            if call.name not in validators:
                validators[call.name] = _ARGUMENT_CHECKS.get(
                    parameters, _argument_checks, extra=self.allow_unknown
                )
            validator, quick = validators[call.name]
            if quick is not None and quick(call.arguments):
                continue  # plainly valid: jsonschema would find nothing
            try:
                for error in validator.iter_errors(call.arguments):
                    where = "/".join(str(p) for p in error.absolute_path) or "arguments"
                    yield self._problem(index, f"call {call.name}: {where}: {error.message}")
            except RegexTooCostly as exc:
                # One hostile pattern is enough to reject; running it again would only cost.
                yield self._problem(index, f"tool {call.name!r}: schema {exc}")
                return
            except RecursionError:  # "$ref": "#", or two definitions naming each other
                yield self._problem(
                    index, f"tool {call.name!r}: schema $ref refers back to itself without end"
                )
                return
            except Unresolvable as exc:
                yield self._problem(
                    index,
                    f"tool {call.name!r}: schema $ref cannot be resolved ({exc}); "
                    "only references inside the schema are followed",
                )

    def _problem(self, index: int, text: str) -> Problem:
        return Problem(rule=self.rule, message_index=index, text=text)


@attrs.frozen
class _UniqueCallIds:
    rule: ClassVar[str] = "duplicate_call_id"

    def __call__(self, trajectory: Trajectory) -> Iterator[Problem]:
        seen: set[str] = set()
        for index, call in facts(trajectory).calls:
            if not call.id:
                yield Problem(
                    rule=self.rule, message_index=index, text=f"call {call.name} has no ID"
                )
            elif call.id in seen:
                yield Problem(
                    rule=self.rule,
                    message_index=index,
                    text=f"call ID {call.id!r} is used twice",
                )
            seen.add(call.id)


@attrs.frozen
class _TurnOrder:
    """The GEM turn order; see :func:`turn_order`."""

    rule: ClassVar[str] = "turn_order"
    one_call_per_turn: bool = False

    def __call__(self, trajectory: Trajectory) -> Iterator[Problem]:
        turns = facts(trajectory).turns
        roles = [turn[0] for turn in turns]
        last = len(turns) - 1
        pending: list[str] = []
        opened = False
        for index, (role, _, calls, reply_to, _) in enumerate(turns):
            following = roles[index + 1] if index < last else None
            if role == "system":
                if index != 0:
                    yield self._p(index, "a system message may only open the conversation")
                continue
            if not opened:
                opened = True
                if role != "user":
                    yield self._p(index, f"the conversation opens with {role}, not user")
            if role == "tool":
                if not pending:
                    yield self._p(index, "a tool reply with no call to answer")
                elif reply_to != pending[0]:
                    yield self._p(
                        index,
                        f"tool reply answers {reply_to!r}, but the next "
                        f"call waiting for a reply is {pending[0]!r}",
                    )
                    pending.pop(0)
                else:
                    pending.pop(0)
                if pending and following != "tool":
                    yield self._p(index, f"calls {pending} get no tool reply")
                    pending = []
                elif not pending and following != "assistant" and following is not None:
                    yield self._p(index, f"a tool reply is followed by {following}, not assistant")
                if following is None:
                    yield self._p(index, "the conversation ends on a tool reply")
            elif role == "user":
                if pending:
                    yield self._p(index, f"user speaks while calls {pending} wait for replies")
                    pending = []
                if following != "assistant":
                    yield self._p(
                        index,
                        f"a user message is followed by {following or 'nothing'}, not assistant",
                    )
            else:  # assistant
                if pending:
                    yield self._p(index, f"assistant speaks while calls {pending} wait for replies")
                pending = []
                for call in calls:  # a loop: mostly one call, or none
                    pending.append(call.id)
                if self.one_call_per_turn and len(calls) > 1:
                    yield Problem(
                        rule="one_call_per_turn",
                        message_index=index,
                        text=f"{len(calls)} tool calls in one assistant turn",
                    )
                if calls and following != "tool":
                    yield self._p(
                        index,
                        f"an assistant call is followed by {following or 'nothing'}"
                        ", not its tool reply",
                    )
                if not calls and following != "user" and following is not None:
                    yield self._p(
                        index,
                        f"an assistant message without calls is followed by {following}, not user",
                    )

    def _p(self, index: int, text: str) -> Problem:
        return Problem(rule=self.rule, message_index=index, text=text)


@attrs.frozen
class _ToolReplies:
    rule: ClassVar[str] = "tool_reply"

    def __call__(self, trajectory: Trajectory) -> Iterator[Problem]:
        known = facts(trajectory)
        parse = known.loads
        for index, content, _ in known.replies:
            content = content.strip()
            if not content:
                yield Problem(rule=self.rule, message_index=index, text="empty tool reply")
            elif content[0] in "{[":
                try:
                    parse(content)
                except TooDeep as exc:
                    yield Problem(rule=self.rule, message_index=index, text=f"tool reply is {exc}")
                except json.JSONDecodeError as exc:
                    yield Problem(
                        rule=self.rule,
                        message_index=index,
                        text=f"tool reply looks like JSON but is not: {exc.msg} at "
                        f"line {exc.lineno}, column {exc.colno}",
                    )


def tools_well_formed() -> Check:
    """Tool names are unique function names; parameters are valid JSON Schema."""
    return _ToolsWellFormed()


def known_tools() -> Check:
    """Every call names a tool of the trajectory, or one a message before it offered."""
    return _KnownTools()


def valid_arguments(*, allow_unknown: bool = False) -> Check:
    """Arguments validate against the tool's schema: types, required, no unknown names.

    Unknown argument names are allowed where a schema sets ``additionalProperties``,
    or everywhere with ``allow_unknown=True``.
    """
    return _ValidArguments(allow_unknown)


def unique_call_ids() -> Check:
    """Every call has an ID, and no ID is used twice."""
    return _UniqueCallIds()


def turn_order(*, one_call_per_turn: bool = False) -> Check:
    """The GEM turn order.

    Every user or tool message is followed by an assistant message; an assistant
    message with calls is followed by one tool reply per call, in order; one
    without calls by a user message or the end; a tool reply is never followed
    by a user message; the conversation neither ends on a call or reply nor
    opens with anything but a user message (after an optional system message).
    ``one_call_per_turn`` also reports assistant turns with several calls
    (rule ``one_call_per_turn``).
    """
    return _TurnOrder(one_call_per_turn)


def tool_replies() -> Check:
    """Tool replies are not empty, and replies that look like JSON parse as JSON."""
    return _ToolReplies()
