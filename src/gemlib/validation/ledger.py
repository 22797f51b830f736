"""The state ledger: does the world a trajectory's tool replies describe hold together?

GEM's tool replies are written by the teacher, with no environment behind them.
:func:`state_ledger` replays a trajectory's calls and replies in order and
keeps what they say about *entities*: records keyed by their ID field
(``order_id``, ``reservation_id``; a bare ``id`` is named after the tool's
noun, so ``get_ticket``'s ``id`` is a ``ticket_id``), with their field values
flattened to paths (``flights[0].price``). Tools are judged read, write or
other by :class:`~gemlib.validation.tool_kinds.ToolKinds`.

A write *touches* an entity when one of the write's argument or reply values
is the entity's ID or one of its known values (``cancel_reservation(R)``
touches reservation ``R`` and the user whose record lists ``R``); a write with
no ID argument (``withdraw_funds(amount)``) touches every entity, and so does
a write that failed, since real environments fail half-way. Only a successful
write sets what later reads must show. Problems,
each with the index of the tool reply that shows it, the entity and the field
(rule ``state_ledger``):

- **contradicted read**: a read reports a field value other than the last
  known one, and no write touched the entity since; when the last value came
  from a write (its reply, or an argument named like the field), the write's
  effect is missing;
- **changed repeat**: the same read call, with the same arguments, answers
  differently, with no write at all in between;
- **used after delete**: a call names an entity that a successful deleting
  write removed (``delete_file``, ``rm``), and its reply is not an error;
- **changed ID**: a record says it belongs to ``user_id=U2`` while an earlier
  reply listed it under user ``U1``.

Tolerances, all explicit: replies that are errors are facts about nothing;
volatile reads (:meth:`ToolKinds.is_volatile`) are never compared; fields
named like clocks (``time``, ``timestamp``, ``updated_at``, ``last_seen``,
``expires_in``...) or declared in ``volatile_fields`` change on their own; a
lifecycle field (``status``, ``state``) of a record as a write created it (its
reply gave an ID the arguments did not) may advance on its own (an order
placed as pending is later open); strings compare without case or surrounding
spaces, integers exactly and other numbers numerically (``7`` is ``7.0``); a
field another reply does not mention is not compared; nested lists and
mappings are compared by their size too.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar

import attrs

from gemlib._nesting import loads
from gemlib.model import Problem, Tool, Trajectory
from gemlib.validation._facts import Call, facts
from gemlib.validation._names import is_id_key, short_memo
from gemlib.validation._numbers import comparable
from gemlib.validation.checks import Check
from gemlib.validation.tool_kinds import (
    READ_VERBS,
    WRITE_VERBS,
    Kind,
    ToolKinds,
    delete_verb_at,
    name_word_set,
    name_words,
)

__all__ = ["is_error_reply", "reply_json", "state_ledger"]

CLOCK_WORDS = frozenset(
    ["time", "timestamp", "updated", "modified", "expires", "elapsed", "uptime", "now", "seen"]
)
LIFECYCLE_WORDS = frozenset({"status", "state"})


def reply_json(content: str, parse: Callable[[str], Any] = loads) -> Any:
    """A tool reply's JSON value, or the stripped text when it is not JSON.

    ``parse`` decodes JSON like :func:`gemlib._nesting.loads` (checks pass the
    decoder of the trajectory's shared facts)."""
    text = content.strip()
    if text[:1] in "{[":
        try:
            return parse(text)
        except ValueError:  # not JSON, or nested too deeply (TooDeep)
            return text
    return text


def is_error_reply(value: Any) -> bool:
    """Whether a (decoded) tool reply reports a failure rather than a fact."""
    if isinstance(value, str):
        head = value.strip()[:40].lower()
        return head.startswith(("error", "failed", "failure", "exception", "traceback"))
    if isinstance(value, dict):
        if _VERDICT_KEYS.isdisjoint(value):
            return False  # the usual reply: none of the keys below
        if value.get("error") or value.get("errors"):
            return True
        return value.get("success") is False or value.get("ok") is False
    return False


_VERDICT_KEYS = frozenset({"error", "errors", "success", "ok"})
"""The keys by which a reply's mapping can report a failure (:func:`is_error_reply`)."""


@short_memo
def _clock_word(key: str) -> bool:
    return not CLOCK_WORDS.isdisjoint(name_word_set(key))


def _same(a: Any, b: Any) -> bool:
    kind = type(a)
    if kind is type(b) and (kind is str or kind is int):  # the usual pairs, without isinstance
        return a == b or (kind is str and a.strip().casefold() == b.strip().casefold())
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        x, y = comparable(a), comparable(b)
        if isinstance(x, int) or isinstance(y, int):  # too large for a float
            return x == y
        return math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return bool(a == b)


Flat = list[tuple[str, Any]]
"""A value's leaves as :func:`_flatten` lists them: ``(path, value)`` in order."""


def _flatten(value: Any, sizes: bool = False, plain: Flat | None = None) -> Flat:
    """Leaf paths and values; with ``sizes``, also ``path#``: how many items a nested
    list or mapping holds (a refund missing from a payment history shows there).
    ``plain``, when given, gets the leaves without the sizes in the same walk."""
    flat: Flat = []
    if isinstance(value, (dict, list)):
        _flatten_into(flat, value, "", sizes, plain)
    else:
        flat.append(("", value))
        if plain is not None:
            plain.append(("", value))
    return flat


def _flatten_into(flat: Flat, value: Any, path: str, sizes: bool, plain: Flat | None) -> None:
    """Append the leaves of a mapping or list at ``path`` to ``flat`` (and ``plain``)."""
    if sizes and path:
        flat.append((f"{path}#", len(value)))
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if type(item) in _LEAF_TYPES or not isinstance(item, _CONTAINERS):
                flat.append((where, item))
                if plain is not None:
                    plain.append(flat[-1])
            else:
                _flatten_into(flat, item, where, sizes, plain)
    else:
        for i, item in enumerate(value):
            if type(item) in _LEAF_TYPES or not isinstance(item, _CONTAINERS):
                flat.append((f"{path}[{i}]", item))
                if plain is not None:
                    plain.append(flat[-1])
            else:
                _flatten_into(flat, item, f"{path}[{i}]", sizes, plain)


_CONTAINERS = (dict, list)
_LEAF_TYPES = frozenset({str, int, float, bool, type(None)})
"""The exact types of JSON's scalars: no container (``isinstance`` costs more than this
test of a leaf's type, the usual answer)."""


def _scalars(leaves: Flat) -> set[Any]:
    """Leaf values that can name an entity: strings of 3+ characters and non-boolean
    numbers."""
    found: set[Any] = set()
    for _, leaf in leaves:
        kind = type(leaf)
        if kind is str or (kind is not int and kind is not float and isinstance(leaf, str)):
            text = leaf.strip()
            if len(text) >= 3:
                found.add(text.casefold())
        elif kind is int or kind is float or (isinstance(leaf, (int, float)) and kind is not bool):
            found.add(comparable(leaf))
    return found


_SORTED_JSON = json.JSONEncoder(sort_keys=True).encode
"""``json.dumps(value, sort_keys=True)``, without building an encoder per call."""
_SIGNATURE_JSON = json.JSONEncoder(sort_keys=True, default=str).encode
"""``json.dumps(value, sort_keys=True, default=str)``: a read's call as a key."""
_JSON_TYPES = frozenset({str, int, float, bool, type(None), list, dict})
"""The exact types of decoded JSON values."""

Signature = str | tuple[str, tuple[tuple[str, str], ...]]
"""A read call as a key (:func:`_signature`)."""


def _signature(name: str, arguments: dict[str, Any]) -> Signature:
    """A call as a key, equal for two calls exactly when their JSON texts
    (``_SIGNATURE_JSON([name, arguments])``) are.

    A call whose arguments are all strings (the usual read) is its name and sorted
    pairs, made without writing JSON; any other is its JSON text, unless that text is
    the text of a call of strings only (a ``str`` subclass, an object written as its
    ``str``), which is then that call's key."""
    for k, v in arguments.items():
        if type(k) is not str or type(v) is not str:
            break
    else:
        pairs = tuple(arguments.items())
        return name, pairs if len(pairs) < 2 else tuple(sorted(pairs))
    text = _SIGNATURE_JSON([name, arguments])
    if all(type(k) is str and type(v) in _JSON_TYPES for k, v in arguments.items()):
        return text  # a value that is no string is written as no JSON string
    parsed_name, parsed = json.loads(text)
    if (
        isinstance(parsed, dict)
        and all(type(v) is str for v in parsed.values())
        and _SIGNATURE_JSON([parsed_name, parsed]) == text
    ):
        return parsed_name, tuple(sorted(parsed.items()))
    return text


def _signed(signature: Signature) -> tuple[str, dict[str, Any]]:
    """The name and arguments (as JSON gives them back) of a call's :func:`_signature`."""
    if isinstance(signature, str):
        name, arguments = json.loads(signature)
        return name, arguments
    return signature[0], dict(signature[1])


_CONSTANT_KEYS = {True: "true", False: "false", None: "null"}
"""``json.dumps`` of the JSON constants, the most common values :func:`_key` serialises."""


def _key(value: Any) -> Any:
    """What an entity's ID or value is compared by: strings without case or surrounding
    spaces, numbers as floats, anything else as its JSON text."""
    kind = type(value)
    if kind is str:
        return value.strip().casefold()
    if kind is float:
        return value
    if kind is int:
        return comparable(value)
    if kind is bool or value is None:
        return _CONSTANT_KEYS[value]
    if isinstance(value, str):
        return value.strip().casefold()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return comparable(value)
    return _SORTED_JSON(value)


def _volatile_field(path: str, declared: frozenset[str]) -> bool:
    leaf = _last_key(path)
    return leaf in declared or _clock_word(leaf)


@short_memo
def _last_key(path: str) -> str:
    return path.rsplit(".", 1)[-1].split("[", 1)[0].rstrip("#")


EntityKey = tuple[str, Any]

Field = tuple[Any, int, str | None]
"""A known field of an entity: its value, the message that told it, and the write
that set it if a write did (a plain tuple: the ledger keeps one per path per record)."""


class _Entity:
    """What the ledger knows of one entity (a plain slotted class: the ledger makes one
    per record it meets, and attrs' generated ``__init__`` costs twice this one)."""

    __slots__ = ("created_at", "fields", "key", "pending", "told", "touched", "values")

    def __init__(self, key: EntityKey) -> None:
        self.key = key
        self.fields: dict[str, Field] = {}
        self.touched = -1
        """The last message index of a write that touched it."""
        self.created_at = -1
        """The message of the write that created it (gave it its ID), if one did."""
        self.values: set[Any] = set()
        self.told = -1
        """The last message that gave a record of it."""
        self.pending: tuple[Call, int, dict[str, Any]] | None = None
        """A successful write to it not yet read back: the write, its index, the fields
        before."""


def _primary(
    record: dict[str, Any], tool: str, call: Call, shared: frozenset[str] = frozenset()
) -> EntityKey | None:
    """The record's ID field and value, named after the tool's noun when it is a bare ``id``.

    ``shared`` names ID fields that several records of one reply have in common
    (bills listing their customer): those are references, not the record's ID.
    """
    ids: list[str] = []
    for k, v in record.items():
        if is_id_key(k) and isinstance(v, (str, int)) and k not in shared:
            ids.append(k)
    if not ids:
        return None
    words = name_word_set(tool)
    for key in ids:  # <noun>_id where the noun is in the tool's name
        if key.lower() != "id" and _id_nouns(key) <= words:
            return key.lower(), _key(record[key])
    if "id" in ids or "ID" in ids:
        raw = record.get("id", record.get("ID"))
        for arg, value in call.arguments.items():
            if is_id_key(arg) and _same(value, raw):
                return arg.lower(), _key(raw)
        nouns = [w for w in name_words(tool)[1:] if w not in ("details", "info", "by", "id")]
        return (f"{nouns[0]}_id" if nouns else "id"), _key(raw)
    for arg, value in call.arguments.items():
        if arg in ids and _same(value, record[arg]):
            return arg.lower(), _key(record[arg])
    return ids[0].lower(), _key(record[ids[0]])


@short_memo
def _id_nouns(key: str) -> frozenset[str]:
    """The words of an ID field's name besides ``id`` (``order_id``: order)."""
    return name_word_set(key) - {"id"}


def _shared_ids(records: list[dict[str, Any]]) -> frozenset[str]:
    """ID fields that several of a reply's records have with one value (bills listing
    their customer): references, not the records' IDs."""
    if len(records) < 2:
        return frozenset()
    seen: dict[str, set[Any]] = {}
    shared: set[str] = set()
    for record in records:
        for field, value in record.items():
            if is_id_key(field) and not isinstance(value, (dict, list)):
                key = _key(value)
                if key in seen.setdefault(field, set()):
                    shared.add(field)
                seen[field].add(key)
    return frozenset(shared)


@short_memo
def _names_value(path: str) -> bool:
    """Whether a record's path holds a value that names the entity: an ID field, or an
    item of a nested list (a user's reservation list), not a list's size."""
    return not path.endswith("#") and (is_id_key(_last_key(path)) or "[" in path)


@attrs.define
class _Replay:
    """The ledger's state while one trajectory is replayed."""

    kinds: ToolKinds
    volatile_path: Callable[[str], bool]
    """Whether a path's field changes on its own (:func:`_volatile_field`)."""
    tools: dict[str, Tool]
    entities: dict[EntityKey, _Entity] = attrs.field(factory=dict)
    naming: dict[Any, list[_Entity]] = attrs.field(factory=dict)
    """The entities each value names: their ID, and their values that name them."""
    reads: dict[Signature, tuple[Any, int]] = attrs.field(factory=dict)
    """Each read call's signature (:meth:`_repeat`) with its last reply and its index."""
    recent: dict[Signature, tuple[Any, int]] = attrs.field(factory=dict)
    """The entries of ``reads`` made since the last write."""
    since_previous: dict[Signature, tuple[Any, int]] = attrs.field(factory=dict)
    """The entries of ``reads`` made between the write before the last and the last."""
    sized: dict[int, Flat] = attrs.field(factory=dict)
    """Replies' leaves with sizes by message index, listed once."""
    touched_all: int = -1
    """The last write that named no ID, and so touched every entity."""
    problems: list[Problem] = attrs.field(factory=list)
    """Problems found and not yet handed on."""
    last_write: int = -1
    deleted: dict[tuple[str, Any], int] = attrs.field(factory=dict)
    owners: dict[EntityKey, tuple[EntityKey, int]] = attrs.field(factory=dict)
    previous_write: int = -1
    known_kinds: dict[str, Kind] = attrs.field(factory=dict)
    awaited: dict[Signature, tuple[str, int, Any]] = attrs.field(factory=dict)
    """Reads of what a successful write named, to be read back: the write, its index,
    the answer before it."""

    def kind(self, name: str) -> Kind:
        """The kind of the tool called ``name`` (judged once per trajectory)."""
        kind = self.known_kinds.get(name)
        if kind is None:
            tool = self.tools.get(name)
            kind = self.known_kinds[name] = self.kinds.kind(tool if tool is not None else name)
        return kind

    def step(self, call: Call, reply: Any, index: int) -> None:
        kind = self.known_kinds.get(call.name) or self.kind(call.name)
        failed = is_error_reply(reply)
        if self.deleted:
            self._used_after_delete(call, failed, index)
        if kind == "write":
            leaves: Flat = []  # without sizes; with them, kept for the records
            self.sized[index] = _flatten(reply, sizes=True, plain=leaves)
            self._touch(call, leaves, index)
            if not failed:
                self._write(call, reply, leaves, index)
        if kind == "read" and not failed and not self.kinds.is_volatile(call.name):
            problems = self.problems
            mark = len(problems)
            self._repeat(call, reply, index)
            if len(problems) == mark:  # the repeat check found nothing (the usual case)
                self._records(call, reply, index, by_write=None)
                return
            repeated = problems[mark:]
            del problems[mark:]
            self._records(call, reply, index, by_write=None)
            if len(problems) == mark:  # one problem for one changed reply
                problems.extend(repeated)

    def _report(self, index: int, text: str) -> None:
        """Note a problem shown by the tool reply at message ``index``."""
        self.problems.append(_problem(index, text))

    def _sized(self, reply: Any, index: int) -> Flat:
        """The leaves with sizes of ``reply``, the reply at message ``index``."""
        flat = self.sized.get(index)
        if flat is None:
            flat = self.sized[index] = _flatten(reply, sizes=True)
        return flat

    def _touched(self, entity: _Entity) -> int:
        """The last write that touched ``entity``."""
        return max(entity.touched, self.touched_all)

    def _used_after_delete(self, call: Call, failed: bool, index: int) -> None:
        for arg, value in call.arguments.items():
            at = self.deleted.get((arg, _key(value)))
            if at is None:
                continue
            if self.kind(call.name) == "write" and not failed:
                del self.deleted[(arg, _key(value))]  # re-created or reused by a write
            elif not failed:
                self._report(
                    index,
                    f"{call.name} uses {arg}={value!r}, deleted at message {at}, "
                    "and its reply is not an error",
                )

    def _touch(self, call: Call, leaves: Flat, index: int) -> None:
        """Any write, even one that failed (real environments fail half-way), may change
        the entities it names (in its arguments, or the ``leaves`` of its reply); one
        that names no ID may change any entity."""
        self.previous_write, self.last_write = self.last_write, index
        self.since_previous, self.recent = self.recent, {}
        for arg in call.arguments:
            if is_id_key(arg):
                break
        else:
            self.touched_all = index
            return
        naming = self.naming
        for value in _scalars(_flatten(call.arguments)) | _scalars(leaves):
            for entity in naming.get(value, ()):
                entity.touched = index

    def _write(self, call: Call, reply: Any, leaves: Flat, index: int) -> None:
        tool = self.tools.get(call.name)
        deleted = None
        if tool is not None and delete_verb_at(call.name) is not None:  # else it says None
            deleted = self.kinds.deleted_argument(tool, call.arguments)
        if deleted is not None:
            self.deleted[(deleted, _key(call.arguments[deleted]))] = index
            gone = _key(call.arguments[deleted])
            for entity in self.naming.get(gone, ()):
                if entity.key[1] == gone:
                    entity.fields.clear()
        if self.deleted:  # re-creating an entity un-deletes it
            for arg, value in call.arguments.items():
                for key in [k for k in self.deleted if k[1] == _key(value) and k[0] != arg]:
                    del self.deleted[key]
        target_ids = _target_ids(call)
        self._await_reads(call, target_ids, leaves, index)
        targets = [
            self.entities[(arg.lower(), _key(value))]
            for arg, value in target_ids.items()
            if (arg.lower(), _key(value)) in self.entities
        ]
        before = {e.key: (e.fields.copy(), e.told) for e in targets}  # values read if needed
        created: list[_Entity] = []
        self._records(call, reply, index, by_write=call.name, created=created)
        if created:
            given = {_key(v) for v in call.arguments.values() if isinstance(v, (str, int, float))}
            for entity in created:
                if entity.key[1] not in given and entity.told == index:
                    entity.created_at = index  # the write gave it its ID: a new record
        for entity in targets:
            known, told = before[entity.key]
            if known and entity.told == told:  # the write's reply did not show it
                fields = {p: f[0] for p, f in known.items()}
                if not _sets_nothing_new(call, fields.items()):
                    entity.pending = (call, index, fields)
            self._expect_arguments(call, entity, index)

    def _await_reads(
        self, call: Call, target_ids: dict[str, Any], leaves: Flat, index: int
    ) -> None:
        """Reads of what the write names (its ID, and a noun of its name: ``comment`` and
        ``get_tweet_comments``, not ``retweet``), answered since the write before: the
        next identical read must answer differently. ``target_ids``: :func:`_target_ids`
        of the write; ``leaves``: its reply."""
        if not target_ids:
            return  # names nothing
        for path, _ in leaves:
            if is_id_key(_last_key(path)):
                return  # the write's reply gave a record: the ledger compares records
        named = {json.dumps([k, _key(v)]) for k, v in target_ids.items()}
        nouns = _nouns(call.name)
        for signature, (reply, _) in self.since_previous.items():
            tool, arguments = _signed(signature)
            if not nouns & _nouns(tool):
                continue
            pairs = {json.dumps([k, _key(v)]) for k, v in arguments.items()}
            if named & pairs and not _sets_nothing_new(call, _flatten(reply)):
                self.awaited[signature] = (call.name, index, reply)

    @staticmethod
    def _expect_arguments(call: Call, entity: _Entity, index: int) -> None:
        """A write's scalar arguments named like a field of the entity it names set that field."""
        for arg, value in call.arguments.items():
            if is_id_key(arg) or isinstance(value, (dict, list)) or value is None:
                continue
            if arg in entity.fields:
                entity.fields[arg] = (value, index, call.name)

    def _repeat(self, call: Call, reply: Any, index: int) -> None:
        """The same read as before answering differently with no write in between, or
        as before a write that reported success."""
        signature = _signature(call.name, call.arguments)
        earlier = self.reads.get(signature)
        self.reads[signature] = self.recent[signature] = (reply, index)
        awaited = self.awaited.pop(signature, None)
        if awaited is not None and awaited[1] == self.last_write and awaited[2] == reply:
            self._report(
                index,
                f"{call.name} answers exactly as before {awaited[0]} at message {awaited[1]} "
                "reported success: the write's effect is missing",
            )
        if earlier is None or earlier[1] < self.last_write:
            return
        before = dict(self._sized(*earlier))
        for path, value in self._sized(reply, index):
            if path in before and not _same(before[path], value):
                if self.volatile_path(path):
                    continue
                self._report(
                    index,
                    f"{call.name} repeated with the same arguments: {path or 'reply'} is "
                    f"{value!r}, but was {before[path]!r} at message {earlier[1]}, "
                    "with no write in between",
                )
                return

    def _records(
        self,
        call: Call,
        reply: Any,
        index: int,
        by_write: str | None,
        created: list[_Entity] | None = None,
    ) -> None:
        """The records of a reply, compared with (for a read) and kept as what is known of
        their entities; ``created`` gets the entities the reply told of first."""
        if type(reply) is dict:  # the usual replies first, without isinstance
            records = [reply]
        elif type(reply) is list:
            records = [r for r in reply if isinstance(r, dict)]
        else:
            records = [reply] if isinstance(reply, dict) else []
            if isinstance(reply, list):
                records = [r for r in reply if isinstance(r, dict)]
        shared = _shared_ids(records) if len(records) > 1 else frozenset()
        for record in records:
            key = _primary(record, call.name, call, shared)
            if key is None:
                continue
            if len(records) == 1:
                self._echoed_id(call, key, index)
            entity = self.entities.get(key)
            if entity is None:
                entity = self.entities[key] = _Entity(key)
                self.naming.setdefault(key[1], []).append(entity)
                if created is not None:
                    created.append(entity)
            entity.told = index
            self._owned(key, record, index)
            volatile = self.volatile_path
            leaves = self._sized(reply, index) if record is reply else _flatten(record, True)
            flat = [item for item in leaves if not volatile(item[0])]
            if by_write is None and (entity.fields or entity.pending is not None):
                shown = dict(flat)
                if entity.pending is not None:
                    self._unchanged(entity, shown, call.name, index)
                if entity.fields:  # else nothing is known to contradict
                    self._contradicted(entity, flat, call.name, index)
                    self._reshaped(entity, shown, call.name, index)
            fields, values = entity.fields, entity.values
            for path, value in flat:
                fields[path] = (value, index, by_write)
                if _names_value(path):
                    # _key(value), its str case inline (a09e487): keep the two alike
                    named = value.strip().casefold() if type(value) is str else _key(value)
                    if named not in values:
                        values.add(named)
                        self.naming.setdefault(named, []).append(entity)

    def _echoed_id(self, call: Call, key: EntityKey, index: int) -> None:
        """A reply about another entity than the one the call named: an invented ID."""
        for arg, value in call.arguments.items():
            if arg.lower() == key[0] and _key(value) != key[1]:
                self._report(
                    index,
                    f"{call.name} asked for {arg}={value!r} and the reply is about "
                    f"{key[0]}={key[1]!r}",
                )

    def _unchanged(self, entity: _Entity, flat: dict[str, Any], tool: str, index: int) -> None:
        """The first read after a successful write to an entity shows it exactly as before."""
        pending, entity.pending = entity.pending, None
        if pending is None or self._touched(entity) != pending[1]:
            return
        write, at, before = pending
        name = f"{entity.key[0]}={entity.key[1]!r}"
        if before.keys() == flat.keys() and all(_same(before[k], flat[k]) for k in flat):
            self._report(
                index,
                f"{tool} reads {name} exactly as it was before {write.name} at message {at} "
                "reported success: the write's effect is missing",
            )
            return
        for arg, value in _settings(write).items():
            named = [path for path in flat if _last_key(path) == arg and not path.endswith("#")]
            new = [p for p in named if p not in before or not _same(before[p], value)]
            if named and not any(_same(flat[p], value) for p in new):
                self._report(
                    index,
                    f"{tool} reads {name} with no new {arg}={value!r}, which {write.name} "
                    f"at message {at} set: the write's effect is missing",
                )

    def _reshaped(self, entity: _Entity, flat: dict[str, Any], tool: str, index: int) -> None:
        """A known value that a read now shows as a record (or list), with no write since."""
        touched = self._touched(entity)
        for path, known in entity.fields.items():
            if path in flat or touched > known[1] or path.endswith("#"):
                continue
            inside = (f"{path}.", f"{path}[")
            for inner in flat:
                if inner.startswith(inside):
                    self._report(
                        index,
                        f"{tool} reads {entity.key[0]}={entity.key[1]!r} {inner}={flat[inner]!r}, "
                        f"but message {known[1]} said {path}={known[0]!r}",
                    )
                    return

    def _contradicted(self, entity: _Entity, flat: Flat, tool: str, index: int) -> None:
        """A read's values other than the entity's last known ones, with no write since."""
        fields, touched = entity.fields, self._touched(entity)
        for path, value in flat:
            known = fields.get(path)
            if known is None or touched > known[1] or _same(known[0], value):
                continue
            was, at, by_write = known
            lifecycle = LIFECYCLE_WORDS & name_word_set(_last_key(path))
            if lifecycle and at == entity.created_at:  # as created; it may advance
                continue
            name = f"{entity.key[0]}={entity.key[1]!r}"
            if by_write:
                text = (
                    f"{tool} reads {name} {path}={value!r}, but {by_write} at message "
                    f"{at} made it {was!r}: the write's effect is missing"
                )
            else:
                text = (
                    f"{tool} reads {name} {path}={value!r}, but message {at} said "
                    f"{was!r}, and no write touched it since"
                )
            self._report(index, text)

    def _owned(self, key: EntityKey, record: dict[str, Any], index: int) -> None:
        """Children listed by ID in a record; a child naming another parent is a changed ID."""
        for field, value in record.items():
            if is_id_key(field) and field.lower() != key[0]:
                owner = self.owners.get(key)
                if owner and owner[0][0] == field.lower() and owner[0][1] != _key(value):
                    self._report(
                        index,
                        f"{key[0]}={key[1]!r} belongs to {field}={value!r} here, but message "
                        f"{owner[1]} listed it under {owner[0][0]}={owner[0][1]!r}",
                    )
            if type(value) in _LEAF_TYPES or not isinstance(value, (list, dict)):
                continue
            noun = field.rstrip("s")
            for child in value:  # the items of a list, the keys of a mapping
                if isinstance(child, (str, int)) and not isinstance(child, bool):
                    self.owners.setdefault((f"{noun}_id", _key(child)), (key, index))


def _settings(call: Call) -> dict[str, Any]:
    """A write's scalar arguments that are not IDs: the values it sets."""
    return {
        arg: value
        for arg, value in call.arguments.items()
        if not is_id_key(arg) and not isinstance(value, (dict, list)) and value is not None
    }


def _sets_nothing_new(call: Call, known: Iterable[tuple[str, Any]]) -> bool:
    """The write sets values, and the ``(path, value)`` pairs already hold each as a
    top-level field of that name (a write of what is already there changes nothing)."""
    settings = _settings(call)
    leaves: dict[str, list[Any]] = {}
    for path, value in known:
        if "." not in path and "[" not in path:
            leaves.setdefault(path, []).append(value)
    return bool(settings) and all(
        any(_same(v, value) for v in leaves.get(arg, [])) for arg, value in settings.items()
    )


def _target_ids(call: Call) -> dict[str, Any]:
    """The ID arguments naming what a write changes: those whose noun is in the tool's
    name (``cancel_reservation(reservation_id)``), else the only one."""
    ids = {k: v for k, v in call.arguments.items() if is_id_key(k) and isinstance(v, (str, int))}
    words = name_word_set(call.name)
    named = {k: v for k, v in ids.items() if _id_nouns(k) <= words}
    return named or (ids if len(ids) == 1 else {})


def _nouns(tool: str) -> set[str]:
    """The words of a tool's name besides verbs, singular (``get_user_tweets``: user, tweet)."""
    return {
        w.rstrip("s")
        for w in name_words(tool)
        if w not in READ_VERBS and w not in WRITE_VERBS and len(w) > 2
    }


def _problem(index: int, text: str) -> Problem:
    return Problem(rule=_StateLedger.rule, message_index=index, text=text)


@attrs.frozen
class _StateLedger:
    rule: ClassVar[str] = "state_ledger"
    kinds: ToolKinds = attrs.field(factory=ToolKinds)
    volatile_fields: frozenset[str] = frozenset()
    volatile_path: Callable[[str], bool] = attrs.field(init=False, eq=False, repr=False)

    @volatile_path.default
    def _volatile_paths(self) -> Callable[[str], bool]:
        return short_memo(functools.partial(_volatile_field, declared=self.volatile_fields))

    def __call__(self, trajectory: Trajectory) -> Iterator[Problem]:
        known = facts(trajectory)
        replay = _Replay(
            self.kinds, self.volatile_path, {name: tool for name, _, tool in known.own_tools}
        )
        parse = known.loads
        calls: dict[str, Call] = {}  # the calls made so far that no reply answered
        placed = known.calls
        made = 0  # the calls in placed added to calls
        for index, content, reply_to in known.replies:
            while made < len(placed) and placed[made][0] <= index:  # calls of this message too
                call = placed[made][1]
                calls[call.id] = call
                made += 1
            if reply_to in calls:
                call = calls.pop(reply_to)
                replay.step(call, reply_json(content, parse), index)
                if replay.problems:
                    yield from replay.problems
                    replay.problems.clear()


def state_ledger(
    *,
    kinds: Mapping[str, Kind] | ToolKinds | None = None,
    volatile_fields: frozenset[str] | set[str] = frozenset(),
) -> Check:
    """The state ledger check (rule ``state_ledger``); see the module docstring.

    ``kinds`` declares tools as ``"read"``, ``"write"`` or ``"other"`` (or is a
    whole :class:`ToolKinds`); ``volatile_fields`` names fields that change on
    their own, besides the clock-like ones.
    """
    judged = kinds if isinstance(kinds, ToolKinds) else ToolKinds(declared=dict(kinds or {}))
    return _StateLedger(judged, frozenset(volatile_fields))
