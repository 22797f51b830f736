"""`ComplexityRefiner`: rewrite a trajectory to be harder and more realistic.

The teacher returns ``<toolsets>`` (every tool, old and new, each normalised
and checked) followed by the rewritten conversation. With
``one_call_per_turn`` (the default, as in GEM) a reply whose assistant turn
makes several calls goes back to the model for repair.
"""

from __future__ import annotations

import attrs

from gemlib.errors import ParseError
from gemlib.formats.gem_tags import parse_refined, render_conversation
from gemlib.gem.generation import check_conversation_shape, tools_json
from gemlib.model import Trajectory
from gemlib.model._base import StableIds, copied
from gemlib.stages.llm_stage import LLMStage

__all__ = ["ComplexityRefiner"]


@attrs.define
class ComplexityRefiner(LLMStage):
    """Make a trajectory harder: schema, profile, constraints, pitfalls, more tools."""

    prompt_name = "refinement"
    one_call_per_turn: bool = True
    reasoning_traces: bool = False
    """Keep (and write) the assistant's private reasoning before each assistant turn,
    as :class:`~gemlib.gem.generation.TrajectoryGenerator` does."""

    def prompt(self, trajectory: Trajectory) -> list[dict[str, str]]:
        """The refinement prompt for one trajectory."""
        return self.render(
            text=trajectory.document.text if trajectory.document else "",
            tools_json=tools_json(trajectory.tools),
            conversation=render_conversation(trajectory.messages),
            one_call_per_turn=self.one_call_per_turn,
            reasoning_traces=self.reasoning_traces,
        )

    def parse(self, text: str, trajectory: Trajectory) -> Trajectory:
        """The refined trajectory (same ID and provenance; new tools and messages)."""
        tools, messages = parse_refined(text, StableIds("call", trajectory.id, "refined"))
        check_conversation_shape(messages, reasoning_traces=self.reasoning_traces)
        if self.one_call_per_turn:
            for index, message in enumerate(messages):
                if len(message.tool_calls) > 1:
                    raise ParseError(
                        f"message {index} (assistant) makes {len(message.tool_calls)} tool calls; "
                        "exactly one tool call per assistant turn is required"
                    )
        return copied(trajectory, tools=tuple(tools), messages=tuple(messages))
