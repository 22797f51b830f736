"""Turn-level verdicts: keep a trajectory whole, keep it with bad turns masked, or reject it.

Every problem points at a message (:attr:`~gemlib.model.Problem.message_index`).
:func:`blamed_turn` turns that into the assistant turn to blame: an assistant
message is its own; a tool reply's problem (the state ledger's contradictions,
an empty reply) is blamed on the assistant turn that reads it next, since that
turn builds on a false observation; a problem in a user or system message, or
with no message, belongs to the whole trajectory.

:class:`TurnPolicy` decides. Problems of the ``structural`` rules (a broken
turn order, an unknown tool, a malformed tool definition...) reject: masking
cannot mend a conversation that is not well formed. So does a problem with no
assistant turn to blame, and so does a verdict that would mask more than
``max_masked`` of the assistant turns or every turn a trainer could learn from.
Otherwise the blamed turns are masked (:attr:`gemlib.Message.train` is
``False``): they stay in the conversation as context, exporters never offer
them for training (docs/formats.md).

:class:`TurnValidator` is the stage: it runs the checks, applies the policy,
and passes the trajectory on whole, masked (``labels["masked"]`` lists the
masked turns and their rules), or rejected like :class:`RuleValidator`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import attrs

from gemlib.model import Problem, Rejection, Trajectory

__all__ = ["STRUCTURAL_RULES", "TurnPolicy", "Verdict", "blamed_turn", "mask"]

STRUCTURAL_RULES = frozenset(
    {
        "tool_definition",
        "unknown_tool",
        "duplicate_call_id",
        "turn_order",
        "one_call_per_turn",
        "tool_reply",
    }
)


def blamed_turn(trajectory: Trajectory, problem: Problem) -> int | None:
    """The index of the assistant message a problem is blamed on, or ``None`` (the whole)."""
    index = problem.message_index
    messages = trajectory.messages
    if index is None or not 0 <= index < len(messages):
        return None
    role = messages[index].role
    if role == "assistant":
        return index
    if role == "tool":
        return next(
            (i for i in range(index + 1, len(messages)) if messages[i].role == "assistant"), None
        )
    return None


@attrs.frozen
class Verdict:
    """What the policy decided: ``keep``, ``mask`` (with the turns) or ``reject``, and why."""

    decision: Literal["keep", "mask", "reject"]
    masked: tuple[int, ...] = ()
    problems: tuple[Problem, ...] = ()
    reason: str = ""


def _share(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"max_masked is a share between 0 and 1, got {value}")
    return value


@attrs.frozen
class TurnPolicy:
    """Per trajectory: keep whole, mask the blamed assistant turns, or reject.

    ``structural`` rules always reject; ``max_masked`` is the largest share of
    assistant turns that may be masked (0 makes every problem a rejection, the
    whole-trajectory policy).
    """

    structural: frozenset[str] = STRUCTURAL_RULES
    max_masked: float = attrs.field(default=0.5, converter=_share)

    def decide(self, trajectory: Trajectory, problems: Sequence[Problem]) -> Verdict:
        """The verdict on ``trajectory`` given every problem found in it."""
        found = tuple(problems)
        if not found:
            return Verdict("keep")
        broken = [p for p in found if p.rule in self.structural]
        if broken:
            return Verdict("reject", problems=found, reason=f"{broken[0].rule} cannot be masked")
        blamed = [blamed_turn(trajectory, p) for p in found]
        if any(turn is None for turn in blamed):
            whole = found[blamed.index(None)]
            return Verdict("reject", problems=found, reason=f"{whole.rule} is about the whole")
        turns = tuple(sorted({t for t in blamed if t is not None}))
        assistant = [i for i, m in enumerate(trajectory.messages) if m.role == "assistant"]
        trainable = [i for i in assistant if trajectory.messages[i].train and i not in turns]
        share = len(set(turns) | {i for i in assistant if not trajectory.messages[i].train})
        if not trainable or share > self.max_masked * len(assistant):
            return Verdict(
                "reject",
                problems=found,
                reason=f"{len(turns)} of {len(assistant)} assistant turns would be masked",
            )
        return Verdict("mask", masked=turns, problems=found)


def mask(trajectory: Trajectory, turns: Iterable[int]) -> Trajectory:
    """``trajectory`` with the assistant messages at ``turns`` not trained on."""
    chosen = set(turns)
    messages = tuple(
        m.model_copy(update={"train": False}) if i in chosen and m.role == "assistant" else m
        for i, m in enumerate(trajectory.messages)
    )
    return trajectory.model_copy(update={"messages": messages})


def apply_verdict(trajectory: Trajectory, verdict: Verdict) -> Trajectory | Rejection:
    """Carry out a verdict: the trajectory (masked where decided) or its rejection."""
    if verdict.decision == "keep":
        return trajectory
    if verdict.decision == "reject":
        shown = "; ".join(p.text for p in verdict.problems[:3])
        more = len(verdict.problems) - 3
        return Rejection(
            rule=verdict.problems[0].rule if verdict.problems else "rejected",
            reason=f"{verdict.reason}: {shown}" + (f"; and {more} more" if more > 0 else ""),
            item_id=trajectory.id,
            detail={"problems": [p.model_dump() for p in verdict.problems]},
        )
    masked = dict(trajectory.labels.get("masked") or {})
    for problem in verdict.problems:
        turn = blamed_turn(trajectory, problem)
        if turn is not None:
            masked.setdefault(str(turn), []).append(problem.rule)
    labelled = trajectory.model_copy(update={"labels": {**trajectory.labels, "masked": masked}})
    return mask(labelled, verdict.masked)
