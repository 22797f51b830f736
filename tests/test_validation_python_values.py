"""Trajectories built in Python, not read from JSON: the rule checks judge them and let
them go.

Found by the review of the speed work: an ID-like argument that is not hashable (a
tuple holding a list) made ``validate`` raise ``TypeError``, and a plain-text tool
reply kept its trajectory alive until the cycle collector ran (the checks' shared
decoding kept the decoder's error, whose traceback held the decoder's frame).
"""

from __future__ import annotations

import gc
import weakref

from gemlib.model import Message, Tool, ToolCall, Trajectory
from gemlib.validation import validate

TOOL = Tool(
    name="get_order",
    description="Read an order.",
    parameters={"type": "object", "properties": {"order_id": {}}},
)


def _trajectory(order_id: object, reply: str) -> Trajectory:
    first = ToolCall(id="c1", name="get_order", arguments={"order_id": "A1"})
    second = ToolCall(id="c2", name="get_order", arguments={"order_id": order_id})
    return Trajectory(
        id="t",
        tools=(TOOL,),
        messages=(
            Message(role="user", content="Where is order A1?"),
            Message(role="assistant", content="", tool_calls=(first,)),
            Message(role="tool", content=reply, tool_call_id="c1"),
            Message(role="assistant", content="", tool_calls=(second,)),
            Message(role="tool", content=reply, tool_call_id="c2"),
            Message(role="assistant", content="It has shipped."),
        ),
    )


def test_an_unhashable_id_value_is_judged_not_raised() -> None:
    report = validate(_trajectory(("A1", ["x"]), '{"order_id": "A1", "status": "shipped"}'))

    assert "changed_value" in {p.rule for p in report.problems}


def test_a_plain_text_reply_leaves_no_cycle_behind() -> None:
    trajectory = _trajectory("A1", "Order A1 has shipped.")
    gone = weakref.ref(trajectory)
    collecting = gc.isenabled()
    gc.disable()
    try:
        validate(trajectory)
        del trajectory
        assert gone() is None  # freed by reference counting alone
    finally:
        if collecting:
            gc.enable()
