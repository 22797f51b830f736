"""Model-written text of hostile shapes costs time linear in its length, in every reader.

Each family builds a reply (or a trajectory) of about ``n`` characters; four times the
text must cost at most about four times the time (8x allowed, plus slack for a loaded
machine). A quadratic reader takes 16x, and minutes on a few megabytes. The families
come from time-bound fuzzing of the speed work against ffa5699 (faults tier).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from gemlib.errors import GemlibError
from gemlib.formats.gem_tags import (
    loads_lenient,
    parse_conversation,
    parse_refined,
    parse_relevance,
    parse_workflows,
)
from gemlib.llm.reasoning import split_reasoning
from gemlib.model import Trajectory
from gemlib.validation import consistent_ids, grounded, state_ledger, validate

pytestmark = pytest.mark.faults

SMALL = 60_000
CALL = '<func>{"name": "get_order", "arguments": {"order_id": "W1"}}</func>'
TURN = f'<assistant>{CALL}</assistant>\n<tool>{{"status": "shipped"}}</tool>\n'
TOOL = {
    "name": "get_order",
    "description": "Read an order.",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string", "pattern": "^W[0-9]+$"}},
        "required": ["order_id"],
    },
}


def _times(unit: str, n: int) -> str:
    return unit * max(1, n // len(unit))


def _conversation(middle: str) -> str:
    return f"<user>q</user><assistant>{middle}</assistant>"


READERS: dict[str, tuple[Callable[[str], Any], Callable[[int], str]]] = {
    "many turns": (parse_conversation, lambda n: "<user>q</user>" + _times(TURN, n)),
    "many calls in one turn": (parse_conversation, lambda n: _conversation(_times(CALL, n))),
    "role tags in every order": (
        parse_conversation,
        lambda n: _times("<user><assistant></user></assistant><tool>", n),
    ),
    "a preamble naming the tags": (
        parse_conversation,
        lambda n: _times("I write <system> and <user> then ", n) + "\n<user>q</user>",
    ),
    "closing tags after the last turn": (
        parse_conversation,
        lambda n: "<user>x</user>" + _times("</user>", n),
    ),
    "markup never closed in a tool reply": (
        parse_conversation,
        lambda n: "<user>q</user><tool>" + _times("<user><b>", n) + "</tool>",
    ),
    "a call object never closed": (
        parse_conversation,
        lambda n: _conversation("<func>{" + _times('"a":1,', n) + "</func>"),
    ),
    "a call of Python literals": (
        parse_conversation,
        lambda n: _conversation(
            "<func>{'name': 'f', 'arguments': {'a': [" + _times("'x', ", n) + "True]}}</func>"
        ),
    ),
    "a call of trailing commas": (
        parse_conversation,
        lambda n: _conversation("<func>{" + _times(",}", n) + "</func>"),
    ),
    "JSON wrapped in tags that are not calls": (
        parse_conversation,
        lambda n: _conversation(_times("<x> {", n)),
    ),
    "reasoning openings in a turn": (
        parse_conversation,
        lambda n: _conversation("<think>" + _times("<think>", n)),
    ),
    "CRLF turns": (
        parse_conversation,
        lambda n: ("<user>q</user>\n" + _times(TURN, n)).replace("\n", "\r\n"),
    ),
    "many tools in toolsets": (
        parse_refined,
        lambda n: (
            "<toolsets>["
            + ",".join([json.dumps(TOOL)] * max(1, n // 200))
            + "]</toolsets><user>q</user><assistant>a</assistant>"
        ),
    ),
    "workflow openings": (parse_workflows, lambda n: _times("<workflow>", n)),
    "tools openings in a workflow": (
        parse_workflows,
        lambda n: "<workflow>" + _times("<tools>", n) + "</workflow>",
    ),
    "relevance openings": (parse_relevance, lambda n: _times("<multi_step>", n)),
    "a list of trailing commas": (
        lambda text: loads_lenient(text, "x"),
        lambda n: "[" + _times("1,", n) + "]",
    ),
    "a string never closed": (
        lambda text: loads_lenient(text, "x"),
        lambda n: '{"a": "' + _times("x", n),
    ),
    "escaped quotes never closed": (
        lambda text: loads_lenient(text, "x"),
        lambda n: '"' + _times('\\"', n),
    ),
    "strings holding commas and brackets": (
        lambda text: loads_lenient(text, "x"),
        lambda n: "[" + _times('",]", ', n) + "]",
    ),
    "Python literals that do not close": (
        lambda text: loads_lenient(text, "x"),
        lambda n: "{" + _times("'k': None, ", n) + "bad",
    ),
    "reasoning blocks": (split_reasoning, lambda n: _times("<think>a</think>", n) + "x"),
    "reasoning closings without a line": (split_reasoning, lambda n: _times("</think>x", n)),
}


def _seconds(read: Callable[[str], Any], text: str) -> float:
    """The best of three reads (a loaded machine only ever adds time)."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        with contextlib.suppress(GemlibError):
            read(text)
        best = min(best, time.process_time() - started)
    return best


@pytest.mark.parametrize(("read", "make"), READERS.values(), ids=list(READERS))
def test_hostile_text_costs_linear_time(
    read: Callable[[str], Any], make: Callable[[int], str]
) -> None:
    small, large = _seconds(read, make(SMALL)), _seconds(read, make(4 * SMALL))
    assert large < 8 * small + 0.25, f"4x the text took {large / max(small, 1e-9):.1f}x the time"


def test_many_workflow_blocks_cost_linear_time() -> None:
    """An extraction reply of many small workflows (each names its line in errors;
    counting the lines before every block was quadratic until c295b9d: 13x the time
    for 4x the text)."""
    block = "<workflow><description>d</description><tools>[]</tools></workflow>\n"
    small = _seconds(parse_workflows, _times(block, 4 * SMALL))
    large = _seconds(parse_workflows, _times(block, 16 * SMALL))
    assert large < 8 * small + 0.25, f"4x the text took {large / max(small, 1e-9):.1f}x the time"


def _many_turns(turns: int) -> Trajectory:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Where are my orders?"}]
    for i in range(turns):
        arguments = {"order_id": f"W{i}"}
        messages.append(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": f"c{i}", "name": "get_order", "arguments": arguments}],
            }
        )
        reply = {"order_id": f"W{i}", "status": "shipped", "item_ids": [f"I{i}-1", f"I{i}-2"]}
        messages.append({"role": "tool", "content": json.dumps(reply), "tool_call_id": f"c{i}"})
    messages.append({"role": "assistant", "content": "Done."})
    return Trajectory.model_validate({"tools": [TOOL], "messages": messages})


def test_validating_many_turns_costs_linear_time() -> None:
    """The rule checks on a long trajectory (each call's values looked up in what came
    before it): 4x the turns must not cost 16x the time."""
    small, large = _many_turns(300), _many_turns(1200)
    t_small = _seconds(lambda _: validate(small), "")
    t_large = _seconds(lambda _: validate(large), "")
    assert t_large < 8 * t_small + 0.25, f"4x the turns took {t_large / t_small:.1f}x the time"


def _writes_and_reads(pairs: int) -> Trajectory:
    """Each write creates an entity, each read asks about one; then writes name earlier reads."""
    steps: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for i in range(pairs):
        record = {"item_id": f"IT-{i}", "name": f"n{i}", "tags": [f"T{i}"]}
        steps.append(("create_item", {"item_id": f"IT-{i}", "name": f"n{i}"}, record))
        steps.append(("get_order", {"order_id": f"O{i}"}, {"total": i}))
    steps += [
        ("update_order", {"order_id": f"O{i}", "total": -i}, {"ok": True}) for i in range(pairs)
    ]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Go."}]
    for i, (name, arguments, reply) in enumerate(steps):
        call = {"id": f"c{i}", "name": name, "arguments": arguments}
        messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        messages.append({"role": "tool", "content": json.dumps(reply), "tool_call_id": f"c{i}"})
    return Trajectory.model_validate({"messages": messages})


def test_state_ledger_on_many_writes_costs_linear_time() -> None:
    """The state ledger on many writes (each visited every entity and decoded every
    earlier read until b84ed34: 24x the time for 4x the writes)."""
    check = state_ledger()
    small, large = _writes_and_reads(250), _writes_and_reads(1000)
    t_small = _seconds(lambda _: list(check(small)), "")
    t_large = _seconds(lambda _: list(check(large)), "")
    assert t_large < 8 * t_small + 0.25, f"4x the writes took {t_large / t_small:.1f}x the time"


def _chained_orders(pairs: int) -> Trajectory:
    """Each call asks for the order the reply before it named (under a key that is no
    ID, so the ID check asks the conversation too), in replies of some 200 characters."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Follow my orders from W0."}]
    for i in range(pairs):
        call = {"id": f"c{i}", "name": "get_order", "arguments": {"order_id": f"W{i}"}}
        messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        reply = {
            "order_id": f"W{i}",
            "next_order": f"W{i + 1}",
            "items": [{"sku": f"SKU{i}-{k}", "price": i + k / 10} for k in range(3)],
            "note": "delivered to the front door on time",
        }
        messages.append({"role": "tool", "content": json.dumps(reply), "tool_call_id": f"c{i}"})
    messages.append({"role": "assistant", "content": "Done."})
    return Trajectory.model_validate({"tools": [TOOL], "messages": messages})


def test_grounding_long_conversations_costs_linear_time() -> None:
    """Grounding and the ID check on values the last reply gave: each lookup searched,
    and each new reply copied, the whole conversation's text until p20b-checks (13x the
    time for 4x the turns)."""
    checks = [grounded(), consistent_ids()]
    small, large = _chained_orders(1000), _chained_orders(4000)
    t_small = _seconds(lambda _: [p for check in checks for p in check(small)], "")
    t_large = _seconds(lambda _: [p for check in checks for p in check(large)], "")
    assert t_large < 6 * t_small + 0.1, f"4x the turns took {t_large / t_small:.1f}x the time"
