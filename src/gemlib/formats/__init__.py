"""Formats at the edge: exporting and importing trajectories.

Every format is an entry of one registry (:mod:`gemlib.formats.registry`),
gemlib's own and those of plug-ins alike (entry-point group ``gemlib.formats``;
docs/formats.md shows how to add one). The JSONL formats give
``dump(trajectory) -> record`` and ``load(record) -> trajectory``;
:func:`write_jsonl` and :func:`read_jsonl` apply them to files, and
:func:`read_trajectories` reads anything a format reads, guessing JSONL
records' formats with :func:`detect_format`. gemlib's own:

- ``openai`` (:mod:`~gemlib.formats.openai`): ``messages`` + ``tools``, as TRL and
  most APIs read them; carries everything;
- ``sharegpt`` (:mod:`~gemlib.formats.sharegpt`): ``conversations`` with
  ``function_call`` and ``observation`` turns, as LLaMA-Factory reads them;
- ``hermes`` (:mod:`~gemlib.formats.hermes`): ChatML text with ``<tool_call>``
  and ``<tool_response>``;
- ``gem`` (:mod:`~gemlib.formats.gem_tags`): ``<toolsets>`` and the tag-format
  conversation, the synthesizer's target;
- ``native`` (:mod:`~gemlib.formats.native`, read only): a run directory's records;
- ``parquet`` (:mod:`~gemlib.formats.hf`) and ``hf`` (:mod:`gemlib.hub`, a
  dataset folder, write only);
- ``tau2`` and ``bfcl`` (:mod:`~gemlib.formats.tau2`, :mod:`~gemlib.formats.bfcl`):
  importers of benchmark tasks, read only.

Masked assistant turns (:attr:`gemlib.Message.train`) are flagged per message
in ``openai`` records; the other formats cannot flag them and apply the
fallback of :mod:`~gemlib.formats.masks` (``masked="cut"`` or ``"drop"``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from gemlib._lines import numbered_lines
from gemlib._nesting import loads
from gemlib.errors import FormatError
from gemlib.formats.format import Entry, ExportRequest, Format, attempt, write_records
from gemlib.formats.masks import MaskFallback
from gemlib.formats.registry import FORMATS, detect_format, file_format, format_detector, get_format
from gemlib.model import Trajectory

__all__ = [
    "FORMATS",
    "Format",
    "detect_format",
    "export",
    "read_jsonl",
    "read_records",
    "read_trajectories",
    "write_jsonl",
]


def write_jsonl(
    trajectories: Iterable[Trajectory],
    path: str | os.PathLike[str],
    format: str = "openai",
    *,
    masked: MaskFallback = "cut",
) -> int:
    """Write one record per line; returns how many were written.

    The file is replaced all at once when the writing is done: an export that is
    interrupted leaves the previous file as it was. In a format without
    per-message training flags, trajectories with masked turns are cut or
    dropped as ``masked`` says (:func:`~gemlib.formats.masks.without_masks`).
    """
    return write_records(trajectories, path, get_format(format), masked=masked)


def read_jsonl(path: str | os.PathLike[str], format: str = "openai") -> Iterator[Trajectory]:
    """Stream trajectories from a JSONL file; a bad line raises naming the file and line."""
    _readable(format)
    return read_trajectories(path, format)


def export(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    format: str,
    *,
    input_format: str | None = None,
    masked: MaskFallback = "cut",
    license: str = "other",
    pretty_name: str = "",
    trajectories: Callable[[], Iterator[Trajectory]] | None = None,
) -> str:
    """Write ``source`` (what :func:`read_trajectories` reads) to ``out`` in ``format``.

    What ``gemlib export`` does; returns the lines it prints. ``masked`` is the
    fallback of formats without per-message training flags; ``license`` and
    ``pretty_name`` go to the dataset card of formats that write one (``hf``).
    ``trajectories`` reads them instead (``gemlib export`` passes
    :func:`gemlib.pipeline.rundir.read_trajectories`, which reads run
    directories too).
    """
    chosen = get_format(format)
    if not chosen.writes:
        raise FormatError(f"the {format} format is read only")
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    request = ExportRequest(
        source=Path(source),
        out=target,
        trajectories=trajectories or functools.partial(read_trajectories, source, input_format),
        masked=masked,
        license=license,
        pretty_name=pretty_name,
    )
    return chosen.export(request)


def _readable(name: str) -> Format:
    chosen = get_format(name)
    if not chosen.reads:
        raise FormatError(f"the {name} format is write only")
    return chosen


def read_trajectories(
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    on_error: Callable[[FormatError], None] | None = None,
) -> Iterator[Trajectory]:
    """Trajectories from a file in any readable format, or from an importer.

    A JSONL file's format is guessed per line unless ``format`` names it; a
    file whose suffix a format reads whole (``.parquet``) is read by that format
    (``format`` does not apply). A run directory is read by
    :func:`gemlib.pipeline.rundir.read_trajectories` (which reads files too)
    and is refused here. An importer's ``format`` (``tau2``, ``bfcl``) reads the source it names
    (``path`` is then a domain or category, not a file). A line or row that cannot
    be read raises :class:`FormatError` naming the file and line; with
    ``on_error`` that error goes to ``on_error`` instead and reading goes on
    with the next line.
    """
    named = None if format is None else _readable(format)
    if named is not None and named.read is not None and named.imports:
        entries = named.read(str(path))
    else:
        source = Path(path)
        if not source.exists():
            raise FileNotFoundError(f"no such file: {source}")
        if source.is_dir():
            raise FormatError(
                f"{source} is a directory; read a run directory with "
                "gemlib.pipeline.rundir.read_trajectories"
            )
        entries = _entries(source, named)
    yield from _reported(entries, path, on_error)


def read_records(
    records: Iterable[Any],
    source: str | os.PathLike[str],
    format: str | None = None,
    *,
    on_error: Callable[[FormatError], None] | None = None,
) -> Iterator[Trajectory]:
    """Trajectories from JSON records read from ``source`` (a run directory's, say).

    Each record's format is guessed unless ``format`` names it; a record that
    cannot be read raises :class:`FormatError` naming ``source`` and its number,
    or goes to ``on_error`` as in :func:`read_trajectories`.
    """
    load = functools.partial(
        _from_record,
        format=None if format is None else _readable(format),
        detect=format_detector(),
    )
    entries = (
        (f"record {number}", attempt(functools.partial(load, record)))
        for number, record in enumerate(records, start=1)
    )
    yield from _reported(entries, source, on_error)


def _reported(
    entries: Iterable[Entry],
    source: str | os.PathLike[str],
    on_error: Callable[[FormatError], None] | None,
) -> Iterator[Trajectory]:
    """The trajectories of ``entries``; each error raised, or handed to ``on_error``."""
    for where, result in entries:
        if isinstance(result, Trajectory):
            yield result
            continue
        error = FormatError(f"{source} {where}: {result}")
        if on_error is None:
            raise error
        on_error(error)


def _entries(source: Path, format: Format | None) -> Iterator[Entry]:
    """``(line or row, its trajectory or why it has none)`` for every record of ``source``."""
    load = functools.partial(_from_record, format=format, detect=format_detector())
    whole = file_format(source.suffix)
    if whole is not None and whole.read is not None:
        yield from whole.read(str(source))
        return
    with open(source, "rb") as handle:
        for number, raw in numbered_lines(handle):
            if not raw.strip():
                continue
            try:
                record = loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield f"line {number}", FormatError(f"not valid UTF-8 (byte {exc.start})")
            except ValueError as exc:  # not JSON, or nested too deeply
                yield f"line {number}", exc
            else:
                yield f"line {number}", attempt(functools.partial(load, record))


def _from_record(
    record: Any, *, format: Format | None, detect: Callable[[Mapping[str, Any]], str]
) -> Trajectory:
    chosen = format or get_format(detect(record))
    if chosen.load is None:
        raise FormatError(f"the {chosen.name} format has no JSONL records")
    return chosen.load(record)
