"""Numeric limits read from the system prompt and checked against calls and replies."""

from __future__ import annotations

import json

import pytest

from conftest import third_party
from gemlib import Message, Tool, ToolCall, Trajectory
from gemlib.validation import limits
from gemlib.validation.limits import limit_cues, prompt_limits, read_limits

PROMPT = (
    "You book rooms. A room holds at most 4 hours. Each booking can have at most five "
    "guests. Refunds of no more than $500 are allowed. The maximum amount of data that "
    "can be refueled is 2GB."
)
TOOLS = (
    Tool.from_any({"name": "book_room", "parameters": {"type": "object"}}),
    Tool.from_any({"name": "get_quote", "parameters": {"type": "object"}}),
)


def _trace(*steps: tuple[str, dict[str, object], object], system: str = PROMPT) -> Trajectory:
    messages = [Message(role="system", content=system), Message(role="user", content="hi")]
    for n, (name, arguments, reply) in enumerate(steps):
        call = ToolCall(id=f"c{n}", name=name, arguments=arguments)
        messages += [
            Message(role="assistant", tool_calls=(call,)),
            Message(role="tool", content=json.dumps(reply), tool_call_id=call.id, name=name),
        ]
    messages.append(Message(role="assistant", content="done"))
    return Trajectory(tools=TOOLS, messages=tuple(messages))


def test_limits_are_read_with_number_words_units_and_nouns() -> None:
    read = {(lim.bound, lim.value, lim.unit): lim.nouns for lim in read_limits(PROMPT)}
    assert read[("max", 4.0, "hours")] >= {"hour"}
    assert read[("max", 5.0, "")] == {"guest"}
    assert ("max", 500.0, "$") in read
    assert read[("max", 2.0, "gb")] >= {"data", "gb"}
    assert read_limits("You should at most make one tool call at a time.") == []
    assert read_limits("at least 3 nights")[0].bound == "min"


def test_a_call_crossing_a_limit_is_flagged_at_its_message() -> None:
    check = prompt_limits()
    ok = _trace(("book_room", {"duration_minutes": 240, "guests": ["a", "b"]}, {"ok": True}))
    assert list(check(ok)) == []
    long = _trace(("book_room", {"duration_minutes": 300}, {"ok": True}))
    (problem,) = check(long)
    assert problem.message_index == 2
    assert "duration_minutes=300" in problem.text
    crowded = _trace(("book_room", {"guests": ["a"] * 6}, {"ok": True}))
    assert "guests=6" in next(iter(check(crowded))).text
    refund = _trace(("book_room", {"refund_amount": 650}, {"ok": True}))
    assert "$500" in next(iter(check(refund))).text


def test_proceeding_after_a_reply_that_crosses_a_limit() -> None:
    check = prompt_limits()
    t = _trace(
        ("get_quote", {}, {"total_price": 720.0}),
        ("book_room", {"room": "A"}, {"ok": True}),
    )
    (problem,) = check(t)
    assert problem.message_index == 4
    assert "proceeds after message 3" in problem.text
    stopped = _trace(("get_quote", {}, {"total_price": 720.0}))
    assert list(check(stopped)) == []
    assert list(check(_trace(("book_room", {"hours": 9}, {}), system="Be nice."))) == []


@pytest.mark.faults  # loading three tau2 domains takes tens of seconds on a busy machine
def test_tau2_policies_are_read_and_their_ground_truth_passes() -> None:
    third_party("tau2")
    import importlib

    from gemlib.formats.tau2 import read_tau2_tasks

    policies = {
        d: importlib.import_module(f"tau2.domains.{d}.environment").get_environment().get_policy()
        for d in ("airline", "retail", "telecom")
    }
    counts = {d: (len(limit_cues(p)), len(read_limits(p))) for d, p in policies.items()}
    assert counts == {"airline": (2, 4), "retail": (1, 0), "telecom": (2, 1)}
    check = prompt_limits()
    airline = list(read_tau2_tasks("airline"))
    assert [p for t in airline for p in check(t)] == []
    caught = total = 0
    for t in airline:
        for index, message in enumerate(t.messages):
            for call in message.tool_calls:
                passengers = call.arguments.get("passengers")
                if isinstance(passengers, list):
                    crowded = call.model_copy(
                        update={"arguments": {**call.arguments, "passengers": passengers * 6}}
                    )
                    messages = list(t.messages)
                    messages[index] = message.model_copy(update={"tool_calls": (crowded,)})
                    mutant = t.model_copy(update={"messages": tuple(messages)})
                    total += 1
                    caught += any(p.message_index == index for p in check(mutant))
    assert total >= 10
    assert caught == total


def test_every_bound_phrase_holds_a_keyword_of_the_quick_test() -> None:
    """ASCII text with none of the keywords is not searched, so each cue needs one."""
    phrases = [*limits._MAX.split("|"), *limits._MIN.split("|")]
    phrases += ["maximum", "max", "limit", "cap", "minimum"]  # the bounds of _IS
    for phrase in phrases:
        assert any(word in phrase.lower() for word in limits._KEYWORDS), phrase
    assert limit_cues("Orders ship within 30 days. Returns are free.") == []


def test_bounds_are_read_in_any_case_and_in_text_that_is_not_ascii() -> None:
    """Case-blind matching knows more than ASCII's cases (long s, Kelvin sign)."""
    assert [lim.value for lim in read_limits("AT MOST 4 guests per room.")] == [4.0]
    assert [lim.value for lim in read_limits("Stays of at lea\u017ft 3 nights.")] == [3.0]
    assert [lim.bound for lim in read_limits("Caf\u00e9: no more than 2 cups.")] == ["max"]


def test_a_number_that_names_an_id_is_no_quantity() -> None:
    """ "At most 3 items per order" is about items, not about order 5 (found by p20-fuzz;
    the old code flagged order_id=5); a list of item IDs still counts items."""
    system = "At most 3 items per order."
    named = _trace(("get_quote", {"order_id": 5}, {"order_id": 5, "total": 2}), system=system)
    assert list(prompt_limits()(named)) == []
    listed = _trace(("book_room", {"item_ids": [1, 2, 3, 4, 5]}, {"ok": True}), system=system)
    assert [p.message_index for p in prompt_limits()(listed)] == [2]
