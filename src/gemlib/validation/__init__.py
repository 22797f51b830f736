"""Validation: composable rule checks, the ladder that runs them, and the RuleValidator stage.

from gemlib import validate
from gemlib.validation import checks, default_checks

report = validate(trajectory)                       # every problem, with rule and message
strict = [*default_checks(one_call_per_turn=True), my_check]
"""

from gemlib.validation import checks
from gemlib.validation.grounding import consistent_ids, grounded
from gemlib.validation.ladder import (
    DEFAULT_CHECKS,
    RuleValidator,
    ValidationReport,
    default_checks,
    validate,
)
from gemlib.validation.ledger import state_ledger
from gemlib.validation.limits import prompt_limits

__all__ = [
    "DEFAULT_CHECKS",
    "RuleValidator",
    "ValidationReport",
    "checks",
    "consistent_ids",
    "default_checks",
    "grounded",
    "prompt_limits",
    "state_ledger",
    "validate",
]
