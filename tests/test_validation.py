"""Each validation check, the ladder, and the RuleValidator stage."""

from __future__ import annotations

from typing import Any

from gemlib import Message, Pipeline, Tool, ToolCall, Trajectory, validate
from gemlib.stages.validators import RuleValidator
from gemlib.validation import checks, consistent_ids, default_checks, grounded

GET = Tool.from_any(
    {
        "name": "get_order",
        "parameters": {
            "properties": {"order_id": {"type": "string"}, "verbose": {"type": "boolean"}},
            "required": ["order_id"],
        },
    }
)
CANCEL = Tool.from_any(
    {
        "name": "cancel_order",
        "parameters": {
            "properties": {
                "order_id": {"type": "string"},
                "reason": {"type": "string", "enum": ["late", "damaged"]},
                "quantity": {"type": "integer", "default": 1},
                "notify": {"type": "string", "description": "Channel: 'email' or 'sms'."},
                "when": {"type": "string"},
            },
            "required": ["order_id"],
        },
    }
)


def call(name: str, id: str = "c1", **arguments: Any) -> Message:
    return Message(role="assistant", tool_calls=(ToolCall(id=id, name=name, arguments=arguments),))


def reply(
    id: str = "c1",
    content: str = '{"order_id": "W123", "status": "pending"}',
    name: str = "get_order",
) -> Message:
    return Message(role="tool", content=content, tool_call_id=id, name=name)


def good() -> list[Message]:
    return [
        Message(role="system", content="You are a shop assistant."),
        Message(role="user", content="Please cancel order W123, it arrived late."),
        call("get_order", order_id="W123"),
        reply(),
        Message(role="assistant", content="It is pending. Cancel it?"),
        Message(role="user", content="Yes, and tell me by email."),
        call("cancel_order", id="c2", order_id="W123", reason="late", quantity=1, notify="email"),
        reply("c2", '{"cancelled": true}', "cancel_order"),
        Message(role="assistant", content="Cancelled."),
    ]


def traj(messages: list[Message], tools: tuple[Tool, ...] = (GET, CANCEL)) -> Trajectory:
    return Trajectory(tools=tools, messages=tuple(messages))


def rules(messages: list[Message], **kw: Any) -> list[tuple[str, int | None]]:
    return [(p.rule, p.message_index) for p in validate(traj(messages, **kw)).problems]


def test_a_good_trajectory_passes_every_check() -> None:
    report = validate(traj(good()))
    assert report.ok, str(report)
    assert str(report) == "ok"


def test_every_problem_is_reported_not_only_the_first() -> None:
    messages = good()
    messages[2] = call("get_ordr", order_id="W999")
    messages[6] = call("cancel_order", id="c2", order_id=7, reason="lost", colour="red")
    found = rules(messages)
    assert ("unknown_tool", 2) in found
    assert found.count(("argument_schema", 6)) == 3  # wrong type, not in enum, unknown name
    assert ("ungrounded_argument", 2) in found


def test_tool_definitions() -> None:
    dup = (GET, GET, Tool.from_any({"name": "9lives"}))
    found = validate(traj(good(), tools=dup), [checks.tools_well_formed()]).problems
    texts = [p.text for p in found]
    assert any("defined twice" in t for t in texts)
    assert any("'9lives' is not a valid function name" in t for t in texts)


def test_missing_required_and_unknown_names() -> None:
    messages = good()
    messages[2] = call("get_order", verbose=True, extra=1)
    texts = [p.text for p in validate(traj(messages), [checks.valid_arguments()]).problems]
    assert "call get_order: arguments: 'order_id' is a required property" in texts
    assert any("'extra' was unexpected" in t for t in texts)
    lenient = validate(traj(messages), [checks.valid_arguments(allow_unknown=True)]).problems
    assert [p.text for p in lenient] == [
        "call get_order: arguments: 'order_id' is a required property"
    ]


def test_duplicate_and_missing_call_ids() -> None:
    messages = good()
    messages[6] = call("cancel_order", id="c1", order_id="W123")
    messages[7] = reply("c1", "{}", "cancel_order")
    found = validate(traj(messages), [checks.unique_call_ids()]).problems
    assert [p.text for p in found] == ["call ID 'c1' is used twice"]


def test_turn_order_violations() -> None:
    base = good()
    cases = {
        "reply before call": [*base[:2], reply(), *base[2:]],
        "user right after a tool reply": base[:4] + base[5:],
        "ends on an unanswered call": base[:3],
        "ends on a user message": base[:2],
        "assistant then assistant": [*base[:5], Message(role="assistant", content="x"), *base[5:]],
        "system later": [*base, Message(role="system", content="late rules")],
        "opens with assistant": [base[0], Message(role="assistant", content="hi"), *base[1:]],
        "reply to the wrong call": [*base[:3], reply("zz"), *base[4:]],
    }
    for name, messages in cases.items():
        found = validate(traj(messages), [checks.turn_order()]).problems
        assert found, f"{name}: no problem found"
        assert all(p.rule == "turn_order" for p in found), name


def test_one_call_per_turn_is_optional() -> None:
    messages = good()
    two = Message(
        role="assistant",
        tool_calls=(
            ToolCall(id="a", name="get_order", arguments={"order_id": "W123"}),
            ToolCall(id="b", name="get_order", arguments={"order_id": "W123"}),
        ),
    )
    messages[2:4] = [two, reply("a"), reply("b")]
    assert validate(traj(messages), [checks.turn_order()]).ok
    strict = validate(traj(messages), [checks.turn_order(one_call_per_turn=True)]).problems
    assert [(p.rule, p.message_index) for p in strict] == [("one_call_per_turn", 2)]


def test_tool_replies_must_be_well_formed() -> None:
    messages = good()
    messages[3] = reply(content="{'order_id': 'W123'")
    messages[7] = reply("c2", "   ", "cancel_order")
    found = validate(traj(messages), [checks.tool_replies()]).problems
    assert [p.message_index for p in found] == [3, 7]
    assert "looks like JSON but is not" in found[0].text
    plain = good()
    plain[3] = reply(content="Error: order not found")
    assert validate(traj(plain), [checks.tool_replies()]).ok


def test_grounding_reports_invented_values_with_call_and_argument() -> None:
    messages = good()
    messages[6] = call("cancel_order", id="c2", order_id="W124", reason="late")
    found = validate(traj(messages), [grounded()]).problems
    assert [p.text for p in found] == [
        "call cancel_order: order_id='W124' appears nowhere in the system prompt, earlier user "
        "messages or tool replies"
    ]
    assert found[0].message_index == 6


def test_grounding_normalises_and_accepts_schema_offers() -> None:
    messages = [
        Message(
            role="user", content="Order w123: cancel the 1,000 units, by E-MAIL, on 2 December."
        ),
        call(
            "cancel_order",
            order_id="W123",
            reason="damaged",
            quantity=1000,
            notify="sms",
            when="2026-12-02",
        ),
        reply(content='{"ok": true}', name="cancel_order"),
        Message(role="assistant", content="Done."),
    ]
    assert validate(traj(messages), [grounded()]).ok  # case, number format, enum, description, date
    messages[1] = call("cancel_order", order_id="W123", quantity=1001)
    assert [p.text.split(":")[1] for p in validate(traj(messages), [grounded()]).problems] == [
        " quantity=1001 appears nowhere in the system prompt, earlier user messages or tool replies"
    ]


def test_grounding_uses_earlier_tool_replies_not_later_ones() -> None:
    messages = [
        Message(role="user", content="Show my latest order."),
        call("get_order", order_id="W777"),
        reply(content='{"order_id": "W777"}'),
        Message(role="assistant", content="Here it is."),
    ]
    found = validate(traj(messages), [grounded()]).problems
    assert [p.message_index for p in found] == [1], "a value first seen in the reply is invented"


def test_values_the_user_confirmed_count_as_given() -> None:
    messages = [
        Message(role="user", content="Cancel my order."),
        Message(role="assistant", content="Is it order W555?"),
        Message(role="user", content="Yes."),
        call("cancel_order", order_id="W555"),
        reply(content="{}", name="cancel_order"),
        Message(role="assistant", content="Done."),
    ]
    assert validate(traj(messages), [grounded()]).ok
    unanswered = messages[:2] + messages[3:]
    assert not validate(traj(unanswered), [grounded()]).ok


def test_changed_ids_are_caught() -> None:
    messages = good()
    messages[6] = call("cancel_order", id="c2", order_id="W132", reason="late")
    found = validate(traj(messages), [consistent_ids()]).problems
    assert [p.rule for p in found] == ["changed_value"]
    assert "order_id='W132', but earlier tool replies returned order_id ['W123']" in found[0].text


def test_rule_validator_stage_rejects_with_first_rule_and_all_problems() -> None:
    bad = good()
    bad[2] = call("get_ordr", order_id="W999")
    result = Pipeline([RuleValidator()]).run([traj(good()), traj(bad)])
    assert len(result.outputs) == 1
    (rejection,) = result.rejections
    assert rejection.rule == "unknown_tool"
    assert len(rejection.detail["problems"]) >= 2
    assert result.stats.stages["rule_validator"].rejections_by_rule == {"unknown_tool": 1}


def test_checks_combine_and_extend_like_validators() -> None:
    class NoShouting:
        rule = "shouting"

        def __call__(self, trajectory: Trajectory):  # type: ignore[no-untyped-def]
            for i, m in enumerate(trajectory.messages):
                if m.role == "user" and m.content.isupper():
                    from gemlib import Problem

                    yield Problem(rule=self.rule, message_index=i, text="all caps")

    messages = good()
    messages[5] = Message(role="user", content="YES AND EMAIL")
    ladder = [*default_checks(grounding=False), NoShouting()]
    assert validate(traj(messages), ladder).rules() == ["shouting"]
    stage = RuleValidator(checks=ladder)
    assert stage.process(traj(messages)).rule == "shouting"  # type: ignore[union-attr]


def test_checks_in_one_validate_decode_each_tool_reply_once(monkeypatch: Any) -> None:
    """The ledger, the limits, the reply check and the ID check share their decoding;
    a check called on its own decodes for itself, with the same verdicts."""
    from gemlib.validation import _facts

    decoded: list[str] = []
    real = _facts.loads

    def counting(text: str) -> Any:
        decoded.append(text)
        return real(text)

    monkeypatch.setattr(_facts, "loads", counting)
    messages = good()
    bad = "{'order_id': 'W123'"
    messages[3] = reply(content=bad)  # not JSON: decoded again by each check that reads it
    trajectory = traj(messages)
    report = validate(trajectory)
    texts = {m.content.strip() for m in messages if m.role == "tool"} - {bad}
    assert sorted(t for t in decoded if t != bad) == sorted(texts)
    assert bad in decoded
    assert "looks like JSON but is not" in report.problems[0].text
    alone = [p for check in default_checks() for p in check(trajectory)]
    assert alone == report.problems


def test_a_report_is_the_one_validating_would_build() -> None:
    """``validate`` builds its report without revalidating when every problem is a
    ``Problem`` (a guard: passes before and after); anything else a check yields still
    goes through validation (fails with the shortcut taken unconditionally: checked)."""
    from gemlib import Problem
    from gemlib.validation.ladder import ValidationReport

    messages = good()
    messages[2] = call("get_ordr", order_id="W999")
    report = validate(traj(messages))
    rebuilt = ValidationReport(problems=report.problems)
    assert report.problems
    assert all(type(p) is Problem for p in report.problems)
    assert report == rebuilt
    assert report.model_fields_set == rebuilt.model_fields_set
    assert report.model_dump_json() == rebuilt.model_dump_json()

    class AsMapping:
        rule = "as_mapping"

        def __call__(self, trajectory: Trajectory):  # type: ignore[no-untyped-def]
            yield {"rule": self.rule, "message_index": 1, "text": "a mapping"}

    found = validate(traj(good()), [AsMapping()]).problems  # type: ignore[list-item]
    assert found == [Problem(rule="as_mapping", message_index=1, text="a mapping")]
    assert type(found[0]) is Problem


def test_the_checks_read_the_tools_and_turns_the_trajectory_holds() -> None:
    """``Facts`` copies the messages', calls' and tools' fields out of the records once
    per trajectory (967ce4f): the tools offered are ``Trajectory.offered_tools`` (own
    first, then those messages add, in order; the last of a name wins) and each turn
    holds its message's fields (a guard for that second copy of the rule)."""
    from gemlib.validation._facts import Facts

    extra = Tool.from_any({"name": "refund", "parameters": {"properties": {}}})
    again = Tool.from_any({"name": "get_order", "parameters": {"properties": {}}})
    messages = good()
    messages[1] = Message(role="user", content=messages[1].content, tools=(extra,))
    messages[5] = Message(role="user", content=messages[5].content, tools=(again,))
    trajectory = traj(messages)
    known = Facts(trajectory)
    assert [tool for _, _, tool in known.tools] == list(trajectory.offered_tools)
    assert [tool for _, _, tool in known.own_tools] == list(trajectory.tools)
    assert known.offered == {tool.name: tool for tool in trajectory.offered_tools}
    assert known.parameters["get_order"] == again.parameters
    turns = [
        (m.role, m.content, [(c.id, c.name, c.arguments) for c in m.tool_calls], m.tool_call_id)
        for m in messages
    ]
    read = [
        (role, content, [(c.id, c.name, c.arguments) for c in calls], reply_to)
        for role, content, calls, reply_to, _ in known.turns
    ]
    assert read == turns
    assert [offered for *_, offered in known.turns] == [m.tools for m in messages]
