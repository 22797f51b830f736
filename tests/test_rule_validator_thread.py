"""The rule validator hands a trajectory to a worker thread only when checking it may
take long: a tool schema with a regex, a check that is not gemlib's own, or a long
trajectory."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import gemlib.stages.validators as validators
from gemlib import Pipeline
from gemlib.model import Message, Problem, Tool, ToolCall, Trajectory
from gemlib.stages.validators import RuleValidator
from gemlib.validation._facts import Facts
from gemlib.validation.ladder import DEFAULT_CHECKS


def trajectory(name: str, parameters: dict[str, Any]) -> Trajectory:
    return Trajectory(
        id=f"t-{name}",
        tools=(Tool(name=name, parameters=parameters),),
        messages=(Message(role="user", content="hi"), Message(role="assistant", content="hello")),
    )


PLAIN = trajectory("lookup", {"type": "object", "properties": {"q": {"type": "string"}}})
PATTERNED = trajectory(
    "lookup_code",
    {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}}},
)
PATTERN_NAMES = trajectory(
    "lookup_any",
    {"type": "object", "patternProperties": {"^x_": {"type": "string"}}},
)


def long_trajectory(name: str, turns: int, reply: str = "{}") -> Trajectory:
    """``turns`` call and reply pairs of the plain tool."""
    messages = [Message(role="user", content="check every order")]
    for i in range(turns):
        call = ToolCall(id=f"c{i}", name="lookup", arguments={"q": f"W{i}"})
        messages.append(Message(role="assistant", content="", tool_calls=(call,)))
        messages.append(Message(role="tool", content=reply, tool_call_id=f"c{i}"))
    messages.append(Message(role="assistant", content="Done."))
    return PLAIN.model_copy(update={"id": f"t-{name}", "messages": tuple(messages)})


MANY_TURNS = long_trajectory("many-turns", 150)
LONG_REPLIES = long_trajectory("long-replies", 3, reply='{"notes": "' + "x" * 40_000 + '"}')


def no_shouting(trajectory: Trajectory) -> Iterator[Problem]:
    """A check of the user's own: its cost is unknown."""
    return iter(())


no_shouting.rule = "shouting"  # type: ignore[attr-defined]


def test_which_trajectories_go_to_a_thread() -> None:
    own = RuleValidator()
    assert not own.blocks(PLAIN)
    assert own.blocks(PATTERNED)
    assert own.blocks(PATTERN_NAMES)
    assert RuleValidator(checks=(*DEFAULT_CHECKS, no_shouting)).blocks(PLAIN)
    assert own.blocks(MANY_TURNS)  # 302 messages
    assert own.blocks(LONG_REPLIES)  # 120k characters in 8 messages
    assert not own.blocks(long_trajectory("a-few-turns", 20))


def test_a_run_checks_plain_trajectories_on_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: dict[str, int] = {}
    found = validators.found_problems

    def recording(known: Facts, checks: Any) -> Any:
        threads[known.trajectory.id] = threading.get_ident()
        return found(known, checks)

    monkeypatch.setattr(validators, "found_problems", recording)
    result = Pipeline([RuleValidator()]).run([PLAIN, PATTERNED, MANY_TURNS])

    assert result.stats.outputs + result.stats.rejections == 3
    assert threads["t-lookup"] == threading.get_ident()  # run_sync's loop runs here
    assert threads["t-lookup_code"] != threading.get_ident()
    assert threads["t-many-turns"] != threading.get_ident()


def test_process_judges_its_own_trajectory_whatever_blocks_was_last_asked() -> None:
    # blocks() hands the facts it read to the next process() of the same trajectory
    # only: another trajectory, or a second process() of it, reads its own facts.
    stage = RuleValidator()
    bad = PLAIN.model_copy(update={"messages": PLAIN.messages[:-1]})  # ends on the user
    assert stage.process(bad) is not bad
    assert not stage.blocks(bad)
    assert stage.process(PLAIN) is PLAIN  # not bad's facts
    assert not stage.blocks(PLAIN)
    assert stage.process(bad) is not bad  # not PLAIN's facts
    assert stage.process(bad) is not bad  # nothing left over
    assert not stage.blocks(bad)
    rejected = stage.process(bad)
    assert not isinstance(rejected, Trajectory)
    assert rejected.rule == "turn_order"


def test_a_stage_asked_about_its_checks_keeps_nothing_alive_once_dropped() -> None:
    import gc
    import weakref

    class Costly:
        """A check of the user's own holding something large (an index, a model)."""

        rule = "costly"

        def __call__(self, trajectory: Trajectory) -> Iterator[Problem]:
            return iter(())

    check = Costly()
    gone = weakref.ref(check)
    stage = RuleValidator(checks=(*DEFAULT_CHECKS, check))
    assert stage.blocks(PLAIN)
    stage.checks = DEFAULT_CHECKS  # the answer follows the checks the stage holds now
    assert not stage.blocks(PLAIN)
    del stage, check
    gc.collect()
    assert gone() is None
