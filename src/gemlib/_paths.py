"""Where gemlib keeps files shared by runs (the request cache, local models)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """``$GEMLIB_CACHE_DIR``, else ``$XDG_CACHE_HOME/gemlib``, else ``~/.cache/gemlib``."""
    base = os.environ.get("GEMLIB_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "gemlib"
