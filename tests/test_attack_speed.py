"""Hostile review of the speed work of issue 20: what the cuts may have changed quietly.

Each test here was written against main after the cuts and checked to fail there and
pass on the code before them (34eeb51), or to hold a standard the cuts must keep.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import gemlib
from gemlib.errors import GemlibError
from gemlib.formats.gem_tags import loads_lenient, parse_refined, parse_workflows
from test_parse_time_bounds import _seconds  # the best of three reads' CPU time

if sys.version_info >= (3, 11):
    from re import _constants as _sre_constants
    from re import _parser as _sre_parser
else:  # pragma: no cover - the oldest Python has neither construct to look for
    _sre_constants = _sre_parser = None

ROOT = Path(__file__).resolve().parent.parent

_NEWER_THAN_310 = ("POSSESSIVE_REPEAT", "ATOMIC_GROUP")
"""Regular-expression constructs Python 3.11 added (``a*+``, ``(?>...)``): on 3.10
``re.compile`` refuses them ("multiple repeat"), so a module holding one fails to import."""


def _constructs(parsed: Any) -> set[str]:
    """The names of every operation in a parsed pattern, nested ones included."""
    found: set[str] = set()
    for op, value in parsed:
        found.add(str(op))
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, _sre_parser.SubPattern):
                found |= _constructs(item)
            elif isinstance(item, (list, tuple)):
                for inner in item:
                    if isinstance(inner, _sre_parser.SubPattern):
                        found |= _constructs(inner)
    return found


def _module_patterns() -> list[tuple[str, re.Pattern[str]]]:
    """Every compiled pattern held at the top of a gemlib module."""
    patterns = []
    for info in pkgutil.walk_packages(gemlib.__path__, "gemlib."):
        if info.name.startswith("gemlib.cli.__main__"):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed
            continue
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
                patterns.append((f"{info.name}.{name}", value))
    return patterns


def test_every_pattern_compiles_on_the_oldest_supported_python() -> None:
    """pyproject says Python 3.10 and up: no module-level regex may use 3.11's possessive
    quantifiers or atomic groups (``gem_tags._PLAIN_TURN`` did: importing gemlib failed on
    3.10). Fails on main after 3772890, passes on 34eeb51."""
    if _sre_parser is None:  # pragma: no cover - on 3.10 importing gemlib is the check
        return
    floor = re.search(r'^requires-python = "(.*)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert floor is not None
    assert floor.group(1) == ">=3.10"
    newer = {getattr(_sre_constants, name) for name in _NEWER_THAN_310}
    offenders = [
        name
        for name, pattern in _module_patterns()
        if _constructs(_sre_parser.parse(pattern.pattern, pattern.flags)) & {str(n) for n in newer}
    ]
    assert offenders == []


_BLANKS = " \n"
"""A run of blank lines with spaces (a degenerate reply's padding), inside a fenced JSON
that never closes its fence."""

FENCED: dict[str, tuple[Callable[[str], Any], Callable[[int], str]]] = {
    "a fenced JSON value": (
        lambda text: loads_lenient(text, "x"),
        lambda n: "```json\n[1" + _BLANKS * n + "]",
    ),
    "fenced <toolsets>": (
        parse_refined,
        lambda n: "<toolsets>```json\n[" + _BLANKS * n + "]</toolsets><user>q</user>",
    ),
    "fenced <tools> of a workflow": (
        parse_workflows,
        lambda n: (
            "<workflow><description>d</description><tools>```\n[{}"
            + _BLANKS * n
            + "]</tools></workflow>"
        ),
    ),
}


@pytest.mark.parametrize(("read", "make"), FENCED.values(), ids=list(FENCED))
def test_a_code_fence_around_json_costs_linear_time(
    read: Callable[[str], Any], make: Callable[[int], str]
) -> None:
    """The fence was dropped by ``re.sub(r"^```...\\s*|\\s*```$")``, which tries ``\\s*```$``
    from every blank of a run: quadratic, 0.3 s for 8 kB, 85 s for 128 kB of blanks (a
    standard: every regex on model-written text bounded in time). Fails on main 680f0aa
    and on 34eeb51 alike."""
    small, large = _seconds(read, make(4_000)), _seconds(read, make(16_000))
    assert large < 8 * small + 0.25, f"4x the text took {large / max(small, 1e-9):.1f}x the time"


@pytest.mark.parametrize(
    "text",
    ["```json\n[1, 2]\n```", "```\n{}```", "``` [1] ```", "```json```", "```", "```[1,]", "````"],
)
def test_a_code_fence_is_dropped_as_before(text: str) -> None:
    """The fence's opening line and a closing fence at the end are dropped, nothing else."""
    try:
        got: Any = loads_lenient(text, "x")
    except GemlibError as exc:
        got = str(exc)
    body = re.sub(r"^```[A-Za-z0-9_-]*\s*|\s*```$", "", text.strip())
    try:
        want: Any = loads_lenient(body, "x")
    except GemlibError as exc:
        want = str(exc)
    assert type(got) is type(want)
    if isinstance(got, str):  # an error names the same problem (its column counts the fence)
        assert got.split(" at ")[0] == want.split(" at ")[0]
    else:
        assert got == want
