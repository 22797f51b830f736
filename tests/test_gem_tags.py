"""The GEM tag format: forgiving about noise, strict about structure, precise errors."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from gemlib.errors import ParseError
from gemlib.formats.gem_tags import (
    graph_tool_names,
    loads_lenient,
    parse_conversation,
    parse_refined,
    parse_relevance,
    parse_workflows,
    render_conversation,
    render_toolsets,
)

CONVERSATION = """<system>Rules.</system>
<user>Find order W1.</user>
<assistant>Checking. <func>{"name": "get_order", "arguments": {"order_id": "W1"}}</func></assistant>
<tool>{"status": "pending"}</tool>
<assistant>It is pending.</assistant>"""


def test_noise_around_and_between_turns_is_ignored() -> None:
    noisy = (
        "Sure, here you go:\n```xml\n"
        + CONVERSATION.replace("\n", "\n\n  ")
        + "\n```\nHope it helps!"
    )
    assert parse_conversation(noisy) == parse_conversation(CONVERSATION)


def test_calls_get_ids_and_replies_link_to_them() -> None:
    messages = parse_conversation(CONVERSATION, lambda n: f"id-{n}")
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert messages[2].content == "Checking."
    assert messages[2].tool_calls[0].id == "id-0"
    assert messages[3].tool_call_id == "id-0"
    assert messages[3].name == "get_order"


def test_a_reply_to_no_call_is_left_unlinked_for_the_validators() -> None:
    messages = parse_conversation("<user>hi</user><tool>{}</tool>")
    assert messages[1].tool_call_id is None


def test_render_then_parse_is_the_identity() -> None:
    messages = parse_conversation(CONVERSATION)
    assert parse_conversation(render_conversation(messages)) == messages


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1, "b": [1, 2,],}', {"a": 1, "b": [1, 2]}),
        ("{'a': 'x', 'ok': true, 'none': null}", {"a": "x", "ok": True, "none": None}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('{"text": "commas, inside ,] strings",}', {"text": "commas, inside ,] strings"}),
        ('[{"a": "x",\n },\t]', [{"a": "x"}]),  # each comma where the decoder stops
        ("[" + "[1, {}, ]," * 40 + "]", [[1, {}]] * 40),  # more than it removes one by one
        ("{'a': [1,], 'b': 'c',}", {"a": [1], "b": "c"}),  # then Python's quoting
    ],
)
def test_json_repairs_that_are_safe(text: str, expected: object) -> None:
    assert loads_lenient(text, "x") == expected


def test_json_that_cannot_be_repaired_names_the_place() -> None:
    with pytest.raises(ParseError, match=r"<func> at here: not valid JSON \(.* at line 1, column"):
        loads_lenient('{"name": oops}', "<func> at here")
    with pytest.raises(ParseError):
        loads_lenient("__import__('os').system('true')", "x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "<user>hi</user>\n<assistant>never closed",
            "<assistant> opened at line 2, column 1 is never closed",
        ),
        ("<user>hi\n<assistant>x</assistant>", "<user> opened at line 1, column 1 is never closed"),
        (
            "<user>hi</user>\n<observation>x</observation>",
            "unexpected <observation> at line 2, column 1",
        ),
        ("<user>hi</user>\n</assistant>", "unexpected </assistant> at line 2, column 1"),
        (
            '<user>hi</user>\n<assistant><func>{"name": "f", "arguments": {"a": }}</func>'
            "</assistant>",
            "<func> at line 2, column 18: not valid JSON",
        ),
        ('<user>hi</user><assistant><func>{"name": "f"}</assistant>', "<func> opened at"),
        (
            '<user>hi</user><assistant><func>{"arguments": {}}</func></assistant>',
            'needs a JSON object with a "name"',
        ),
        (
            '<user>hi</user><assistant><func>{"name": "f", "arguments": [1]}</func></assistant>',
            '"arguments" must be a JSON object',
        ),
        ("just prose, no tags", "the reply has no conversation"),
    ],
)
def test_structural_errors_say_which_tag_and_where(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_conversation(text)
    assert message in str(info.value)


def test_relevance_reply() -> None:
    reply = parse_relevance("noise <multi_step> yes </multi_step><summary>S</summary>")
    assert reply == {"multi_step": True, "summary": "S", "domain": "", "platform": "", "task": ""}
    with pytest.raises(ParseError, match="must be True or False, got 'maybe'"):
        parse_relevance("<multi_step>maybe</multi_step>")
    with pytest.raises(ParseError, match="no <multi_step> tag"):
        parse_relevance("<summary>S</summary>")


def test_workflow_blocks() -> None:
    (workflow,) = parse_workflows(
        "<workflow><description>D</description><steps>Step1: a\nStep 2) b\n3. c</steps>"
        "<execution_graph>(x)->(y, z)</execution_graph><actions>[{'name': 'x'}]</actions>"
        '<tools>[{"name": "x"},]</tools></workflow>'
    )
    assert workflow.steps == ("a", "b", "c")
    assert workflow.actions == ({"name": "x"},)
    assert workflow.tools == ({"name": "x"},)
    with pytest.raises(ParseError, match="no <workflow> block"):
        parse_workflows("nothing")
    with pytest.raises(
        ParseError, match=r"<workflow> 1 \(at line 1, column 11\) <tools>: not valid JSON"
    ):
        parse_workflows("<workflow><description>D</description><tools>[oops</tools></workflow>")


def test_graph_tool_names() -> None:
    assert graph_tool_names("(login)->(search_items, get_cart)->(checkout)") == [
        "login",
        "search_items",
        "get_cart",
        "checkout",
    ]
    assert graph_tool_names("login -> checkout") == ["login", "checkout"]


def test_refined_reply_with_toolsets() -> None:
    from gemlib import Tool

    tools = [
        Tool.from_any(
            {"name": "get_order", "parameters": {"properties": {"order_id": {"type": "str"}}}}
        )
    ]
    text = render_toolsets(tools) + "\n" + CONVERSATION
    parsed_tools, messages = parse_refined(text)
    assert parsed_tools == tools
    assert len(messages) == 5
    with pytest.raises(ParseError, match="<toolsets> tool 0: tool 'bad name'"):
        parse_refined('<toolsets>[{"name": "bad name"}]</toolsets>' + CONVERSATION)
    with pytest.raises(ParseError, match="no <toolsets> block"):
        parse_refined(CONVERSATION)


def test_other_replies_accept_case_and_attributes_and_errors_name_reply_lines() -> None:
    reply = parse_relevance('<Multi_Step type="bool">True</MULTI_STEP>\n<summary>S</summary>')
    assert reply["multi_step"] is True
    with pytest.raises(ParseError) as info:
        parse_relevance("Thinking aloud.\n<multi_step>\nmaybe</multi_step>")
    assert "<multi_step> at line 2, column 13 must be True or False, got 'maybe'" in str(info.value)
    broken = (
        "Here it is.\n<workflow>\n<description>D</description>\n"
        '<tools>[{"name": "x", "parameters": {"type": "object",}}\n{"name": "y"}]</tools>\n'
        "</workflow>"
    )
    with pytest.raises(ParseError) as info:
        parse_workflows(broken)
    message = str(info.value)
    assert "<workflow> 1 (at line 2, column 11) <tools>: not valid JSON" in message
    assert 'at line 5, column 1): "{\\"name\\": \\"y\\"}]</tools>"' in message
    with pytest.raises(ParseError, match=r"<toolsets> opened at line 2, column 1 is never closed"):
        parse_refined("Sure.\n<toolsets>[]\n<user>hi</user>")


@pytest.mark.parametrize(
    "inside",
    [
        '{"name": "x", "arguments": {"a": "' + '\\"' * 20_000 + "}}",  # a string never closed
        "[" + '"a",' * 20_000 + '"' + '\\"' * 20_000 + ",]",  # and commas to repair before it
    ],
)
def test_hostile_json_in_a_call_is_refused_in_linear_time(inside: str) -> None:
    # An unclosed string of escaped quotes took minutes: Python's tokenize (the
    # Python-literal repair) and the trailing-comma repair both looked for a
    # string again at every quote after it.
    started = time.perf_counter()
    with pytest.raises(ParseError, match="not valid JSON"):
        parse_conversation(f"<user>hi</user><assistant><func>{inside}</func></assistant>")
    assert time.perf_counter() - started < 5


def test_many_workflows_are_placed_in_the_reply_only_for_an_error() -> None:
    # Each <workflow> block counted the lines before it for an error message it might
    # never need: quadratic (6,000 workflows in 1.5 MB: 4 s; now 0.3 s).
    started = time.process_time()
    workflow = (
        f"<workflow><description>{'d' * 170}</description>"
        '<tools>[{"name": "f"}]</tools></workflow>\n'
    )
    assert len(parse_workflows(workflow * 6_000)) == 6_000
    assert time.process_time() - started < 2


def test_many_repaired_calls_are_placed_in_the_reply_only_for_an_error() -> None:
    # So did each call whose JSON needed a repair (5,000 calls in 1.7 MB: 4 s; now 0.4 s).
    started = time.process_time()
    turn = f'<assistant><func>{{"name": "f",}}</func></assistant><tool>{"x" * 270}</tool>\n'
    assert len(parse_conversation("<user>hi</user>" + turn * 5_000)) == 10_001
    assert time.process_time() - started < 2


@pytest.mark.parametrize(
    ("reply", "turns"),
    [
        ("<user>hi</user><tool>" + "<a" * 300_000 + "</tool>", 2),  # no tag, many "<"
        ("<user>hi</user><assistant>" + "<user " * 200_000 + "</assistant>", 2),  # nor here
        ("<system>s</system>" + "<tool><user>x</user></tool>" * 5_000, 5_001),  # markup
        ("<user>hi</user><assistant>" + "<func>" * 200_000 + "</assistant>", None),
        ("<user>hi</user><assistant><func>{}" + " " * 1_000_000 + "</assistant>", None),
        ("<user>hi</user><assistant>" + " " * 500_000 + "<func>{}</func>" + " " * 500_000, None),
        ("<user>hi</user>" + '<assistant> <FUNC>{"name": "f"}</func ></assistant>' * 9_000, 9_001),
    ],
)
def test_hostile_turns_are_read_in_linear_time(reply: str, turns: int | None) -> None:
    # A turn is first tried as one match with no role tag inside, an assistant turn as
    # one call alone; each "<" is looked at once, whether that match holds or not.
    started = time.perf_counter()
    if turns is None:
        with pytest.raises(ParseError, match="is never closed"):
            parse_conversation(reply)
    else:
        assert len(parse_conversation(reply)) == turns
    assert time.perf_counter() - started < 5


WORKFLOW_TAGS = (
    '<actions>[{"name": "f"}]</actions><tools>[{"name": "f"}]</tools>'
    "<description>D</description><steps>1. go</steps><execution_graph>(f)</execution_graph>"
)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        # each tag is read in order, and the first fault met is the one named
        (WORKFLOW_TAGS.replace("</tools>", "").replace("</steps>", ""), "<tools> opened at"),
        (
            WORKFLOW_TAGS.replace('"f"}]</tools>', '"f"}</tools>').replace("</steps>", ""),
            "<tools>:",
        ),
        (WORKFLOW_TAGS.replace("</description>", "<description>"), "<description> opened at"),
        (
            WORKFLOW_TAGS.replace("<steps>1. go</steps>", "<steps>a</steps><steps>b"),
            "<steps> opened",
        ),
        (WORKFLOW_TAGS.replace("<description>D</description>", ""), "no <description> tag"),
        (WORKFLOW_TAGS.replace("</actions>", "</actions x>"), "<actions> opened at"),
        (WORKFLOW_TAGS.replace("<tools>", "<TOOLS/>"), "no <tools> tag"),
        (WORKFLOW_TAGS.replace("steps>", "\u017ftep\u017f >"), None),  # long s: any case
        (WORKFLOW_TAGS.replace("<description>", "<Description lang=en>"), None),
    ],
)
def test_workflow_tags_are_read_in_order_with_their_own_errors(
    reply: str, error: str | None
) -> None:
    if error is None:
        (workflow,) = parse_workflows(f"<workflow>{reply}</workflow>")
        assert (workflow.description, workflow.steps) == ("D", ("go",))
        return
    with pytest.raises(ParseError, match=re.escape(error)):
        parse_workflows(f"<workflow>{reply}</workflow>")


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("<multi_step>True</multi_step><summary>a</summary><summary>b", "<summary> opened"),
        ("<multi_step>True<summary>a</summary>", "<multi_step> opened"),
        ("<summary>a</summary>", "no <multi_step> tag"),
        ("<MULTI_STEP >yes</multi_step ><TASK x>t</Task>\n<domain>d</domain>", None),
    ],
)
def test_relevance_tags_have_their_own_errors(reply: str, error: str | None) -> None:
    if error is None:
        assert parse_relevance(reply) == {
            "multi_step": True, "summary": "", "domain": "d", "platform": "", "task": "t"
        }  # fmt: skip
        return
    with pytest.raises(ParseError, match=re.escape(error)):
        parse_relevance(reply)


def _blanked(reply: str) -> str:
    """``reply`` with everything up to ``</toolsets>`` turned to spaces, lines kept."""
    cut = reply.index("</toolsets>") + len("</toolsets>")
    return "\n".join(" " * len(line) for line in reply[:cut].split("\n")) + reply[cut:]


def _read(parse: Any, text: str) -> Any:
    try:
        return parse(text)
    except ParseError as exc:
        return str(exc)


@pytest.mark.parametrize(
    "after",
    [
        "<user>a</user><assistant>b</assistant>",
        " I will write <system> first.\n<system>S</system><user>u</user>",
        "<user>I quote <user> here\n<user>u</user><assistant>b</assistant>",
        "\n x <user>a\n<user>b</user>",
        "<user>a\n<user>b</user>",  # right after </toolsets>: at the start of a line
        "<user>never closed\n<assistant>b</assistant>",
        "<func>{}</func>",
        "",
    ],
)
def test_a_refined_conversation_is_read_as_if_the_toolsets_were_blank(after: str) -> None:
    # read from the end of <toolsets> on: what the conversation alone would give, with
    # the reply's own lines in errors (and a tag right after </toolsets> starts a line)
    reply = 'Here:\n<toolsets>[{"name": "f"}]</toolsets>' + after
    refined = _read(lambda text: parse_refined(text)[1], reply)
    assert refined == _read(parse_conversation, _blanked(reply))
