"""Normalising the loose tool schemas found in the wild into strict JSON Schema.

Tool definitions arrive in several wrappers (OpenAI, bare, MCP ``inputSchema``,
Anthropic ``input_schema``) and with dialect quirks: BFCL writes ``"dict"``,
``"float"``, ``"tuple"`` and ``"any"`` as types, and Java or JavaScript types
(``HashMap``, ``ArrayList``, ``char``, ``Bigint``...) for its Java and
JavaScript sets, mapped as BFCL maps them; some sources omit
``"type": "object"`` at the top, old drafts put ``"required": true`` on a
property. :func:`normalize_parameters` rewrites all of that into one form (JSON
Schema 2020-12 with an object at the top) and checks the result against the
meta-schema, raising :class:`~gemlib.errors.ToolSchemaError` naming the tool and
the problem when it cannot.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from gemlib._nesting import TooDeep, check_depth
from gemlib.errors import ToolSchemaError, ToolSchemaWarning

MAX_PATTERN_CHARS = 4096
"""Longest regex a schema may hold (``pattern``, a ``patternProperties`` name).

Compiling and searching grow with a pattern's length, and a regex engine's
time limit is checked too coarsely to stop a search through a pattern of a
million alternatives; real schemas' patterns are a few hundred characters.
"""


# Type names used by real datasets, mapped to JSON-Schema type names.
# ``None`` means "any type": the ``type`` keyword is dropped.
_TYPE_ALIASES: dict[str, str | None] = {
    "object": "object",
    "dict": "object",
    "map": "object",
    "mapping": "object",
    "hashmap": "object",
    "hashtable": "object",
    "array": "array",
    "list": "array",
    "tuple": "array",
    "set": "array",
    "arraylist": "array",
    "queue": "array",
    "stack": "array",
    "string": "string",
    "str": "string",
    "text": "string",
    "char": "string",
    "integer": "integer",
    "int": "integer",
    "long": "integer",
    "byte": "integer",
    "short": "integer",
    "bigint": "integer",
    "number": "number",
    "float": "number",
    "double": "number",
    "decimal": "number",
    "boolean": "boolean",
    "bool": "boolean",
    "null": "null",
    "none": "null",
    "any": None,
}

_warnings_issued = 0


def warnings_issued() -> int:
    """How many :class:`ToolSchemaWarning` this process has issued (memos skip those schemas)."""
    return _warnings_issued


# Keywords whose value is one subschema, a list of subschemas, or a map of them.
_SUBSCHEMA_KEYS = ("items", "additionalProperties", "not", "contains", "if", "then", "else")
_SUBSCHEMA_LIST_KEYS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAP_KEYS = ("properties", "$defs", "definitions", "patternProperties")


def _normalize_type(value: Any, where: str, tool: str) -> str | list[str] | None:
    if isinstance(value, str):
        key = value.strip().lower()
        if not key:  # a defect of the data; BFCL reads it as a string, and so do we
            global _warnings_issued
            _warnings_issued += 1
            warnings.warn(
                f"tool {tool!r}: empty type at {where}, read as 'string'",
                ToolSchemaWarning,
                stacklevel=2,
            )
            return "string"
        if key not in _TYPE_ALIASES:
            raise ToolSchemaError(tool, f"unknown type {value!r} at {where}")
        return _TYPE_ALIASES[key]
    if isinstance(value, list):
        names: list[str] = []
        for member in value:
            mapped = _normalize_type(member, where, tool)
            if mapped is None:  # "any" inside a union makes the union "any"
                return None
            for name in [mapped] if isinstance(mapped, str) else mapped:
                if name not in names:
                    names.append(name)
        return names[0] if len(names) == 1 else names
    raise ToolSchemaError(tool, f"type at {where} must be a string or a list, got {value!r}")


def _normalize_node(node: Any, where: str, tool: str) -> dict[str, Any]:
    """Return a normalised copy of one (sub)schema; never mutates ``node``."""
    if isinstance(node, bool):
        return {} if node else {"not": {}}
    if not isinstance(node, Mapping):
        raise ToolSchemaError(
            tool, f"schema at {where} must be an object, got {type(node).__name__}"
        )
    out: dict[str, Any] = dict(node)

    if "type" in out:
        was_tuple = isinstance(out["type"], str) and out["type"].strip().lower() == "tuple"
        mapped = _normalize_type(out["type"], where, tool)
        if mapped is None:
            del out["type"]
        else:
            out["type"] = mapped
        if was_tuple and isinstance(out.get("items"), list):
            out["prefixItems"] = out.pop("items")
    elif "properties" in out:
        out["type"] = "object"
    elif "items" in out:
        out["type"] = "array"

    if isinstance(out.get("items"), list):  # draft-4 tuple form
        out["prefixItems"] = out.pop("items")

    for key in _SUBSCHEMA_KEYS:
        if key in out and not isinstance(out[key], bool):
            out[key] = _normalize_node(out[key], f"{where}.{key}", tool)
    for key in _SUBSCHEMA_LIST_KEYS:
        if key in out:
            if not isinstance(out[key], list):
                raise ToolSchemaError(tool, f"{where}.{key} must be a list of schemas")
            out[key] = [
                _normalize_node(sub, f"{where}.{key}[{i}]", tool) for i, sub in enumerate(out[key])
            ]
    for key in _SUBSCHEMA_MAP_KEYS:
        if key in out:
            if not isinstance(out[key], Mapping):
                raise ToolSchemaError(tool, f"{where}.{key} must map names to schemas")
            out[key] = {
                str(name): _normalize_node(sub, f"{where}.{key}.{name}", tool)
                for name, sub in out[key].items()
            }

    if "properties" in out:
        _lift_required_flags(out, where, tool)
    return out


def _lift_required_flags(obj: dict[str, Any], where: str, tool: str) -> None:
    """Move old-style ``"required": true`` on properties into the parent's list."""
    required = obj.get("required", [])
    if isinstance(required, bool) or not isinstance(required, list):
        raise ToolSchemaError(tool, f"{where}.required must be a list of property names")
    required = list(required)
    for name, prop in obj["properties"].items():
        flag = prop.get("required")
        if isinstance(flag, bool):
            del prop["required"]
            if flag and name not in required:
                required.append(name)
    for name in required:
        if not isinstance(name, str):
            raise ToolSchemaError(tool, f"{where}.required holds a non-string entry {name!r}")
        if name not in obj["properties"]:
            raise ToolSchemaError(tool, f"{where}.required names {name!r}, which is not a property")
    if required:
        obj["required"] = required
    else:
        obj.pop("required", None)


def normalize_parameters(schema: Any, tool: str) -> dict[str, Any]:
    """Normalise a tool's parameter schema; the result is an object schema.

    ``None`` or an empty mapping means "no parameters". Raises
    :class:`ToolSchemaError` when the schema cannot be turned into a valid JSON
    Schema describing an object.
    """
    if schema is None or (isinstance(schema, Mapping) and not schema):
        return {"type": "object", "properties": {}}
    _bounded(schema, tool)
    out = _normalize_node(schema, "parameters", tool)
    if "type" not in out:
        out["type"] = "object"
    if out["type"] != "object":
        raise ToolSchemaError(tool, f"parameters must describe an object, got type {out['type']!r}")
    out.setdefault("properties", {})
    check_schema(out, tool)
    return out


def normalize_schema(schema: Any, tool: str, where: str = "schema") -> dict[str, Any]:
    """Normalise any (sub)schema, such as a tool's output schema, and check it."""
    _bounded(schema, tool)
    out = _normalize_node(schema, where, tool)
    check_schema(out, tool)
    return out


def _bounded(schema: Any, tool: str) -> None:
    """Refuse schemas nested so deeply that normalising or checking them would overflow."""
    try:
        check_depth(schema)
    except TooDeep as exc:
        raise ToolSchemaError(tool, f"the schema is {exc}") from None


def check_schema(schema: Mapping[str, Any], tool: str) -> None:
    """Raise :class:`ToolSchemaError` unless ``schema`` is valid JSON Schema 2020-12."""
    for pattern in _patterns(schema):
        if len(pattern) > MAX_PATTERN_CHARS:
            raise ToolSchemaError(
                tool,
                f"a regex pattern of {len(pattern):,} characters "
                f"(at most {MAX_PATTERN_CHARS:,}): {pattern[:40]!r}...",
            )
    try:
        canonical = json.dumps(schema, sort_keys=True, default=str)
    except (TypeError, ValueError) as exc:  # keys that are not strings, circular references
        raise ToolSchemaError(tool, f"the schema is not JSON: {exc}") from None
    problem = _schema_problem(canonical)
    if problem is not None:
        raise ToolSchemaError(tool, problem)


def _patterns(schema: Any) -> list[str]:
    """Every ``pattern`` value and ``patternProperties`` name in ``schema`` (iteratively)."""
    found: list[str] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            if isinstance(node.get("pattern"), str):
                found.append(node["pattern"])
            if isinstance(node.get("patternProperties"), Mapping):
                found.extend(str(k) for k in node["patternProperties"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


@functools.lru_cache(maxsize=8192)
def _schema_problem(canonical: str) -> str | None:
    # Checking against the meta-schema costs about a millisecond, and the same
    # tool is checked at extraction, refinement and validation: remember verdicts.
    try:
        Draft202012Validator.check_schema(json.loads(canonical))
    except SchemaError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return f"invalid JSON Schema at {path}: {exc.message}"
    return None
