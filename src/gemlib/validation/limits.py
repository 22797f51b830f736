"""Numeric limits stated in the system prompt, checked against the calls and replies.

:func:`read_limits` reads sentences such as "Each reservation can have at most
five passengers", "no more than $500", "The maximum amount of data that can be
refueled is 2GB", "a day holds at most six blocks" or "at least 3 nights" into
:class:`Limit` objects: a bound (``max`` or ``min``), a number (digits or a
number word up to twenty), a unit (``$``, ``%``, a unit word such as ``gb`` or
``hours``) and the nouns it applies to. Time windows ("within 30 days") are
not read: checking them needs dates the calls rarely carry.

:func:`prompt_limits` (rule ``prompt_limit``) flags, at the assistant message,
a call whose argument crosses a limit (a value named like the limit's noun, or
a money value under a ``$`` limit; a list is counted; a number under an ID's
name, such as ``order_id``, is none), and an assistant write
made after a tool reply that reported a value across a limit. Hours and
minutes convert into each other. Parsing is bounded: each sentence is cut to
400 characters and the patterns have no nested repetition.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import attrs

from gemlib.model import Problem, Trajectory
from gemlib.validation._facts import facts
from gemlib.validation._names import is_id_key
from gemlib.validation._numbers import as_float
from gemlib.validation.checks import Check
from gemlib.validation.grounding import _WORD_VALUES
from gemlib.validation.ledger import is_error_reply, reply_json
from gemlib.validation.tool_kinds import ToolKinds, name_words

__all__ = ["Limit", "limit_cues", "prompt_limits", "read_limits"]

_MAX = (
    r"at most|no more than|not more than|up to|a maximum of|maximum of|cannot exceed|"
    r"can't exceed|may not exceed|must not exceed|not exceed|limit of|limited to"
)
_MIN = r"at least|no less than|no fewer than|a minimum of|minimum of"
_UNIT_WORDS = (
    "gb|mb|kb|tb|hours|hour|hrs|hr|minutes|minute|min|days|day|nights|night|km|miles|mile|"
    "kg|lbs|lb|degrees|degree|usd|dollars|dollar"
)
_NUMBER = (
    r"(?P<number>\d[\d,]*(?:\.\d+)?|"
    + "|".join(_WORD_VALUES)
    + rf")\s?(?P<unit>%|(?:{_UNIT_WORDS})\b)?"
)
_CUE = re.compile(rf"\b(?P<bound>{_MAX}|{_MIN})\b", re.IGNORECASE)
_AFTER = re.compile(rf"^\s*(?:is\s+|of\s+|to\s+)?(?P<dollar>\$)?\s?{_NUMBER}", re.IGNORECASE)
_IS = re.compile(
    rf"\b(?P<bound>maximum|max|limit|cap|minimum)\b(?P<what>[^.!?\n]{{0,80}}?)\s(?:is|are)\s+"
    rf"(?P<dollar>\$)?\s?{_NUMBER}",
    re.IGNORECASE,
)
_KEYWORDS = (
    "most", "more", "up to", "max", "exceed", "limit", "least", "less", "fewer", "minimum", "cap"
)  # fmt: skip
"""A word of every bound phrase of ``_CUE`` and ``_IS``: ASCII text with none of them
(in any case) states no bound, so it is not searched."""
_TAIL_WORDS = re.compile(r"[A-Za-z]+")
_ANY_NUMBER = re.compile(r"\d|\b(?:" + "|".join(_WORD_VALUES) + r")\b", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?\n]+")
_MONEY = frozenset(
    [
        "amount",
        "price",
        "cost",
        "total",
        "refund",
        "payment",
        "balance",
        "fee",
        "charge",
        "budget",
        "value",
    ]
)
_UNITS = {"hour": 60.0, "hours": 60.0, "hr": 60.0, "hrs": 60.0, "minute": 1.0, "minutes": 1.0}
"""Minutes per unit."""
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "for",
        "per",
        "each",
        "in",
        "on",
        "at",
        "by",
        "is",
        "be",
        "are",
        "can",
        "may",
        "and",
        "or",
        "your",
        "their",
        "that",
        "which",
        "will",
        "allowed",
        "amount",
        "number",
        "total",
    ]
)


@attrs.frozen
class Limit:
    """One numeric limit: ``bound`` (max or min), ``value``, ``unit``, the ``nouns`` it is about."""

    bound: Literal["max", "min"]
    value: float
    nouns: frozenset[str]
    unit: str = ""
    sentence: str = ""

    def crossed_by(self, value: float) -> bool:
        """Whether ``value`` lies beyond the limit."""
        return value > self.value if self.bound == "max" else value < self.value


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def _may_bound(text: str) -> bool:
    """Whether ``text`` may hold a bound phrase: any text that is not ASCII (where
    case-blind matching has more than ASCII's cases), or ASCII with a bound's keyword."""
    if not text.isascii():
        return True
    low = text.lower()
    for word in _KEYWORDS:  # noqa: SIM110  # no generator: this runs for every sentence
        if word in low:
            return True
    return False


def _states_bound(sentence: str) -> bool:
    """Whether a sentence's first 400 characters state a bound next to a number."""
    head = sentence[:400]
    return (
        _may_bound(head)
        and (_CUE.search(head) is not None or _IS.search(head) is not None)
        and _ANY_NUMBER.search(head) is not None
    )


def limit_cues(text: str) -> list[str]:
    """The sentences of ``text`` that state a bound next to a number (what could be read)."""
    if not _may_bound(text):
        return []
    return [s.strip()[:400] for s in _SENTENCE.findall(text) if _states_bound(s)]


def read_limits(text: str) -> list[Limit]:
    """Every numeric limit the sentences of ``text`` state (see the module docstring)."""
    limits: list[Limit] = []
    for sentence in limit_cues(text):
        for cue in _CUE.finditer(sentence):
            after = _AFTER.match(sentence[cue.end() :])
            if after is not None:
                rest = sentence[cue.end() + after.end() :]
                words = (
                    _TAIL_WORDS.findall(rest)[:3]
                    or _TAIL_WORDS.findall(sentence[: cue.start()])[-3:]
                )
                limit = _limit(cue["bound"], after, words, sentence)
                if limit is not None:
                    limits.append(limit)
        for stated in _IS.finditer(sentence):  # "the maximum amount of data ... is 2GB"
            limit = _limit(stated["bound"], stated, _TAIL_WORDS.findall(stated["what"]), sentence)
            if limit is not None:
                limits.append(limit)
    return limits


def _limit(bound: str, match: re.Match[str], words: list[str], sentence: str) -> Limit | None:
    raw = match["number"].lower().replace(",", "")
    value = _WORD_VALUES.get(raw)
    if value is None:
        try:
            value = float(raw)
        except ValueError:
            return None
    unit = (match["unit"] or "").lower()
    if match["dollar"] or unit in ("usd", "dollar", "dollars"):
        unit = "$"
    nouns = {_singular(w.lower()) for w in words if w.lower() not in _STOP and len(w) > 2}
    if unit and unit not in ("$", "%"):
        nouns.add(_singular(unit))
    kind: Literal["max", "min"] = (
        "min"
        if bound.lower().startswith(("at least", "no less", "no fewer", "a minimum", "minimum"))
        else "max"
    )
    return Limit(kind, value, frozenset(nouns), unit, sentence)


def _numbers(value: Any, key: str = "") -> Iterator[tuple[str, float]]:
    """``(key, number)`` for numeric leaves, and list lengths under their key; a number
    under an ID's name (``order_id=5``) names something, it is no quantity."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, str(k))
    elif isinstance(value, list):
        if key:
            yield key, float(len(value))
        for item in value:
            if isinstance(item, (dict, list)):
                yield from _numbers(item, key)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and not is_id_key(key):
        yield key, as_float(value)  # an integer too large for a float: an infinity


def _applies(limit: Limit, key: str) -> float | None:
    """The factor to bring a value under ``key`` into the limit's unit, or ``None``."""
    words = {_singular(w) for w in name_words(key)}
    if limit.unit == "$":
        return 1.0 if words & _MONEY else None
    if limit.unit in _UNITS:  # a duration: minutes and hours convert
        for word in ("minute", "hour"):
            if word in words:
                return _UNITS[word] / _UNITS[limit.unit]
    return 1.0 if words & limit.nouns else None


@attrs.frozen
class _PromptLimits:
    rule: ClassVar[str] = "prompt_limit"
    kinds: ToolKinds = attrs.field(factory=ToolKinds)

    def __call__(self, trajectory: Trajectory) -> Iterator[Problem]:
        known = facts(trajectory)
        turns = known.turns
        if not turns or turns[0][0] != "system":
            return
        limits = read_limits(turns[0][1])
        if not limits:
            return
        parse = known.loads
        reported: list[tuple[int, str]] = []  # crossings tool replies reported
        for index, (role, content, calls, _, _) in enumerate(turns):
            if role == "tool":
                reply = reply_json(content, parse)
                if not is_error_reply(reply):
                    reported += [(index, text) for text in _crossings(limits, reply)]
            for call in calls:
                for text in _crossings(limits, call.arguments):
                    yield Problem(
                        rule=self.rule, message_index=index, text=f"call {call.name}: {text}"
                    )
                if reported and self.kinds.kind(call.name) == "write":
                    at, text = reported[-1]
                    yield Problem(
                        rule=self.rule,
                        message_index=index,
                        text=f"call {call.name} proceeds after message {at} reported {text}",
                    )
                    reported = []
            if role == "user":
                reported = []  # the user may have been told and agreed to something else


def _crossings(limits: list[Limit], value: Any) -> Iterator[str]:
    for key, number in _numbers(value):
        for limit in limits:
            factor = _applies(limit, key)
            if factor is not None and limit.crossed_by(number * factor):
                word = "at most" if limit.bound == "max" else "at least"
                unit = limit.unit if limit.unit not in ("", "$") else ""
                amount = f"${limit.value:g}" if limit.unit == "$" else f"{limit.value:g} {unit}"
                yield (
                    f"{key}={number:g} crosses the system prompt's limit "
                    f"({word} {amount.strip()}: {limit.sentence!r})"
                )
                break


def prompt_limits(*, kinds: ToolKinds | None = None) -> Check:
    """Numeric limits in the system prompt that calls cross, or that the assistant ignores."""
    return _PromptLimits(kinds or ToolKinds())
