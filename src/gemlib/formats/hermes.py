"""Hermes / Qwen-style text: ChatML turns, ``<tool_call>`` in assistant turns, ``<tool_response>``.

The paper trained with this layout. :data:`CHAT_TEMPLATE` is gemlib's own
Jinja chat template for it; set it on a Hugging Face tokenizer
(``tokenizer.chat_template = CHAT_TEMPLATE``) and
``tokenizer.apply_chat_template(record["messages"], tools=record["tools"])``
produces exactly what :func:`dump` writes, so data exported here and data
rendered at training time agree. A sample (tools shortened)::

    <|im_start|>system
    You are a shop assistant.

    # Tools

    To call a function, answer with <tool_call>{"name": ..., "arguments": {...}}</tool_call>.
    The functions:
    <tools>
    {"type": "function", "function": {"name": "cancel", ...}}
    </tools><|im_end|>
    <|im_start|>user
    Cancel W1<|im_end|>
    <|im_start|>assistant
    <tool_call>
    {"name": "cancel", "arguments": {"order_id": "W1"}}
    </tool_call><|im_end|>
    <|im_start|>user
    <tool_response>
    {"ok": true}
    </tool_response><|im_end|>
    <|im_start|>assistant
    Done.<|im_end|>

Consecutive tool replies share one ``user`` turn. An assistant turn's
reasoning (``reasoning_content``) opens it as ``<think>\n...\n</think>\n\n``, as
in Qwen3's and DeepSeek-R1's templates. The format drops call IDs
(importing gives stable new ones), labels and provenance.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gemlib._nesting import check_depth, loads
from gemlib.errors import FormatError, ToolSchemaError
from gemlib.formats._common import renumber_calls, split_thought
from gemlib.formats.chat import to_chat
from gemlib.formats.format import Format
from gemlib.model import Message, Tool, ToolCall, Trajectory, validation_summary

if TYPE_CHECKING:
    from jinja2 import Template

__all__ = ["CHAT_TEMPLATE", "FORMAT", "dump", "load"]

CHAT_TEMPLATE = (
    "{%- if messages and messages[0].role == 'system' -%}"
    "{%- set system = messages[0].content -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set system = none -%}{%- set turns = messages -%}{%- endif -%}"
    "{%- if system is not none or tools -%}"
    "{{- '<|im_start|>system\\n' -}}"
    "{%- if system is not none -%}{{- system -}}{%- if tools -%}{{- '\\n\\n' -}}{%- endif -%}"
    "{%- endif -%}"
    "{%- if tools -%}"
    '{{- \'# Tools\\n\\nTo call a function, answer with <tool_call>{"name": ..., '
    '"arguments": {...}}</tool_call>.\\nThe functions:\\n<tools>\' -}}'
    "{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}"
    "{{- '\\n</tools>' -}}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in turns -%}"
    "{%- if message.role == 'tool' -%}"
    "{%- if loop.first or loop.previtem.role != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}"
    "{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' -}}"
    "{%- if loop.last or loop.nextitem.role != 'tool' -%}{{- '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message.role + '\\n' -}}"
    "{%- if message.role == 'assistant' and message.reasoning_content -%}"
    "{{- '<think>\\n' + message.reasoning_content + '\\n</think>\\n\\n' -}}"
    "{%- endif -%}"
    "{%- if message.content -%}{{- message.content -}}{%- endif -%}"
    "{%- for call in message.tool_calls or [] -%}"
    "{%- set arguments = call.function.arguments -%}"
    "{%- if message.content or not loop.first -%}{{- '\\n' -}}{%- endif -%}"
    "{{- '<tool_call>\\n{\"name\": ' + (call.function.name | tojson) + ', \"arguments\": ' -}}"
    "{{- (arguments if arguments is string else (arguments | tojson)) + '}\\n</tool_call>' -}}"
    "{%- endfor -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def _tojson(value: Any) -> str:
    # The same serialisation Hugging Face's chat-template renderer uses.
    return json.dumps(value, ensure_ascii=False)


@functools.cache
def _template() -> Template:
    """:data:`CHAT_TEMPLATE` compiled, on first use (it takes a fifth of a second, which every
    `gemlib` command would pay, since the CLI lists the formats)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.filters["tojson"] = _tojson
    return environment.from_string(CHAT_TEMPLATE)


def dump(trajectory: Trajectory) -> dict[str, Any]:
    """``{"id", "text"}``: the conversation rendered with :data:`CHAT_TEMPLATE`."""
    record = to_chat(trajectory)
    text = _template().render(
        messages=record["messages"], tools=record["tools"], add_generation_prompt=False
    )
    return {"id": trajectory.id, "text": text}


_TURN = re.compile(r"<\|im_start\|>(system|user|assistant)\n(.*?)<\|im_end\|>\n", re.DOTALL)
_CALL = re.compile(r"\n?<tool_call>\n(.*?)\n</tool_call>", re.DOTALL)
_RESPONSE = re.compile(r"\n<tool_response>\n(.*?)\n</tool_response>", re.DOTALL)
_TOOLS_HEAD = "# Tools\n\n"


def _system(body: str) -> tuple[str | None, list[Tool]]:
    head, sep, rest = body.partition(_TOOLS_HEAD)
    if not sep:
        return body, []
    system = head[:-2] if head.endswith("\n\n") else (head or None)
    start, end = rest.find("<tools>"), rest.rfind("</tools>")
    if start < 0 or end < start:
        raise FormatError("the system turn's tool section has no <tools>...</tools> listing")
    listing = rest[start + len("<tools>") : end]
    try:
        tools = [Tool.from_any(loads(line)) for line in listing.splitlines() if line.strip()]
    except (json.JSONDecodeError, ToolSchemaError) as exc:
        raise FormatError(f"unreadable tool in <tools>: {exc}") from None
    return system, tools


def load(record: dict[str, Any]) -> Trajectory:
    """Read ``{"id", "text"}`` written by :func:`dump` (or by the chat template)."""
    if not isinstance(record, Mapping):
        raise FormatError(f"a Hermes record is an object, not {type(record).__name__}")
    check_depth(record)
    text = record.get("text")
    if not isinstance(text, str):
        raise FormatError("a Hermes record needs a 'text' string")
    messages: list[Message] = []
    tools: list[Tool] = []
    position = 0
    for index, match in enumerate(_TURN.finditer(text)):
        if match.start() != position:
            raise FormatError(f"text at offset {position} is not a ChatML turn")
        position = match.end()
        role, body = match.groups()
        if role == "system" and index == 0:
            system, tools = _system(body)
            if system is not None:
                messages.append(Message(role="system", content=system))
        elif role == "user" and body.startswith("<tool_response>\n"):
            # The turn head's newline opened the first response block.
            messages += [Message(role="tool", content=c) for c in _RESPONSE.findall("\n" + body)]
        elif role == "assistant":
            reasoning, body = split_thought(body)
            calls = tuple(_call(payload) for payload in _CALL.findall(body))
            messages.append(
                Message(
                    role="assistant",
                    content=_CALL.sub("", body),
                    tool_calls=calls,
                    reasoning=reasoning,
                )
            )
        else:
            messages.append(Message(role=role, content=body))
    if position != len(text):
        raise FormatError(f"text at offset {position} is not a ChatML turn")
    return renumber_calls(
        Trajectory(id=str(record.get("id") or ""), tools=tuple(tools), messages=tuple(messages))
    )


def _call(payload: str) -> ToolCall:
    try:
        data = loads(payload)
        return ToolCall(name=data["name"], arguments=data.get("arguments") or {})
    except ValidationError as exc:
        raise FormatError(
            f"unreadable <tool_call> {payload[:80]!r}: {validation_summary(exc)}"
        ) from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise FormatError(f"unreadable <tool_call> {payload[:80]!r}: {exc!r}") from None


FORMAT = Format(
    name="hermes",
    description="JSONL: ChatML text with <tool_call> / <tool_response> (the paper's template)",
    dump=dump,
    load=load,
    recognise=lambda record: isinstance(record.get("text"), str),
)
"""The ``hermes`` entry of the format registry (after ``gem``, whose records are text too)."""
