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
import bisect
import contextlib
import functools
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import attrs

from gemlib._nesting import TooDeep, check_depth
from gemlib._nesting import loads as _loads
from gemlib._pyliteral import parse_expression
from gemlib.errors import ParseError, ToolSchemaError
from gemlib.formats._common import ReplyLinks, renumber_calls
from gemlib.formats.format import Format
from gemlib.model import Message, Tool, ToolCall, Trajectory
from gemlib.model._base import built_valid

__all__ = [
    "FORMAT",
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


def _where(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


# --------------------------------------------------------------------------- lenient JSON


_STRING_OR_TRAILING_COMMA = re.compile(r'"(?:[^"\\]|\\.)*"|,(?=\s*[}\]])', re.DOTALL)
_TRAILING_COMMA = re.compile(r",(?=\s*[}\]])")
_CLOSED_STRINGS = re.compile(r'(?:[^"]+|"(?:[^"\\]|\\.)*")*', re.DOTALL)
"""The longest start of a text whose every quote opens a string that closes (linear: a
string's characters are single items, so a string that never closes is given up in one
pass). From the first quote whose string never closes on, no later quote's does either
(each was escaped inside it), so what follows is outside any string."""


def _drop_trailing_commas(text: str) -> tuple[str, list[int]]:
    """Remove commas right before ``}`` or ``]``, leaving string contents alone (linear:
    past a quote that is never closed, strings are not looked for again at every quote).

    Also returns the offsets of the removed commas, to map positions back.
    """
    removed: list[int] = []

    def drop(match: re.Match[str]) -> str:
        if match.group(0) == ",":
            removed.append(match.start())
            return ""
        return match.group(0)

    found = _CLOSED_STRINGS.match(text)
    cut = found.end() if found else 0
    kept = _STRING_OR_TRAILING_COMMA.sub(drop, text[:cut])
    removed += (m.start() for m in _TRAILING_COMMA.finditer(text, cut))
    return kept + _TRAILING_COMMA.sub("", text[cut:]), removed


def _original_offset(offset: int, removed: list[int]) -> int:
    """The offset in the text before :func:`_drop_trailing_commas` of ``offset`` after it."""
    for position in removed:
        if position > offset:
            break
        offset += 1
    return offset


_JSON_NAMES = {"true": True, "false": False, "null": None}


class _JsonNames(ast.NodeTransformer):
    """``true``, ``false`` and ``null`` as the constants they mean in JSON."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _JSON_NAMES:
            return ast.copy_location(ast.Constant(_JSON_NAMES[node.id]), node)
        return node


def _python_literal(text: str) -> Any:
    """Read JSON-like text written with Python quoting; never executes anything.

    Parsed with Python's own parser, linear in the text (the ``tokenize`` module took
    minutes on a string of escaped quotes that never closes).
    """
    tree = parse_expression(text.strip())
    value = ast.literal_eval(_JsonNames().visit(tree))
    check_depth(value)  # TooDeep is a ValueError, like literal_eval's own complaints
    return value


_Where = str | Callable[[], str]
"""What an error names: text, or a function giving it (called only for an error, so that
readers need not place each block in the reply as they go)."""


def _named(where: _Where) -> str:
    return where if isinstance(where, str) else where()


def _json(text: str, where: _Where) -> Any:
    try:
        return _loads(text)
    except TooDeep as exc:
        raise ParseError(f"{_named(where)}: JSON {exc}") from None


_COMMA_TRIES = 16
"""Trailing commas removed where the JSON decoder stops at them before the text is
repaired as a whole (each try decodes the text again)."""


class _Unrepaired(Exception):
    """The text is not JSON with trailing commas only."""


def _json_without_stray_commas(text: str, bracket: int, where: _Where) -> Any:
    """``text`` decoded after removing, one at a time, the trailing commas the decoder
    stops at, starting with the one before the closing bracket at ``bracket``.

    When this succeeds, it removed exactly the commas :func:`_drop_trailing_commas`
    removes (in valid JSON no comma is left before a closing bracket outside a string),
    at a cost of one decoding per comma instead of a Python call per string. Raises
    :class:`_Unrepaired` when another error stops the decoder, or after
    :data:`_COMMA_TRIES` commas.
    """
    for _ in range(_COMMA_TRIES):
        head = text[:bracket].rstrip(" \t\n\r")  # the decoder skips JSON's whitespace
        if text[bracket : bracket + 1] not in ("}", "]") or not head.endswith(","):
            raise _Unrepaired
        text = head[:-1] + text[len(head) :]
        try:
            return _json(text, where)
        except json.JSONDecodeError as exc:
            bracket = exc.pos
    raise _Unrepaired


def _ends_in_stray_comma(body: str) -> bool:
    """Whether ``body`` ends with a comma and a closing bracket, which JSON never does (a
    string holding them would need its closing quote after them): no need to decode it
    as it is."""
    return body.endswith(("]", "}")) and body[:-1].rstrip(" \t\n\r").endswith(",")


_FENCE_OPENING = re.compile(r"```[A-Za-z0-9_-]*\s*")
"""A code fence's opening line and the whitespace after it."""


def loads_lenient(
    text: str, where: _Where, locate: Callable[[int], tuple[str, str]] | None = None
) -> Any:
    """Parse JSON, repairing trailing commas and Python-style quoting when that is safe.

    Raises :class:`ParseError` naming ``where`` (or ``where()``) and the JSON error's position:
    ``locate(offset in text)`` gives the place in the whole reply and the text
    there, when given; else the line and column in ``text`` are named.
    """
    body = text.strip()
    shift = len(text) - len(text.lstrip())
    if body.startswith("```") and (fence := _FENCE_OPENING.match(body)) is not None:
        shift += fence.end()
        body = body[fence.end() :]
        if body.endswith("```"):  # not a search for \s*```$: quadratic in a run of spaces
            body = body[:-3].rstrip()
    bracket = len(body) - 1
    if not _ends_in_stray_comma(body):
        try:
            return _json(body, where)
        except json.JSONDecodeError as exc:
            bracket = exc.pos
    with contextlib.suppress(_Unrepaired):
        return _json_without_stray_commas(body, bracket, where)
    repaired, removed = _drop_trailing_commas(body)
    try:
        return _json(repaired, where)
    except json.JSONDecodeError as exc:
        error = exc  # past the commas repaired: the real problem
    try:
        return _python_literal(repaired)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    offset = _original_offset(error.pos, removed)
    place, quote = locate(shift + offset) if locate else (_where(body, offset), "")
    raise ParseError(f"{_named(where)}: not valid JSON ({error.msg} at {place}){quote}")


# --------------------------------------------------------------------------- blocks


@functools.lru_cache(maxsize=64)
def _closer(tag: str) -> re.Pattern[str]:
    """``</tag>``, in any case."""
    return re.compile(rf"</{tag}\s*>", re.IGNORECASE)


@functools.lru_cache(maxsize=64)
def _opener(tag: str) -> re.Pattern[str]:
    """``<tag>`` with or without attributes, in any case."""
    return re.compile(rf"<{tag}(?:\s[^<>]*)?>", re.IGNORECASE)


@functools.lru_cache(maxsize=16)
def _tag_scanner(names: tuple[str, ...]) -> re.Pattern[str]:
    """:func:`_opener` and :func:`_closer` of each of ``names`` in one pattern: group 1 is
    a closing tag's slash, and a match's ``lastindex`` is 2 plus its name's index."""
    alternatives = "|".join(f"({name})" for name in names)
    return re.compile(rf"<(/)?(?:{alternatives})(?(1)\s*|(?:\s[^<>]*)?)>", re.IGNORECASE)


class _Blocks:
    """The ``<tag>...</tag>`` blocks of one or more tags in ``text``, their tags
    found in one scan (no two overlap: each holds one ``<``, its first character).

    The tags may carry attributes and any case; spans are offsets in ``text``, so errors
    name the reply's own lines. A tag opened again, or never, before it is closed is an
    error, raised when that tag is read."""

    def __init__(self, text: str, names: tuple[str, ...]) -> None:
        self.text, self.start = text, 0
        self.tags: dict[str, list[tuple[int, bool, int]]] = {name: [] for name in names}
        """Each tag's start, whether it closes, and its end, by name, in order."""
        of_name = list(self.tags.values())
        for found in _tag_scanner(names).finditer(text):
            of_name[(found.lastindex or 2) - 2].append(
                (found.start(), found.group(1) is not None, found.end())
            )

    def inside(self, start: int, end: int, names: tuple[str, ...]) -> _Blocks:
        """The blocks of ``names`` in ``text[start:end]`` (the content of a block of another
        name), from the tags this scan found there: the ones a scan of that part finds, as
        no tag found spans a ``<``, where every tag starts."""
        part = object.__new__(_Blocks)
        part.text, part.start = self.text, start
        part.tags = {}
        for name in names:
            tags = self.tags[name]
            part.tags[name] = tags[
                bisect.bisect_left(tags, (start,)) : bisect.bisect_left(tags, (end,))
            ]
        return part

    def spans(self, tag: str) -> list[tuple[int, int]]:
        """Every ``<tag>...</tag>`` block as the span of its content."""
        tags = self.tags[tag]
        spans = []
        index = 0
        while index < len(tags):
            start, closing, end = tags[index]
            index += 1
            if closing:
                continue
            if index == len(tags) or not tags[index][1]:  # no closing tag before the next opening
                raise _problem(self.text, start, f"<{tag}> opened", " is never closed")
            spans.append((end, tags[index][0]))
            index += 1
        return spans

    def single(self, tag: str, *, required: bool) -> tuple[str, int]:
        """The first ``<tag>`` block's content and its offset (``("", start)`` when there
        is none and none is ``required``)."""
        tags = self.tags[tag]
        if len(tags) == 2 and not tags[0][1] and tags[1][1]:  # one block: what spans() gives
            content_start, content_end = tags[0][2], tags[1][0]
            return self.text[content_start:content_end], content_start
        spans = self.spans(tag)
        if not spans:
            if required:
                raise ParseError(f"the reply has no <{tag}> tag")
            return "", self.start
        content_start, content_end = spans[0]
        return self.text[content_start:content_end], content_start


# --------------------------------------------------------------------------- relevance


_RELEVANCE_TAGS = ("multi_step", "summary", "domain", "platform", "task")


def parse_relevance(text: str) -> dict[str, Any]:
    """Read a relevance reply: ``multi_step`` (bool), summary, domain, platform, task."""
    blocks = _Blocks(text, _RELEVANCE_TAGS)
    verdict, at = blocks.single("multi_step", required=True)
    value = verdict.strip().lower()
    if value not in ("true", "false", "yes", "no"):
        problem = f" must be True or False, got {verdict.strip()!r}"
        raise _problem(text, at, "<multi_step>", problem)
    return {
        "multi_step": value in ("true", "yes"),
        **{name: blocks.single(name, required=False)[0].strip() for name in _RELEVANCE_TAGS[1:]},
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


_STEP_NUMBER = re.compile(r"^(?:step\s*\d+\s*[:.)-]|\d+[.)])\s*", re.IGNORECASE)


def _steps(text: str) -> tuple[str, ...]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return tuple(_STEP_NUMBER.sub("", line) for line in lines)


def _json_block(blocks: _Blocks, tag: str, label: Callable[[], str], required: bool) -> Any:
    content, at = blocks.single(tag, required=required)

    def where() -> str:
        return f"{label()} <{tag}>"

    return loads_lenient(content or "[]", where, lambda pos: _at(blocks.text, at + pos))


_WORKFLOW_TAGS = ("actions", "tools", "description", "steps", "execution_graph")
"""The tags of a ``<workflow>`` block, in the order they are read."""


def _workflow_label(text: str, number: int, start: int) -> str:
    return f"<workflow> {number} (at {_where(text, start)})"


def parse_workflows(text: str) -> list[RawWorkflow]:
    """Read an extraction reply: one :class:`RawWorkflow` per ``<workflow>`` block."""
    scan = _Blocks(text, ("workflow", *_WORKFLOW_TAGS))  # the blocks' tags in the same scan
    blocks = scan.spans("workflow")
    if not blocks:
        raise ParseError("the reply has no <workflow> block")
    workflows = []
    for number, (start, end) in enumerate(blocks, start=1):
        # placed in the reply only for an error (counting lines at each block was quadratic)
        label = functools.partial(_workflow_label, text, number, start)
        tags = scan.inside(start, end, _WORKFLOW_TAGS)
        actions = _json_block(tags, "actions", label, required=False)
        tools = _json_block(tags, "tools", label, required=True)
        if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
            raise ParseError(f"{label()} <actions> must be a JSON list of objects")
        if not isinstance(tools, list):
            raise ParseError(f"{label()} <tools> must be a JSON list")
        fields = {
            tag: tags.single(tag, required=tag == "description")[0].strip()
            for tag in _WORKFLOW_TAGS[2:]
        }
        workflows.append(
            RawWorkflow(
                description=fields["description"],
                steps=_steps(fields["steps"]),
                execution_graph=fields["execution_graph"],
                actions=tuple(actions),
                tools=tuple(tools),
            )
        )
    return workflows


_GRAPH_GROUP = re.compile(r"\(([^()]*)\)")
_GRAPH_SEPARATOR = re.compile(r"[,|]|->")


def graph_tool_names(graph: str) -> list[str]:
    """Tool names in an execution graph such as ``(login)->(search, get_cart)->(checkout)``."""
    names: list[str] = []
    for group in _GRAPH_GROUP.findall(graph) or [graph]:
        for part in _GRAPH_SEPARATOR.split(group):
            name = part.strip()
            if name and name not in names:
                names.append(name)
    return names


# --------------------------------------------------------------------------- conversations

CallIds = Callable[[int], str]
_DEFAULT_IDS: CallIds = "call_{}".format
"""The n-th call's ID when the caller names none: ``call_<n>``."""

CALL_TAGS = ("func", "tool_call", "function_call")
"""The spellings of a tool call inside ``<assistant>``: GEM's own, Hermes/Qwen's, and another
common one. Each holds ``{"name": ..., "arguments": {...}}``."""
REASONING_TAG = "think"
"""The tag of an assistant turn's private reasoning, first in the turn (see docs/gem.md)."""

_ANY_TAG = re.compile(r"<(/?)([A-Za-z_][A-Za-z0-9_:-]*)(?:\s[^<>]*)?>")
"""A tag, with or without attributes (``<assistant name="agent">``); linear to scan."""
_ROLE_TAG = re.compile(rf"<(/?)((?ai:{'|'.join(ROLES)}))(?:\s[^<>]*)?>")
"""The tags of :data:`_ANY_TAG` whose name is a role (no tag holds a ``<``, so scanning for
these alone finds the same ones)."""
_ROLE_OPENING = re.compile(rf"<((?ai:{'|'.join(ROLES)}))(?:\s[^<>]*)?>")
"""The tags of :data:`_ROLE_TAG` that open a turn."""
_NEXT_OPENING = re.compile(rf"\s*<((?ai:{'|'.join(ROLES)}))(?:\s[^<>]*)?>")
"""A role tag that opens a turn, after nothing but whitespace: the tag :data:`_ANY_TAG`
finds first there."""
_ROLE_NAME = rf"((?ai:{'|'.join(ROLES)}))"
_CALL_OPEN = re.compile(rf"<({'|'.join(CALL_TAGS)})(?:\s[^<>]*)?>", re.IGNORECASE)
_SOLE_CALL = re.compile(
    rf"(\s*)<({'|'.join(CALL_TAGS)})(?:\s[^<>]*)?>([^<]*)</\2\s*>(\s*)", re.IGNORECASE
)
"""An assistant turn that is one call and whitespace, its JSON free of ``<`` (most turns
that call): the first ``<`` after the opening tag closes it."""
_PLAIN_TURN = re.compile(
    rf"\s*<{_ROLE_NAME}(?:\s[^<>]*)?>"
    rf"([^<]*|(\s*)<((?i:{'|'.join(CALL_TAGS)}))(?:\s[^<>]*)?>([^<]*)</(?i:\4)\s*>(\s*))"
    r"</(?ai:\1)(?:\s[^<>]*)?>"
)
"""A turn after nothing but whitespace, closed by the first role tag after it (of its own
role, in any case: the back reference matches the names :data:`_ROLE_NAME` does), whose text
holds no ``<`` (group 2; most turns that do not call) or is a :data:`_SOLE_CALL` (groups 3
to 6; most turns that call): :data:`_NEXT_OPENING`, the role tag that follows and the
call, in one match. Linear: a text or a call's JSON ends at the first ``<``, where a tag
must start, and a miss costs one more pass over that text (backing off a ``[^<]*`` never
finds a ``<``: no possessive ``*+`` needed, which Python 3.10 refuses)."""
_WRAPPED_JSON = re.compile(r"<([A-Za-z_][A-Za-z0-9_:-]*)(?:\s[^<>]*)?>\s*\{")
_THINK_OPEN = re.compile(rf"\s*<{REASONING_TAG}>", re.IGNORECASE)
_TURN_TAGS = 64
"""Role tags read inside one turn to match its closing tag: bounds the work on hostile text."""
_FIRST_TURN_TRIES = 20
"""Role tags tried as the first turn: the ones before it are mentions in a preamble."""


def _quote(text: str, offset: int) -> str:
    """The reply's text from ``offset`` on, short and on one line, for an error message."""
    line = text[offset:].split("\n", 1)[0]
    return json.dumps(line[:60] + ("..." if len(line) > 60 else ""), ensure_ascii=False)


def _at(text: str, offset: int) -> tuple[str, str]:
    """``line L, column C`` of ``offset`` in the reply, and ``: "the text there"``."""
    return _where(text, offset), f": {_quote(text, offset)}"


def _problem(text: str, offset: int, what: str, problem: str) -> ParseError:
    """``what at line L, column C{problem}: "the text there"``."""
    where, quote = _at(text, offset)
    return ParseError(f"{what} at {where}{problem}{quote}")


def _closing(text: str, name: str, start: int, end: int) -> _Tag | None:
    """The first ``</name>`` in ``text[start:end]``, in any case."""
    found = _closer(name).search(text, start, end)
    return _Tag(found.start(), found.end(), True, name, found.group(0)) if found else None


class _Tag(NamedTuple):
    """One tag of a reply: where it is, whether it closes, its lower-case name, its text."""

    start: int
    end: int
    closing: bool
    name: str
    raw: str

    @classmethod
    def of(cls, match: re.Match[str]) -> _Tag:
        return cls(
            match.start(), match.end(), bool(match.group(1)), match.group(2).lower(), match.group(0)
        )


class _RoleTags:
    """The role tags of a reply from ``start`` on: the first opening one, or (found once,
    when a turn is not plain) every one after an offset."""

    def __init__(self, text: str, start: int = 0) -> None:
        self.text = text
        self.start = start

    @functools.cached_property
    def tags(self) -> list[_Tag]:
        """Every role tag of the reply, in order."""
        return [_Tag.of(m) for m in _ROLE_TAG.finditer(self.text, self.start)]

    @functools.cached_property
    def starts(self) -> list[int]:
        """Where each of :attr:`tags` starts."""
        return [t.start for t in self.tags]

    def first_opening(self) -> _Tag | None:
        """The first role tag that opens a turn (the first opening one :data:`_ROLE_TAG`
        finds: a closing tag holds no ``<`` but its first character)."""
        found = _ROLE_OPENING.search(self.text, self.start)
        if found is None:
            return None
        return _Tag(found.start(), found.end(), False, found.group(1).lower(), found.group(0))

    def after(self, offset: int) -> Iterator[_Tag]:
        """The role tags that start at or after ``offset``."""
        tags = self.tags
        return (tags[i] for i in range(bisect.bisect_left(self.starts, offset), len(tags)))


def _balanced(tags: Iterable[_Tag]) -> bool:
    stack: list[str] = []
    for tag in tags:
        if not tag.closing:
            stack.append(tag.name)
        elif not stack or stack.pop() != tag.name:
            return False
    return not stack


def _markup_only(text: str, name: str, tags: list[_Tag], first: bool) -> bool:
    """Whether role tags inside a turn are markup (HTML, XML, a quoted tag), not turns.

    Turns show as a closing tag no opening inside matches, or as a closing
    tag followed by nothing but whitespace and an opening one (a turn boundary),
    or, in the first turn, as an opening of its own role (the first was a
    mention in a preamble).
    """
    opened: list[str] = []
    for index, tag in enumerate(tags):
        if not tag.closing:
            if first and tag.name == name:
                return False
            opened.append(tag.name)
            continue
        if tag.name not in opened:
            return False
        del opened[len(opened) - 1 - opened[::-1].index(tag.name) :]
        following = tags[index + 1] if index + 1 < len(tags) else None
        if (
            following is not None
            and not following.closing
            and not text[tag.end : following.start].strip()
        ):
            return False
    return True


def _turn_end(text: str, opening: _Tag, roles: _RoleTags, first: bool) -> _Tag:
    """The tag that closes the turn ``opening`` opened.

    A turn may hold markup, role tags included (a tool reply in HTML or XML, a
    user quoting ``<user>``): the closing tag is the one that balances the role
    tags inside, else the first one, as long as no other turn closes before
    it (and, for the first turn, no turn of the same role opens before it: the
    earlier tag was a mention in a preamble). Otherwise the turn was never
    closed: the error names the turn that starts inside it.
    """
    name = opening.name
    inside: list[_Tag] = []
    depth = 0
    for tag in itertools.islice(roles.after(opening.end), _TURN_TAGS):
        if tag.name == name:
            depth += -1 if tag.closing else 1
            if depth < 0:
                if _balanced(inside):
                    return tag
                break
        inside.append(tag)
    closing = _closing(text, name, opening.end, len(text))
    if closing is not None:
        before = [t for t in inside if t.start < closing.start]
        if _markup_only(text, name, before, first):
            return closing
    following = itertools.islice(roles.after(opening.end), _TURN_TAGS)
    other = next((t for t in following if t.name != name), None)
    hint = (
        f"; {other.raw} at {_where(text, other.start)} starts inside it"
        if other
        else "; the reply ends inside it"
        if closing is None
        else ""
    )
    raise _problem(text, opening.start, f"<{name}> opened", f" is never closed{hint}")


def _call_place(text: str, tag: str, start: int, what: str) -> str:
    """``<tag> at line L, column C{what}``: a call's place, for an error about it."""
    return f"<{tag.lower()}> at {_where(text, start)}{what}"


def _call(text: str, tag: str, start: int, end: int, call_id: str) -> ToolCall:
    """The call whose JSON is ``text[start:end]``, in a ``<tag>`` (named, in lower case, by
    its errors only)."""
    repaired = False  # whether the lenient reader ran: its Python literals may have other keys
    try:  # most calls are plain JSON: read them without placing them in the reply
        data = _loads(text[start:end])
    except ValueError:  # not JSON, or too deep: the lenient reader repairs or explains
        repaired = True
        where = functools.partial(_call_place, text, tag, start, "")
        data = loads_lenient(text[start:end], where, lambda pos: _at(text, start + pos))
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
        raise _problem(text, start, f"<{tag.lower()}>", ' needs a JSON object with a "name"')
    arguments = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):
        repaired = True
        where = functools.partial(_call_place, text, tag, start, " arguments")
        arguments = loads_lenient(arguments, where) if arguments.strip() else {}
    if not isinstance(arguments, dict):
        raise _problem(text, start, f"<{tag.lower()}>", ': "arguments" must be a JSON object')
    if type(call_id) is str and (not repaired or all(type(k) is str for k in arguments)):
        # JSON's keys are strings, and nothing else holds the dict just decoded: no copy needed
        return built_valid(ToolCall, id=call_id, name=data["name"], arguments=arguments)
    # an ID from call_ids that is not a str, or a Python literal's other keys: pydantic's error
    return ToolCall(id=call_id, name=data["name"], arguments=arguments)


def _assistant(
    text: str,
    start: int,
    end: int,
    next_id: Callable[[], str],
    exact: bool,
    words: bool,
) -> Message:
    """The assistant turn in ``text[start:end]``: its reasoning, its words and its calls
    (``words``: the turn is known to be words only, a :data:`_PLAIN_TURN` text)."""
    if not words and text.find("<", start, end) >= 0:
        sole = _SOLE_CALL.fullmatch(text, start, end)
        if sole is None:
            return _assistant_parts(text, start, end, next_id, exact)
        return _sole_call(text, sole, 1, next_id, exact)
    content = text[start:end]  # words only: no reasoning, no calls, no tags
    return built_valid(
        Message,
        role="assistant",
        content=content if exact else content.strip(),
        tool_calls=(),
        reasoning="",
    )


def _sole_call(
    text: str, sole: re.Match[str], group: int, next_id: Callable[[], str], exact: bool
) -> Message:
    """The assistant turn that is one call: ``sole``'s groups from ``group`` on are the
    whitespace before the call, its tag, its JSON and the whitespace after it."""
    json_start, json_end = sole.span(group + 2)
    call = _call(text, sole.group(group + 1), json_start, json_end, next_id())
    content = sole.group(group) + sole.group(group + 3) if exact else ""
    return built_valid(Message, role="assistant", content=content, tool_calls=(call,), reasoning="")


def _assistant_parts(
    text: str, start: int, end: int, next_id: Callable[[], str], exact: bool
) -> Message:
    """An assistant turn read part by part: reasoning, then words and calls in any order."""
    reasoning = ""
    if (think := _THINK_OPEN.match(text, start, end)) is not None:
        close = _closing(text, REASONING_TAG, think.end(), end)
        if close is None:
            opened = think.end() - len(REASONING_TAG) - 2
            raise _problem(
                text, opened, f"<{REASONING_TAG}> opened", " is never closed in its turn"
            )
        reasoning = text[think.end() : close.start]
        start = close.end
    calls: list[ToolCall] = []
    prose: list[tuple[int, int]] = []
    pos = start
    while (opening := _CALL_OPEN.search(text, pos, end)) is not None:
        tag = opening.group(1).lower()
        close = _closing(text, tag, opening.end(), end)
        if close is None:
            raise _problem(text, opening.start(), f"<{tag}> opened", " is never closed in its turn")
        prose.append((pos, opening.start()))
        calls.append(_call(text, tag, opening.end(), close.start, next_id()))
        pos = close.end
    prose.append((pos, end))
    for piece in prose:
        if (wrapped := _WRAPPED_JSON.search(text, *piece)) is not None:
            raise _problem(
                text,
                wrapped.start(),
                f"<{wrapped.group(1)}>",
                " holds a JSON object but is not a tool call: write each call as "
                '<func>{"name": ..., "arguments": {...}}</func>',
            )
    content = "".join(text[a:b] for a, b in prose)
    if not exact:
        content, reasoning = content.strip(), reasoning.strip()
    return built_valid(
        Message, role="assistant", content=content, tool_calls=tuple(calls), reasoning=reasoning
    )


def _starts_line(text: str, offset: int, start: int) -> bool:
    """Whether only whitespace comes before ``offset`` on its line (a line starts at
    ``start`` at the latest: the reply is read from there)."""
    return not text[max(text.rfind("\n", start, offset) + 1, start) : offset].strip()


def _first_turn(text: str, roles: _RoleTags) -> tuple[_Tag, _Tag]:
    """The first turn's opening and closing tags.

    A role tag inside a line, followed by an opening of the same role at the
    start of a line before any turn closes, was a mention in a preamble ("I
    will write <system> first."): the conversation starts at the later one.
    """
    opening = roles.first_opening()
    if opening is None:
        raise ParseError(
            "the reply has no conversation: expected <system>, <user>, <assistant> and <tool> turns"
        )
    for _ in range(_FIRST_TURN_TRIES):
        with contextlib.suppress(ParseError):
            return opening, _turn_end(text, opening, roles, first=True)
        ahead = next(roles.after(opening.end), None)
        if (
            ahead is None
            or ahead.closing
            or ahead.name != opening.name
            or _starts_line(text, opening.start, roles.start)
            or not _starts_line(text, ahead.start, roles.start)
        ):
            break
        opening = ahead
    return opening, _turn_end(text, opening, roles, first=False)  # or raise its problem


def parse_conversation(
    text: str, call_ids: CallIds | None = None, *, exact: bool = False
) -> list[Message]:
    """Read the turns of a conversation in the tag format.

    ``call_ids(n)`` names the n-th tool call (default ``call_<n>``). Each tool
    reply is linked, in order, to the calls of the assistant turn before it; a
    reply with no call left to answer keeps ``tool_call_id=None`` for the
    validators to report. Role tags may carry attributes and any case; calls
    may be spelled ``<func>``, ``<tool_call>`` or ``<function_call>``; an
    assistant turn may start with its reasoning in ``<think>``. ``exact``
    keeps each turn's text as written (for files this module wrote); otherwise
    the whitespace around it is dropped (for model replies).
    """
    return _conversation(text, 0, call_ids, exact)


def _conversation(text: str, start: int, call_ids: CallIds | None, exact: bool) -> list[Message]:
    """:func:`parse_conversation` of the reply from ``start`` on (errors name the places
    in the whole reply)."""
    # call_ids(0), call_ids(1), ... one per call, with no Python frame of its own
    next_id: Callable[[], str] = map(call_ids or _DEFAULT_IDS, itertools.count()).__next__
    links = ReplyLinks()
    messages: list[Message] = []
    roles = _RoleTags(text, start)
    pos: int | None = None  # the end of the previous turn
    while True:  # each turn, read as it comes: the first fault met is the one named
        plain = None if pos is None else _PLAIN_TURN.match(text, pos)
        if plain is not None:
            role = plain.group(1).lower()
            begin, end = plain.span(2)
            pos = plain.end()
        elif (turn := _next_turn(text, roles, pos)) is not None:
            role, begin, end, pos = turn
        else:
            return messages
        if role == "assistant":
            if plain is not None and plain.start(4) >= 0:  # one call alone
                message = _sole_call(text, plain, 3, next_id, exact)
            else:
                message = _assistant(text, begin, end, next_id, exact, plain is not None)
            messages.append(message)
            links.turn(message.tool_calls)
            continue
        content = text[begin:end] if exact else text[begin:end].strip()
        if role == "tool":
            messages.append(links.reply(content))
        else:
            messages.append(built_valid(Message, role=role, content=content))
            links.turn(())


def _next_turn(text: str, roles: _RoleTags, pos: int | None) -> tuple[str, int, int, int] | None:
    """The turn after ``pos`` (the first one for ``None``) that :data:`_PLAIN_TURN` does not
    read: its role (lower case), the span of its content and its end; ``None`` when no
    tag follows.

    A turn whose next role tag closes it is found by two searches when it is the first
    or opens after whitespace; any other is placed by all its role tags
    (:func:`_first_turn`, :func:`_turn_end`). Raises :class:`ParseError` for a turn never
    closed or a tag between turns that opens none.
    """
    opened_at = _plain_opening(text, roles, pos)
    if opened_at is not None:
        role, begin = opened_at
        closing = _ROLE_TAG.search(text, begin)
        if closing is not None and closing.group(1) and closing.group(2).lower() == role:
            return role, begin, closing.start(), closing.end()
    if pos is None:
        first, last = _first_turn(text, roles)
    else:
        found = _ANY_TAG.search(text, pos)
        if found is None:
            return None
        first = _next_opening(text, _Tag.of(found))
        last = _turn_end(text, first, roles, first=False)
    return first.name, first.end, last.start, last.end


def _plain_opening(text: str, roles: _RoleTags, pos: int | None) -> tuple[str, int] | None:
    """The role and content start of the turn that opens first (``pos`` ``None``) or at
    ``pos`` after whitespace only, if any."""
    if pos is None:
        first = roles.first_opening()
        return None if first is None else (first.name, first.end)
    found = _NEXT_OPENING.match(text, pos)
    return None if found is None else (found.group(1).lower(), found.end())


def _next_opening(text: str, tag: _Tag) -> _Tag:
    """``tag``, the first one after a turn, when it opens the next turn; else the error."""
    if tag.closing or tag.name not in ROLES:
        if tag.name in CALL_TAGS and not tag.closing:
            problem = " is outside any turn: calls go inside <assistant>"
            raise _problem(text, tag.start, tag.raw, problem)
        problem = ": between turns only <system>, <user>, <assistant> and <tool> may open"
        raise _problem(text, tag.start, f"unexpected {tag.raw}", problem)
    return tag


def parse_refined(
    text: str, call_ids: CallIds | None = None, *, exact: bool = False
) -> tuple[list[Tool], list[Message]]:
    """Read a refinement (or synthesizer) reply: ``<toolsets>`` then the conversation."""
    opening = _opener("toolsets").search(text)
    if opening is None:
        raise ParseError("the reply has no <toolsets> block before the conversation")
    closing = _closing(text, "toolsets", opening.end(), len(text))
    if closing is None:
        raise _problem(text, opening.start(), "<toolsets> opened", " is never closed")
    offset, content = opening.end(), text[opening.end() : closing.start]
    raw_tools = loads_lenient(
        content,
        lambda: f"<toolsets> at {_where(text, offset)}",
        lambda pos: _at(text, offset + pos),
    )
    if not isinstance(raw_tools, list):
        raise ParseError("<toolsets> must hold a JSON list of tool definitions")
    tools = []
    for index, raw in enumerate(raw_tools):
        try:
            tools.append(Tool.from_any(raw))
        except ToolSchemaError as exc:
            raise ParseError(f"<toolsets> tool {index}: {exc}") from None
    # read from the end of <toolsets> on, so that errors in the conversation give the reply's lines
    return tools, _conversation(text, closing.end, call_ids, exact)


# --------------------------------------------------------------------------- rendering


_CALL_JSON = json.JSONEncoder(ensure_ascii=False)
"""What ``json.dumps(..., ensure_ascii=False)`` uses, built once: building it per call was
a third of rendering a conversation (a prompt of refinement and of the judge)."""
_ENCODE_STR: Callable[[str], str] = json.encoder.encode_basestring
"""How ``_CALL_JSON`` writes a string (the C function where there is one)."""
_C_MAKE_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_C_CALL_JSON: Any = (
    None
    if _C_MAKE_ENCODER is None
    else _C_MAKE_ENCODER(
        None,  # no memo of the containers being written: nothing shared between threads
        _CALL_JSON.default,
        _ENCODE_STR,
        None,
        _CALL_JSON.key_separator,
        _CALL_JSON.item_separator,
        False,
        False,
        True,
    )
)
"""The C encoder ``_CALL_JSON.encode`` makes for each value, made once (``None`` without
the C accelerator), without the circular-reference check."""


def _call_json(value: dict[str, Any]) -> str:
    """``_CALL_JSON.encode(value)`` without its Python layers (``encode``, ``iterencode``
    and the encoder made per value): 20k -> 10k instructions per call. A value nested
    past the recursion limit, circular ones included, goes to ``encode`` for its own
    error ("Circular reference detected", or RecursionError as before)."""
    if _C_CALL_JSON is None:
        return _CALL_JSON.encode(value)
    try:
        return "".join(_C_CALL_JSON(value, 0))
    except RecursionError:
        return _CALL_JSON.encode(value)


def _func(call: ToolCall) -> str:
    """``<func>`` and the call's ``{"name": ..., "arguments": ...}`` as ``_call_json`` writes
    that object, its two keys written here (no dict made and walked per call)."""
    name = call.name
    written = _ENCODE_STR(name) if isinstance(name, str) else _call_json(name)
    return f'<func>{{"name": {written}, "arguments": {_call_json(call.arguments)}}}</func>'


def render_conversation(messages: Iterable[Message], *, exact: bool = False) -> str:
    """Write messages in the tag format (the inverse of :func:`parse_conversation`).

    An assistant turn's reasoning comes first, in ``<think>``. ``exact`` writes
    each text as it is, for ``parse_conversation(..., exact=True)`` to give it
    back unchanged; otherwise a space parts an assistant's text from its calls.
    """
    turns = []
    for m in messages:
        role = m.role  # each field read once: a record's attributes are slow to read
        if role == "assistant":
            content, reasoning = m.content, m.reasoning
            parts = [content] if content else []
            for call in m.tool_calls:
                parts.append(_func(call))
            thought = f"<{REASONING_TAG}>{reasoning}</{REASONING_TAG}>" if reasoning else ""
            turns.append(f"<assistant>{thought}{('' if exact else ' ').join(parts)}</assistant>")
        else:
            turns.append(f"<{role}>{m.content}</{role}>")
    return "\n".join(turns)


def render_toolsets(tools: Sequence[Tool]) -> str:
    """``<toolsets>[...]</toolsets>`` with MCP-style tool definitions."""
    body = json.dumps([t.to_mcp() for t in tools], ensure_ascii=False, indent=1)
    return f"<toolsets>{body}</toolsets>"


def dump(trajectory: Trajectory) -> dict[str, Any]:
    """``{"id", "text"}``: ``<toolsets>`` then the conversation (the synthesizer's target)."""
    conversation = render_conversation(trajectory.messages, exact=True)
    return {"id": trajectory.id, "text": render_toolsets(trajectory.tools) + "\n" + conversation}


def load(record: dict[str, Any]) -> Trajectory:
    """Read ``{"id", "text"}`` in the tag format (call IDs are assigned anew)."""
    text = record.get("text") if isinstance(record, dict) else None
    if not isinstance(text, str):
        raise ParseError("a GEM tag record needs a 'text' string")
    check_depth(record)
    tools, messages = parse_refined(text, exact=True)
    return renumber_calls(
        Trajectory(id=str(record.get("id") or ""), tools=tuple(tools), messages=tuple(messages))
    )


def _is_tag_record(record: Mapping[str, Any]) -> bool:
    text = record.get("text")
    return isinstance(text, str) and "<toolsets>" in text


FORMAT = Format(
    name="gem",
    description="JSONL: <toolsets> and the GEM tag conversation (the synthesizer's target)",
    dump=dump,
    load=load,
    recognise=_is_tag_record,
)
"""The ``gem`` entry of the format registry."""
