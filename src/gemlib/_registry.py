"""One registry type for gemlib's plug-in seams: backends, formats and presets.

A registry maps a name to an object. gemlib registers its own entries where
they are defined, either as the object or as a lazy ``"module:attribute"``
reference (:meth:`Registry.register_lazy`, so a lookup imports only what it needs); other packages
register theirs through an entry-point group in their ``pyproject.toml``::

    [project.entry-points."gemlib.formats"]
    mine = "my_package.formats:MY_FORMAT"

Entry points are read once, on the first lookup or listing, and a broken plug-in
is reported with a warning naming it instead of breaking every other name.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import attrs

from gemlib._secrets import scrub
from gemlib.errors import GemlibError

__all__ = ["Registry"]

log = logging.getLogger("gemlib")

T = TypeVar("T")


class Registry(Generic[T]):
    """Named ``T`` objects, gemlib's own plus those of the entry-point ``group``.

    ``kind`` names an entry in messages ("format", "backend"); ``error`` is the
    :class:`~gemlib.errors.GemlibError` subclass raised for an unknown name, so
    each seam keeps its own error type.
    """

    def __init__(self, kind: str, group: str, error: Callable[[str], GemlibError]) -> None:
        self.kind = kind
        self.group = group
        self._error = error
        self._entries: dict[str, T | _Lazy] = {}
        self._plugins_read = False
        self._lock = threading.Lock()  # guards _entries, held only briefly
        self._reading = threading.RLock()  # held while plug-ins import (see _read_plugins)

    def register(self, name: str, entry: T, *, replace: bool = False) -> None:
        """Add ``name``; registering a taken name raises ``ValueError`` unless ``replace``."""
        self._add(name, entry, replace)

    def register_lazy(self, name: str, reference: str, *, replace: bool = False) -> None:
        """Add ``name`` as ``"module:attribute"``, imported on its first :meth:`get`."""
        self._add(name, _Lazy(reference), replace)

    def _add(self, name: str, entry: T | _Lazy, replace: bool) -> None:
        with self._lock:
            if name in self._entries and not replace:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = entry

    def get(self, name: str) -> T:
        """The entry called ``name``, loading plug-ins first if it is not built in."""
        if name not in self._entries:
            self._read_plugins()
        try:
            entry = self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise self._error(f"unknown {self.kind} {name!r} (known: {known})") from None
        if isinstance(entry, _Lazy):
            value: T = entry.load()
            with self._lock:
                self._entries[name] = value
            return value
        return entry

    def names(self) -> list[str]:
        """Every registered name, plug-ins included, sorted."""
        self._read_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def _read_plugins(self) -> None:
        """Import the entry points once. Other threads wait until all are read; a plug-in
        that uses the registry while it imports (registering, looking a name up) sees
        the entries read so far instead of deadlocking: imports run outside ``_lock``."""
        with self._reading:
            if self._plugins_read:
                return
            self._plugins_read = True
            chosen: dict[str, str] = {}  # name -> the entry point used for it
            for point in importlib.metadata.entry_points(group=self.group):
                # gemlib's own entry (or one registered in code) wins over a plug-in of the
                # same name, the first plug-in over a second: say which one is ignored
                if point.name in chosen or point.name in self._entries:
                    if chosen.get(point.name) != point.value:  # not the same one seen twice
                        log.warning(
                            "gemlib: ignored the %s plug-in %r from %s: the name is taken by %s",
                            self.kind,
                            point.name,
                            point.value,
                            chosen.get(point.name, "gemlib"),
                        )
                    continue
                chosen[point.name] = point.value
                try:
                    value = point.load()
                except (Exception, SystemExit) as error:  # a broken plug-in must not stop others
                    log.warning(
                        "gemlib: skipped the %s plug-in %r from %s: %s: %s",
                        self.kind,
                        point.name,
                        point.value,
                        type(error).__name__,
                        scrub(str(error)),
                    )
                    continue
                with self._lock:
                    self._entries.setdefault(point.name, value)


@attrs.frozen
class _Lazy:
    reference: str

    def load(self) -> Any:
        module, _, attribute = self.reference.partition(":")
        return getattr(importlib.import_module(module), attribute)
