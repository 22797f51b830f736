"""Python expressions parsed from text gemlib did not write (model replies, datasets)."""

from __future__ import annotations

import ast
import warnings

__all__ = ["parse_expression"]


def parse_expression(text: str) -> ast.Expression:
    """``ast.parse(text, mode="eval")`` without the warnings Python's compiler gives.

    A model's ``'C:\\docs'`` holds an invalid escape sequence, on which the compiler
    warns (a ``DeprecationWarning``, a ``SyntaxWarning`` shown by default from Python
    3.12): the user would see a line per reply about text they did not write, and a
    ``warnings`` filter set to ``error`` would turn the warning into a failed parse.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(text, mode="eval")
