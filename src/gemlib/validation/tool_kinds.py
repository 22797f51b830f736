"""Is a tool a read or a write? Judged from its name, then its description; declarable.

A tool's name is split into words (``snake_case``, ``camelCase``, ``Class.method``);
the first word that is a known verb decides: a read verb (``get``, ``list``,
``check``, ``display``, ``ls``, ``cat``...) makes a read, a write verb
(``create``, ``cancel``, ``toggle``, ``enable``, ``suspend``, ``resume``,
``reboot``, ``refuel``, ``fill``, ``press``, ``cd``...) a write. A name with no
known verb is judged from the first known verb of its description ("Returns
the...", "Cancels the..."); what says neither is ``"other"`` (pure functions
such as unit conversions land here, and are never checked). Declared kinds
win: ``ToolKinds(declared={"sync": "write"})``.

Two finer facts the state ledger needs: whether a write *deletes* the entity
its argument names (``delete_file(file_id)``, ``rm(file_name)``; not
``remove_stock_from_watchlist``, which deletes a membership, nor
``delete_message(receiver_id)``, whose argument names another entity), and
whether a read is *volatile* (its answer may change with no write: the current
time, the weather, a random number).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

import attrs

from gemlib.model import Tool
from gemlib.validation._names import short_memo

__all__ = ["Kind", "ToolKinds", "name_word_set", "name_words"]

Kind = Literal["read", "write", "other"]

READ_VERBS = frozenset(
    [
        "get",
        "gets",
        "list",
        "lists",
        "search",
        "searches",
        "find",
        "finds",
        "read",
        "reads",
        "check",
        "checks",
        "view",
        "views",
        "show",
        "shows",
        "display",
        "displays",
        "query",
        "lookup",
        "look",
        "fetch",
        "fetches",
        "retrieve",
        "retrieves",
        "count",
        "counts",
        "describe",
        "describes",
        "inspect",
        "browse",
        "preview",
        "print",
        "see",
        "scan",
        "monitor",
        "locate",
        "verify",
        "verifies",
        "validate",
        "validates",
        "is",
        "has",
        "can",
        "calculate",
        "compute",
        "estimate",
        "compare",
        "ls",
        "pwd",
        "cat",
        "grep",
        "wc",
        "tail",
        "head",
        "du",
        "diff",
        "sort",
        "stat",
        "tree",
        "which",
        "whoami",
        "ping",
        "test",
        "measure",
        "mean",
        "median",
        "average",
        "sum",
        "returns",
        "provides",
        "gives",
        "tells",
    ]
)
WRITE_VERBS = frozenset(
    [
        "create",
        "creates",
        "add",
        "adds",
        "insert",
        "new",
        "make",
        "post",
        "posts",
        "put",
        "set",
        "sets",
        "update",
        "updates",
        "edit",
        "edits",
        "modify",
        "modifies",
        "change",
        "changes",
        "patch",
        "replace",
        "rename",
        "move",
        "moves",
        "mv",
        "cp",
        "copy",
        "copies",
        "touch",
        "mkdir",
        "echo",
        "write",
        "writes",
        "save",
        "saves",
        "upload",
        "send",
        "sends",
        "reply",
        "comment",
        "retweet",
        "mention",
        "follow",
        "unfollow",
        "like",
        "share",
        "book",
        "books",
        "reserve",
        "reserves",
        "order",
        "place",
        "places",
        "purchase",
        "buy",
        "sell",
        "pay",
        "pays",
        "refund",
        "charge",
        "transfer",
        "transfers",
        "withdraw",
        "deposit",
        "fund",
        "cancel",
        "cancels",
        "delete",
        "deletes",
        "remove",
        "removes",
        "rm",
        "rmdir",
        "erase",
        "destroy",
        "purge",
        "clear",
        "reset",
        "close",
        "closes",
        "open",
        "opens",
        "resolve",
        "resolves",
        "assign",
        "unassign",
        "approve",
        "reject",
        "submit",
        "submits",
        "register",
        "registers",
        "enroll",
        "subscribe",
        "unsubscribe",
        "toggle",
        "toggles",
        "enable",
        "enables",
        "disable",
        "disables",
        "activate",
        "activates",
        "deactivate",
        "suspend",
        "suspends",
        "resume",
        "resumes",
        "start",
        "starts",
        "stop",
        "stops",
        "pause",
        "restart",
        "restarts",
        "reboot",
        "reboots",
        "shutdown",
        "turn",
        "switch",
        "lock",
        "locks",
        "unlock",
        "unlocks",
        "press",
        "release",
        "engage",
        "disengage",
        "fill",
        "fills",
        "refuel",
        "refuels",
        "recharge",
        "login",
        "logout",
        "authenticate",
        "connect",
        "disconnect",
        "attach",
        "detach",
        "mount",
        "unmount",
        "install",
        "uninstall",
        "grant",
        "revoke",
        "block",
        "unblock",
        "mute",
        "unmute",
        "archive",
        "restore",
        "exchange",
        "exchanges",
        "swap",
        "apply",
        "redeem",
        "notify",
        "schedule",
        "reschedule",
        "accept",
        "decline",
        "confirm",
        "upgrade",
        "downgrade",
        "increase",
        "decrease",
        "raise",
        "lower",
        "adjust",
        "mark",
        "flag",
        "tag",
        "pin",
        "star",
        "vote",
        "rate",
        "sign",
        "link",
        "unlink",
        "bind",
        "merge",
        "import",
        "sync",
        "push",
        "commit",
        "deploy",
        "cd",
        "reseat",
        "reinstall",
        "enter",
        "exit",
        "join",
        "leave",
        "invite",
        "kick",
        "ban",
        "return",
        "contact",
    ]
)
DELETE_VERBS = frozenset(
    ["delete", "deletes", "remove", "removes", "rm", "rmdir", "erase", "destroy", "purge"]
)
VOLATILE_WORDS = frozenset(
    ["current", "now", "time", "random", "weather", "temperature", "live", "realtime"]
)
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_DESCRIPTION_WORD = re.compile(r"[A-Za-z]+")


def _words(name: str) -> tuple[str, ...]:
    return tuple(w.lower() for w in _WORD.findall(name.split(".")[-1]))


_known_words = short_memo(_words)


def name_words(name: str) -> list[str]:
    """``"Vehicle.displayCarStatus"`` -> ``["display", "car", "status"]`` (the method only)."""
    return list(_known_words(name))


name_word_set = short_memo(lambda name: frozenset(_words(name)))
"""The words of a name (:func:`name_words`) as a set."""


def _verb_kind(words: Sequence[str]) -> tuple[Kind, int] | None:
    for at, word in enumerate(words):
        if word in WRITE_VERBS and word not in READ_VERBS:
            return "write", at
        if word in READ_VERBS:
            return "read", at
    return None


_name_verb = short_memo(lambda name: _verb_kind(_known_words(name)))
"""The kind and place of the first known verb of a name's words (judged once per name)."""


def _delete_verb(name: str) -> int | None:
    words = _known_words(name)
    found = _name_verb(name)
    if found is None or words[found[1]] not in DELETE_VERBS or "from" in words:
        return None
    return found[1]


delete_verb_at = short_memo(_delete_verb)
"""The place among a tool name's words of its first known verb when that is a delete
verb and no "from" follows anywhere (``delete_file``, ``rm``; not
``remove_user_from_group``, a membership), else ``None``: what
:meth:`ToolKinds.deleted_argument` asks of the name."""


@attrs.frozen
class ToolKinds:
    """How a trajectory's tools are judged: read, write or other; deletes; volatile reads.

    ``declared`` maps tool names to a kind and wins over every guess;
    ``volatile`` names reads whose answers may change on their own (added to the
    ones guessed from the words ``current``, ``now``, ``time``, ``random``,
    ``weather``, ``temperature``...).
    """

    declared: Mapping[str, Kind] = attrs.field(factory=dict)
    volatile: frozenset[str] = frozenset()

    def kind(self, tool: Tool | str) -> Kind:
        """``"read"``, ``"write"`` or ``"other"`` for a tool (or a bare tool name)."""
        name = tool if isinstance(tool, str) else tool.name
        if name in self.declared:
            return self.declared[name]
        found = _name_verb(name)
        if found is not None:
            return found[0]
        if isinstance(tool, Tool):
            words = [w.lower() for w in _DESCRIPTION_WORD.findall(tool.description)[:3]]
            found = _verb_kind(words)
            if found is not None:
                return found[0]
        return "other"

    def deleted_argument(self, tool: Tool, arguments: Mapping[str, object]) -> str | None:
        """The argument naming the entity a deleting write removes, or ``None``.

        The tool's verb must be a delete verb with nothing after "from" (a
        membership), and the argument must name the verb's object
        (``delete_file(file_id)``) or, for a bare verb (``rm``), be the first
        required one.
        """
        if self.kind(tool) != "write":
            return None
        at = delete_verb_at(tool.name)
        if at is None:
            return None
        objects = set(_known_words(tool.name)[at + 1 :])
        if not objects:
            required = tool.parameters.get("required") or list(arguments)
            first = next((r for r in required if r in arguments), None)
            return first if isinstance(first, str) else None
        for key in arguments:
            if objects & name_word_set(key):
                return key
        return None

    def is_volatile(self, name: str) -> bool:
        """Whether a read's answer may change with no write in between."""
        return name in self.volatile or not VOLATILE_WORDS.isdisjoint(name_word_set(name))
