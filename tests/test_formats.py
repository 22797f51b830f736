"""Every format round-trips what it can carry, over generated trajectories (hypothesis)."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gemlib import Document, Message, Provenance, StageRecord, Tool, ToolCall, Trajectory
from gemlib.errors import FormatError
from gemlib.formats import gem_tags, hermes, openai, read_jsonl, sharegpt, write_jsonl
from gemlib.formats._common import renumber_calls
from gemlib.formats.chat import from_chat

JSONL_FORMATS = ("openai", "sharegpt", "hermes", "gem")
"""gemlib's own formats that write and read one JSONL record per trajectory."""

TEXT = st.text(
    alphabet=string.ascii_letters + string.digits + " .,:;!?'\"()-_/éü\n\t",
    min_size=1,
    max_size=40,
).filter(str.strip)
"""Text as real data has it: leading and trailing spaces, tabs and newlines are kept
(tau2's tool replies end with a newline), so round trips must keep them."""
THOUGHT = st.one_of(st.just(""), TEXT)
"""An assistant turn's reasoning, when it has one."""
NAME = st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True)
VALUE = st.one_of(st.integers(-1000, 1000), st.booleans(), TEXT, st.lists(TEXT, max_size=3))


@st.composite
def trajectories(draw: st.DrawFn) -> Trajectory:
    names = draw(st.lists(NAME, min_size=1, max_size=4, unique=True))
    tools = tuple(
        Tool.from_any(
            {
                "name": n,
                "description": draw(TEXT),
                "parameters": {
                    "type": "object",
                    "properties": {"x": {"type": "string"}, "n": {"type": "integer"}},
                },
                "outputSchema": {"type": "object"},
            }
        )
        for n in names
    )
    messages: list[Message] = []
    if draw(st.booleans()):
        messages.append(Message(role="system", content=draw(TEXT)))
    count = 0
    callable_names = list(names)
    for turn in range(draw(st.integers(1, 3))):
        offered: tuple[Tool, ...] = ()
        if turn and draw(st.booleans()):  # a tool offered mid-conversation (BFCL's miss_func)
            offered = (Tool(name=f"added_{turn}", description=draw(TEXT)),)
            callable_names.append(offered[0].name)
        messages.append(Message(role="user", content=draw(TEXT), tools=offered))
        for _ in range(draw(st.integers(0, 2))):
            calls = []
            for _ in range(draw(st.integers(1, 2))):
                arguments = draw(st.dictionaries(NAME, VALUE, max_size=3))
                name = draw(st.sampled_from(callable_names))
                calls.append(ToolCall(id=f"c{count}", name=name, arguments=arguments))
                count += 1
            text = draw(st.one_of(st.just(""), TEXT))
            messages.append(
                Message(
                    role="assistant", content=text, tool_calls=tuple(calls), reasoning=draw(THOUGHT)
                )
            )
            for call in calls:
                reply = draw(
                    st.one_of(
                        TEXT,
                        st.dictionaries(NAME, VALUE, max_size=2).map(
                            lambda d: json.dumps(d, ensure_ascii=False)
                        ),
                    )
                )
                messages.append(
                    Message(role="tool", content=reply, tool_call_id=call.id, name=call.name)
                )
        messages.append(Message(role="assistant", content=draw(TEXT), reasoning=draw(THOUGHT)))
    return Trajectory(
        tools=tools,
        messages=tuple(messages),
        labels={"domains": ["shopping"]},
        provenance=Provenance(document_id="d1", stages=(StageRecord(stage="g", model="m"),)),
        document=Document(id="d1", text="source"),
    )


def _without_extras(
    t: Trajectory,
    *,
    text_with_calls: bool = True,
    output_schema: bool = True,
    message_tools: bool = True,
) -> Trajectory:
    """What a format that carries only the conversation gives back."""
    t = renumber_calls(t).model_copy(update={"labels": {}, "provenance": None, "document": None})
    if not message_tools:
        t = t.model_copy(
            update={"messages": tuple(m.model_copy(update={"tools": ()}) for m in t.messages)}
        )
    if not output_schema:
        t = t.model_copy(
            update={"tools": tuple(x.model_copy(update={"output_schema": None}) for x in t.tools)}
        )
    if not text_with_calls:
        t = t.model_copy(
            update={
                "messages": tuple(
                    m.model_copy(update={"content": ""}) if m.tool_calls else m for m in t.messages
                )
            }
        )
    return t


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(trajectories())
def test_openai_carries_everything(t: Trajectory) -> None:
    assert openai.load(json.loads(json.dumps(openai.dump(t)))) == t


@SETTINGS
@given(trajectories())
def test_sharegpt_round_trip(t: Trajectory) -> None:
    record = json.loads(json.dumps(sharegpt.dump(t)))
    assert sharegpt.load(record) == _without_extras(t, text_with_calls=False, output_schema=False)
    roles = [turn["from"] for turn in record["conversations"]]
    for i, role in enumerate(roles):  # LLaMA-Factory's alternation
        expected = ("human", "observation") if i % 2 == 0 else ("gpt", "function_call")
        assert role in expected


@SETTINGS
@given(trajectories())
def test_hermes_round_trip(t: Trajectory) -> None:
    expected = _without_extras(t, output_schema=False, message_tools=False)
    assert hermes.load(hermes.dump(t)) == expected


@SETTINGS
@given(trajectories())
def test_gem_tags_round_trip(t: Trajectory) -> None:
    assert gem_tags.load(gem_tags.dump(t)) == _without_extras(t, message_tools=False)


def test_files_round_trip_and_bad_lines_are_named(tmp_path: Path) -> None:
    from test_model import OPENAI_RECORD

    example = from_chat(OPENAI_RECORD)
    for name in JSONL_FORMATS:
        path = tmp_path / f"{name}.jsonl"
        assert write_jsonl([example, example], path, name) == 2
        assert len(list(read_jsonl(path, name))) == 2
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(openai.dump(example)) + "\n{not json\n")
    with pytest.raises(FormatError, match=r"broken.jsonl line 2"):
        list(read_jsonl(path))
    with pytest.raises(FormatError, match="unknown format 'csv'"):
        write_jsonl([], tmp_path / "x", "csv")


def test_sharegpt_dataset_info_entry() -> None:
    entry = sharegpt.dataset_info("gem_tools", "gem.jsonl")
    assert entry["gem_tools"]["formatting"] == "sharegpt"
    assert entry["gem_tools"]["tags"]["function_tag"] == "function_call"
    assert entry["gem_tools"]["columns"]["tools"] == "tools"


def test_hermes_sample_layout() -> None:
    tool = Tool.from_any(
        {"name": "cancel", "parameters": {"properties": {"order_id": {"type": "string"}}}}
    )
    t = Trajectory(
        tools=(tool,),
        messages=(
            Message(role="system", content="Be brief."),
            Message(role="user", content="Cancel W1"),
            Message(
                role="assistant",
                tool_calls=(ToolCall(id="c", name="cancel", arguments={"order_id": "W1"}),),
            ),
            Message(role="tool", content='{"ok": true}', tool_call_id="c", name="cancel"),
            Message(role="assistant", content="Done."),
        ),
    )
    text = hermes.dump(t)["text"]
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n\n")
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "cancel", "arguments": {"order_id": "W1"}}'
        "\n</tool_call><|im_end|>\n"
    ) in text
    assert '<|im_start|>user\n<tool_response>\n{"ok": true}\n</tool_response><|im_end|>\n' in text
    assert text.endswith("<|im_start|>assistant\nDone.<|im_end|>\n")


def test_importers_name_the_problem() -> None:
    with pytest.raises(FormatError, match="unknown speaker 'robot'"):
        sharegpt.load({"conversations": [{"from": "robot", "value": "x"}]})
    with pytest.raises(FormatError, match="not a ChatML turn"):
        hermes.load({"text": "hello"})
    with pytest.raises(FormatError, match="metadata is not valid JSON"):
        openai.load({"messages": [], "metadata": "{oops"})


def _offering() -> Trajectory:
    sort = Tool.from_any({"name": "sort", "parameters": {"properties": {"f": {"type": "string"}}}})
    call = ToolCall(id="c1", name="sort", arguments={"f": "a.txt"})
    return Trajectory(
        tools=(Tool(name="ls"),),
        messages=(
            Message(role="user", content="Sort a.txt"),
            Message(role="assistant", content="I have no function to sort files."),
            Message(role="user", content="Here is sort. What about now?", tools=(sort,)),
            Message(role="assistant", tool_calls=(call,)),
            Message(role="tool", content="done", tool_call_id="c1", name="sort"),
            Message(role="assistant", content="Sorted."),
        ),
    )


def test_tools_a_message_offers_survive_the_openai_round_trip_and_pass_the_checks() -> None:
    from gemlib import validate

    trajectory = _offering()
    assert [t.name for t in trajectory.offered_tools] == ["ls", "sort"]
    assert validate(trajectory).ok
    record = openai.dump(trajectory)
    assert [t["function"]["name"] for t in record["tools"]] == ["ls"]
    assert openai.load(json.loads(json.dumps(record))) == trajectory
    shared = sharegpt.load(json.loads(json.dumps(sharegpt.dump(trajectory))))
    assert [m.tools for m in shared.messages] == [m.tools for m in trajectory.messages]
    assert validate(shared).ok
    early = trajectory.model_copy(
        update={"messages": (trajectory.messages[0], *trajectory.messages[3:])}
    )
    problems = validate(early).problems
    assert [p.rule for p in problems] == ["unknown_tool"]
    with pytest.raises(ValueError, match="only user or system messages offer tools"):
        Message(role="assistant", tools=(Tool(name="ls"),))


@pytest.mark.parametrize(
    "message_tools",
    [
        ["sort"],
        {"9": []},
        {"x": []},
        {"²": []},
        {"9" * 5000: []},
        {"2": "sort"},
        {"2": [{"name": ""}]},
        {"1": [{"name": "ls"}]},
    ],
)
def test_bad_message_tools_in_openai_metadata_are_format_errors(message_tools: object) -> None:
    record = openai.dump(_offering())
    metadata = json.loads(record["metadata"])
    metadata["message_tools"] = message_tools
    record["metadata"] = json.dumps(metadata)
    with pytest.raises(FormatError, match="message_tools"):
        openai.load(record)


def test_tau2_retail_round_trips_exactly_through_the_tag_format() -> None:
    import itertools

    from conftest import third_party

    third_party("tau2")
    from gemlib.formats.tau2 import read_tau2_tasks

    trajectories = list(itertools.islice(read_tau2_tasks("retail"), 12))
    endings = sum(m.content.endswith("\n") for t in trajectories for m in t.messages)
    assert endings, "tau2 retail's tool replies end with a newline"
    for t in trajectories:
        assert gem_tags.load(gem_tags.dump(t)) == _without_extras(t)
