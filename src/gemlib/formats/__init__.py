"""Formats at the edge: exporting and importing trajectories.

Every format module has ``dump(trajectory) -> record`` and ``load(record) ->
trajectory``; :func:`write_jsonl` and :func:`read_jsonl` apply them to files.

- ``openai`` (:mod:`~gemlib.formats.openai`): ``messages`` + ``tools``, as TRL and
  most APIs read them; carries everything;
- ``sharegpt`` (:mod:`~gemlib.formats.sharegpt`): ``conversations`` with
  ``function_call`` and ``observation`` turns, as LLaMA-Factory reads them;
- ``hermes`` (:mod:`~gemlib.formats.hermes`): ChatML text with ``<tool_call>``
  and ``<tool_response>``;
- ``gem`` (:mod:`~gemlib.formats.gem_tags`): ``<toolsets>`` and the tag-format
  conversation, the synthesizer's target.

Masked assistant turns (:attr:`gemlib.Message.train`) are flagged per message
in ``openai`` records; the other formats cannot flag them and apply the
fallback of :mod:`~gemlib.formats.masks` (``masked="cut"`` or ``"drop"``).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gemlib._atomic import replacing
from gemlib._lines import numbered_lines
from gemlib._nesting import check_depth, loads
from gemlib.errors import FormatError, ToolSchemaError
from gemlib.formats import gem_tags, hermes, openai, sharegpt
from gemlib.formats.masks import MaskFallback, without_masks
from gemlib.model import Trajectory, validation_summary
from gemlib.pipeline.rundir import open_results

__all__ = [
    "FLAGS_MASKS",
    "FORMATS",
    "detect_format",
    "read_jsonl",
    "read_trajectories",
    "write_jsonl",
]

FORMATS: dict[
    str, tuple[Callable[[Trajectory], dict[str, Any]], Callable[[dict[str, Any]], Trajectory]]
] = {
    "openai": (openai.dump, openai.load),
    "sharegpt": (sharegpt.dump, sharegpt.load),
    "hermes": (hermes.dump, hermes.load),
    "gem": (gem_tags.dump, gem_tags.load),
}
FLAGS_MASKS = frozenset({"openai"})
"""The formats that carry per-message training flags."""


def _format(
    name: str,
) -> tuple[Callable[[Trajectory], dict[str, Any]], Callable[[dict[str, Any]], Trajectory]]:
    if name not in FORMATS:
        raise FormatError(f"unknown format {name!r}; choose one of {sorted(FORMATS)}")
    return FORMATS[name]


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
    dump = _format(format)[0]
    count = 0
    with replacing(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        for original in trajectories:
            trajectory = original if format in FLAGS_MASKS else without_masks(original, masked)
            if trajectory is None:
                continue
            handle.write(json.dumps(dump(trajectory), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: str | os.PathLike[str], format: str = "openai") -> Iterator[Trajectory]:
    """Stream trajectories from a JSONL file; a bad line raises naming the file and line."""
    _format(format)
    return read_trajectories(path, format)


def _native(record: dict[str, Any]) -> Trajectory:
    check_depth(record)
    return Trajectory.model_validate(record)


def detect_format(record: dict[str, Any]) -> str:
    """Guess a record's format: ``native`` (a run directory's outputs) or one of :data:`FORMATS`."""
    if not isinstance(record, dict):
        raise FormatError(f"a record is a JSON object, not {type(record).__name__}")
    if "conversations" in record:
        return "sharegpt"
    if isinstance(record.get("text"), str):
        return "gem" if "<toolsets>" in record["text"] else "hermes"
    if "provenance" in record or "labels" in record:
        return "native"
    if "messages" in record:
        return "openai"
    raise FormatError(f"cannot tell the format of a record with keys {sorted(record)}")


def read_trajectories(
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    on_error: Callable[[FormatError], None] | None = None,
) -> Iterator[Trajectory]:
    """Trajectories from a run directory, a JSONL file in any format, or a Parquet export.

    A JSONL file's format is guessed per line unless ``format`` names it; a
    ``.parquet`` file is read as written by :func:`gemlib.formats.hf.write_parquet`
    (``format`` does not apply). A run directory (or a partitioned run's root)
    is read through :func:`~gemlib.pipeline.rundir.open_results`: only its
    committed records, so a half-written last line left by a killed run is not
    read. A line or row that cannot be read raises
    :class:`FormatError` naming the file and line; with ``on_error`` that error
    goes to ``on_error`` instead and reading goes on with the next line.
    """
    source = Path(path)
    if not source.exists():
        raise FileNotFoundError(f"no such file: {source}")
    if format is not None:
        _format(format)
    for where, result in _entries(source, format):
        if isinstance(result, Trajectory):
            yield result
            continue
        error = FormatError(f"{source} {where}: {result}")
        if on_error is None:
            raise error
        on_error(error)


def _entries(source: Path, format: str | None) -> Iterator[tuple[str, Trajectory | Exception]]:
    """``(line or row, its trajectory or why it has none)`` for every record of ``source``."""
    if source.is_dir():
        for number, record in enumerate(open_results(source)[0], start=1):
            yield f"record {number}", _attempt(functools.partial(_from_record, record, format))
        return
    if source.suffix.lower() == ".parquet":
        from gemlib.formats.hf import from_row, parquet_rows

        for number, row in parquet_rows(source):
            yield f"row {number}", _attempt(functools.partial(from_row, row))
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
                yield f"line {number}", _attempt(functools.partial(_from_record, record, format))


def _from_record(record: Any, format: str | None) -> Trajectory:
    name = format or detect_format(record)
    return (_native if name == "native" else _format(name)[1])(record)


def _attempt(load: Callable[[], Trajectory]) -> Trajectory | Exception:
    """The trajectory ``load`` reads, or the error saying why there is none."""
    try:
        return load()
    except ValidationError as exc:
        return FormatError(validation_summary(exc))
    except (FormatError, ToolSchemaError) as exc:
        return exc
