"""The validation stages: reject, or mask turns, by the rule checks of :mod:`gemlib.validation`."""

from __future__ import annotations

from typing import Any

import attrs

from gemlib.model import Rejection, Trajectory
from gemlib.pipeline.stage import Stage
from gemlib.validation._facts import Facts
from gemlib.validation._identity import IdentityMemo
from gemlib.validation.checks import Check
from gemlib.validation.ladder import DEFAULT_CHECKS, as_checks, found_problems, validate
from gemlib.validation.schema_validator import runs_regexes
from gemlib.validation.verdicts import TurnPolicy, apply_verdict

__all__ = ["RuleValidator", "TurnValidator"]

_OWN_CHECKS = "gemlib.validation."
"""The module prefix of gemlib's own checks, whose cost is known."""
_REGEXES: IdentityMemo[bool] = IdentityMemo()


_LONG_TURNS = 200
_LONG_TEXT = 100_000
"""Past either (about 10 ms of checks on the event loop), a trajectory's checks go to a thread."""


def _long_or_regex(trajectory: Trajectory) -> Facts | None:
    """``None`` when ``trajectory`` is long (past :data:`_LONG_TURNS` messages or
    :data:`_LONG_TEXT` characters of content) or a tool it offers has a schema with a
    regex; else the facts of it read to tell, for the checks to read again."""
    if len(trajectory.__dict__["messages"]) > _LONG_TURNS:
        return None
    known = Facts(trajectory)
    size = 0
    for turn in known.turns:
        size += len(turn[1])
    if size > _LONG_TEXT:
        return None
    for _, parameters, _ in known.tools:
        if _REGEXES.get(parameters, _runs_regexes):
            return None
    return known


def _runs_regexes(parameters: dict[str, Any], _: object) -> bool:
    return runs_regexes(parameters)


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
    _own: tuple[tuple[Check, ...], bool] | None = attrs.field(
        default=None, init=False, eq=False, repr=False
    )
    """The checks last asked about, and whether every one is gemlib's own: kept by this
    stage, not by the module, so a run's checks go with its stage."""
    _ready: Facts | None = attrs.field(default=None, init=False, eq=False, repr=False)
    """The facts :meth:`blocks` read of the trajectory it last kept on the event loop:
    :meth:`process`, called next with it, reads them again instead of anew."""

    def _only_own_checks(self) -> bool:
        """Whether every check is gemlib's own (known per tuple of checks)."""
        if self._own is None or self._own[0] is not self.checks:
            own = all(type(c).__module__.startswith(_OWN_CHECKS) for c in self.checks)
            self._own = (self.checks, own)
        return self._own[1]

    def blocks(self, trajectory: Trajectory) -> bool:
        """In a worker thread only when checking may take long: a tool schema with a
        regex (each search bounded, all of them together up to 2 s), a check that is
        not gemlib's own, or a long trajectory (the grounding and ID checks search the
        conversation so far for each value, so their time grows with turns x text: a
        megabyte of calls and replies takes seconds). gemlib's checks of an ordinary
        trajectory take about a millisecond, less than the hand-off to a thread and
        back, which also delayed the event loop's next requests behind the thread's
        hold on the GIL."""
        if not self._only_own_checks():
            return True
        self._ready = _long_or_regex(trajectory)
        return self._ready is None

    def process(self, trajectory: Trajectory) -> Trajectory | Rejection:
        """Pass ``trajectory`` or reject it with every problem found."""
        known, self._ready = self._ready, None
        if known is None or known.trajectory is not trajectory:
            known = Facts(trajectory)
        problems = found_problems(known, self.checks)  # validate's, without the report
        if not problems:
            return trajectory
        shown = "; ".join(p.text for p in problems[:3])
        more = len(problems) - 3
        return Rejection(
            rule=problems[0].rule,
            reason=shown + (f"; and {more} more" if more > 0 else ""),
            item_id=trajectory.id,
            detail={
                "problems": [p.model_dump() for p in problems],
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
