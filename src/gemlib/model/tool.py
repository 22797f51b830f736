"""Tools and tool calls: a name, a description and a normalised JSON-Schema object."""

from __future__ import annotations

import json
import marshal
from collections.abc import Mapping
from typing import Any

from pydantic import Field, ValidationError, model_validator

from gemlib._nesting import TooDeep, check_depth, loads
from gemlib.errors import ToolSchemaError
from gemlib.model._base import _Model, validation_summary
from gemlib.model.tool_schema import normalize_parameters, normalize_schema, warnings_issued

__all__ = ["Tool", "ToolCall"]


class Tool(_Model):
    """A tool the assistant may call: a name, a description and a JSON-Schema object.

    Build one from any common wrapper with :meth:`from_any`; the ``parameters``
    of a constructed tool are always normalised and checked against the JSON
    Schema meta-schema.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    output_schema: dict[str, Any] | None = None
    """What the tool returns, when the source says (BFCL ``response``, MCP ``outputSchema``)."""

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ToolSchemaError(_label(name), "a tool needs a non-empty string name")
        if any(ch.isspace() for ch in name):
            raise ToolSchemaError(name, "a tool name may not contain whitespace")
        data = dict(data)
        data["parameters"] = normalize_parameters(data.get("parameters"), name)
        if data.get("output_schema") is not None:
            data["output_schema"] = normalize_schema(data["output_schema"], name, "output_schema")
        if data.get("description") is None:
            data["description"] = ""
        return data

    @classmethod
    def from_any(cls, definition: Tool | Mapping[str, Any] | str) -> Tool:
        """Normalise a tool definition in any common form into a :class:`Tool`.

        Accepted: the OpenAI wrapper ``{"type": "function", "function": {...}}``; the
        bare form ``{"name", "description", "parameters"}``; MCP ``inputSchema``
        (and ``outputSchema``); Anthropic ``input_schema``; BFCL-style documents
        with ``dict``/``float``/``tuple``/``any`` types and a ``response`` schema;
        a JSON string of any of these. Raises :class:`ToolSchemaError` naming the
        tool and the problem when the definition cannot be normalised.
        """
        if isinstance(definition, Tool):
            return definition
        key = _memo_key(definition)
        if key is None:
            return cls._build(definition)
        hit = _TOOLS.get(key)
        if hit is not None and (hit[0] is None or hit[0] == definition):  # None: an exact key
            return hit[1]
        native = _native(key)
        if native is not None and native != definition:
            return cls._build(definition)
        warned = warnings_issued()
        tool = cls._build(definition if native is None else native)
        if warnings_issued() == warned:
            if len(_TOOLS) >= _TOOLS_MEMO_SIZE:
                _TOOLS.clear()
            _TOOLS[key] = (None if _exact(key) else native, tool)
        return tool

    @classmethod
    def _build(cls, definition: Mapping[str, Any] | str) -> Tool:
        try:
            if isinstance(definition, str):
                definition = loads(definition)
            check_depth(definition)
        except json.JSONDecodeError as exc:
            raise ToolSchemaError("<unnamed>", f"not valid JSON: {exc}") from None
        except TooDeep as exc:
            raise ToolSchemaError("<unnamed>", f"the definition is {exc}") from None
        if not isinstance(definition, Mapping):
            raise ToolSchemaError(
                "<unnamed>", f"expected a mapping, got {type(definition).__name__}"
            )
        body: Mapping[str, Any] = definition
        if "function" in body and isinstance(body["function"], Mapping):
            body = body["function"]
        name = body.get("name")
        params_keys = [k for k in ("parameters", "inputSchema", "input_schema") if k in body]
        if len(params_keys) > 1:
            raise ToolSchemaError(
                _label(name), f"has both {params_keys[0]!r} and {params_keys[1]!r}"
            )
        output = body.get("output_schema", body.get("outputSchema", body.get("response")))
        try:
            return cls.model_validate(
                {
                    "name": name,
                    "description": body.get("description") or "",
                    "parameters": body.get(params_keys[0]) if params_keys else None,
                    "output_schema": output,
                }
            )
        except ValidationError as exc:
            raise _unwrap_tool_error(exc, _label(name)) from None

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI tools-list form: ``{"type": "function", "function": {...}}``."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def to_mcp(self) -> dict[str, Any]:
        """The MCP form: ``{"name", "description", "inputSchema"[, "outputSchema"]}``."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.parameters,
        }
        if self.output_schema is not None:
            out["outputSchema"] = self.output_schema
        return out


class ToolCall(_Model):
    """One call of a tool by the assistant. ``arguments`` is the decoded JSON object."""

    id: str = ""
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


# Tool.from_any's memo: the same tools arrive at extraction, refinement and
# every trajectory read back, and normalising and meta-validating one costs
# about half a millisecond. A text maps to its Tool by itself. A mapping of plain
# types maps by its marshal form (version 2: no references, no interning marks),
# which writes each type apart (1, 1.0 and True; lists and tuples) and refuses
# subclasses, so equal forms are equal definitions: four times faster to make
# than JSON text, and no comparison on a hit. Any other mapping maps by its JSON
# text and counts as the same only when it also equals that text parsed back (so a
# str subclass or 1.0-for-1 never borrows another's Tool). Each Tool is built from
# the form parsed back, so it shares no list with a caller's dict; only the JSON
# form's copy is kept (for that comparison). Definitions that warned are not kept,
# so each copy warns as before, nor those whose key is longer than
# _TOOLS_KEY_LIMIT, so the memo holds at most that much per entry whatever a
# corpus's tools hold.
_TOOLS_MEMO_SIZE = 4096
_TOOLS_KEY_LIMIT = 1 << 16
_TOOLS: dict[str | bytes, tuple[Any, Tool]] = {}


def _memo_key(definition: Any) -> str | bytes | None:
    """``definition``'s key in the memo, or ``None`` when it is not kept."""
    if isinstance(definition, str):
        return "s" + definition if len(definition) <= _TOOLS_KEY_LIMIT else None
    if not isinstance(definition, dict):
        return None
    key: str | bytes
    try:
        key = marshal.dumps(definition, 2)
    except ValueError:  # a subclass, or a type marshal does not write
        try:
            key = "m" + json.dumps(definition)
        except (TypeError, ValueError, RecursionError):
            return None
    return key if len(key) <= _TOOLS_KEY_LIMIT else None


def _exact(key: str | bytes) -> bool:
    """Whether equal keys mean equal definitions (text, marshal), not just alike JSON."""
    return isinstance(key, bytes) or key.startswith("s")


def _native(key: str | bytes) -> Any:
    """A fresh copy of the mapping ``key`` stands for (``None`` for a text)."""
    if isinstance(key, bytes):
        return marshal.loads(key)
    return json.loads(key[1:]) if key.startswith("m") else None


def _label(name: Any) -> str:
    """A tool's name for an error message, whatever the definition put there."""
    return name if isinstance(name, str) and name else "<unnamed>"


def _unwrap_tool_error(exc: ValidationError, name: str) -> ToolSchemaError:
    """The ToolSchemaError a validator raised, or one built from pydantic's message."""
    first = exc.errors()[0]
    inner = first.get("ctx", {}).get("error")
    if isinstance(inner, ToolSchemaError):
        return inner
    return ToolSchemaError(name, validation_summary(exc, "definition"))
