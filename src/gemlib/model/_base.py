"""What the data types share: a frozen pydantic base, stable IDs, one-line validation errors."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["stable_id", "validation_summary"]


def stable_id(prefix: str, *parts: Any) -> str:
    """A short, deterministic ID: ``prefix`` plus the sha256 of the parts' canonical JSON."""
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return f"{prefix}-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def validation_summary(exc: ValidationError, whole: str = "record") -> str:
    """pydantic's first complaint, one line: where (``whole`` for the top), and what is wrong."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or whole
    return f"{where}: {first['msg']}"
