"""`LLMJudge`: grade a whole trajectory on the three GEM hallucination rubrics.

R1 tool-call hallucination (an argument value neither given nor derivable),
R2 capability hallucination (refusing what the tools can do, or carrying on
with what they cannot), R3 context hallucination (misstating earlier facts).
The judge replies ``{"R1": 0|1, "R2": 0|1, "R3": 0|1}`` (1 passes), optionally
with ``"reasons"``; anything else goes back through the repair loop. A
trajectory failing a required rubric is rejected with rule
``tool_call_hallucination``, ``capability_hallucination`` or
``context_hallucination`` (the first that failed), its reason naming every
failed rubric; passing trajectories carry the grades in ``labels["judge"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs
from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from gemlib.formats.gem_tags import render_conversation
from gemlib.gem.generation import tools_json
from gemlib.llm.structured import json_reply
from gemlib.model import Rejection, Trajectory
from gemlib.model._base import copied
from gemlib.stages.llm_stage import LLMStage

__all__ = ["RUBRICS", "JudgeVerdict", "LLMJudge"]

Rubric = Literal["R1", "R2", "R3"]

RUBRICS: dict[str, str] = {
    "R1": "tool_call_hallucination",
    "R2": "capability_hallucination",
    "R3": "context_hallucination",
}


class JudgeVerdict(BaseModel):
    """The judge's grades: 1 passes, 0 fails."""

    model_config = ConfigDict(extra="forbid")

    R1: StrictInt
    R2: StrictInt
    R3: StrictInt
    reasons: dict[str, str] = Field(default_factory=dict)

    @field_validator("R1", "R2", "R3")
    @classmethod
    def _binary(cls, value: int) -> int:
        if value not in (0, 1):
            raise ValueError("must be 0 (fail) or 1 (pass)")
        return value


def _rubrics(value: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(value)
    unknown = [r for r in chosen if r not in RUBRICS]
    if unknown or not chosen:
        raise ValueError(f"require names rubrics from {list(RUBRICS)}, got {list(value)}")
    return chosen


@attrs.define
class LLMJudge(LLMStage):
    """Keep trajectories that pass the required rubrics (all three by default)."""

    prompt_name = "judge"
    require: tuple[str, ...] = attrs.field(default=("R1", "R2", "R3"), converter=_rubrics)

    def prompt(self, trajectory: Trajectory) -> list[dict[str, str]]:
        """The judge prompt for one trajectory."""
        return self.render(
            tools_json=tools_json(trajectory.tools),
            conversation=render_conversation(trajectory.messages),
        )

    def parse(self, text: str, trajectory: Trajectory) -> Trajectory | Rejection:
        """The trajectory with its grades, or a rejection naming the failed rubrics."""
        verdict = json_reply(JudgeVerdict)(text)
        grades = {"R1": verdict.R1, "R2": verdict.R2, "R3": verdict.R3}
        failed = [r for r in self.require if grades[r] == 0]
        if failed:
            reasons = "; ".join(
                f"{r} {RUBRICS[r]}" + (f": {verdict.reasons[r]}" if r in verdict.reasons else "")
                for r in failed
            )
            return Rejection(
                rule=RUBRICS[failed[0]],
                reason=f"the judge failed {reasons}",
                item_id=trajectory.id,
                detail={"grades": grades, "failed": failed},
            )
        labels = {**trajectory.labels, "judge": grades}
        return copied(trajectory, labels=labels)
