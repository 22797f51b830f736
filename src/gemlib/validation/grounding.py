"""Grounding and consistency: are the assistant's argument values given, or invented?

A value is *given* when it appears in the system prompt, an earlier user
message or an earlier tool reply, or when the tool's schema offers it (an
``enum`` member, ``const``, the ``default``, or a word the parameter's own
description names, as in "Can be 'START' or 'STOP'"). Comparison is forgiving where
it should be: case, whitespace and ``_``/``-`` separators are ignored; a
leading ``@`` or ``#`` is ignored, and a value of four or more letters and
digits also matches with all punctuation and spaces removed ("#CurrentTechTrend"
matches "current tech trend"); numbers match numerically in any format
("1,000", "1000.0") or as words up to twenty, and minutes or seconds match
hours or minutes when the conversation speaks of them ("4 hours" gives 240);
0 and 1 always count as given ("the last line"), as do the path steps ``.``,
``..``, ``/`` and ``~``; an ISO date matches its spelled-out forms ("2 December",
"December 2") and "06:30" matches "6:30". Text must match from the start of a
word ("mon" matches "Monday", not "lemon"). What the assistant said counts as
given once the user has answered it (a proposal the user confirmed). Only single
tokens and numbers are checked: booleans are never checked, and neither is
text of several words, which the assistant composes legitimately (the LLM
judge's R1 rubric covers invented values inside such text).

Consistency: when a tool returned a value under an ID-like key (``id``,
``order_id``...) and a later call passes another value under the same key that
nothing in the conversation gives, the ID was silently changed. A call that
passes several different values under one key (a booking paid with four
payment methods, each with its ``payment_id``) lists several entities: none of
them is a changed ID (whether each is given is the grounding check's concern).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import attrs

from gemlib.model import Problem, Trajectory
from gemlib.validation._facts import facts
from gemlib.validation._names import short_memo
from gemlib.validation._numbers import comparable
from gemlib.validation.checks import Check

__all__ = ["consistent_ids", "grounded"]

_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?![\d])")
_SEPARATORS = re.compile(r"[\s_\-]+")
_NON_ALNUM = re.compile(r"[\W_]+")
_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]
_ALWAYS_GIVEN = {0.0, 1.0}
_PATH_STEPS = {".", "..", "/", "~"}


def _norm(text: str) -> str:
    """``text`` in NFKC, lower case, with each run of whitespace as one space and none
    at either end."""
    if not text.isascii():  # NFKC leaves ASCII as it is
        text = unicodedata.normalize("NFKC", text)
    else:  # line ends as spaces: a prompt's lines are printable ASCII too
        plain = text.replace("\n", " ")
        if plain.isprintable() and "  " not in plain and plain[:1] != " " and plain[-1:] != " ":
            return plain.lower()  # the only whitespace of printable ASCII is the space: runs of one
    return " ".join(text.lower().split())


def _loose(text: str) -> str:
    return _SEPARATORS.sub(" ", _norm(text)).strip()


_WORD_VALUES = {word: float(value) for value, word in enumerate(_WORDS)}
_WORD_TOKEN = re.compile(r"\w+")


def _numbers(text: str) -> set[float]:
    words = set(_WORD_TOKEN.findall(text.lower())) & _WORD_VALUES.keys()
    found = {_WORD_VALUES[word] for word in words}
    for token in _NUMBER.findall(text):
        try:
            found.add(float(token.replace(",", "")))
        except ValueError:
            continue
    return found


def _date_forms(value: str) -> list[str]:
    time = re.fullmatch(r"0(\d):(\d\d)", value)
    if time:
        return [f"{time[1]}:{time[2]}"]
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return []
    month = day.strftime("%B").lower()
    return [
        f"{day.day} {month}",
        f"{month} {day.day}",
        f"{day.day}/{day.month}/{day.year}",
        f"{day.month}/{day.day}/{day.year}",
    ]


_NEWEST = 8
"""Contents a :class:`_Parts` search looks at on their own before the whole text."""


@attrs.define
class _Parts:
    """One form of the conversation's contents (normalised, loose or compact), one
    part per content, with no newline in any part.

    A needle holds no newline either (it is put in the same form), so a match lies
    within one part, and a part's start is a word start. The newest parts are
    searched on their own first, then the whole text, joined (each part after a
    newline) only then: in a long conversation, a value is mostly one a recent reply
    gave, and the whole text is neither searched nor copied for it. Each content is
    put in form (``form``) when it is first searched: a long system prompt that gives
    none of the values is never normalised.
    """

    form: Callable[[str], str]
    raw: list[str] = attrs.field(factory=list)
    """The contents as they came."""
    parts: list[str | None] = attrs.field(factory=list)
    """Each content in form, or ``None`` until it is first searched."""
    _formed: int = 0
    """Every part before this index is in form."""
    _text: str = ""
    _upto: int = 0

    def add(self, content: str) -> None:
        """Append a content (put in form when first searched)."""
        self.raw.append(content)
        self.parts.append(None)

    def part(self, index: int) -> str:
        """The part at ``index``, in form."""
        part = self.parts[index]
        if part is None:
            part = self.parts[index] = self.form(self.raw[index])
        return part

    def every(self) -> list[str]:
        """Every part, in form."""
        parts, form, raw = self.parts, self.form, self.raw
        for index in range(self._formed, len(parts)):
            if parts[index] is None:
                parts[index] = form(raw[index])
        self._formed = len(parts)
        return parts  # type: ignore[return-value]  # none is None any more

    @property
    def text(self) -> str:
        """Every part, each after a newline."""
        if self._upto < len(self.parts):
            self._text += "".join("\n" + part for part in self.every()[self._upto :])
            self._upto = len(self.parts)
        return self._text

    def _newest(self) -> range:
        """The indexes of the newest parts, newest first."""
        count = len(self.parts)
        return range(count - 1, max(count - _NEWEST, 0) - 1, -1)

    def starts_word(self, needle: str) -> bool:
        """:func:`_starts_word` of ``needle`` in :attr:`text`."""
        if not needle:
            return False
        parts = self.parts
        count = len(parts)
        for index in range(count - 1, max(count - _NEWEST, 0) - 1, -1):  # _newest(), inline
            part = parts[index]
            if part is None:
                part = parts[index] = self.form(self.raw[index])  # part(index), inline
            at = part.find(needle)  # the first match, here: mostly the only one looked at
            if at == 0 or (at > 0 and not part[at - 1].isalnum()):
                return True
            if at > 0 and _starts_word(needle, part):
                return True
        return _starts_word(needle, self.text)

    def contains(self, needle: str) -> bool:
        """Whether ``needle`` is in :attr:`text`."""
        for index in self._newest():
            if needle in self.part(index):
                return True
        return needle in self.text


def _loose_form(normal: str) -> str:
    return _SEPARATORS.sub(" ", normal).strip()


def _compact_form(normal: str) -> str:
    return _NON_ALNUM.sub("", normal)


@attrs.define
class _Context:
    """What the conversation has given so far.

    Each content is normalised once, when a value is first searched in it; the
    looser forms (separators as spaces, punctuation dropped, numbers) are built
    only when a value is not found in the plain text, which is rare.
    """

    _normal: _Parts = attrs.field(factory=lambda: _Parts(_norm))
    _loose_parts: _Parts | None = None
    _compact_parts: _Parts | None = None
    _numbers: set[float] = attrs.field(factory=lambda: set(_ALWAYS_GIVEN))
    _numbers_upto: int = 0
    _given: set[tuple[type, Any]] = attrs.field(factory=set)
    """Values found given: the text only grows, so they stay given."""

    def add(self, content: str) -> None:
        normal = self._normal  # _Parts.add, inline: this runs for every content
        normal.raw.append(content)
        normal.parts.append(None)

    def extend(self, contents: list[str]) -> None:
        """Add the contents of ``contents`` past those added so far (``contents`` only
        grows: the conversation so far)."""
        for content in contents[len(self._normal.raw) :]:
            self._normal.add(content)

    def _derived(self, parts: _Parts) -> _Parts:
        """``parts`` (a form of the normalised contents) with every content so far."""
        normal = self._normal.every()
        for content in normal[len(parts.raw) :]:
            parts.add(content)
        return parts

    @property
    def loose(self) -> _Parts:
        """The contents with runs of separators (space, ``_``, ``-``) as one space."""
        if self._loose_parts is None:
            self._loose_parts = _Parts(_loose_form)
        return self._derived(self._loose_parts)

    @property
    def compact(self) -> _Parts:
        """The contents with everything but letters and digits dropped."""
        if self._compact_parts is None:
            self._compact_parts = _Parts(_compact_form)
        return self._derived(self._compact_parts)

    @property
    def numbers(self) -> set[float]:
        """Every number the text gives, in digits or as a word."""
        raw = self._normal.raw
        for content in raw[self._numbers_upto :]:
            self._numbers |= _numbers(content)
        self._numbers_upto = len(raw)
        return self._numbers

    def _number(self, value: float) -> bool:
        if value in self.numbers:
            return True
        normal = self._normal
        for unit, factor in (("hour", 60.0), ("minute", 60.0)):
            if value % factor == 0 and value / factor in self.numbers and normal.contains(unit):
                return True
        return False

    def gives(self, value: Any) -> bool:
        """Whether the conversation so far gives ``value`` (see the module docstring)."""
        if type(value) not in _SCALAR_TYPES and not isinstance(value, _SCALARS):
            return self._finds(value)  # built in Python, maybe not hashable: not kept
        key = (type(value), value)
        if key in self._given:
            return True
        if self._finds(value):
            self._given.add(key)
            return True
        return False

    def _finds(self, value: Any) -> bool:
        if type(value) is not str and isinstance(value, (int, float)):
            number = comparable(value)  # an integer too large for a float: its digits
            if isinstance(number, float) and self._number(number):
                return True
            return self._normal.starts_word(_norm(str(value)))
        text = str(value).strip()
        if text in _PATH_STEPS:
            return True
        bare = text.lstrip("@#")
        if self._normal.starts_word(_norm(bare)) or self.loose.starts_word(_loose(bare)):
            return True
        compact = _NON_ALNUM.sub("", _norm(bare))
        if len(compact) >= 4 and self.compact.contains(compact):
            return True
        return any(self._normal.starts_word(form) for form in _date_forms(text))


_SCALARS = (str, int, float)
_SCALAR_TYPES = frozenset(_SCALARS)
"""The values whose answer :meth:`_Context.gives` keeps (what JSON holds, all hashable)."""


def _starts_word(needle: str, haystack: str) -> bool:
    """``needle`` occurs in ``haystack`` starting at the start of a word (not after a
    letter or digit)."""
    if not needle:
        return False
    at = haystack.find(needle)
    while at >= 0:
        if at == 0 or not haystack[at - 1].isalnum():
            return True
        at = haystack.find(needle, at + 1)
    return False


def _checked(value: Any) -> bool:
    """Whether a leaf value is the kind that must be given (IDs, numbers, names...)."""
    if isinstance(value, str):
        return len(value.split()) == 1
    if isinstance(value, (int, float)):
        return value is not True and value is not False  # bool has no subclass
    return False


_NO_SCHEMA: dict[str, Any] = {}
"""The subschema of a value the schema says nothing about (never changed)."""


def _ungiven(
    found: list[tuple[str, Any]], value: Any, schema: dict[str, Any], path: str, context: _Context
) -> None:
    """Append ``(path, leaf)`` for each scalar in ``value``, in order, that must be given
    (:func:`_checked`) and that neither its subschema (``schema`` walked along, nothing
    where it says nothing) offers nor ``context`` gives. A leaf's path is built only
    when it is appended."""
    if isinstance(value, dict):
        props = schema.get("properties", _NO_SCHEMA) if isinstance(schema, dict) else _NO_SCHEMA
        for key, item in value.items():
            sub = props.get(key, _NO_SCHEMA)
            sub = sub if type(sub) is dict or isinstance(sub, dict) else _NO_SCHEMA
            kind = type(item)
            if kind is str or _leaf_checked(item):  # a leaf (a string: no container)
                if (
                    (kind is not str or len(item.split()) == 1)  # _leaf_checked's string case
                    and not (sub and not _OFFERING.isdisjoint(sub) and _offered(item, sub))
                    and not context.gives(item)
                ):
                    found.append((f"{path}.{key}", item))
            elif kind is dict or kind is list or isinstance(item, _CONTAINERS):
                _ungiven(found, item, sub, f"{path}.{key}", context)
    elif isinstance(value, list):
        items = schema.get("items", _NO_SCHEMA) if isinstance(schema, dict) else _NO_SCHEMA
        if isinstance(items, dict) and "description" not in items and "description" in schema:
            items = {**items, "description": schema["description"]}  # "possible values: ..."
        sub = items if isinstance(items, dict) else _NO_SCHEMA
        for i, item in enumerate(value):
            if _leaf_checked(item):
                if not _offered(item, sub) and not context.gives(item):
                    found.append((f"{path}[{i}]", item))
            elif type(item) is dict or type(item) is list or isinstance(item, _CONTAINERS):
                _ungiven(found, item, sub, f"{path}[{i}]", context)
    elif _checked(value) and not _offered(value, schema) and not context.gives(value):
        found.append((path, value))


def _leaf_checked(item: Any) -> bool:
    """Whether ``item`` is no mapping or list and :func:`_checked` (a string's and a
    number's exact type answers without ``isinstance``)."""
    kind = type(item)
    if kind is str:
        return len(item.split()) == 1
    if kind is int or kind is float:
        return True
    if kind is bool or kind is dict or kind is list or item is None:
        return False
    return not isinstance(item, _CONTAINERS) and _checked(item)


_OFFERING = frozenset({"enum", "default", "const", "description"})
"""The keywords by which a subschema can offer a value (:func:`_offered`)."""


def _offered(value: Any, schema: dict[str, Any]) -> bool:
    if not schema or _OFFERING.isdisjoint(schema):
        return False
    if value in schema.get("enum", ()) or ("default" in schema and schema["default"] == value):
        return True
    if "const" in schema and schema["const"] == value:
        return True
    description = schema.get("description")
    if isinstance(value, str) and isinstance(description, str) and value.strip():
        return _names_word(value.strip(), description)
    return False


def _names_word(word: str, text: str) -> bool:
    """Whether ``word`` occurs in ``text`` with no word character (``\\w``: a letter,
    digit or ``_``) just before or after it: ``re.search(rf"(?<!\\w){re.escape(word)}(?!\\w)",
    text)``, without building a pattern for every value."""
    end = len(word)
    at = text.find(word)
    while at >= 0:
        before = text[at - 1] if at else ""
        after = text[at + end : at + end + 1]
        if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
            return True
        at = text.find(word, at + 1)
    return False


@attrs.frozen
class _Grounded:
    rule: ClassVar[str] = "ungrounded_argument"

    def __call__(self, trajectory: Trajectory) -> Iterator[Problem]:
        known = facts(trajectory)
        schemas = known.parameters
        context = _Context()
        proposed: list[str] = []  # assistant text, given once the user answers it
        ungiven: list[tuple[str, Any]] = []
        for index, (role, content, calls, _, _) in enumerate(known.turns):
            for call in calls:
                schema = schemas.get(call.name, _NO_SCHEMA)
                _ungiven(ungiven, call.arguments, schema, "arguments", context)
                for path, value in ungiven:
                    yield Problem(
                        rule=self.rule,
                        message_index=index,
                        text=f"call {call.name}: {path[len('arguments.') :]}={value!r} appears "
                        "nowhere in the system prompt, earlier user messages or tool replies",
                    )
                ungiven.clear()
            if role == "user":
                for text in proposed:
                    context.add(text)
                proposed = []
            if role == "system" or role == "user" or role == "tool":
                context.add(content)
            elif content:
                proposed.append(content)


@short_memo
def _id_name(key: str) -> str:
    """``key`` in lower case when it names an ID (``id``, ``order_id``, ``orderId``),
    else ``""``."""
    low = key.lower()
    return low if low.endswith("id") else ""


_CONTAINERS = (dict, list)


def _id_values(value: Any) -> list[tuple[str, Any]]:
    """``(key, value)`` of each scalar under an ID-like key (key in lower case), in
    order; the items of a list count under the list's key."""
    found: list[tuple[str, Any]] = []
    if isinstance(value, (dict, list)):
        _collect_ids(found, value, "")
    return found


def _collect_ids(
    found: list[tuple[str, Any]], value: dict[str, Any] | list[Any], name: str
) -> None:
    """Append to ``found`` the ID values in a mapping or list that sits under ``name``."""
    if isinstance(value, dict):
        for key, item in value.items():
            kind = type(item)
            if kind in _JSON_SCALARS or not (kind is bool or isinstance(item, _CONTAINERS)):
                inner = _id_name(key if type(key) is str else str(key))
                if inner:
                    found.append((inner, item))
            elif kind is not bool:
                _collect_ids(found, item, _id_name(key if type(key) is str else str(key)))
    elif name:
        for item in value:
            kind = type(item)
            if kind in _JSON_SCALARS or not (kind is bool or isinstance(item, _CONTAINERS)):
                found.append((name, item))
            elif kind is not bool:
                _collect_ids(found, item, name)
    else:
        for item in value:
            if isinstance(item, _CONTAINERS):
                _collect_ids(found, item, name)


_JSON_SCALARS = frozenset({str, int, float, type(None)})
"""The exact types of JSON's scalars but booleans (no container, no bool)."""


def _listed(values: list[tuple[str, Any]]) -> set[str]:
    """The keys that several different values share (a list of entities, not a change)."""
    if len({key for key, _ in values}) == len(values):
        return set()  # each key once
    distinct: dict[str, set[str]] = {}
    for key, value in values:
        distinct.setdefault(key, set()).add(repr(value))
    return {key for key, seen in distinct.items() if len(seen) > 1}


@attrs.frozen
class _ConsistentIds:
    rule: ClassVar[str] = "changed_value"

    def __call__(self, trajectory: Trajectory) -> Iterator[Problem]:
        shared = facts(trajectory)
        parse = shared.loads
        returned: dict[str, list[Any]] = {}
        known: set[tuple[str, Any]] = set()  # the same, to look up without a scan
        texts: list[str] = []  # what gives a value; searched only for an ID nothing returned
        given: _Context | None = None
        for index, (role, content, calls, _, _) in enumerate(shared.turns):
            for call in calls if returned else ():  # nothing to change before a reply's ID
                values = _id_values(call.arguments)
                if not values:
                    continue
                listed = _listed(values)
                for key, value in values:
                    if key in listed:  # several different IDs in one call: a list, not a change
                        continue
                    earlier = returned.get(key)
                    if not earlier or _returned(known, earlier, key, value):
                        continue
                    if given is None:
                        given = _Context()
                    given.extend(texts)
                    if not given.gives(value):
                        yield Problem(
                            rule=self.rule,
                            message_index=index,
                            text=f"call {call.name}: {key}={value!r}, but earlier tool replies "
                            f"returned {key} {earlier[:5]!r} and nothing else gives {value!r}",
                        )
            if role == "tool":
                try:  # _json, inline
                    reply = parse(content)
                except (ValueError, TypeError):
                    reply = None
                for key, value in _id_values(reply):
                    returned.setdefault(key, []).append(value)
                    known.add((key, value))
            if role == "system" or role == "user" or role == "tool":
                texts.append(content)


def _returned(known: set[tuple[str, Any]], earlier: list[Any], key: str, value: Any) -> bool:
    """Whether a tool reply returned ``value`` under ``key`` (replies hold JSON scalars,
    kept in ``known``; a value built in Python may not be hashable, so it is looked for
    among the ``earlier`` values)."""
    try:
        return (key, value) in known
    except TypeError:
        return value in earlier


def grounded() -> Check:
    """Each checked argument value is given by the conversation or offered by the schema."""
    return _Grounded()


def consistent_ids() -> Check:
    """An ID a tool returned is not silently changed when it is used again."""
    return _ConsistentIds()
