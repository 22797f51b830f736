"""The state ledger: contradictions between what tool replies say about the same world."""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import json
import random
from typing import Any

import pytest

from conftest import third_party
from gemlib import Message, Tool, ToolCall, Trajectory, validate
from gemlib.validation import default_checks
from gemlib.validation.ledger import state_ledger
from gemlib.validation.limits import prompt_limits
from gemlib.validation.tool_kinds import ToolKinds
from state_walks import bfcl_walks, mutants, sweep, tau2_walks

TOOLS = tuple(
    Tool.from_any({"name": n, "description": d, "parameters": {"type": "object"}})
    for n, d in [
        ("get_order_details", "Get an order."),
        ("cancel_order", "Cancel an order."),
        ("update_order_note", "Set an order's note."),
        ("delete_file", "Delete a file."),
        ("read_file", "Read a file."),
        ("get_user", "Get a user."),
    ]
)


def _trace(*steps: tuple[str, dict[str, Any], Any]) -> Trajectory:
    messages = [Message(role="user", content="help")]
    for n, (name, arguments, reply) in enumerate(steps):
        call = ToolCall(id=f"c{n}", name=name, arguments=arguments)
        content = reply if isinstance(reply, str) else json.dumps(reply)
        messages += [
            Message(role="assistant", tool_calls=(call,)),
            Message(role="tool", content=content, tool_call_id=call.id, name=name),
        ]
    messages.append(Message(role="assistant", content="done"))
    return Trajectory(tools=TOOLS, messages=tuple(messages))


ORDER = {"order_id": "W1", "user_id": "u1", "status": "pending", "note": "", "total": 12.5}


def _problems(t: Trajectory) -> list[tuple[int | None, str]]:
    return [(p.message_index, p.text) for p in state_ledger()(t)]


def test_a_consistent_history_passes() -> None:
    cancelled = {**ORDER, "status": "cancelled"}
    t = _trace(
        ("get_order_details", {"order_id": "W1"}, ORDER),
        ("cancel_order", {"order_id": "W1"}, cancelled),
        ("get_order_details", {"order_id": "W1"}, cancelled),
        ("get_order_details", {"order_id": "W1"}, {**cancelled, "total": 12.50}),
    )
    assert _problems(t) == []


def test_a_read_contradicting_the_last_known_value_names_message_entity_and_field() -> None:
    t = _trace(
        ("get_order_details", {"order_id": "W1"}, ORDER),
        ("get_user", {"user_id": "u1"}, {"user_id": "u1", "orders": ["W1"]}),
        ("get_order_details", {"order_id": "W1"}, {**ORDER, "total": 15.0}),
    )
    ((index, text),) = _problems(t)
    assert index == 6
    assert "order_id='w1'" in text
    assert "total=15.0" in text
    assert "message 2" in text


def test_a_cancelled_order_read_back_as_pending_is_a_missing_effect() -> None:
    t = _trace(
        ("get_order_details", {"order_id": "W1"}, ORDER),
        ("cancel_order", {"order_id": "W1"}, {**ORDER, "status": "cancelled"}),
        ("get_order_details", {"order_id": "W1"}, ORDER),
    )
    ((index, text),) = _problems(t)
    assert index == 6
    assert "status='pending'" in text
    assert "effect is missing" in text


def test_a_write_with_a_bare_success_reply_must_show_when_read_back() -> None:
    steps = [
        ("get_order_details", {"order_id": "W1"}, ORDER),
        ("update_order_note", {"order_id": "W1", "note": "gift"}, "Done."),
    ]
    shown = _trace(*steps, ("get_order_details", {"order_id": "W1"}, {**ORDER, "note": "gift"}))
    assert _problems(shown) == []
    missing = _trace(*steps, ("get_order_details", {"order_id": "W1"}, ORDER))
    assert [i for i, _ in _problems(missing)] == [6]


def test_a_repeated_read_that_changed_with_no_write_between() -> None:
    t = _trace(
        ("read_file", {"path": "a.txt"}, "hello"),
        ("read_file", {"path": "a.txt"}, "goodbye"),
    )
    ((index, text),) = _problems(t)
    assert index == 4
    assert "repeated with the same arguments" in text
    written = _trace(
        ("read_file", {"path": "a.txt"}, "hello"),
        ("update_order_note", {"order_id": "W9", "note": "x"}, "ok"),
        ("read_file", {"path": "a.txt"}, "goodbye"),
    )
    assert _problems(written) == []


class _Path(str):
    """A ``str`` subclass, as a caller building calls in Python may pass."""


@pytest.mark.parametrize(
    ("first", "again", "same"),
    [
        ({"path": "a.txt"}, {"path": "a.txt"}, True),
        ({"path": "a.txt", "mode": "r"}, {"mode": "r", "path": "a.txt"}, True),  # key order
        ({"path": _Path("a.txt")}, {"path": "a.txt"}, True),  # written as the same JSON
        ({"day": dt.date(2026, 12, 1)}, {"day": "2026-12-01"}, True),  # str() of an object
        ({"path": "a.txt"}, {"path": "a.txt", "mode": "r"}, False),
        ({"count": 1}, {"count": "1"}, False),
        ({"count": 1}, {"count": 1.0}, False),
        ({"count": True}, {"count": "true"}, False),
        ({"path": ["a.txt"]}, {"path": "a.txt"}, False),
    ],
)
def test_a_repeated_read_is_the_same_call_exactly_when_its_json_is(
    first: dict[str, Any], again: dict[str, Any], same: bool
) -> None:
    t = _trace(("read_file", first, "hello"), ("read_file", again, "goodbye"))
    assert any("repeated with the same arguments" in text for _, text in _problems(t)) is same


def test_an_entity_used_after_its_delete_and_an_invented_id() -> None:
    t = _trace(
        ("delete_file", {"file_id": "F7"}, {"deleted": True}),
        ("read_file", {"file_id": "F7"}, "contents"),
    )
    ((index, text),) = _problems(t)
    assert index == 4
    assert "deleted at message 2" in text
    gone = _trace(
        ("delete_file", {"file_id": "F7"}, {"deleted": True}),
        ("read_file", {"file_id": "F7"}, "Error: no such file"),
    )
    assert _problems(gone) == []
    invented = _trace(("get_order_details", {"order_id": "W1"}, {**ORDER, "order_id": "W2"}))
    assert "asked for order_id='W1'" in _problems(invented)[0][1]
    moved = _trace(
        ("get_user", {"user_id": "u1"}, {"user_id": "u1", "orders": ["W1"]}),
        ("get_order_details", {"order_id": "W1"}, {**ORDER, "user_id": "u2"}),
    )
    assert "listed it under user_id='u1'" in _problems(moved)[0][1]


def test_hostile_replies_are_text_not_a_crash() -> None:
    for depth in (100, 5000, 200_000):
        t = _trace(
            ("read_file", {"path": "a"}, "[" * depth + "]" * depth),
            ("read_file", {"path": "a"}, "[" * depth + "]" * depth),
        )
        assert _problems(t) == []
        assert list(prompt_limits()(t)) == []


def test_tolerances_clock_fields_and_declared_fields() -> None:
    t = _trace(
        ("get_order_details", {"order_id": "W1"}, {**ORDER, "updated_at": "10:00"}),
        ("get_order_details", {"order_id": "W1"}, {**ORDER, "updated_at": "10:05"}),
    )
    assert _problems(t) == []
    noted = _trace(
        ("get_order_details", {"order_id": "W1"}, ORDER),
        ("get_order_details", {"order_id": "W1"}, {**ORDER, "note": "x"}),
    )
    assert _problems(noted)
    assert list(state_ledger(volatile_fields={"note"})(noted)) == []


def test_tool_kinds_know_the_verbs_a_word_list_misses_and_accept_declarations() -> None:
    kinds = ToolKinds()
    for name in ("toggle_wifi", "enableRoaming", "suspend_line", "resume_line", "reboot_device"):
        assert kinds.kind(name) == "write", name
    assert kinds.kind("refuel_data") == "write"
    assert kinds.kind("check_sim_status") == "read"
    assert kinds.kind("Vehicle.displayCarStatus") == "read"
    assert kinds.kind("gallon_to_liter") == "other"
    described = Tool.from_any({"name": "ledger_entry", "description": "Creates an entry."})
    assert kinds.kind(described) == "write"
    assert ToolKinds(declared={"toggle_wifi": "read"}).kind("toggle_wifi") == "read"
    # a declared read: the ledger then compares its repeated answers
    t = _trace(("heartbeat", {}, "up"), ("heartbeat", {}, "down"))
    assert not list(state_ledger()(t))
    assert list(state_ledger(kinds={"heartbeat": "read"})(t))


def test_tool_kinds_agree_with_tau2s_own_labels() -> None:
    third_party("tau2")
    import importlib

    kinds, agree, total = ToolKinds(), 0, 0
    for domain in ("airline", "retail", "telecom"):
        env = importlib.import_module(f"tau2.domains.{domain}.environment").get_environment()
        groups = [(env.tools, env.get_tools())]
        if getattr(env, "user_tools", None) is not None:
            groups.append((env.user_tools, env.get_user_tools()))
        for toolkit, tools in groups:
            for tool in tools:
                label = toolkit.tool_type(tool.name).value
                if label in ("read", "write"):
                    total += 1
                    agree += kinds.kind(Tool.from_any(tool.openai_schema)) == label
    assert total >= 60
    assert agree == total


def test_ground_truth_and_random_walks_raise_nothing_and_mutants_are_caught() -> None:
    third_party("tau2")
    third_party("bfcl_eval")
    from gemlib.formats.bfcl import read_bfcl_multi_turn

    check = state_ledger()
    real = [
        *itertools.islice(read_bfcl_multi_turn(), 0, 200, 20),
        *tau2_walks("retail", 1, length=30),
        *tau2_walks("airline", 1, length=30),
        *bfcl_walks(2, length=30),
    ]
    assert {t.id: list(check(t)) for t in real} == {t.id: [] for t in real}
    caught: collections.Counter[str] = collections.Counter()
    sites: collections.Counter[str] = collections.Counter()
    for t in real[-4:]:
        for kind, mutant, _ in mutants(t, random.Random(t.id)):
            sites[kind] += 1
            caught[kind] += any(True for _ in check(mutant))
    assert {"repeat_changed", "id_changed"} <= set(sites)
    assert caught == sites


def test_the_ledger_is_in_the_default_ladder() -> None:
    t = _trace(
        ("get_order_details", {"order_id": "W1"}, ORDER),
        ("get_order_details", {"order_id": "W1"}, {**ORDER, "status": "shipped"}),
    )
    assert "state_ledger" in validate(t).rules()
    assert "state_ledger" not in validate(t, default_checks(state=False)).rules()


@pytest.mark.faults
def test_the_sweep_figures_docs_validation_reports() -> None:
    third_party("tau2")
    third_party("bfcl_eval")
    figures = sweep(20, show=False)  # docs/validation.md reports the sweep of 30
    assert all(s["flagged"] == 0 for s in figures["sources"].values())
    assert sum(s["traces"] for s in figures["sources"].values()) == 100
    totals: collections.Counter[str] = collections.Counter()
    found: collections.Counter[str] = collections.Counter()
    for key, (caught, sites) in figures["caught"].items():
        kind = key.split("/")[1]
        totals[kind] += sites
        found[kind] += caught
    for kind in ("contradicts_write", "effect_missing", "repeat_changed", "id_changed"):
        assert found[kind] / totals[kind] >= 0.95, (kind, found[kind], totals[kind])
    assert found["resurrected"] == totals["resurrected"] > 0
