"""Record and run IDs are pinned: resuming an old run directory depends on them.

The expected values were computed by the json.dumps-based ``stable_id`` of ffa5699;
a change to how IDs are hashed (escaping, separators, key order, number form) fails here.
"""

from __future__ import annotations

import enum
from typing import Any

import pytest

from gemlib.model import Document, Message, Tool, Trajectory, stable_id
from gemlib.model._base import StableIds


class _Color(str, enum.Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("prefix", "parts", "expected"),
    [
        ("doc", ("Northwind orders",), "doc-f6dd91e7e4aec4c2"),
        ("doc", ("",), "doc-055539df4a0b804c"),
        (
            "doc",
            ('quote " backslash \\ tab \t newline \n nul \x00 del \x7f',),
            "doc-1310328318ae976e",
        ),
        ("doc", ("café ☕ 😀 \u2028 \u2029 עברית",), "doc-92b00d54ff7b56a4"),
        ("call", ("traj-0123456789abcdef", 0), "call-bfed63b85c24baa0"),
        ("call", ("traj-0123456789abcdef", "refined", 12), "call-e58f948b27e4298e"),
        ("traj", ("wf-1", -3), "traj-b940fbc1ce6db648"),
        ("traj", ("wf-1", 10**30), "traj-2ee56bc6933ebadd"),
        ("x", (), "x-4f53cda18c2baa0c"),
        ("x", (True, None, 1.5, float("inf")), "x-4985373684785276"),
        ("x", (_Color.RED, 2), "x-e8e083dfce547c16"),
        ("x", ({"b": 1, "a": [1, "z"]}, ("t", 1)), "x-9521c791ea2309b0"),
    ],
)
def test_stable_id_is_pinned(prefix: str, parts: tuple[Any, ...], expected: str) -> None:
    assert stable_id(prefix, *parts) == expected
    if parts:  # the parsers' call IDs: all parts but the number hashed once
        assert StableIds(prefix, *parts[:-1])(parts[-1]) == expected


def test_a_reply_s_call_ids_are_stable_ids() -> None:
    ids = StableIds("call", "traj-0123456789abcdef", "refined")
    numbers = [0, 12, 1, 12, 10**20, -1, True]  # in any order, again, and not only ints
    assert [ids(n) for n in numbers] == [
        stable_id("call", "traj-0123456789abcdef", "refined", n) for n in numbers
    ]
    with pytest.raises(UnicodeEncodeError):  # as stable_id: a lone surrogate is no ID
        StableIds("call", "\ud800")(0)


def test_default_record_ids_are_pinned() -> None:
    assert Document(text="A short text").id == "doc-9896e6b4ab96d03f"
    trajectory = Trajectory(
        tools=[
            Tool(
                name="get_order",
                description="Read an order",
                parameters={
                    "type": "object",
                    "properties": {"id": {"type": "integer"}},
                    "required": ["id"],
                },
            )
        ],
        messages=[
            Message(role="user", content="Show order 7"),
            Message(
                role="assistant",
                content="",
                tool_calls=[{"id": "c1", "name": "get_order", "arguments": {"id": 7}}],
            ),
            Message(role="tool", content='{"id": 7}', tool_call_id="c1"),
            Message(role="assistant", content="Order 7 is shipped."),
        ],
    )
    assert trajectory.id == "traj-5247e95e9b2e86b4"


def test_a_lone_surrogate_is_refused_as_before() -> None:
    with pytest.raises(UnicodeEncodeError):
        stable_id("doc", "stray \ud800 escape")
