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

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from gemlib.errors import FormatError
from gemlib.formats import gem_tags, hermes, openai, sharegpt
from gemlib.formats.masks import MaskFallback, without_masks
from gemlib.model import Trajectory

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

    In a format without per-message training flags, trajectories with masked
    turns are cut or dropped as ``masked`` says (:func:`~gemlib.formats.masks.without_masks`).
    """
    dump = _format(format)[0]
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for original in trajectories:
            trajectory = original if format in FLAGS_MASKS else without_masks(original, masked)
            if trajectory is None:
                continue
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


def _native(record: dict[str, Any]) -> Trajectory:
    return Trajectory.model_validate(record)


def detect_format(record: dict[str, Any]) -> str:
    """Guess a record's format: ``native`` (a run directory's outputs) or one of :data:`FORMATS`."""
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
    path: str | os.PathLike[str], format: str | None = None
) -> Iterator[Trajectory]:
    """Trajectories from a run directory, or a JSONL file in any format (guessed if not given)."""
    source = Path(path)
    if source.is_dir():
        source = source / "outputs.jsonl"
    if not source.exists():
        raise FileNotFoundError(f"no such file: {source}")
    with open(source, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                name = format or detect_format(record)
                load = _native if name == "native" else _format(name)[1]
                yield load(record)
            except (json.JSONDecodeError, FormatError, ValueError) as exc:
                raise FormatError(f"{source} line {number}: {exc}") from None
