"""Numbers as the checks compare them, including integers too large for a float.

JSON and the tag parser read integers of up to 4300 digits; past about 1e308
one is no float, and ``float()`` of it raises. A model may write one anywhere.
"""

from __future__ import annotations

import math

__all__ = ["as_float", "comparable"]


def comparable(value: int | float) -> int | float:
    """``value`` as a float (``7`` is ``7.0``), or an integer too large for one as
    itself: it equals no float, and compares with any number exactly."""
    try:
        return float(value)
    except OverflowError:
        return value


def as_float(value: int | float) -> float:
    """``value`` as a float; an integer too large for one as the infinity of its sign."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf
