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

import importlib
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from gemlib.errors import GemlibError
from gemlib.formats import openai
from gemlib.model import Trajectory

__all__ = ["from_dataset", "read_parquet", "to_dataset", "write_parquet"]


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
    messages = []
    for m in row["messages"]:
        message = {"role": m["role"], "content": m["content"]}
        calls = json.loads(m["tool_calls"] or "[]")
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
        "id": row["id"],
        "messages": messages,
        "tools": json.loads(row["tools"]),
        "metadata": row["metadata"],
    }


def to_dataset(trajectories: Iterable[Trajectory]) -> Any:
    """A ``datasets.Dataset`` with one row per trajectory (see the module docstring)."""
    return _datasets().Dataset.from_list([_row(t) for t in trajectories])


def from_dataset(dataset: Iterable[dict[str, Any]]) -> Iterator[Trajectory]:
    """Trajectories from a dataset (or any rows) in this layout."""
    for row in dataset:
        yield openai.load(_record(row))


def write_parquet(trajectories: Iterable[Trajectory], path: str | os.PathLike[str]) -> int:
    """Write a Parquet file; returns the number of rows."""
    dataset = to_dataset(trajectories)
    dataset.to_parquet(str(path))
    return len(dataset)


def read_parquet(path: str | os.PathLike[str]) -> Iterator[Trajectory]:
    """Read a Parquet file written by :func:`write_parquet`."""
    dataset = _datasets().Dataset.from_parquet(str(path))
    return from_dataset(dataset)
