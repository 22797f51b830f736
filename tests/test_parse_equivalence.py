"""Tricky teacher replies and what the tag parser makes of them: a corpus that pins behaviour.

Each reply is a variation of one clean conversation (line endings, tag spelling, JSON
repairs, reasoning blocks, truncation, look-alike characters, hostile numbers and
nesting); each expectation is the conversation read, or the error's wording with the
place it names. The cases come from differential fuzzing of the speed work against
ffa5699: a faster parser must read every one of them the same way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from gemlib._nesting import TooDeep, loads
from gemlib.errors import ParseError
from gemlib.formats.gem_tags import (
    loads_lenient,
    parse_conversation,
    parse_refined,
    parse_workflows,
)
from gemlib.llm.reasoning import split_reasoning
from gemlib.model import Message
from teacher import EXTRACTION, REFINEMENT

CLEAN = (
    "<system>You help with orders.</system>\n"
    "<user>Where is order W1?</user>\n"
    '<assistant>Let me look. <func>{"name": "get_order", "arguments": {"order_id": "W1"}}</func>'
    "</assistant>\n"
    '<tool>{"status": "shipped"}</tool>\n'
    "<assistant>It has shipped.</assistant>"
)
ORDER = {"order_id": "W1"}
Turn = tuple[str, str, tuple[tuple[str, dict[str, Any]], ...], str]
TURNS: tuple[Turn, ...] = (
    ("system", "You help with orders.", (), ""),
    ("user", "Where is order W1?", (), ""),
    ("assistant", "Let me look.", (("get_order", ORDER),), ""),
    ("tool", '{"status": "shipped"}', (), ""),
    ("assistant", "It has shipped.", (), ""),
)


def _with(index: int, turn: Turn) -> tuple[Turn, ...]:
    return (*TURNS[:index], turn, *TURNS[index + 1 :])


def _nested(levels: int) -> list[Any]:
    """``[[...]]``: ``levels`` lists, each holding the next."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def _call(arguments: dict[str, Any], reasoning: str = "") -> tuple[Turn, ...]:
    return _with(2, ("assistant", "Let me look.", (("get_order", arguments),), reasoning))


READ: dict[str, tuple[str, tuple[Turn, ...]]] = {
    "CRLF line endings": (CLEAN.replace("\n", "\r\n"), TURNS),
    "bare CR line endings": (CLEAN.replace("\n", "\r"), TURNS),
    "no whitespace between turns": (CLEAN.replace("\n", ""), TURNS),
    "tags in any case": (
        CLEAN.replace("<assistant>", "<ASSISTANT>").replace("</assistant>", "</Assistant>"),
        TURNS,
    ),
    "attributes on role tags": (CLEAN.replace("<user>", '<user name="ana" id=7>'), TURNS),
    "space before a closing tag's bracket": (CLEAN.replace("</tool>", "</tool  >"), TURNS),
    "an HTML comment between turns": (CLEAN.replace("</user>\n", "</user><!-- c -->\n"), TURNS),
    "prose and a code fence around the conversation": (
        "Sure! Here it is:\n```xml\n" + CLEAN + "\n```\nHope this helps.",
        TURNS,
    ),
    "a leading reasoning block before the first turn": (
        "<think>plan the turns</think>\n" + CLEAN,
        TURNS,
    ),
    "trailing commas in a call": (CLEAN.replace('"W1"}}', '"W1",},}'), TURNS),
    "Python literals in a call": (
        CLEAN.replace('"W1"}}', "'W1', 'gift': True, 'note': None}}"),
        _call({**ORDER, "gift": True, "note": None}),
    ),
    "single-quoted call": (
        CLEAN.replace(
            '{"name": "get_order", "arguments": {"order_id": "W1"}}',
            str({"name": "get_order", "arguments": ORDER}),
        ),
        TURNS,
    ),
    "arguments as a JSON string": (
        CLEAN.replace(
            '"arguments": {"order_id": "W1"}', '"arguments": "{\\"order_id\\": \\"W1\\"}"'
        ),
        TURNS,
    ),
    "parameters instead of arguments": (CLEAN.replace('"arguments"', '"parameters"'), TURNS),
    "the Hermes call tag": (
        CLEAN.replace("<func>", "<tool_call>").replace("</func>", "</tool_call>"),
        TURNS,
    ),
    "the function_call tag": (
        CLEAN.replace("<func>", "<function_call>").replace("</func>", "</function_call>"),
        TURNS,
    ),
    "reasoning at the start of an assistant turn": (
        CLEAN.replace("<assistant>Let me", "<assistant><think>need the order</think>Let me"),
        _call(ORDER, "need the order"),
    ),
    "a lone surrogate in a turn is kept": (
        CLEAN.replace("Where", "Wh\ud800ere"),
        _with(1, ("user", "Wh\ud800ere is order W1?", (), "")),
    ),
    "right-to-left and zero-width characters in text are kept": (
        CLEAN.replace("It has", "It\u202e\u200b has"),
        _with(4, ("assistant", "It\u202e\u200b has shipped.", (), "")),
    ),
    "a tool reply holding HTML with role tags": (
        CLEAN.replace('{"status": "shipped"}', "<table><user>ana</user><b>shipped</b></table>"),
        _with(3, ("tool", "<table><user>ana</user><b>shipped</b></table>", (), "")),
    ),
    "a number of 4300 digits": (
        CLEAN.replace('"W1"}}', '"W1", "n": ' + "9" * 4300 + "}}"),
        _call({**ORDER, "n": int("9" * 4300)}),
    ),
    "nesting of 48 levels": (
        CLEAN.replace('"W1"}}', '"W1", "d": ' + "[" * 47 + "]" * 47 + "}}"),
        _call({**ORDER, "d": _nested(47)}),
    ),
}

REFUSED: dict[str, tuple[str, tuple[str, ...]]] = {
    "fullwidth brackets are not a tag": (
        CLEAN.replace("<user>", "\uff1cuser\uff1e"),
        ("unexpected </user> at line 2, column 25",),
    ),
    "a zero-width character inside a tag name": (
        CLEAN.replace("<user>", "<us\u200ber>"),
        ("unexpected </user> at line 2, column 26",),
    ),
    "a closing tag twice": (
        CLEAN.replace("</user>", "</user></user>"),
        ("unexpected </user>", "line 2"),
    ),
    "cut inside a call": (
        CLEAN[: CLEAN.index('"order_id"')],
        ("<assistant> opened at line 3, column 1 is never closed", "the reply ends inside it"),
    ),
    "cut inside a closing tag": (
        CLEAN[: CLEAN.index("</tool>") + 3],
        ("<tool> opened at line 4, column 1 is never closed", "the reply ends inside it"),
    ),
    "a JavaScript comment in a call": (
        CLEAN.replace('{"order_id"', '{ // c\n"order_id"'),
        ("<func> at line 3, column 31: not valid JSON", "line 3, column 68", '"// c"'),
    ),
    "an unclosed string in a call": (
        CLEAN.replace('"W1"}}', '"W1}}'),
        ("<func> at line 3, column 31: not valid JSON", "Unterminated string"),
    ),
    "a number longer than Python converts": (
        CLEAN.replace('"W1"}}', '"W1", "n": ' + "9" * 5000 + "}}"),
        ("<func> at line 3, column 31", "a number longer than 4300 digits"),
    ),
    "nesting deeper than the bound": (
        CLEAN.replace('"W1"}}', '"W1", "d": ' + "[" * 60 + "]" * 60 + "}}"),
        ("<func> at line 3, column 31", "nested more than 50 levels deep"),
    ),
    "reasoning never closed in its turn": (
        CLEAN.replace("<assistant>Let me", "<assistant><think>need the order. Let me"),
        ("<think> opened at line 3, column 12 is never closed in its turn",),
    ),
    "a call outside any turn": (
        CLEAN + '\n<func>{"name": "get_order", "arguments": {}}</func>',
        ("<func> at line 6, column 1", "outside any turn"),
    ),
    "JSON in a tag that is not a call": (
        CLEAN.replace("<func>", "<call>").replace("</func>", "</call>"),
        ("<call> at line 3, column 25", "holds a JSON object but is not a tool call"),
    ),
    "a call without a name": (
        CLEAN.replace('"name": "get_order", ', ""),
        ("<func> at line 3, column 31", 'needs a JSON object with a "name"'),
    ),
}


def _turns(messages: list[Message]) -> tuple[Turn, ...]:
    return tuple(
        (
            m.role,
            m.content,
            tuple((c.name, dict(c.arguments)) for c in m.tool_calls),
            m.reasoning,
        )
        for m in messages
    )


@pytest.mark.parametrize(("reply", "turns"), READ.values(), ids=list(READ))
def test_a_tricky_reply_is_read_as_written(reply: str, turns: tuple[Turn, ...]) -> None:
    messages = parse_conversation(reply, lambda n: f"c{n}")
    assert _turns(messages) == turns
    assert messages[3].tool_call_id == "c0"  # the reply still answers the call


@pytest.mark.parametrize(("reply", "wording"), REFUSED.values(), ids=list(REFUSED))
def test_a_broken_reply_is_refused_naming_the_place(reply: str, wording: tuple[str, ...]) -> None:
    with pytest.raises(ParseError) as info:
        parse_conversation(reply)
    for part in wording:
        assert part in str(info.value)


def test_every_truncation_is_refused_or_reads_a_prefix() -> None:
    """A reply cut anywhere (the model ran out of tokens) never reads as more, or other,
    turns than the whole: it is refused, or it reads the complete turns before the cut."""
    whole = _turns(parse_conversation(CLEAN))
    prefixes = 0
    for cut in range(len(CLEAN)):
        try:
            read = _turns(parse_conversation(CLEAN[:cut]))
        except ParseError:
            continue
        assert read == whole[: len(read)], f"cut at {cut}: {CLEAN[:cut][-30:]!r}"
        assert len(read) < len(whole)
        prefixes += 1
    assert prefixes > 0  # cuts after a complete turn read the turns before it


def test_line_endings_do_not_move_error_places() -> None:
    """The line and column an error names are the same with LF and CRLF endings."""
    broken = CLEAN.replace('"W1"}}', '"W1}}')
    for text in (broken, broken.replace("\n", "\r\n")):
        with pytest.raises(ParseError, match=r"<func> at line 3, column 31"):
            parse_conversation(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": [1, 2,],}', {"a": [1, 2]}),
        ('{"a": ",}", "b": [",]",],}', {"a": ",}", "b": [",]"]}),
        ('{"a": "x\\"",}', {"a": 'x"'}),
        ("[1, 2, 3,\n]", [1, 2, 3]),
        ('[\n  {"a": 1,\r\n  },\r\n]', [{"a": 1}]),
        ("{'a': [1, 2], 'b': None, 'c': true}", {"a": [1, 2], "b": None, "c": True}),
        ('```json\n{"a": 1,}\n```', {"a": 1}),
        ("\ufeff", None),
    ],
)
def test_lenient_json_repairs(text: str, expected: object) -> None:
    if expected is None:
        with pytest.raises(ParseError):
            loads_lenient(text, "x")
    else:
        assert loads_lenient(text, "x") == expected


@pytest.mark.parametrize(
    "text",
    ["{'a': __import__('os')}", "{'a': 1 + 2}", '{"a": 1} trailing', "{a: 1}", "[1, 2, 3"],
)
def test_lenient_json_refuses_what_is_not_data(text: str) -> None:
    with pytest.raises(ParseError, match="not valid JSON"):
        loads_lenient(text, "where")


@pytest.mark.parametrize(
    ("text", "reasoning", "answer"),
    [
        ("<think>a</think>\nb", "a", "b"),
        ("<THINK>a</THINK>b", "a", "b"),
        ("<thinking>a</thinking>\n<reasoning>c</reasoning>\nb", "a\n\nc", "b"),
        ("<think>never closed", "never closed", ""),
        ("plan\n</think>\nanswer", "plan", "answer"),
        ("text with </think> inside a line", "", "text with </think> inside a line"),
        ("no reasoning at all", "", "no reasoning at all"),
    ],
)
def test_split_reasoning(text: str, reasoning: str, answer: str) -> None:
    thought, rest = split_reasoning(text)
    assert (thought.strip(), rest.strip()) == (reasoning, answer)


def test_toolsets_then_a_conversation_with_crlf() -> None:
    tool = '{"name": "get_order", "description": "d", "inputSchema": {"type": "object"}}'
    reply = f"<toolsets>[{tool},]</toolsets>\r\n" + CLEAN.replace("\n", "\r\n")
    tools, messages = parse_refined(reply)
    assert [t.name for t in tools] == ["get_order"]
    assert _turns(messages) == TURNS


def test_every_truncation_of_an_extraction_reply_reads_only_whole_workflows() -> None:
    """An extraction reply cut anywhere is refused, or reads the workflows closed before
    the cut, as the whole reply reads them."""
    reply = EXTRACTION["Teamdesk"]  # two workflows
    whole = parse_workflows(reply)
    assert len(whole) == 2
    read_some = 0
    for cut in range(len(reply)):
        try:
            read = parse_workflows(reply[:cut])
        except ParseError:
            continue
        assert 0 < len(read) < len(whole), f"cut at {cut}"
        assert read == whole[: len(read)], f"cut at {cut}"
        read_some += 1
    assert read_some > 0  # cuts after the first workflow read it


def test_every_truncation_of_a_refinement_reply_keeps_its_tools_or_is_refused() -> None:
    reply = REFINEMENT["Northwind"]
    tools, messages = parse_refined(reply)
    whole = _turns(messages)
    for cut in range(0, len(reply), 3):
        try:
            cut_tools, cut_messages = parse_refined(reply[:cut])
        except ParseError:
            continue
        read = _turns(cut_messages)
        assert cut_tools == tools, f"cut at {cut}"
        assert len(read) < len(whole), f"cut at {cut}"
        assert read == whole[: len(read)], f"cut at {cut}"


def test_no_proper_prefix_of_a_json_list_is_read_as_json() -> None:
    """The lenient reader's repairs (trailing commas, Python literals) never complete a
    list the model did not finish."""
    text = EXTRACTION["Northwind"].split("<tools>")[1].split("</tools>")[0].strip()
    assert isinstance(loads_lenient(text, "tools"), list)
    for cut in range(1, len(text)):
        with pytest.raises(ParseError):
            loads_lenient(text[:cut], "tools")


@pytest.mark.parametrize(
    "text",
    [
        "[1, x]",
        '{"a": }',
        "[",
        "[1,]",
        '{"a": [1, {"b": ]}',
        "{x",
        "[1] 2",
        '{"a": 1}}',
        "[1e400]",
        "{}",
        # what pydantic's reader is given first: every value as json's, types and all
        '["\\ud800", "\\ud83d\\ude00", "\\u0000\\b\\f\\/", "\u00e9\U0001f600"]',
        '{"a": 1, "b": 2, "a": [3]}',
        "[-0, -0.0, 0.1, 1E5, 1.0e+2, 1e-400, -1e400, 5e-324, 1.7976931348623159e308]",
        "[NaN, Infinity, -Infinity, true, false, null, 9007199254740993]",
        "[" + "9" * 4300 + "]",
        "[" + "9" * 4301 + "]",
        "[0." + "1" * 5000 + "]",
        '["a\tb"]',
        "[1]\x0c",
        "[1]\u00a0",
        "[01]",
        "[" * 300 + "]" * 300,
        # a lone surrogate in the text itself (a reply's "\\ud800" decoded by the transport)
        '["\ud800", "a\udfffb"]',
        '{"\ud800": 1}',
        "[\ud800]",
        '{"a": 1\ud800}',
    ],
)
def test_json_read_as_json_loads_reads_it(text: str) -> None:
    # the scanner is called directly on a text opening with a bracket: a value missing
    # inside it (StopIteration from the scanner) is json.loads's error, word for word
    try:
        expected: Any = _typed(json.loads(text))
    except json.JSONDecodeError as exc:
        expected = (exc.msg, exc.pos)
    except ValueError as exc:  # an integer longer than Python converts
        expected = type(exc)
    try:
        got: Any = _typed(loads(text))
    except json.JSONDecodeError as exc:
        got = ValueError if "digits" in exc.msg else (exc.msg, exc.pos)
    except TooDeep:
        got = _typed(_nested(300))  # json reads it; it is refused only for its depth
    assert got == expected


def _typed(value: Any) -> Any:
    """``value`` with each part's type beside it (``1 == 1.0 == True``; NaN is not NaN)."""
    if isinstance(value, dict):
        return ["dict", [(_typed(k), _typed(v)) for k, v in value.items()]]
    if isinstance(value, list):
        return ["list", [_typed(v) for v in value]]
    return [type(value).__name__, repr(value)]


def test_json_with_a_lower_integer_limit_is_refused_as_json_refuses_it() -> None:
    # pydantic's reader converts integers up to 4300 digits whatever Python's limit
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        with pytest.raises(json.JSONDecodeError, match="longer than 640 digits"):
            loads("[" + "9" * 1000 + "]")
        assert loads("[" + "9" * 640 + "]") == [int("9" * 640)]
    finally:
        sys.set_int_max_str_digits(limit)


def test_json_is_read_on_a_python_without_an_integer_limit() -> None:
    # Python 3.10 before 3.10.7 has no sys.get_int_max_str_digits
    code = (
        "import sys; del sys.get_int_max_str_digits; from gemlib._nesting import loads; "
        "print(loads('[1, {\"a\": 2.5}]'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "[1, {'a': 2.5}]\n"), done.stderr


def test_the_shortest_json_too_deep_is_still_refused() -> None:
    # short texts skip the bracket count: 51 levels take at least 102 characters
    assert loads("[" * 50 + "]" * 50) == _nested(50)
    with pytest.raises(TooDeep):
        loads("[" * 51 + "]" * 51)
    with pytest.raises(TooDeep):
        loads(b"[" * 51 + b"]" * 51)
