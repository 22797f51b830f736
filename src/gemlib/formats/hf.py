"""Hugging Face ``datasets``: trajectories as a ``Dataset`` and as Parquet (the ``hf`` extra).

Arrow gives a column one schema, so dictionaries whose keys vary (tool
schemas, call arguments) would be unified, with missing keys turned into
nulls. This layout stores them as JSON strings instead and loses nothing:

    id          string
    messages    list of {role, content, tool_calls (JSON string), tool_call_id, name, train,
                reasoning_content}
    tools       JSON string: the OpenAI tools list
    metadata    JSON string: labels, provenance, source document, output schemas

For training with TRL, the OpenAI JSONL export (``gemlib.formats.openai``)
loads directly with ``datasets.load_dataset("json", ...)`` in datasets 5,
whose ``Json`` feature keeps each schema as written.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from gemlib._atomic import replacing
from gemlib._nesting import loads
from gemlib.errors import FormatError, GemlibError
from gemlib.formats import openai
from gemlib.formats.format import Entry, ExportRequest, Format, attempt, wrote
from gemlib.model import Trajectory

__all__ = ["PARQUET", "from_dataset", "read_parquet", "to_dataset", "write_parquet"]


def _datasets() -> Any:
    try:
        return importlib.import_module("datasets")
    except ImportError:
        raise GemlibError("this needs the datasets package: pip install 'gemlib[hf]'") from None


def _row(trajectory: Trajectory) -> dict[str, Any]:
    record = openai.dump(trajectory)
    messages = [
        {
            "role": m["role"],
            "content": m["content"],
            "tool_calls": json.dumps(m.get("tool_calls") or [], ensure_ascii=False),
            "tool_call_id": m.get("tool_call_id"),
            "name": m.get("name"),
            "train": m.get("train", True),
            "reasoning_content": m.get("reasoning_content") or "",
        }
        for m in record["messages"]
    ]
    return {
        "id": record["id"],
        "messages": messages,
        "tools": json.dumps(record["tools"], ensure_ascii=False),
        "metadata": record["metadata"],
    }


def _record(row: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI record a row holds; :class:`FormatError` for a row in another layout."""
    if not isinstance(row, Mapping):
        raise FormatError(f"a row is an object, not {type(row).__name__}")
    try:
        messages = []
        for m in row["messages"]:
            message = {"role": m["role"], "content": m["content"]}
            calls = loads(m["tool_calls"] or "[]")
            if calls:
                message["tool_calls"] = calls
            for key in ("tool_call_id", "name"):
                if m.get(key) is not None:
                    message[key] = m[key]
            if m.get("train") is False:
                message["train"] = False
            if m.get("reasoning_content"):
                message["reasoning_content"] = m["reasoning_content"]
            messages.append(message)
        return {
            "id": row.get("id"),
            "messages": messages,
            "tools": loads(row.get("tools") or "[]"),
            "metadata": row.get("metadata"),
        }
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise FormatError(
            f"not a row of gemlib's layout (id, messages, tools, metadata): {exc!r}"
        ) from None


def to_dataset(trajectories: Iterable[Trajectory]) -> Any:
    """A ``datasets.Dataset`` with one row per trajectory (see the module docstring)."""
    return _datasets().Dataset.from_list([_row(t) for t in trajectories])


def from_row(row: dict[str, Any]) -> Trajectory:
    """The trajectory one row of this layout holds; :class:`FormatError` if it holds none."""
    return openai.load(_record(row))


def from_dataset(dataset: Iterable[dict[str, Any]]) -> Iterator[Trajectory]:
    """Trajectories from a dataset (or any rows) in this layout."""
    for row in dataset:
        yield from_row(row)


def write_parquet(trajectories: Iterable[Trajectory], path: str | os.PathLike[str]) -> int:
    """Write a Parquet file (replacing ``path`` all at once); returns the number of rows."""
    dataset = to_dataset(trajectories)
    with replacing(path) as temporary:
        dataset.to_parquet(str(temporary))
    return len(dataset)


def read_parquet(path: str | os.PathLike[str]) -> Iterator[Trajectory]:
    """Read a Parquet file written by :func:`write_parquet`, streaming it in batches."""
    for _, row in parquet_rows(path):
        yield from_row(row)


def parquet_rows(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number from 1, row as a dict)`` for any Parquet file, in batches (needs pyarrow).

    Raises :class:`FormatError` for a file that is not readable Parquet.
    """
    try:
        parquet = importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise GemlibError(
            f"{path}: reading Parquet needs pyarrow: pip install 'gemlib[hf]'"
        ) from None
    try:
        batches = parquet.ParquetFile(str(path)).iter_batches(batch_size=1024)
        number = 0
        for batch in batches:
            for row in batch.to_pylist():
                number += 1
                yield number, row
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise FormatError(f"{path}: not a readable Parquet file ({exc})") from None


def _export(request: ExportRequest) -> str:
    return wrote(write_parquet(request.trajectories(), request.out), request.out, "parquet")


def _entries(path: str) -> Iterator[Entry]:
    for number, row in parquet_rows(path):
        yield f"row {number}", attempt(functools.partial(from_row, row))


PARQUET = Format(
    name="parquet",
    description="Parquet: one row per trajectory, for Hugging Face datasets (gemlib[hf])",
    suffix=".parquet",
    write=_export,
    read=_entries,
)
"""The ``parquet`` entry of the format registry: a ``.parquet`` file is read with it."""
