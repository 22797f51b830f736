"""gemlib's data model: the objects that cross boundaries (files, LLM replies, datasets).

All models are frozen pydantic v2 models: they validate on the way in and
serialise to JSON on the way out. IDs are stable: the same input always gives
the same ID, and every derived object records its :class:`Provenance`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gemlib._nesting import TooDeep, check_depth, loads
from gemlib.errors import FormatError, ToolSchemaError
from gemlib.tool_schema import normalize_parameters, normalize_schema, warnings_issued

__all__ = [
    "Document",
    "Message",
    "ModelUsage",
    "Problem",
    "Provenance",
    "Rejection",
    "RunStats",
    "StageRecord",
    "StageStats",
    "Tool",
    "ToolCall",
    "Trajectory",
    "Workflow",
    "stable_id",
]


def stable_id(prefix: str, *parts: Any) -> str:
    """A short, deterministic ID: ``prefix`` plus the sha256 of the parts' canonical JSON."""
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return f"{prefix}-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- provenance


class StageRecord(_Model):
    """What one stage did to an item: which model and prompt it used, what it cost."""

    stage: str
    version: str = "1"
    model: str | None = None
    prompt_hash: str | None = None
    usage: dict[str, float] = Field(default_factory=dict)
    reasoning: str | None = None
    """The model's reasoning behind the reply the stage used, when it wrote any."""


class Provenance(_Model):
    """Where a derived object comes from: its document, segment, workflow, and stages."""

    document_id: str
    segment_index: int | None = None
    workflow_index: int | None = None
    stages: tuple[StageRecord, ...] = ()

    @property
    def stage(self) -> str | None:
        """The stage that last changed the object, if any."""
        return self.stages[-1].stage if self.stages else None

    def add(self, record: StageRecord) -> Provenance:
        """A copy with ``record`` appended to the stage history."""
        return self.model_copy(update={"stages": (*self.stages, record)})


# --------------------------------------------------------------------------- documents


class Document(_Model):
    """A piece of source text. Its ID comes from the corpus or, if absent, from its text."""

    id: str = ""
    text: str
    meta: dict[str, Any] = Field(default_factory=dict)
    parent_id: str | None = None
    """For a segment split out of a longer document: that document's ID."""
    segment_index: int | None = None
    provenance: Provenance | None = None
    """The stages that labelled or changed this text, if any."""

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not data.get("id"):
            data = dict(data)
            data["id"] = stable_id("doc", data.get("text", ""))
        return data

    @property
    def document_id(self) -> str:
        """The ID of the corpus document this item comes from."""
        return self.parent_id or self.id


# --------------------------------------------------------------------------- tools


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
        if hit is not None and (isinstance(definition, str) or hit[0] == definition):
            return hit[1]
        native = None if isinstance(definition, str) else json.loads(key[1:])
        if native is not None and native != definition:
            return cls._build(definition)
        warned = warnings_issued()
        tool = cls._build(definition if native is None else native)
        if warnings_issued() == warned:
            if len(_TOOLS) >= _TOOLS_MEMO_SIZE:
                _TOOLS.clear()
            _TOOLS[key] = (native, tool)
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


# --------------------------------------------------------------------------- conversations

Role = Literal["system", "user", "assistant", "tool"]


class Message(_Model):
    """One turn of a conversation.

    Assistant messages may carry ``tool_calls``; a tool message answers exactly
    one call, named by ``tool_call_id`` (and the tool's ``name``).
    """

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    train: bool = True
    """For an assistant turn: whether a trainer learns from it. A masked turn
    (``False``) stays in the conversation as context; exporters carry the flag
    (see docs/formats.md). It is not part of the trajectory's ID."""
    reasoning: str = ""
    """For an assistant turn: the private reasoning written before it (see the
    ``reasoning`` option in docs/gem.md). Exporters write it as
    ``reasoning_content`` or as a ``<think>`` block, and importers read it back."""
    tools: tuple[Tool, ...] = ()
    """For a user or system message: tools offered to the assistant from this
    message on, besides the trajectory's own (BFCL's ``miss_func`` category adds a
    held-out function mid-conversation). Most chat formats show tools only once,
    at the start, so the message's text should offer them in words too; the
    OpenAI JSONL export carries the field itself (see docs/formats.md)."""

    @model_validator(mode="after")
    def _check_role_fields(self) -> Message:
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"a {self.role} message cannot carry tool calls")
        if self.tool_call_id is not None and self.role != "tool":
            raise ValueError(f"a {self.role} message cannot answer a tool call")
        if self.reasoning and self.role != "assistant":
            raise ValueError(f"only assistant turns carry reasoning, not a {self.role} message")
        if not self.train and self.role != "assistant":
            raise ValueError(f"only assistant turns are trained on, not a {self.role} message")
        if self.tools and self.role not in ("user", "system"):
            raise ValueError(f"only user or system messages offer tools, not a {self.role} message")
        return self


class Workflow(_Model):
    """One workflow found in a document: its steps, execution graph, example calls and tools."""

    id: str
    description: str
    steps: tuple[str, ...] = ()
    execution_graph: str = ""
    actions: tuple[ToolCall, ...] = ()
    tools: tuple[Tool, ...] = ()
    document: Document
    provenance: Provenance
    labels: dict[str, Any] = Field(default_factory=dict)

    @property
    def document_id(self) -> str:
        """The ID of the corpus document this workflow comes from."""
        return self.provenance.document_id


class Trajectory(_Model):
    """A multi-turn tool-use conversation with the tools it may call.

    ``document`` holds the source text the trajectory was grounded in (absent for
    imported datasets); ``labels`` holds classifications such as domain,
    platform or interaction patterns.
    """

    id: str = ""
    tools: tuple[Tool, ...] = ()
    messages: tuple[Message, ...]
    provenance: Provenance | None = None
    document: Document | None = None
    labels: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not data.get("id"):
            data = dict(data)
            data["id"] = stable_id(
                "traj", _jsonable(data.get("tools")), _jsonable(data.get("messages"))
            )
        return data

    @property
    def document_id(self) -> str | None:
        """The ID of the corpus document this trajectory comes from, if known."""
        return self.provenance.document_id if self.provenance else None

    @property
    def offered_tools(self) -> tuple[Tool, ...]:
        """Every tool offered in the conversation: the trajectory's, then those its
        messages add (:attr:`Message.tools`), in order."""
        added = tuple(tool for message in self.messages for tool in message.tools)
        return self.tools + added if added else self.tools

    @property
    def tool_calls(self) -> list[ToolCall]:
        """Every tool call of the conversation, in order."""
        return [call for m in self.messages for call in m.tool_calls]

    # ----------------------------------------------------------------- OpenAI chat format

    @classmethod
    def from_openai(cls, record: Mapping[str, Any], *, id: str | None = None) -> Trajectory:
        """Read an OpenAI chat record ``{"messages": [...], "tools": [...]}``.

        Tool-call arguments may be JSON strings (as the API sends them) or
        objects. Calls without IDs get stable ones, and tool messages without a
        ``tool_call_id`` are linked to the pending calls in order. An assistant
        message with ``"weight": 0`` or ``"train": false`` is a masked turn; its
        ``reasoning_content`` (or ``reasoning``) is its reasoning. Raises
        :class:`FormatError` naming the message and the problem.
        """
        if not isinstance(record, Mapping) or not isinstance(record.get("messages"), list):
            raise FormatError("an OpenAI chat record needs a 'messages' list")
        check_depth(record)
        raw_tools = record.get("tools") or []
        if not isinstance(raw_tools, list):
            raise FormatError(f"'tools' must be a list, got {type(raw_tools).__name__}")
        tools = []
        for i, raw_tool in enumerate(raw_tools):
            try:
                tools.append(Tool.from_any(raw_tool))
            except ToolSchemaError as exc:
                raise FormatError(f"tools[{i}]: {exc}") from None
        seed = _jsonable(record["messages"])
        messages: list[Message] = []
        pending: list[ToolCall] = []
        for index, raw in enumerate(record["messages"]):
            try:
                message, pending = _message_from_openai(raw, index, seed, pending)
            except (ValueError, TypeError) as exc:
                raise FormatError(f"messages[{index}]: {exc}") from None
            messages.append(message)
        data: dict[str, Any] = {"tools": tools, "messages": messages}
        if id or record.get("id"):
            data["id"] = id or record["id"]
        try:
            return cls(**data)
        except ValidationError as exc:
            raise FormatError(validation_summary(exc)) from None

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI chat record: ``messages`` with JSON-string arguments, and ``tools``.

        A masked assistant turn carries ``"weight": 0`` (OpenAI fine-tuning) and
        ``"train": false`` (Axolotl's ``message_field_training: train``); an
        assistant turn's reasoning is its ``reasoning_content`` (the field TRL
        and reasoning models' chat templates read).
        """
        messages: list[dict[str, Any]] = []
        for m in self.messages:
            out: dict[str, Any] = {"role": m.role, "content": m.content}
            if m.tool_calls:
                out["content"] = m.content or None
                out["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {
                            "name": c.name,
                            "arguments": json.dumps(c.arguments, ensure_ascii=False),
                        },
                    }
                    for c in m.tool_calls
                ]
            if m.reasoning:  # as vLLM, DeepSeek and TRL name it
                out["reasoning_content"] = m.reasoning
            if m.tool_call_id is not None:
                out["tool_call_id"] = m.tool_call_id
            if m.name is not None:
                out["name"] = m.name
            if not m.train:  # OpenAI fine-tuning reads "weight", Axolotl "train"
                out["weight"] = 0
                out["train"] = False
            messages.append(out)
        return {"messages": messages, "tools": [t.to_openai() for t in self.tools]}


# Tool.from_any's memo: the same tools arrive at extraction, refinement and
# every trajectory read back, and normalising and meta-validating one costs
# about half a millisecond. A definition maps to its Tool by its JSON text,
# and a mapping counts as the same only when it also equals that text parsed
# back (so a tuple, a str subclass or 1.0-for-1 never borrows another's Tool);
# the Tool is built from that parsed copy, so it shares no list with a caller's
# dict. Definitions that warned are not kept, so each copy warns as before.
_TOOLS_MEMO_SIZE = 4096
_TOOLS: dict[str, tuple[Any, Tool]] = {}


def _memo_key(definition: Any) -> str | None:
    if isinstance(definition, str):
        return "s" + definition if len(definition) <= 1 << 16 else None
    if not isinstance(definition, dict):
        return None
    try:
        return "m" + json.dumps(definition)
    except (TypeError, ValueError, RecursionError):
        return None


def _label(name: Any) -> str:
    """A tool's name for an error message, whatever the definition put there."""
    return name if isinstance(name, str) and name else "<unnamed>"


def validation_summary(exc: ValidationError, whole: str = "record") -> str:
    """pydantic's first complaint, one line: where (``whole`` for the top), and what is wrong."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or whole
    return f"{where}: {first['msg']}"


def _unwrap_tool_error(exc: ValidationError, name: str) -> ToolSchemaError:
    """The ToolSchemaError a validator raised, or one built from pydantic's message."""
    first = exc.errors()[0]
    inner = first.get("ctx", {}).get("error")
    if isinstance(inner, ToolSchemaError):
        return inner
    return ToolSchemaError(name, validation_summary(exc, "definition"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Message):  # masking a turn does not make another trajectory
        # nor does a field the message leaves empty: IDs stay those of before reasoning
        return value.model_dump(
            mode="json", exclude={"train"} if value.reasoning else {"train", "reasoning"}
        )
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _message_from_openai(
    raw: Any, index: int, seed: Any, pending: list[ToolCall]
) -> tuple[Message, list[ToolCall]]:
    if not isinstance(raw, Mapping):
        raise TypeError(f"expected an object, got {type(raw).__name__}")
    role = raw.get("role")
    content = raw.get("content") or ""
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    if role == "assistant":
        calls = tuple(
            _call_from_openai(c, f"{index}.{j}", seed)
            for j, c in enumerate(raw.get("tool_calls") or [])
        )
        train = raw.get("weight", 1) != 0 and raw.get("train", True) is not False
        reasoning = raw.get("reasoning_content") or raw.get("reasoning") or ""
        if not isinstance(reasoning, str):
            raise TypeError(f"reasoning_content must be a string, got {type(reasoning).__name__}")
        message = Message(
            role="assistant", content=content, tool_calls=calls, train=train, reasoning=reasoning
        )
        return message, list(calls)
    if role == "tool":
        call_id = raw.get("tool_call_id")
        name = raw.get("name")
        if not call_id:
            if not pending:
                raise ValueError("a tool message without tool_call_id and no call to answer")
            call_id, name = pending[0].id, name or pending[0].name
        remaining = [c for c in pending if c.id != call_id]
        return Message(role="tool", content=content, tool_call_id=call_id, name=name), remaining
    if role in ("system", "user"):
        return Message(role=role, content=content), []
    raise ValueError(f"unknown role {role!r}")


def _call_from_openai(raw: Any, where: str, seed: Any) -> ToolCall:
    if not isinstance(raw, Mapping):
        raise TypeError(f"tool call {where} is not an object")
    fn = raw.get("function", raw)
    if not isinstance(fn, Mapping):
        raise TypeError(f"tool call {where}: 'function' is not an object")
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"tool call {where} has no function name")
    args = fn.get("arguments", {})
    if isinstance(args, str):
        try:
            args = loads(args) if args.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"tool call {where} ({name}): arguments are not valid JSON: {exc}"
            ) from None
    if not isinstance(args, Mapping):
        raise ValueError(f"tool call {where} ({name}): arguments must be a JSON object")
    call_id = raw.get("id") or stable_id("call", seed, where)
    return ToolCall(id=call_id, name=name, arguments=dict(args))


# --------------------------------------------------------------------------- validation


class Problem(_Model):
    """One problem a validation check found: its rule, the message it is in, what is wrong."""

    rule: str
    message_index: int | None = None
    text: str


# --------------------------------------------------------------------------- rejections and stats


class Rejection(_Model):
    """Why an item was dropped: the stage, a rule name that aggregates, and a reason.

    A stage returns ``Rejection(rule=..., reason=...)``; the runner fills in the
    stage name and the item's IDs. ``raw`` keeps an LLM reply for inspection.
    """

    rule: str
    reason: str
    stage: str = ""
    item_id: str = ""
    document_id: str = ""
    raw: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class ModelUsage(BaseModel):
    """What one stage spent on one model: requests, tokens, retries, cache hits, cost."""

    requests: int = 0
    """Requests that reached the provider (retries included, cache hits not)."""
    cache_hits: int = 0
    retries: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    """The part of ``completion_tokens`` spent on reasoning (reported by the provider,
    else estimated by the reasoning's share of the reply's length)."""
    cost: float = 0.0
    """US dollars, from litellm's local price table (0 for models it does not price);
    requests sent in provider batches at the batch price."""
    batched: int = 0
    """Of ``requests``, those sent in provider batches (batch mode)."""

    def merge(self, other: ModelUsage) -> None:
        """Add ``other``'s figures into this one."""
        for name in type(self).model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def minus(self, other: ModelUsage) -> ModelUsage:
        """The figures spent since ``other`` was a snapshot of this ledger."""
        return ModelUsage(
            **{name: getattr(self, name) - getattr(other, name) for name in type(self).model_fields}
        )


UsageByStage = dict[str, dict[str, ModelUsage]]
"""Model usage by stage name, then by model name."""


def merge_usage(total: UsageByStage, part: UsageByStage) -> None:
    """Add ``part`` into ``total``."""
    for stage, models in part.items():
        for model, usage in models.items():
            total.setdefault(stage, {}).setdefault(model, ModelUsage()).merge(usage)


class StageStats(BaseModel):
    """Counts for one stage: items received, items emitted, rejections by rule, time spent."""

    received: int = 0
    emitted: int = 0
    rejected: int = 0
    errors: int = 0
    rejections_by_rule: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0

    def merge(self, other: StageStats) -> None:
        """Add ``other``'s counts into this one."""
        self.received += other.received
        self.emitted += other.emitted
        self.rejected += other.rejected
        self.errors += other.errors
        self.seconds += other.seconds
        for rule, n in other.rejections_by_rule.items():
            self.rejections_by_rule[rule] = self.rejections_by_rule.get(rule, 0) + n


class RunStats(BaseModel):
    """A run's funnel: inputs, outputs, per-stage counts, and time."""

    inputs: int = 0
    """Corpus items read, including ones skipped because an earlier run finished them."""
    resumed: int = 0
    """Items skipped because the run directory already held their results."""
    duplicates: int = 0
    """Items skipped because an item with the same ID came earlier in the corpus."""
    outputs: int = 0
    rejections: int = 0
    left_for_retry: dict[str, int] = Field(default_factory=dict)
    """Items this session left not done, by cause (``"stage: error"``): a failure that
    was not the item's fault (model, network, cache, a stage's own exception). They
    are neither outputs nor rejections; the next run of the same command retries them."""
    left_for_retry_examples: dict[str, str] = Field(default_factory=dict)
    """The first error message of each cause in :attr:`left_for_retry`."""
    stages: dict[str, StageStats] = Field(default_factory=dict)
    usage: dict[str, dict[str, ModelUsage]] = Field(default_factory=dict)
    """Model usage by stage, then model (all sessions of a run directory)."""
    wall_seconds: float = 0.0

    def funnel(self) -> list[tuple[str, int, int, int]]:
        """``(stage, received, emitted, rejected)`` rows in pipeline order."""
        return [(n, s.received, s.emitted, s.rejected) for n, s in self.stages.items()]
