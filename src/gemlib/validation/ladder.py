"""Combining checks: :func:`validate` and the :class:`RuleValidator` stage."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, Field

from gemlib.model import Problem, Trajectory
from gemlib.validation._facts import Facts, shared_facts
from gemlib.validation.checks import (
    Check,
    known_tools,
    tool_replies,
    tools_well_formed,
    turn_order,
    unique_call_ids,
    valid_arguments,
)
from gemlib.validation.grounding import consistent_ids, grounded
from gemlib.validation.ledger import state_ledger
from gemlib.validation.limits import prompt_limits

__all__ = ["DEFAULT_CHECKS", "ValidationReport", "default_checks", "validate"]


def default_checks(
    *, one_call_per_turn: bool = False, grounding: bool = True, state: bool = True
) -> tuple[Check, ...]:
    """The standard ladder, cheapest and most basic rungs first.

    ``state`` adds the state ledger (:func:`~gemlib.validation.ledger.state_ledger`)
    and the system prompt's numeric limits (:func:`~gemlib.validation.limits.prompt_limits`).
    """
    checks: list[Check] = [
        tools_well_formed(),
        known_tools(),
        unique_call_ids(),
        turn_order(one_call_per_turn=one_call_per_turn),
        valid_arguments(),
        tool_replies(),
    ]
    if grounding:
        checks += [grounded(), consistent_ids()]
    if state:
        checks += [state_ledger(), prompt_limits()]
    return tuple(checks)


DEFAULT_CHECKS = default_checks()


class ValidationReport(BaseModel):
    """Every problem the checks found; ``ok`` when there is none."""

    problems: list[Problem] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the trajectory passed every check."""
        return not self.problems

    def rules(self) -> list[str]:
        """The rules that failed, in ladder order, each once."""
        return list(dict.fromkeys(p.rule for p in self.problems))

    def __str__(self) -> str:
        if self.ok:
            return "ok"
        return "\n".join(
            f"[{p.rule}] message {p.message_index}: {p.text}"
            if p.message_index is not None
            else f"[{p.rule}] {p.text}"
            for p in self.problems
        )


def validate(trajectory: Trajectory, checks: Iterable[Check] = DEFAULT_CHECKS) -> ValidationReport:
    """Run ``checks`` on ``trajectory`` and collect every problem (never only the first).

    The checks share what they decode from the trajectory (:mod:`gemlib.validation._facts`)."""
    return validate_facts(Facts(trajectory), checks)


def validate_facts(known: Facts, checks: Iterable[Check]) -> ValidationReport:
    """:func:`validate` of the trajectory of ``known``, whose checks read ``known``
    (facts a stage has already read of it)."""
    return ValidationReport.model_construct(problems=found_problems(known, checks))


def found_problems(known: Facts, checks: Iterable[Check]) -> list[Problem]:
    """The problems of :func:`validate_facts`'s report, without the report (a stage that
    passes most trajectories needs only to know there is none)."""
    trajectory = known.trajectory
    with shared_facts(known):
        problems = [p for check in checks for p in check(trajectory)]
    if all(type(p) is Problem for p in problems):  # as pydantic would keep them
        return problems
    return ValidationReport(problems=problems).problems


def as_checks(checks: Iterable[Check]) -> tuple[Check, ...]:
    """``checks`` as a tuple (a stage's ``checks`` setting accepts any iterable)."""
    return tuple(checks)
