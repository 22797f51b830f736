"""`Synthesize`: one model call turns a segment into tools plus a whole conversation.

The Trajectory Synthesizer replaces extraction, generation and refinement.
It is prompted with the same instruction it was trained on and answers in
the GEM tag format, parsed with the same parser as refinement, so its output
goes through the same rule checks and judge as the full pipeline's.
"""

from __future__ import annotations

import attrs

from gemlib.formats.gem_tags import parse_refined
from gemlib.gem.generation import check_conversation_shape
from gemlib.model import Document, Provenance, Trajectory, stable_id
from gemlib.stages.llm_stage import LLMStage
from gemlib.synthesizer.dataset import synth_prompt

__all__ = ["Synthesize"]


@attrs.define
class Synthesize(LLMStage):
    """Ask a Trajectory Synthesizer for a trajectory grounded in one segment."""

    def prompt(self, doc: Document) -> list[dict[str, str]]:
        """The synthesizer's fixed instruction and the segment."""
        return [{"role": "user", "content": synth_prompt(doc.text)}]

    def parse(self, text: str, doc: Document) -> Trajectory:
        """The trajectory in the reply."""
        trajectory_id = stable_id("traj", doc.id, "synth", self.sample)
        tools, messages = parse_refined(text, lambda n: stable_id("call", trajectory_id, n))
        check_conversation_shape(messages)
        base = doc.provenance or Provenance(
            document_id=doc.document_id, segment_index=doc.segment_index
        )
        return Trajectory(
            id=trajectory_id,
            tools=tuple(tools),
            messages=tuple(messages),
            provenance=base,
            document=doc,
            labels=doc.meta.get("labels", {}),
        )
