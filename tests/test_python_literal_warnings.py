"""Python-literal text gemlib did not write is read without compiler warnings.

A model's ``'C:\\docs'`` or a dataset's call string with ``'\\d+'`` holds an invalid
escape sequence. Python's compiler warns on it (shown by default from Python 3.12),
and under ``-W error`` the warning became a failed parse.
"""

from __future__ import annotations

import warnings

from gemlib.formats.bfcl import parse_call_string
from gemlib.formats.gem_tags import loads_lenient


def test_a_python_literal_with_an_invalid_escape_is_read_silently() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = loads_lenient("{'path': 'C:\\docs', 'pattern': '\\d+'}", "a call")

    assert value == {"path": "C:\\docs", "pattern": "\\d+"}


def test_a_call_string_with_an_invalid_escape_is_read_silently() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        name, arguments = parse_call_string("grep(pattern='\\d+')")

    assert (name, arguments) == ("grep", {"pattern": "\\d+"})
