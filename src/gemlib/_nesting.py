"""A bound on how deeply nested the JSON gemlib reads may be.

Python's JSON decoder, pydantic's serialiser and jsonschema all recurse, so a
line of ``[[[[...`` a few thousand levels deep raises ``RecursionError`` in
whichever of them meets it first, far from the file and line it came from.
Every reader of outside JSON (corpus lines, trajectory records, tool schemas,
model replies) goes through :func:`loads` or :func:`check_depth`, which refuse
anything nested more than :data:`MAX_DEPTH` levels with a :class:`TooDeep`
error, itself a :class:`~gemlib.errors.FormatError`. Real data nests a dozen
levels at most; the bound leaves the recursive code behind it ample stack.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

from pydantic_core import from_json

from gemlib.errors import FormatError

__all__ = ["MAX_DEPTH", "TooDeep", "check_depth", "loads"]

MAX_DEPTH = 50


class TooDeep(FormatError):
    """JSON (or a Python structure) nested more than :data:`MAX_DEPTH` levels deep."""

    def __init__(self) -> None:
        super().__init__(f"nested more than {MAX_DEPTH} levels deep")


def check_depth(value: Any) -> None:
    """Raise :class:`TooDeep` if ``value`` nests mappings and lists too deeply (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping):
            children: Any = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        if depth > MAX_DEPTH:
            raise TooDeep()
        stack.extend((child, depth + 1) for child in children)


_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
"""What ``json.loads`` runs on a text, the C scanner where there is one."""
_FAST_DIGITS = 4300
"""The longest integer pydantic's JSON reader converts (it refuses longer ones): the
same as ``json``'s while Python's limit (``sys.get_int_max_str_digits``) is at least
this, or none."""
_INT_LIMIT: Callable[[], int] = getattr(sys, "get_int_max_str_digits", lambda: 0)
"""Python's integer limit; 0 (none) on a Python before 3.10.7, which has no such limit."""


def loads(text: str | bytes) -> Any:
    """``json.loads`` that raises :class:`TooDeep` instead of recursing without bound.

    Other errors are ``json.JSONDecodeError`` as usual, including a number
    too long for Python to convert (``sys.get_int_max_str_digits``, 4300
    digits by default), which ``json`` raises as a bare ``ValueError``. Text
    with fewer opening brackets than the bound cannot be too deep, so most text
    is never walked.

    Text starting with an object or a list (a tool call, most texts read) is read by
    pydantic's JSON reader, about a third faster than ``json``'s: the same value for
    every text both accept, checked on random and hostile JSON (numbers of every form,
    escapes, duplicate keys, whitespace). What it refuses (a lone surrogate, nesting
    past its limit, anything not JSON), and every text while Python's integer limit is
    below the reader's own, goes to ``json``'s C scanner, which skips ``json.loads``'s
    checks for a byte order mark, bytes and whitespace, which cannot apply, and
    ``raw_decode``'s Python layer (same value; a value missing inside, which the scanner
    reports as ``StopIteration``, and anything after the value are left to
    ``json.loads`` for its error).
    """
    try:
        if isinstance(text, str) and text[:1] in ("{", "["):
            refused = 0 < _INT_LIMIT() < _FAST_DIGITS
            if not refused:
                try:
                    value = from_json(text)
                except (ValueError, TypeError):  # TypeError: a lone surrogate in the str
                    refused = True  # read below, outside this handler: its error is not chained
            if refused:
                try:
                    value, end = _SCAN(text, 0)
                except StopIteration:
                    end = -1
                if end != len(text):
                    value = json.loads(text)
        else:
            value = json.loads(text)
    except RecursionError:
        raise TooDeep() from None
    except json.JSONDecodeError:
        raise
    except ValueError:  # an integer literal longer than Python converts
        too_long = f"a number longer than {_INT_LIMIT()} digits"
        raise json.JSONDecodeError(too_long, text if isinstance(text, str) else "", 0) from None
    if len(text) <= 2 * MAX_DEPTH:  # JSON that deep holds an opening and a closing per level
        return value
    if isinstance(text, bytes):
        opening = text.count(b"[") + text.count(b"{")
    else:
        opening = text.count("[") + text.count("{")
    if opening > MAX_DEPTH:
        check_depth(value)
    return value
