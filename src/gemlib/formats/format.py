"""What a format is: the entry type of the format registry (:mod:`gemlib.formats.registry`).

A :class:`Format` is a name, a one-line description and the functions it
supports. Most formats are JSONL, one record per trajectory: they give
``dump`` and ``load`` (and ``recognise``, so a record can be matched to them
without being named), and :func:`write_records` and the readers of
:mod:`gemlib.formats` do the rest. A format that is not one record per line
gives ``write`` (Parquet, a Hugging Face dataset folder) or ``read`` (Parquet,
and importers such as tau2-bench's tasks, whose source is a name rather than a
file).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
from pydantic import ValidationError

from gemlib._atomic import replacing
from gemlib._secrets import scrub
from gemlib.errors import FormatError, GemlibError, ToolSchemaError
from gemlib.formats.masks import MaskFallback, without_masks
from gemlib.model import Trajectory, validation_summary

__all__ = [
    "Entry",
    "ExportRequest",
    "Format",
    "attempt",
    "importer",
    "write_records",
    "wrote",
]

Entry = tuple[str, Trajectory | Exception]
"""``(where, result)``: a record's place (``"line 3"``, ``"row 7"``) and its trajectory,
or the error saying why it has none (the reader goes on with the next record)."""


@attrs.frozen(kw_only=True)
class ExportRequest:
    """What ``gemlib export`` asks of a format: read ``source``, write ``out``.

    ``trajectories`` reads the source afresh on each call (a format may read it
    more than once); ``masked`` is the fallback of formats that cannot flag a
    masked turn; ``license`` and ``pretty_name`` are for formats that write a
    dataset card.
    """

    source: Path
    out: Path
    trajectories: Callable[[], Iterator[Trajectory]]
    masked: MaskFallback = "cut"
    license: str = "other"
    pretty_name: str = ""


@attrs.frozen(kw_only=True)
class Format:
    """One registered format (see the module docstring); every function is optional.

    - ``name``: what ``--format`` takes (letters, digits, ``_.-``; at most 64);
      ``description``: one line for ``--help`` (at most 200 characters);
    - ``suffix``: the file suffix it writes and reads (``".jsonl"``), empty when it
      does not write or read one file (a dataset folder, an importer);
    - ``dump``/``load``: one JSONL record from/to a trajectory;
    - ``recognise``: whether a JSONL record is in this format (for guessing it);
    - ``carries_masks``: its records flag masked turns (:attr:`gemlib.Message.train`);
      without it, masked turns are cut or dropped (:mod:`gemlib.formats.masks`);
    - ``write``: an export other than one ``dump`` record per line; returns the
      lines to show the user;
    - ``read``: reads a source other than JSONL lines: a file ending in ``suffix``,
      or, for an importer (no ``suffix``), whatever its source names.
    """

    name: str = attrs.field(validator=attrs.validators.matches_re(r"[A-Za-z0-9][\w.-]{0,63}"))
    description: str = attrs.field(validator=attrs.validators.matches_re(r"[^\r\n]{1,200}"))
    suffix: str = ".jsonl"
    dump: Callable[[Trajectory], dict[str, Any]] | None = None
    load: Callable[[dict[str, Any]], Trajectory] | None = None
    recognise: Callable[[Mapping[str, Any]], bool] | None = None
    carries_masks: bool = False
    write: Callable[[ExportRequest], str] | None = None
    read: Callable[[str], Iterator[Entry]] | None = None

    @property
    def writes(self) -> bool:
        """Whether ``gemlib export --format`` can write it."""
        return self.write is not None or self.dump is not None

    @property
    def reads(self) -> bool:
        """Whether it can be read (``--format`` of stats and validate, ``--input-format``)."""
        return self.read is not None or self.load is not None

    @property
    def imports(self) -> bool:
        """Whether it reads a source of its own rather than a file (tau2-bench, BFCL)."""
        return self.read is not None and not self.suffix

    def export(self, request: ExportRequest) -> str:
        """Write ``request.source`` to ``request.out``; the lines to show the user.

        A ``write`` failing with anything but a gemlib error or an ``OSError`` (a
        plug-in's bug, its wrong signature) is a :class:`FormatError` naming the
        format, its text scrubbed of credentials.
        """
        if self.write is None:
            return self.export_records(request)
        try:
            return self.write(request)
        except (GemlibError, OSError):
            raise
        except Exception as exc:
            failure = f"{type(exc).__name__}: {exc}"
            raise FormatError(
                scrub(f"the {self.name} format failed to write {request.out}: {failure}")
            ) from exc

    def export_records(self, request: ExportRequest) -> str:
        """Write one ``dump`` record per line (:func:`write_records`); the line to show."""
        count = write_records(request.trajectories(), request.out, self, masked=request.masked)
        return wrote(count, request.out, self.name)


def wrote(count: int, out: Path, name: str) -> str:
    """What an export that wrote ``count`` trajectories to ``out`` says."""
    return f"wrote {count} trajectories to {out} ({name})"


def write_records(
    trajectories: Iterable[Trajectory],
    path: str | os.PathLike[str],
    format: Format,
    *,
    masked: MaskFallback = "cut",
) -> int:
    """Write one ``format.dump`` record per line, replacing ``path`` at the end; how many.

    An interrupted write leaves the previous file as it was. Unless the format
    carries masks, trajectories with masked turns are cut or dropped as
    ``masked`` says (:func:`~gemlib.formats.masks.without_masks`).
    """
    dump = format.dump
    if dump is None:
        raise FormatError(f"the {format.name} format does not write JSONL records")
    count = 0
    with replacing(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        for original in trajectories:
            trajectory = original if format.carries_masks else without_masks(original, masked)
            if trajectory is None:
                continue
            handle.write(json.dumps(dump(trajectory), ensure_ascii=False) + "\n")
            count += 1
    return count


def attempt(load: Callable[[], Trajectory]) -> Trajectory | Exception:
    """The trajectory ``load`` reads, or the error saying why there is none (for an :data:`Entry`).

    Only the record's own faults are caught: a record that fails validation or
    that the format refuses (:class:`~gemlib.errors.FormatError`, a bad tool schema).
    """
    try:
        return load()
    except ValidationError as exc:
        return FormatError(validation_summary(exc))
    except (FormatError, ToolSchemaError) as exc:
        return exc


def importer(
    name: str, description: str, read: Callable[[str], Iterable[Trajectory]], *, unit: str
) -> Format:
    """A read-only format whose source is a name (a benchmark's domain or category).

    ``read(source)`` yields the trajectories; ``unit`` names one in messages ("task").
    """

    def entries(source: str) -> Iterator[Entry]:
        for number, trajectory in enumerate(read(source), start=1):
            yield f"{unit} {number}", trajectory

    return Format(name=name, description=description, suffix="", read=entries)
