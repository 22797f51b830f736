"""What the data types share: a frozen pydantic base, stable IDs, one-line validation errors."""

from __future__ import annotations

import hashlib
import json
from json.encoder import encode_basestring
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["StableIds", "built_valid", "copied", "stable_id", "validation_summary"]


_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def stable_id(prefix: str, *parts: Any) -> str:
    """A short, deterministic ID: ``prefix`` plus the sha256 of the parts' canonical JSON."""
    return f"{prefix}-{hashlib.sha256(_canonical(parts).encode()).hexdigest()[:16]}"


class StableIds:
    """``ids(n)`` is ``stable_id(prefix, *parts, n)``: the IDs of a record's n-th calls.

    The parts' JSON is hashed once (on the first ID) and each ID hashes only its
    number on a copy of that hash: the same IDs in about half the time.
    """

    def __init__(self, prefix: str, *parts: Any) -> None:
        self.prefix = prefix
        self.parts = parts
        self._head: Any = None  # the sha256 of the parts' JSON up to the number

    def __call__(self, n: int) -> str:
        if type(n) is not int:
            return stable_id(self.prefix, *self.parts, n)
        if self._head is None:
            head = _canonical(self.parts)[:-1] + ("," if self.parts else "")
            self._head = hashlib.sha256(head.encode())
        digest = self._head.copy()
        digest.update(b"%d]" % n)
        return f"{self.prefix}-{digest.hexdigest()[:16]}"


def _canonical(parts: tuple[Any, ...]) -> str:
    """``parts`` as sorted-key compact JSON (the bytes IDs are hashed from).

    Parts that are all plain strings and ints (call and trajectory IDs, a document's
    text) are written directly, with the JSON encoder's own string escaping: the same
    bytes in a third of the time of building an encoder per call.
    """
    for part in parts:
        if type(part) is not str and type(part) is not int:
            return _CANONICAL.encode(parts)
    return f"[{','.join([encode_basestring(p) if type(p) is str else repr(p) for p in parts])}]"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_M = TypeVar("_M", bound=_Model)
_UNSET: Any = object()


_ALL_FIELDS: dict[type[_Model], dict[str, Any]] = {}
"""Each record class's fields, as :func:`_all_fields` gives them (looked up without a call)."""


def _all_fields(cls: type[_Model]) -> dict[str, Any]:
    """Every field of ``cls`` in declaration order, with its plain default (a marker if none)."""
    return {
        name: _UNSET if info.default_factory is not None else info.get_default()
        for name, info in cls.model_fields.items()
    }


def built_valid(cls: type[_M], **values: Any) -> _M:
    """The record ``cls(**values)`` makes, built without validating: only for values of
    the exact types the fields hold and that pass ``cls``'s validators.

    The same fields in the same order, the same defaults and the same ``model_fields_set``
    as the validated record; in about half its time (the parsers build some fifty records
    per document; ``model_construct`` is generic and slower than validating). The caller
    passes every field that has a default factory, and every required one.
    """
    try:
        defaults = _ALL_FIELDS[cls]
    except KeyError:
        defaults = _ALL_FIELDS[cls] = _all_fields(cls)
    record = _new(cls)
    _set_dict(record, {**defaults, **values})
    key = (cls, *values)
    fields_set = _FIELDS_SETS.get(key)
    _set_fields_set(record, {*values} if fields_set is None else fields_set)
    if fields_set is None and _frozen(cls):
        _FIELDS_SETS[key] = record.__pydantic_fields_set__
    _set_extra(record, None)
    _set_private(record, None)
    return record


_FIELDS_SETS: dict[tuple[Any, ...], set[str]] = {}
"""One ``model_fields_set`` per frozen class and field names given to :func:`built_valid`,
shared by the records built so (a set per record was a third of the objects the garbage
collector tracks per record). Safe for frozen records only: their ``__setattr__`` refuses
before pydantic would add to the set, and pydantic's ``model_copy``, ``__copy__`` and
``__deepcopy__`` copy the set before updating it. A few dozen entries (the field names
are the callers' keywords)."""
_FROZEN: dict[type[_Model], bool] = {}


def _frozen(cls: type[_Model]) -> bool:
    """Whether ``cls`` is frozen (a subclass may unfreeze a gemlib record)."""
    try:
        return _FROZEN[cls]
    except KeyError:
        frozen = _FROZEN[cls] = bool(cls.model_config.get("frozen"))
        return frozen


def copied(record: _M, **update: Any) -> _M:
    """``record.model_copy(update=update)`` in about half its time, for a gemlib record.

    The same fields in the same order, the updated values unvalidated (as
    ``model_copy`` leaves them) and the same ``model_fields_set`` plus the updated
    names. A record with private attributes or extra fields is copied by
    ``model_copy`` itself.
    """
    if record.__pydantic_private__ is not None or record.__pydantic_extra__ is not None:
        return record.model_copy(update=update)
    new = _new(type(record))
    _set_dict(new, {**record.__dict__, **update})
    fields_set = record.__pydantic_fields_set__
    if not (update.keys() <= fields_set and _frozen(type(record))):  # else shared, as above
        fields_set = fields_set | update.keys()
    _set_fields_set(new, fields_set)
    _set_extra(new, None)
    _set_private(new, None)
    return new


_new = object.__new__
"""A record's ``__new__`` (no gemlib record has its own), called without looking it up on
the class through pydantic's metaclass."""
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
"""Setters of a record's ``__dict__`` and pydantic's three slots, called directly
(``object.__setattr__`` looks each one up on the class first, past the frozen
record's own ``__setattr__``)."""


def validation_summary(exc: ValidationError, whole: str = "record") -> str:
    """pydantic's first complaint, one line: where (``whole`` for the top), and what is wrong."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or whole
    return f"{where}: {first['msg']}"
