"""`TrajectoryGenerator`: source text + workflow + tools in, one whole conversation out.

The teacher writes the system prompt, user turns, assistant turns with tool
calls, and tool replies in one pass, in the GEM tag format. Tool calls get
stable IDs derived from the trajectory's ID, and each tool reply is linked to
the call it answers.
"""

from __future__ import annotations

import functools
import json
import weakref

import attrs

from gemlib.errors import ParseError
from gemlib.formats.gem_tags import parse_conversation
from gemlib.model import Message, Tool, Trajectory, Workflow, stable_id
from gemlib.model._base import StableIds, built_valid
from gemlib.stages.llm_stage import LLMStage

__all__ = ["TrajectoryGenerator", "check_conversation_shape", "tools_json"]


def tools_json(tools: tuple[Tool, ...] | list[Tool]) -> str:
    """The tools as the prompts show them: a JSON list in MCP form, one tool per line.

    (Indented JSON reads no better to a model and goes through the json module's
    pure-Python encoder, about 6x slower; this was a tenth of gemlib's CPU per
    document.)
    """
    lines = ",\n".join([_mcp_line(t) for t in tools])
    return f"[\n{lines}\n]" if lines else "[]"


_LINES: dict[int, tuple[weakref.ref[Tool], str]] = {}
"""Each tool's line by the tool's identity (generation and refinement show the same
Tool objects, and the judge the refined ones, which ``Tool.from_any`` shares when
unchanged). An entry goes when its Tool does (before its ID can be reused), so the
memo holds no Tool alive; Tools are frozen (their schemas are not to be changed in place)."""


def _mcp_line(tool: Tool) -> str:
    """``tool`` in MCP form as one line of JSON (about 20 us to encode; memoised)."""
    key = id(tool)
    hit = _LINES.get(key)
    if hit is not None and hit[0]() is tool:
        return hit[1]
    line = json.dumps(tool.to_mcp(), ensure_ascii=False)
    forget = functools.partial(_LINES.pop, key, None)  # bound now: at exit _LINES is None
    _LINES[key] = (weakref.ref(tool, lambda _: forget()), line)
    return line


def check_conversation_shape(messages: list[Message], *, reasoning_traces: bool = False) -> None:
    """The minimum a reply must hold to be a conversation at all; rules come later.

    With ``reasoning_traces`` every assistant turn must open with its reasoning.
    """
    roles = {m.role for m in messages}
    if "user" not in roles or "assistant" not in roles:
        raise ParseError("the conversation needs at least one <user> and one <assistant> turn")
    if reasoning_traces:
        for index, message in enumerate(messages):
            if message.role == "assistant" and not message.reasoning.strip():
                raise ParseError(
                    f"message {index} (assistant) has no reasoning: begin every assistant "
                    "turn with <think>...</think>"
                )


@attrs.define
class TrajectoryGenerator(LLMStage):
    """Have the teacher write one trajectory grounded in the text for each workflow."""

    prompt_name = "generation"
    reasoning_traces: bool = False
    """Have the teacher write the assistant's private reasoning before each assistant
    turn (``<think>`` in the tag format, kept as ``Message.reasoning``): data for
    training reasoning agents. Off by default, as in the paper."""

    def prompt(self, workflow: Workflow) -> list[dict[str, str]]:
        """The generation prompt for one workflow."""
        return self.render(
            text=workflow.document.text,
            workflow=workflow,
            tools_json=tools_json(workflow.tools),
            reasoning_traces=self.reasoning_traces,
        )

    def parse(self, text: str, workflow: Workflow) -> Trajectory:
        """The conversation as a :class:`Trajectory` carrying the workflow's tools and labels."""
        trajectory_id = stable_id("traj", workflow.id, self.sample)
        messages = parse_conversation(text, StableIds("call", trajectory_id))
        check_conversation_shape(messages, reasoning_traces=self.reasoning_traces)
        # built from checked parts (the parser's messages, the validated workflow's tools,
        # provenance and document; its labels copied as validating copies them): validating
        # again would only run each message's own check once more
        return built_valid(
            Trajectory,
            id=trajectory_id,
            tools=workflow.tools,
            messages=tuple(messages),
            provenance=workflow.provenance,
            document=workflow.document,
            labels=dict(workflow.labels),
        )
