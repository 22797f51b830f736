"""The format registry: gemlib's formats and those of plug-ins, by name.

A plug-in package adds a :class:`~gemlib.formats.format.Format` through the
entry-point group ``gemlib.formats`` in its ``pyproject.toml``::

    [project.entry-points."gemlib.formats"]
    csv = "my_package.formats:CSV"

and it appears in ``gemlib export --format`` (and ``--help``), in the
``--format`` of ``stats`` and ``validate`` if it reads, and in
:func:`~gemlib.formats.read_trajectories`. A plug-in that does not load, or
that is not a ``Format`` under its own name, is left out with a warning; the
other formats keep working.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from gemlib._registry import Registry
from gemlib.errors import FormatError
from gemlib.formats.format import Format

__all__ = [
    "FORMATS",
    "add_builtin",
    "available_formats",
    "detect_format",
    "file_format",
    "format_detector",
    "get_format",
    "new_registry",
]

log = logging.getLogger("gemlib")

_BUILT_IN = {
    "sharegpt": "gemlib.formats.sharegpt:FORMAT",
    "gem": "gemlib.formats.gem_tags:FORMAT",
    "hermes": "gemlib.formats.hermes:FORMAT",
    "native": "gemlib.formats.native:FORMAT",
    "openai": "gemlib.formats.openai:FORMAT",
    "parquet": "gemlib.formats.hf:PARQUET",
    "tau2": "gemlib.formats.tau2:FORMAT",
    "bfcl": "gemlib.formats.bfcl:FORMAT",
}
"""gemlib's own formats. A record's format is guessed by asking these in this order
(the most specific first: a ``text`` record with ``<toolsets>`` is ``gem``, any
other ``text`` record ``hermes``), then plug-ins by name."""


_ABOVE: dict[str, str] = {}
"""gemlib's own formats defined above this package, added by :func:`add_builtin`."""


def add_builtin(name: str, reference: str) -> None:
    """Add one of gemlib's own formats that lives above the formats, as ``"module:NAME"``.

    The ``gemlib`` facade adds ``hf`` this way (a dataset folder with its card, in
    :mod:`gemlib.hub`, which needs the statistics): this package never names the
    packages above it. It joins :data:`FORMATS` and every :func:`new_registry`,
    asked after the formats defined here.
    """
    _ABOVE[name] = reference
    FORMATS.register_lazy(name, reference, replace=True)


def new_registry() -> Registry[Format]:
    """A registry of gemlib's own formats; plug-ins are read from the entry points on first use."""
    registry: Registry[Format] = Registry("format", "gemlib.formats", FormatError)
    for name, reference in {**_BUILT_IN, **_ABOVE}.items():
        registry.register_lazy(name, reference)
    return registry


FORMATS = new_registry()
"""Every format by name; plug-ins come from the entry-point group ``gemlib.formats``."""


def get_format(name: str) -> Format:
    """The format called ``name``; :class:`FormatError` for an unknown or broken one."""
    found: object = FORMATS.get(name)
    if not isinstance(found, Format) or found.name != name:
        raise FormatError(
            f"the format plug-in {name!r} is not a gemlib.formats.format.Format named {name!r}"
        )
    return found


def available_formats() -> list[Format]:
    """Every format that loads, by name; a broken plug-in is left out with a warning."""
    return sorted(_in_order(), key=lambda format: format.name)


def file_format(suffix: str) -> Format | None:
    """The format that reads whole files ending in ``suffix`` (``.parquet``), if any."""
    for format in _in_order():
        if format.read is not None and format.suffix and format.suffix == suffix.lower():
            return format
    return None


def _in_order() -> Iterator[Format]:
    """gemlib's formats in :data:`_BUILT_IN` order and those added from above, then the
    plug-ins that load, by name."""
    yield from (get_format(name) for name in {**_BUILT_IN, **_ABOVE})
    for name in sorted(set(FORMATS.names()) - set(_BUILT_IN) - set(_ABOVE)):
        try:
            yield get_format(name)
        except Exception as error:  # a plug-in's bad entry must not hide the other formats
            log.warning("gemlib: skipped the format %r: %s: %s", name, type(error).__name__, error)


def detect_format(record: Mapping[str, Any]) -> str:
    """The name of the format a JSONL record is in (see :func:`format_detector`)."""
    return format_detector()(record)


def format_detector() -> Callable[[Mapping[str, Any]], str]:
    """A function naming the format of a record, asking each format that can recognise one.

    gemlib's own formats are asked first (so a plug-in cannot take their
    records), then plug-ins by name; a plug-in whose ``recognise`` fails is
    passed over. The formats are looked up once, here: make one detector per file.
    """
    recognisers = [(f.name, f.recognise) for f in _in_order() if f.recognise is not None]

    def detect(record: Mapping[str, Any]) -> str:
        if not isinstance(record, Mapping):
            raise FormatError(f"a record is a JSON object, not {type(record).__name__}")
        for name, recognise in recognisers:
            try:
                if recognise(record):
                    return name
            except Exception:
                if name in _BUILT_IN:
                    raise
        raise FormatError(f"cannot tell the format of a record with keys {sorted(record)}")

    return detect
