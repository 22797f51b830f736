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
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from gemlib.errors import FormatError
from gemlib.formats import gem_tags, hermes, openai, sharegpt
from gemlib.model import Trajectory

__all__ = ["FORMATS", "read_jsonl", "write_jsonl"]

FORMATS: dict[
    str, tuple[Callable[[Trajectory], dict[str, Any]], Callable[[dict[str, Any]], Trajectory]]
] = {
    "openai": (openai.dump, openai.load),
    "sharegpt": (sharegpt.dump, sharegpt.load),
    "hermes": (hermes.dump, hermes.load),
    "gem": (gem_tags.dump, gem_tags.load),
}


def _format(
    name: str,
) -> tuple[Callable[[Trajectory], dict[str, Any]], Callable[[dict[str, Any]], Trajectory]]:
    if name not in FORMATS:
        raise FormatError(f"unknown format {name!r}; choose one of {sorted(FORMATS)}")
    return FORMATS[name]


def write_jsonl(
    trajectories: Iterable[Trajectory], path: str | os.PathLike[str], format: str = "openai"
) -> int:
    """Write one record per line; returns how many were written."""
    dump = _format(format)[0]
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for trajectory in trajectories:
            handle.write(json.dumps(dump(trajectory), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: str | os.PathLike[str], format: str = "openai") -> Iterator[Trajectory]:
    """Stream trajectories from a JSONL file; a bad line raises naming the file and line."""
    load = _format(format)[1]
    with open(Path(path), encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield load(json.loads(line))
            except (json.JSONDecodeError, FormatError, ValueError) as exc:
                raise FormatError(f"{path} line {number}: {exc}") from None
