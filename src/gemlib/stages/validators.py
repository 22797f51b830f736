"""The validation stages: reject, or mask turns, by the rule checks of :mod:`gemlib.validation`."""

from __future__ import annotations

import attrs

from gemlib.model import Rejection, Trajectory
from gemlib.pipeline.stage import Stage
from gemlib.validation.checks import Check
from gemlib.validation.ladder import DEFAULT_CHECKS, as_checks, validate
from gemlib.validation.verdicts import TurnPolicy, apply_verdict

__all__ = ["RuleValidator", "TurnValidator"]


@attrs.define
class RuleValidator(Stage):
    """Reject trajectories that fail any check; pass the others through unchanged.

    The rejection's rule is the first failed rule in ladder order (so the funnel
    counts each trajectory once), its reason lists the problems,
    ``detail["problems"]`` holds all of them, and ``detail["item"]`` the rejected
    trajectory (so ``gemlib view`` shows each problem at its message).
    """

    blocking = True  # off the event loop: model-written schemas run regexes (bounded, still work)

    checks: tuple[Check, ...] = attrs.field(factory=lambda: DEFAULT_CHECKS, converter=as_checks)

    def process(self, trajectory: Trajectory) -> Trajectory | Rejection:
        """Pass ``trajectory`` or reject it with every problem found."""
        report = validate(trajectory, self.checks)
        if report.ok:
            return trajectory
        shown = "; ".join(p.text for p in report.problems[:3])
        more = len(report.problems) - 3
        return Rejection(
            rule=report.problems[0].rule,
            reason=shown + (f"; and {more} more" if more > 0 else ""),
            item_id=trajectory.id,
            detail={
                "problems": [p.model_dump() for p in report.problems],
                "item": trajectory.model_dump(mode="json"),
            },
        )


@attrs.define
class TurnValidator(Stage):
    """Like :class:`~gemlib.stages.validators.RuleValidator`, but masks bad turns when the
    :class:`TurnPolicy` allows, instead of rejecting the whole trajectory."""

    checks: tuple[Check, ...] = attrs.field(factory=lambda: DEFAULT_CHECKS, converter=as_checks)
    policy: TurnPolicy = attrs.field(factory=TurnPolicy)

    def process(self, trajectory: Trajectory) -> Trajectory | Rejection:
        """The trajectory whole or masked, or a rejection naming every problem."""
        problems = validate(trajectory, self.checks).problems
        return apply_verdict(trajectory, self.policy.decide(trajectory, problems))
