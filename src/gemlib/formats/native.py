"""gemlib's own trajectory records: what a run directory's ``outputs.jsonl`` holds."""

from __future__ import annotations

from typing import Any

from gemlib._nesting import check_depth
from gemlib.formats.format import Format
from gemlib.model import Trajectory

__all__ = ["FORMAT", "load"]


def load(record: dict[str, Any]) -> Trajectory:
    """The trajectory a native record holds (:meth:`gemlib.Trajectory.model_validate`)."""
    check_depth(record)
    return Trajectory.model_validate(record)


FORMAT = Format(
    name="native",
    description="read only: gemlib's own records, as a run directory's outputs hold them",
    load=load,
    recognise=lambda record: "provenance" in record or "labels" in record,
)
"""The ``native`` entry of the format registry (asked after the text formats, before ``openai``)."""
