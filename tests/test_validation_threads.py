"""The rule checks give the same problems in many threads at once as one at a time.

The rule validator checks trajectories in worker threads (a schema with a regex),
and the checks keep state between calls (memos of names and schemas, the decoded
replies one validate() shares between its checks): none of it may leak from one
trajectory to another checked at the same moment.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from gemlib.errors import ParseError, ToolSchemaError
from gemlib.formats.gem_tags import loads_lenient, parse_conversation, parse_refined
from gemlib.model import Tool, Trajectory
from gemlib.stages.validators import RuleValidator
from gemlib.validation import validate
from teacher import EXTRACTION, GENERATION, REFINEMENT


def _tools(reply: str) -> tuple[Tool, ...]:
    found: list[Tool] = []
    for block in reply.split("<tools>")[1:]:
        for definition in loads_lenient(block.split("</tools>")[0], "t"):
            with contextlib.suppress(ToolSchemaError):  # the teacher's deliberately bad tool
                found.append(Tool.from_any(definition))
    return tuple({t.name: t for t in found}.values())


def _variants(trajectory: Trajectory) -> Iterator[Trajectory]:
    """The trajectory, and copies whose tool replies change IDs, numbers or fail."""
    yield trajectory
    for index, message in enumerate(trajectory.messages):
        if message.role != "tool":
            continue
        for content in (
            message.content.replace("-", "-9"),
            "".join("7" if c.isdigit() else c for c in message.content),
            json.dumps({"error": "not found"}),
        ):
            changed = message.model_copy(update={"content": content})
            messages = (*trajectory.messages[:index], changed, *trajectory.messages[index + 1 :])
            yield trajectory.model_copy(update={"messages": messages, "id": f"{index}{content}"})


def _trajectories() -> list[Trajectory]:
    found: list[Trajectory] = []
    for name, reply in GENERATION.items():
        try:
            messages = parse_conversation(reply)
        except ParseError:  # the teacher's deliberately broken replies
            continue
        tools = _tools(EXTRACTION[name])
        found += _variants(Trajectory(id=name, tools=tools, messages=tuple(messages)))
    for name, reply in REFINEMENT.items():
        tools, messages = parse_refined(reply)
        found += _variants(Trajectory(id=f"r-{name}", tools=tuple(tools), messages=tuple(messages)))
    return found


def _verdict(trajectory: Trajectory) -> str:
    problems = [p.model_dump() for p in validate(trajectory).problems]
    outcome = RuleValidator().process(trajectory).model_dump(mode="json")
    return json.dumps([problems, outcome], sort_keys=True)


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Threads switch as often as the interpreter allows."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.mark.usefixtures("busy_switching")
def test_checks_in_threads_give_the_problems_they_give_alone() -> None:
    trajectories = _trajectories()
    assert len(trajectories) > 40
    alone = [_verdict(t) for t in trajectories]
    assert len(set(alone)) > len(alone) // 2, "the variants must be judged differently"
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(_verdict, trajectories * 3))
    assert together == alone * 3
