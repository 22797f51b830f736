"""Teacher replies in the styles real models write, each with its expected parse or error.

A reply goes through what every stage's reply goes through: the LLM layer's
reasoning separation, then the GEM tag parser. ``turns`` is the expected
conversation as ``(role, content, calls)`` with calls as ``(name, arguments)``;
``error`` holds substrings the parse error must contain (tag, line and column
of the real problem, and the text quoted from there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Turn = tuple[str, str, tuple[tuple[str, dict[str, Any]], ...]]

ORDER = {"order_id": "W1"}
CLEAN: tuple[Turn, ...] = (
    ("system", "You help with orders.", ()),
    ("user", "Where is order W1?", ()),
    ("assistant", "Let me look.", (("get_order", ORDER),)),
    ("tool", '{"status": "shipped"}', ()),
    ("assistant", "It has shipped.", ()),
)


@dataclass(frozen=True)
class Case:
    name: str
    reply: str
    turns: tuple[Turn, ...] = ()
    error: tuple[str, ...] = ()
    reasoning: str = ""
    """A substring of the reasoning the LLM layer must have separated."""
    turn_reasoning: tuple[str, ...] = field(default=())
    """The reasoning kept on each assistant turn (the ``<think>`` option)."""


def _conversation(
    call: str = '<func>{"name": "get_order", "arguments": {"order_id": "W1"}}</func>',
) -> str:
    return (
        "<system>You help with orders.</system>\n"
        "<user>Where is order W1?</user>\n"
        f"<assistant>Let me look. {call}</assistant>\n"
        '<tool>{"status": "shipped"}</tool>\n'
        "<assistant>It has shipped.</assistant>"
    )


CASES = [
    Case("clean", _conversation(), CLEAN),
    Case(
        "think block mentioning the format's tags",
        "<think>\nI need a <system> turn, then the <user> asks, the <assistant> calls "
        "<func>get_order</func> and a <tool> answers. Is <user> closed? </user> yes.\n</think>\n\n"
        + _conversation(),
        CLEAN,
        reasoning="<system> turn",
    ),
    Case(
        "qwen3 without a reasoning parser: the opening <think> was in the template",
        "Okay, the user wants a conversation. Start with <system>, then <user>...\n</think>\n\n"
        + _conversation(),
        CLEAN,
        reasoning="Start with <system>",
    ),
    Case(
        "thinking block in mixed case",
        "<Thinking>plan: <assistant> calls get_order</Thinking>" + _conversation(),
        CLEAN,
        reasoning="plan",
    ),
    Case(
        "code fence and prose around the answer",
        "Sure! Here is the conversation:\n\n```xml\n"
        + _conversation()
        + "\n```\n\nLet me know if you want changes.",
        CLEAN,
    ),
    Case(
        "a preamble that mentions a role tag",
        "I will open with <system> as asked.\n\n" + _conversation(),
        CLEAN,
    ),
    Case(
        "role tags with attributes",
        _conversation()
        .replace("<assistant>", '<assistant name="agent">')
        .replace("<tool>", '<tool name="get_order">'),
        CLEAN,
    ),
    Case(
        "role and call tags in mixed case",
        _conversation()
        .replace("<user>", "<User>")
        .replace("</user>", "</USER>")
        .replace("<func>", "<Func>")
        .replace("</func>", "</FUNC>"),
        CLEAN,
    ),
    Case(
        "hermes-style <tool_call>",
        _conversation(
            '<tool_call>\n{"name": "get_order", "arguments": {"order_id": "W1"}}\n</tool_call>'
        ),
        CLEAN,
    ),
    Case(
        "<function_call>",
        _conversation(
            '<function_call>{"name": "get_order", "arguments": {"order_id": "W1"}}</function_call>'
        ),
        CLEAN,
    ),
    Case(
        "single-quoted JSON",
        _conversation("<func>{'name': 'get_order', 'arguments': {'order_id': 'W1'}}</func>"),
        CLEAN,
    ),
    Case(
        "python literals and a trailing comma",
        _conversation(
            "<func>{'name': 'get_order', 'arguments': {'order_id': 'W1', 'notify': True, "
            "'note': None,},}</func>"
        ),
        tuple(
            (r, c, (("get_order", {"order_id": "W1", "notify": True, "note": None}),) if k else k)
            for r, c, k in CLEAN
        ),
    ),
    Case(
        "arguments as a JSON string, as the OpenAI API sends them",
        _conversation(
            '<func>{"name": "get_order", "arguments": "{\\"order_id\\": \\"W1\\"}"}</func>'
        ),
        CLEAN,
    ),
    Case(
        "parameters instead of arguments, fenced inside the call",
        _conversation(
            '<func>\n```json\n{"name": "get_order", "parameters": {"order_id": "W1"}}\n```\n</func>'
        ),
        CLEAN,
    ),
    Case(
        "HTML holding <user> in a tool reply",
        "<user>Show my profile page.</user>\n"
        '<assistant><func>{"name": "fetch_page", "arguments": {"path": "/me"}}</func></assistant>\n'
        '<tool><html><body><user id="7"><name>Ana</name></user>'
        "<p>Type <user> to mention someone</p></body></html></tool>\n"
        "<assistant>Your profile shows the name Ana.</assistant>",
        (
            ("user", "Show my profile page.", ()),
            ("assistant", "", (("fetch_page", {"path": "/me"}),)),
            (
                "tool",
                '<html><body><user id="7"><name>Ana</name></user>'
                "<p>Type <user> to mention someone</p></body></html>",
                (),
            ),
            ("assistant", "Your profile shows the name Ana.", ()),
        ),
    ),
    Case(
        "XML with nested <tool> elements in a tool reply",
        "<user>Which tools are in the kit?</user>\n"
        '<assistant><func>{"name": "kit", "arguments": {}}</func></assistant>\n'
        "<tool><kit><tool>hammer</tool><tool>saw</tool></kit></tool>\n"
        "<assistant>A hammer and a saw.</assistant>",
        (
            ("user", "Which tools are in the kit?", ()),
            ("assistant", "", (("kit", {}),)),
            ("tool", "<kit><tool>hammer</tool><tool>saw</tool></kit>", ()),
            ("assistant", "A hammer and a saw.", ()),
        ),
    ),
    Case(
        "a user quoting a tag",
        "<user>Why does my template print <user> literally?</user>\n"
        "<assistant>Escape it as &lt;user&gt;.</assistant>",
        (
            ("user", "Why does my template print <user> literally?", ()),
            ("assistant", "Escape it as &lt;user&gt;.", ()),
        ),
    ),
    Case(
        "per-turn reasoning (the <think> option)",
        "<user>Where is order W1?</user>\n"
        "<assistant><think>I need the order first.</think>"
        '<func>{"name": "get_order", "arguments": {"order_id": "W1"}}</func></assistant>\n'
        '<tool>{"status": "shipped"}</tool>\n'
        "<assistant>\n<think>\nShipped: say so.\n</think>\nIt has shipped.</assistant>",
        (CLEAN[1], ("assistant", "", CLEAN[2][2]), *CLEAN[3:]),
        turn_reasoning=("I need the order first.", "Shipped: say so."),
    ),
    # ------------------------------------------------------------------ errors
    Case(
        "truncated tail: the last turn never closed",
        _conversation().rsplit("</assistant>", 1)[0].replace("It has shipped.", "It has sh"),
        error=(
            "<assistant> opened at line 5, column 1 is never closed; the reply ends inside it",
            '"<assistant>It has sh"',
        ),
    ),
    Case(
        "truncated inside a call",
        '<user>Where is W1?</user>\n<assistant>Checking. <func>{"name": "get_order", "argu',
        error=(
            "<assistant> opened at line 2, column 1 is never closed; the reply ends inside it",
            '"<assistant>Checking. <func>{',
        ),
    ),
    Case(
        "a forgotten closing tag",
        "<system>Rules.</system>\n<user>Where is W1?\n<assistant>Checking.</assistant>\n"
        "<user>Thanks</user>",
        error=(
            "<user> opened at line 2, column 1 is never closed",
            "<assistant> at line 3, column 1 starts inside it",
            '"<user>Where is W1?"',
        ),
    ),
    Case(
        "JSON broken inside a call: the error points into the JSON",
        "<user>Pay</user>\n<assistant>\n"
        '<func>{"name": "pay", "arguments": {"amount": 5 "currency": "EUR"}}</func></assistant>',
        error=(
            "<func> at line 3, column 7: not valid JSON",
            "at line 3, column 49",
            '"\\"currency\\": \\"EUR\\"}}</func></assistant>"',
        ),
    ),
    Case(
        "an unknown call tag is never a silent zero-call turn",
        "<user>Where is W1?</user>\n"
        '<assistant><tool_use>{"name": "get_order", "input": {"order_id": "W1"}}</tool_use>'
        "</assistant>\n"
        '<tool>{"status": "shipped"}</tool>',
        error=("<tool_use> at line 2, column 12 holds a JSON object but is not a tool call",),
    ),
    Case(
        "a call written outside any turn",
        "<user>Where is W1?</user>\n<assistant>Let me check.</assistant>\n"
        '<tool_call>{"name": "get_order", "arguments": {}}</tool_call>',
        error=("<tool_call> at line 3, column 1 is outside any turn",),
    ),
    Case(
        "an unknown turn tag",
        "<user>hi</user>\n<observation>x</observation>",
        error=("unexpected <observation> at line 2, column 1",),
    ),
    Case(
        "only reasoning, no answer",
        "<think>Let me plan the <user> turn first and then",
        error=("the reply has no conversation",),
        reasoning="plan the <user> turn",
    ),
]
