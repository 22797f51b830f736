"""`TurnJudge`: the GEM judge, naming the assistant turns that fail, so they can be masked.

The judge sees the conversation with each message numbered and answers the
R1-R3 grades of :class:`~gemlib.gem.judge.LLMJudge` plus ``"turns"``: for
each failed rubric, the numbers of the assistant messages that fail it. The
:class:`~gemlib.validation.verdicts.TurnPolicy` then decides: mask those turns
(they stay as context and are never exported as trainable), or reject the
trajectory when a failed rubric names no assistant turn, or too many. Passing
and masked trajectories carry the grades in ``labels["judge"]``.
"""

from __future__ import annotations

import attrs
from pydantic import Field

from gemlib.formats.gem_tags import render_conversation
from gemlib.gem.generation import tools_json
from gemlib.gem.judge import RUBRICS, JudgeVerdict, LLMJudge
from gemlib.llm.structured import json_reply
from gemlib.model import Problem, Rejection, Trajectory
from gemlib.validation.verdicts import TurnPolicy, apply_verdict

__all__ = ["TurnJudge", "TurnJudgeVerdict"]


class TurnJudgeVerdict(JudgeVerdict):
    """The judge's grades and, per failed rubric, the numbers of the failing turns."""

    turns: dict[str, list[int]] = Field(default_factory=dict)


@attrs.define
class TurnJudge(LLMJudge):
    """Grade R1-R3, then keep, mask the named assistant turns, or reject (by ``policy``)."""

    prompt_name = "judge_turns"
    policy: TurnPolicy = attrs.field(factory=TurnPolicy)

    def prompt(self, trajectory: Trajectory) -> list[dict[str, str]]:
        """The judge prompt, with each message numbered."""
        numbered = "\n".join(
            f"[{i}] {render_conversation([m])}" for i, m in enumerate(trajectory.messages)
        )
        return self.render(tools_json=tools_json(trajectory.tools), conversation=numbered)

    def parse(self, text: str, trajectory: Trajectory) -> Trajectory | Rejection:
        """The trajectory (whole or masked) with its grades, or a rejection."""
        verdict = json_reply(TurnJudgeVerdict)(text)
        grades = {"R1": verdict.R1, "R2": verdict.R2, "R3": verdict.R3}
        problems = []
        for rubric in (r for r in self.require if grades[r] == 0):
            reason = verdict.reasons.get(rubric, "")
            named: list[int | None] = list(verdict.turns.get(rubric, []))
            problems += [
                Problem(
                    rule=RUBRICS[rubric],
                    message_index=turn,
                    text=f"the judge failed {rubric} {RUBRICS[rubric]}"
                    + (f": {reason}" if reason else ""),
                )
                for turn in named or [None]
            ]
        graded = trajectory.model_copy(update={"labels": {**trajectory.labels, "judge": grades}})
        result = apply_verdict(graded, self.policy.decide(graded, problems))
        if isinstance(result, Rejection):
            failed = sorted({p.rule for p in problems})
            return result.model_copy(
                update={"detail": {**result.detail, "grades": grades, "failed": failed}}
            )
        return result
