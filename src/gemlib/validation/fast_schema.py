"""A quick yes for arguments that plainly satisfy a plain schema, before jsonschema.

Most tool schemas a teacher writes use a handful of keywords (``type``,
``properties``, ``required``, ``additionalProperties``, ``items``, string
``enum`` members, bounds). jsonschema walks such a schema with a validator
object per level, about 40 us per call; :func:`quick_check` compiles the schema
once into plain Python tests that take a few microseconds. It answers ``True``
only when jsonschema would report no error; ``False`` means "not sure", and
the caller runs jsonschema for the exact errors. Any keyword outside the
handful, a boolean subschema, or an unusual value (a tuple, a non-string key,
a float where an integer is asked for) makes it unsure, never wrong.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

__all__ = ["quick_check"]

Test = Callable[[Any], bool]

_ANNOTATIONS = frozenset(
    {"description", "title", "default", "examples", "$comment", "deprecated", "readOnly",
     "writeOnly", "format"}  # format is not asserted: gemlib's validator has no format checker
)  # fmt: skip
_HANDLED = frozenset(
    {"type", "enum", "properties", "required", "additionalProperties", "items", "minimum",
     "maximum", "minLength", "maxLength", "minItems", "maxItems"}
)  # fmt: skip
_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "integer": frozenset({int}),
    "number": frozenset({int, float}),
    "boolean": frozenset({bool}),
    "null": frozenset({type(None)}),
    "array": frozenset({list}),
    "object": frozenset({dict}),
}
"""The Python types of decoded JSON each schema type accepts (a subclass is not sure)."""


def _number(value: Any) -> bool:
    return type(value) in (int, float)


def _compile(schema: Any) -> Test | None:
    if not isinstance(schema, dict) or not set(schema) <= _HANDLED | _ANNOTATIONS:
        return None
    tests: list[Test] = []
    allowed = _allowed(schema)
    if allowed is None:
        return None
    objects = {"properties", "required", "additionalProperties"} & set(schema)
    if allowed and not (objects and allowed == _OBJECT):  # else the object test tests it
        tests.append(lambda v: type(v) in allowed)
    if "enum" in schema:
        members = schema["enum"]
        if not isinstance(members, list) or not all(type(m) is str for m in members):
            return None
        strings = frozenset(members)
        tests.append(lambda v: type(v) is str and v in strings)
    for key in ("minimum", "maximum"):
        if key in schema:
            if not _number(schema[key]):
                return None
            tests.append(_value_bound(key, schema[key]))
    for key in ("minLength", "maxLength", "minItems", "maxItems"):
        if key in schema:
            if type(schema[key]) is not int:
                return None
            tests.append(_size_bound(key, schema[key]))
    if "items" in schema:
        item = _compile(schema["items"])
        if item is None:
            return None
        tests.append(lambda v: type(v) is not list or all(item(x) for x in v))
    if objects:
        whole = _object(schema, only_objects=allowed == _OBJECT)
        if whole is None:
            return None
        tests.append(whole)
    return _every(tests)


_OBJECT = frozenset({dict})


def _allowed(schema: dict[str, Any]) -> frozenset[type] | None:
    """The Python types ``schema``'s ``type`` accepts (empty when it has none), or
    ``None`` when the type is not one this module knows."""
    kind = schema.get("type")
    if kind is None:
        return frozenset()
    names = [kind] if isinstance(kind, str) else kind
    if not isinstance(names, list) or not names or not all(n in _TYPES for n in names):
        return None
    return frozenset().union(*(_TYPES[n] for n in names))


def _type_only(schema: Any) -> frozenset[type] | None:
    """The types a subschema that says nothing but its ``type`` (and annotations)
    accepts, or ``None`` for any other subschema."""
    if not isinstance(schema, dict) or "type" not in schema or not set(schema) <= _TYPE_ONLY:
        return None
    return _allowed(schema) or None


_TYPE_ONLY = _ANNOTATIONS | {"type"}


def _every(tests: list[Test]) -> Test:
    """A test that passes when each of ``tests`` does (every value passes no test)."""
    if not tests:
        return lambda v: True
    if len(tests) == 1:
        return tests[0]
    first, rest = tests[0], _every(tests[1:])
    return lambda v: first(v) and rest(v)


def _value_bound(key: str, bound: float) -> Test:
    if key == "minimum":
        return lambda v: not _number(v) or v >= bound
    return lambda v: not _number(v) or v <= bound


def _size_bound(key: str, bound: int) -> Test:
    sized = str if key.endswith("Length") else list
    if key.startswith("min"):
        return lambda v: type(v) is not sized or len(v) >= bound
    return lambda v: type(v) is not sized or len(v) <= bound


def _object(schema: dict[str, Any], only_objects: bool) -> Test | None:
    """The test of ``properties``, ``required`` and ``additionalProperties``; with
    ``only_objects``, also of ``"type": "object"`` (a value that is no mapping fails)."""
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    additional = schema.get("additionalProperties", True)
    if not isinstance(properties, dict) or type(additional) is not bool:
        return None
    if not isinstance(required, list) or not all(type(r) is str for r in required):
        return None
    types: dict[str, frozenset[type]] = {}  # the properties whose test is their type's
    fields: dict[str, Test] = {}
    for name, sub in properties.items():
        allowed = _type_only(sub)
        if allowed is not None:
            types[name] = allowed
            continue
        test = _compile(sub)
        if test is None:
            return None
        fields[name] = test

    def fits(value: Any) -> bool:
        if type(value) is not dict:
            return not only_objects  # these keywords apply to objects only
        for name in required:
            if name not in value:
                return False
        for key, item in value.items():
            allowed = types.get(key)
            if allowed is not None:
                if type(item) not in allowed:
                    return False
                continue
            test = fields.get(key)
            if test is None:
                if not additional or type(key) is not str:
                    return False
            elif not test(item):
                return False
        return True

    return fits


@functools.lru_cache(maxsize=4096)
def _compiled(canonical_schema: str) -> Test | None:
    return _compile(json.loads(canonical_schema))


def quick_check(canonical_schema: str) -> Test | None:
    """The quick test of a schema (given as sorted-key JSON), or ``None`` when the schema
    uses more than the handful of keywords it knows."""
    return _compiled(canonical_schema)
