"""Validating arguments against model-written JSON Schemas, with every regex bounded.

A tool schema a model wrote is hostile input. Plain ``jsonschema`` runs its
``pattern`` and ``patternProperties`` regexes with Python's backtracking
``re``, where ``^(a+)+$`` against 34 characters takes minutes and cannot be
interrupted; it also fetches ``$ref`` URLs over the network. The validator
built here:

- runs every regex with the ``regex`` module and a time limit
  (:data:`REGEX_SECONDS`), and refuses up front patterns whose counted repeats
  (``{m,n}``) multiply past :data:`MAX_EXPANSION`, which would make even
  compiling them slow;
- follows only references inside the schema itself.

A pattern that is refused or runs out of time raises :class:`RegexTooCostly`
naming it; :func:`~gemlib.validation.checks.valid_arguments` turns that into a
problem, so the item is rejected with the tool and pattern named.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import regex
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import extend
from referencing import Registry

from gemlib.errors import GemlibError
from gemlib.model.tool_schema import MAX_PATTERN_CHARS
from gemlib.validation.fast_schema import Test, quick_check

__all__ = [
    "MAX_EXPANSION",
    "REGEX_SECONDS",
    "TOTAL_REGEX_SECONDS",
    "RegexTooCostly",
    "argument_checks",
    "argument_validator",
    "regex_budget",
    "runs_regexes",
]

REGEX_SECONDS = 0.5
"""Time allowed for one regex search of one string."""
TOTAL_REGEX_SECONDS = 2.0
"""Time allowed for all regex searches of one :func:`regex_budget` block (one trajectory)."""
MAX_EXPANSION = 100_000
"""Largest product of nested counted repeats (``(a{100}){100}`` is 10,000) a pattern may have."""


class RegexTooCostly(GemlibError):
    """A schema's regex ran past :data:`REGEX_SECONDS` or was refused as too costly to compile."""

    def __init__(self, pattern: str, problem: str) -> None:
        self.pattern = pattern
        self.problem = problem
        shown = pattern if len(pattern) <= 80 else pattern[:77] + "..."
        super().__init__(f"pattern {shown!r} {problem}")


def _quantifier(pattern: str, at: int) -> tuple[int, int]:
    """``(count, end)`` of a counted repeat ``{m}``, ``{m,}`` or ``{m,n}`` at ``at``, or (1, at)."""
    match = regex.match(r"\{(\d*)(?:,(\d*))?\}", pattern[at:])
    if match is None or not (match.group(1) or match.group(2)):
        return 1, at
    counts = [int(g) for g in match.groups() if g]
    return max([*counts, 1]), at + match.end()


def _skip_class(pattern: str, at: int) -> int:
    """The index just past the character class that opens at ``at``."""
    i = at + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


def expansion(pattern: str) -> int:
    """An upper bound of how far counted repeats multiply any part of ``pattern``.

    ``a{3}`` gives 3, ``(a{10}b){20}`` gives 200. The ``regex`` module expands
    counted repeats when compiling, so this is what its compile time grows with.
    """
    frames = [1]  # for each open group: the largest product met inside it so far
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "(":
            frames.append(1)
            i += 1
            continue
        if char == ")" and len(frames) > 1:
            value = frames.pop()
            i += 1
        elif char == "[":
            value, i = 1, _skip_class(pattern, i)
        elif char == "\\":
            braced = pattern[i + 1 : i + 2] in ("p", "P", "N", "x", "u") and (
                pattern[i + 2 : i + 3] == "{"
            )
            i = pattern.find("}", i) + 1 if braced else i + 2
            value = 1
            if i <= 0:
                break
        else:
            value, i = 1, i + 1
        count, i = _quantifier(pattern, i)
        frames[-1] = max(frames[-1], value * count)
    return max(frames)


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise RegexTooCostly(
            pattern, f"is {len(pattern):,} characters long (at most {MAX_PATTERN_CHARS:,})"
        )
    if expansion(pattern) > MAX_EXPANSION:
        raise RegexTooCostly(
            pattern, f"has counted repeats multiplying past {MAX_EXPANSION:,}: too costly to run"
        )
    try:
        return regex.compile(pattern)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        raise RegexTooCostly(pattern, f"cannot be compiled ({exc})") from None


_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "gemlib_regex_deadline", default=None
)


@contextlib.contextmanager
def regex_budget(seconds: float = TOTAL_REGEX_SECONDS) -> Iterator[None]:
    """Bound the time of every :func:`search` inside the block together to ``seconds``.

    Each search is bounded alone, but an array of a thousand strings each just
    under the limit would still take minutes.
    """
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches in ``text``; :class:`RegexTooCostly` past the limits."""
    limit = REGEX_SECONDS
    deadline = _deadline.get()
    if deadline is not None:
        limit = min(limit, deadline - time.monotonic())
    over_budget = RegexTooCostly(
        pattern, f"and the schema's other regexes ran longer than {TOTAL_REGEX_SECONDS} s together"
    )
    if limit <= 0:
        raise over_budget
    try:
        found = _compiled(pattern).search(text, timeout=limit, concurrent=True)
        return found is not None
    except TimeoutError:
        if limit < REGEX_SECONDS:
            raise over_budget from None
        raise RegexTooCostly(
            pattern,
            f"ran longer than {REGEX_SECONDS} s on a {len(text):,}-character string "
            "(catastrophic backtracking)",
        ) from None


def _pattern(
    validator: Validator, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for name, value in instance.items():
            if search(pattern, name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


_STANDARD = Draft202012Validator.VALIDATORS


def _additional_properties(
    validator: Validator, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    # The standard keyword matches patternProperties with `re`: match them here
    # instead, and hand it only the names no pattern matched.
    if validator.is_type(instance, "object") and "patternProperties" in schema:
        patterns = list(schema["patternProperties"])
        instance = {k: v for k, v in instance.items() if not any(search(p, k) for p in patterns)}
        schema = {k: v for k, v in schema.items() if k != "patternProperties"}
    yield from _STANDARD["additionalProperties"](validator, additional, instance, schema)


def _unevaluated_properties(
    validator: Validator, unevaluated: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    # The standard keyword matches every patternProperties it can reach with
    # `re`; schemas combining the two are not validated rather than risked.
    if not validator.is_type(instance, "object"):
        return
    yield ValidationError(
        "unevaluatedProperties together with patternProperties is not supported "
        "in a model-written schema (its regexes could not be bounded in time)"
    )


_Bounded: Any = extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)
_BoundedNoUnevaluated: Any = extend(  # type: ignore[no-untyped-call]
    _Bounded, {"unevaluatedProperties": _unevaluated_properties}
)
_LOCAL_ONLY: Registry[Any] = Registry()


def _keywords(schema: Any) -> set[str]:
    """Every key used anywhere in ``schema`` (iteratively; schemas are depth-bounded anyway)."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            found.update(str(k) for k in node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


@functools.lru_cache(maxsize=4096)
def _validator(canonical_schema: str) -> Validator:
    schema = json.loads(canonical_schema)
    keywords = _keywords(schema)
    risky = {"patternProperties", "unevaluatedProperties"} <= keywords
    cls = _BoundedNoUnevaluated if risky else _Bounded
    validator: Validator = cls(schema, registry=_LOCAL_ONLY)
    return validator


def runs_regexes(schema: Mapping[str, Any]) -> bool:
    """Whether validating against ``schema`` may run a regex (``pattern`` or
    ``patternProperties`` anywhere in it, also as a property's name)."""
    return not _keywords(schema).isdisjoint(("pattern", "patternProperties"))


def argument_checks(schema: Mapping[str, Any]) -> tuple[Validator, Test | None]:
    """The :func:`argument_validator` of ``schema`` and, for a plain schema, a quick test
    that says ``True`` only when the validator would find no error (see
    :mod:`~gemlib.validation.fast_schema`)."""
    canonical = json.dumps(schema, sort_keys=True)
    return _validator(canonical), quick_check(canonical)


def argument_validator(schema: Mapping[str, Any]) -> Validator:
    """A Draft 2020-12 validator for ``schema`` with bounded regexes and no remote ``$ref``.

    Its ``iter_errors`` raises :class:`RegexTooCostly` for a pattern past the
    limits, and ``referencing``'s ``Unresolvable`` for a ``$ref`` outside the
    schema.
    """
    return _validator(json.dumps(schema, sort_keys=True))
