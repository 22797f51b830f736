"""Numbers a model may write that a float cannot hold: the rule checks judge them, never raise.

JSON and the tag parser read integers of up to 4300 digits; one past about 1e308
is not a float. Found by differential fuzzing of the speed work against ffa5699
(validate() raised OverflowError from the state ledger, the grounding check and the
prompt limits alike).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gemlib.model import Trajectory
from gemlib.stages.validators import RuleValidator
from gemlib.validation import validate

BIG = int("9" * 400)
TOOL = {
    "name": "get_order",
    "description": "Read an order.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "integer"}}},
}


def _trajectory(arguments: dict[str, Any], reply: dict[str, Any], system: str = "") -> Trajectory:
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    messages += [
        {"role": "user", "content": "Where is order 5?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c0", "name": "get_order", "arguments": arguments}],
        },
        {"role": "tool", "content": json.dumps(reply), "tool_call_id": "c0"},
        {"role": "assistant", "content": "It is on its way."},
    ]
    return Trajectory.model_validate({"tools": [TOOL], "messages": messages})


CASES = {
    "an ID in a tool reply": _trajectory({"order_id": 5}, {"order_id": BIG, "total": BIG}),
    "an argument no message gives": _trajectory({"order_id": BIG}, {"order_id": BIG}),
    "a count past a limit of the prompt": _trajectory(
        {"order_id": 5}, {"order_id": 5, "items": BIG}, system="At most 3 items per order."
    ),
}


@pytest.mark.parametrize("trajectory", CASES.values(), ids=list(CASES))
def test_an_integer_too_large_for_a_float_is_judged_not_raised(trajectory: Trajectory) -> None:
    report = validate(trajectory)
    outcome = RuleValidator().process(trajectory)
    assert isinstance(outcome, Trajectory) == report.ok
