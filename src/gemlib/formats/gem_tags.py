"""The GEM tag format: parsing teacher replies and rendering conversations.

The format (see the method notes in the docs) wraps each turn in a role tag,
``<system>``, ``<user>``, ``<assistant>`` (tool calls inside as
``<func>{"name": ..., "arguments": {...}}</func>``) and ``<tool>``, preceded for
refined conversations by ``<toolsets>[...]</toolsets>``; extraction replies hold
``<workflow>`` blocks and relevance replies single label tags.

Parsers are strict about structure and forgiving about noise. Ignored: text
before the first tag and after the last (code fences, commentary), whitespace,
and JSON that can be repaired safely (trailing commas, single quotes, Python's
``True``/``False``/``None``). Refused with a :class:`~gemlib.errors.ParseError`
that names the tag and its line and column: a tag that is never closed, an
unknown tag between turns, and JSON that cannot be read.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from gemlib.errors import ParseError, ToolSchemaError
from gemlib.formats._common import link_replies
from gemlib.model import Message, Tool, ToolCall, Trajectory

__all__ = [
    "RawWorkflow",
    "dump",
    "graph_tool_names",
    "load",
    "loads_lenient",
    "parse_conversation",
    "parse_refined",
    "parse_relevance",
    "parse_workflows",
    "render_conversation",
    "render_toolsets",
]

ROLES = ("system", "user", "assistant", "tool")
_TAG = re.compile(r"<(/?)([A-Za-z_][A-Za-z0-9_]*)>")
_ROLE_OPEN = re.compile(r"<(system|user|assistant|tool)>")


def _where(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


# --------------------------------------------------------------------------- lenient JSON


_STRING_OR_TRAILING_COMMA = re.compile(r'"(?:[^"\\]|\\.)*"|,(?=\s*[}\]])', re.DOTALL)


def _drop_trailing_commas(text: str) -> str:
    """Remove commas right before ``}`` or ``]``, leaving string contents alone (linear)."""
    return _STRING_OR_TRAILING_COMMA.sub(lambda m: "" if m.group(0) == "," else m.group(0), text)


def _python_literal(text: str) -> Any:
    """Read JSON-like text written with Python quoting; never executes anything."""
    names = {"true": "True", "false": "False", "null": "None"}
    tokens = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.NAME and tok.string in names:
            tok = tok._replace(string=names[tok.string])
        tokens.append(tok)
    return ast.literal_eval(tokenize.untokenize(tokens))


def loads_lenient(text: str, where: str) -> Any:
    """Parse JSON, repairing trailing commas and Python-style quoting when that is safe.

    Raises :class:`ParseError` naming ``where`` and the JSON error's position.
    """
    body = text.strip()
    if body.startswith("```"):
        body = re.sub(r"^```[A-Za-z0-9_-]*\s*|\s*```$", "", body)
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        first = exc
    repaired = _drop_trailing_commas(body)
    try:
        return json.loads(repaired)
    except json.JSONDecodeError:
        pass
    try:
        return _python_literal(repaired)
    except (ValueError, SyntaxError, tokenize.TokenError, MemoryError, RecursionError):
        pass
    raise ParseError(
        f"{where}: not valid JSON ({first.msg} at line {first.lineno}, column {first.colno})"
    )


# --------------------------------------------------------------------------- blocks


def _blocks(text: str, tag: str) -> list[tuple[str, int]]:
    """Every ``<tag>...</tag>`` block as ``(content, offset of the content)``."""
    found = []
    opener, closer = f"<{tag}>", f"</{tag}>"
    pos = 0
    while (start := text.find(opener, pos)) >= 0:
        content_start = start + len(opener)
        end = text.find(closer, content_start)
        again = text.find(opener, content_start)
        if end < 0 or 0 <= again < end:
            raise ParseError(f"<{tag}> opened at {_where(text, start)} is never closed")
        found.append((text[content_start:end], content_start))
        pos = end + len(closer)
    return found


def _single(text: str, tag: str, *, required: bool) -> str | None:
    blocks = _blocks(text, tag)
    if not blocks:
        if required:
            raise ParseError(f"the reply has no <{tag}> tag")
        return None
    return blocks[0][0].strip()


# --------------------------------------------------------------------------- relevance


def parse_relevance(text: str) -> dict[str, Any]:
    """Read a relevance reply: ``multi_step`` (bool), summary, domain, platform, task."""
    verdict = _single(text, "multi_step", required=True) or ""
    value = verdict.strip().lower()
    if value not in ("true", "false", "yes", "no"):
        raise ParseError(f"<multi_step> must be True or False, got {verdict!r}")
    return {
        "multi_step": value in ("true", "yes"),
        "summary": _single(text, "summary", required=False) or "",
        "domain": _single(text, "domain", required=False) or "",
        "platform": _single(text, "platform", required=False) or "",
        "task": _single(text, "task", required=False) or "",
    }


# --------------------------------------------------------------------------- workflows


@attrs.frozen
class RawWorkflow:
    """One ``<workflow>`` block as written, before its tools are normalised."""

    description: str
    steps: tuple[str, ...]
    execution_graph: str
    actions: tuple[dict[str, Any], ...]
    tools: tuple[Any, ...]


def _steps(text: str) -> tuple[str, ...]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return tuple(re.sub(r"^(?:step\s*\d+\s*[:.)-]|\d+[.)])\s*", "", ln, flags=re.I) for ln in lines)


def parse_workflows(text: str) -> list[RawWorkflow]:
    """Read an extraction reply: one :class:`RawWorkflow` per ``<workflow>`` block."""
    blocks = _blocks(text, "workflow")
    if not blocks:
        raise ParseError("the reply has no <workflow> block")
    workflows = []
    for number, (block, offset) in enumerate(blocks, start=1):
        label = f"<workflow> {number} (at {_where(text, offset)})"
        description = _single(block, "description", required=True)
        actions = loads_lenient(
            _single(block, "actions", required=False) or "[]", f"{label} <actions>"
        )
        tools = loads_lenient(_single(block, "tools", required=True) or "[]", f"{label} <tools>")
        if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
            raise ParseError(f"{label} <actions> must be a JSON list of objects")
        if not isinstance(tools, list):
            raise ParseError(f"{label} <tools> must be a JSON list")
        workflows.append(
            RawWorkflow(
                description=description or "",
                steps=_steps(_single(block, "steps", required=False) or ""),
                execution_graph=_single(block, "execution_graph", required=False) or "",
                actions=tuple(actions),
                tools=tuple(tools),
            )
        )
    return workflows


def graph_tool_names(graph: str) -> list[str]:
    """Tool names in an execution graph such as ``(login)->(search, get_cart)->(checkout)``."""
    names: list[str] = []
    for group in re.findall(r"\(([^()]*)\)", graph) or [graph]:
        for part in re.split(r"[,|]|->", group):
            name = part.strip()
            if name and name not in names:
                names.append(name)
    return names


# --------------------------------------------------------------------------- conversations

CallIds = Callable[[int], str]


def _call(payload: str, where: str, call_id: str) -> ToolCall:
    data = loads_lenient(payload, f"<func> at {where}")
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
        raise ParseError(f'<func> at {where} needs a JSON object with a "name"')
    arguments = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):
        arguments = loads_lenient(arguments, f"<func> at {where} arguments")
    if not isinstance(arguments, dict):
        raise ParseError(f'<func> at {where}: "arguments" must be a JSON object')
    return ToolCall(id=call_id, name=data["name"], arguments=arguments)


def _assistant(content: str, offset: int, text: str, next_id: Callable[[], str]) -> Message:
    calls: list[ToolCall] = []
    for payload, at in _blocks(content, "func"):
        calls.append(_call(payload, _where(text, offset + at), next_id()))
    prose = re.sub(r"<func>.*?</func>", "", content, flags=re.DOTALL).strip()
    return Message(role="assistant", content=prose, tool_calls=tuple(calls))


def parse_conversation(text: str, call_ids: CallIds | None = None) -> list[Message]:
    """Read the turns of a conversation in the tag format.

    ``call_ids(n)`` names the n-th tool call (default ``call_<n>``). Each tool
    reply is linked, in order, to the calls of the assistant turn before it; a
    reply with no call left to answer keeps ``tool_call_id=None`` for the
    validators to report.
    """
    ids = call_ids or (lambda n: f"call_{n}")
    counter = iter(range(1_000_000))
    messages: list[Message] = []
    pending: list[ToolCall] = []
    first = _ROLE_OPEN.search(text)
    if first is None:
        raise ParseError(
            "the reply has no conversation: expected <system>, <user>, <assistant> and <tool> turns"
        )
    pos = first.start()
    while (match := _TAG.search(text, pos)) is not None:
        closing, name = match.groups()
        if closing or name not in ROLES:
            tag = f"<{'/' if closing else ''}{name}>"
            raise ParseError(
                f"unexpected {tag} at {_where(text, match.start())}: between turns only "
                "<system>, <user>, <assistant> and <tool> may open"
            )
        start = match.end()
        end = text.find(f"</{name}>", start)
        following = _ROLE_OPEN.search(text, start)
        if end < 0 or (following is not None and following.start() < end):
            raise ParseError(f"<{name}> opened at {_where(text, match.start())} is never closed")
        content = text[start:end]
        pos = end + len(name) + 3
        if name == "assistant":
            message = _assistant(content, start, text, lambda: ids(next(counter)))
            pending = list(message.tool_calls)
        elif name == "tool":
            answered = pending.pop(0) if pending else None
            message = Message(
                role="tool",
                content=content.strip(),
                tool_call_id=answered.id if answered else None,
                name=answered.name if answered else None,
            )
        else:
            message = Message(role=name, content=content.strip())
            pending = []
        messages.append(message)
    return messages


def parse_refined(text: str, call_ids: CallIds | None = None) -> tuple[list[Tool], list[Message]]:
    """Read a refinement (or synthesizer) reply: ``<toolsets>`` then the conversation."""
    toolsets = _blocks(text, "toolsets")
    if not toolsets:
        raise ParseError("the reply has no <toolsets> block before the conversation")
    content, offset = toolsets[0]
    raw_tools = loads_lenient(content, f"<toolsets> at {_where(text, offset)}")
    if not isinstance(raw_tools, list):
        raise ParseError("<toolsets> must hold a JSON list of tool definitions")
    tools = []
    for index, raw in enumerate(raw_tools):
        try:
            tools.append(Tool.from_any(raw))
        except ToolSchemaError as exc:
            raise ParseError(f"<toolsets> tool {index}: {exc}") from None
    rest = text[offset + len(content) + len("</toolsets>") :]
    return tools, parse_conversation(rest, call_ids)


# --------------------------------------------------------------------------- rendering


def _func(call: ToolCall) -> str:
    body = json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
    return f"<func>{body}</func>"


def render_conversation(messages: Iterable[Message]) -> str:
    """Write messages in the tag format (the inverse of :func:`parse_conversation`)."""
    turns = []
    for m in messages:
        if m.role == "assistant":
            parts = [m.content] if m.content else []
            parts += [_func(call) for call in m.tool_calls]
            turns.append(f"<assistant>{' '.join(parts)}</assistant>")
        else:
            turns.append(f"<{m.role}>{m.content}</{m.role}>")
    return "\n".join(turns)


def render_toolsets(tools: Sequence[Tool]) -> str:
    """``<toolsets>[...]</toolsets>`` with MCP-style tool definitions."""
    body = json.dumps([t.to_mcp() for t in tools], ensure_ascii=False, indent=1)
    return f"<toolsets>{body}</toolsets>"


def dump(trajectory: Trajectory) -> dict[str, Any]:
    """``{"id", "text"}``: ``<toolsets>`` then the conversation (the synthesizer's target)."""
    text = render_toolsets(trajectory.tools) + "\n" + render_conversation(trajectory.messages)
    return {"id": trajectory.id, "text": text}


def load(record: dict[str, Any]) -> Trajectory:
    """Read ``{"id", "text"}`` in the tag format (call IDs are assigned anew)."""
    text = record.get("text")
    if not isinstance(text, str):
        raise ParseError("a GEM tag record needs a 'text' string")
    tools, messages = parse_refined(text)
    draft = Trajectory(id=str(record.get("id") or ""), tools=tuple(tools), messages=tuple(messages))
    return draft.model_copy(update={"messages": tuple(link_replies(draft.id, messages))})
