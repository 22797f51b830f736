"""The registry of model prefixes: which :class:`~gemlib.llm.protocol.BackendType` serves each.

gemlib's own prefixes are registered by :mod:`gemlib.llm.backends`; other
packages add theirs through the entry-point group ``gemlib.backends``.
"""

from __future__ import annotations

from gemlib._registry import Registry
from gemlib.errors import ModelConfigError
from gemlib.llm.protocol import BackendType

__all__ = ["BACKENDS"]

BACKENDS: Registry[BackendType] = Registry("backend", "gemlib.backends", ModelConfigError)
"""Model prefix -> what serves it; plug-ins are read from the ``gemlib.backends`` group."""
