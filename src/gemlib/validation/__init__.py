"""Validation: composable rule checks and the ladder that runs them.

The stages that apply them to a run are in :mod:`gemlib.stages.validators`.

from gemlib import validate
from gemlib.validation import checks, default_checks

report = validate(trajectory)                       # every problem, with rule and message
strict = [*default_checks(one_call_per_turn=True), my_check]
"""

from gemlib.validation import checks
from gemlib.validation.grounding import consistent_ids, grounded
from gemlib.validation.ladder import DEFAULT_CHECKS, ValidationReport, default_checks, validate
from gemlib.validation.ledger import state_ledger
from gemlib.validation.limits import prompt_limits

__all__ = [
    "DEFAULT_CHECKS",
    "ValidationReport",
    "checks",
    "consistent_ids",
    "default_checks",
    "grounded",
    "prompt_limits",
    "state_ledger",
    "validate",
]
