"""Reading BFCL multi-turn entries as trajectories (Berkeley Function Calling Leaderboard).

BFCL ships with the ``bfcl-eval`` package (install it with ``--no-deps``; it is
never a gemlib dependency): user turns, ground-truth call strings such as
``mv(source='a.pdf', destination='temp')``, function docs with loose types, and
executable Python backends. :func:`read_bfcl_multi_turn` turns each entry into
a :class:`~gemlib.Trajectory`:

- tools from the entry's function docs (through :meth:`gemlib.Tool.from_any`),
  minus the entry's excluded functions;
- each user turn, then one assistant message per ground-truth call, each
  followed by its tool reply, then an empty assistant message closing the turn
  (BFCL records no assistant text, and the GEM turn order needs one);
- in ``miss_func``, each held-out function left out of the tools until the
  turn where BFCL adds it back, which becomes a user message offering it
  (BFCL's own words, and the tools on :attr:`~gemlib.Message.tools`);
- tool replies from running the calls on BFCL's own backends, loaded with the
  entry's initial state (and BFCL's long-context flag in ``long_context``).
  Results are written as JSON (BFCL itself writes Python reprs for lists
  and for MathAPI's ``mpf`` numbers, which are not JSON; here they become
  floats); failures read ``Error during execution: ...``
  as in BFCL.

Call strings are parsed with :mod:`ast` and only literal arguments are
accepted: nothing from the data set is evaluated.
"""

from __future__ import annotations

import ast
import copy
import importlib
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gemlib._nesting import check_depth
from gemlib._pyliteral import parse_expression
from gemlib.errors import FormatError
from gemlib.formats.format import importer
from gemlib.model import Message, Provenance, Tool, ToolCall, Trajectory

__all__ = [
    "FORMAT",
    "BfclBackends",
    "bfcl_data_dir",
    "parse_call_string",
    "read_bfcl_multi_turn",
]


def bfcl_data_dir() -> Path:
    """The ``data`` folder of the installed ``bfcl-eval`` package."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or spec.origin is None:
        raise FormatError("BFCL data needs the bfcl-eval package: pip install --no-deps bfcl-eval")
    return Path(spec.origin).parent / "data"


def parse_call_string(text: str, tool: Tool | None = None) -> tuple[str, dict[str, Any]]:
    """``"sort('a.txt', reverse=True)"`` -> ``("sort", {"file_name": "a.txt", "reverse": True})``.

    Positional arguments take the names of the tool's parameters in order.
    Raises :class:`FormatError` for anything but a call with literal arguments.
    """
    if not isinstance(text, str):
        raise FormatError(f"a call must be a string, got {type(text).__name__}")
    try:
        node = parse_expression(text.strip()).body
    except SyntaxError as exc:
        raise FormatError(f"call {text!r}: {exc.msg}") from None
    except (ValueError, MemoryError, RecursionError):  # NUL bytes; nesting beyond the parser
        raise FormatError(f"call {text[:80]!r}: not a readable call") from None
    if not isinstance(node, ast.Call):
        raise FormatError(f"call {text!r}: not a function call")
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        name = func.attr  # Class.method
    elif isinstance(func, ast.Name):
        name = func.id
    else:
        raise FormatError(f"call {text!r}: the function must be a plain name")
    try:
        positional = [ast.literal_eval(arg) for arg in node.args]
        arguments = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
    except (ValueError, TypeError, MemoryError, RecursionError):  # TypeError: {[1]: 2}
        raise FormatError(f"call {text[:80]!r}: arguments must be literals") from None
    check_depth([positional, arguments])
    try:
        json.dumps([positional, arguments])
    except (TypeError, ValueError):  # sets, bytes, complex numbers
        raise FormatError(f"call {text[:80]!r}: arguments must be JSON values") from None
    if positional:
        names = list((tool.parameters.get("properties") or {}) if tool else {})
        if len(positional) > len(names):
            raise FormatError(
                f"call {text!r}: {len(positional)} positional arguments, "
                f"but the tool has parameters {names}"
            )
        arguments = {**dict(zip(names, positional, strict=False)), **arguments}
    return name, arguments


def _plain_number(value: Any) -> Any:
    """JSON fallback for values such as mpmath's ``mpf``: a float when it converts."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _as_reply(result: Any) -> str:
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, ensure_ascii=False, default=_plain_number)
    except (TypeError, ValueError):
        return str(result)


class BfclBackends:
    """BFCL's executable backend classes for one entry, loaded with its initial state.

    ``long_context`` loads them as BFCL does for its long-context categories:
    the backends then hold and return much more (long file listings, many
    extra records), which is the point of those categories.
    """

    def __init__(
        self,
        involved_classes: list[str],
        initial_config: dict[str, Any],
        *,
        long_context: bool = False,
    ) -> None:
        config = importlib.import_module("bfcl_eval.constants.executable_backend_config")
        self._methods: dict[str, Any] = {}
        for class_name in involved_classes:
            module = importlib.import_module(config.CLASS_FILE_PATH_MAPPING[class_name])
            instance = getattr(module, class_name)()
            if class_name not in config.STATELESS_CLASSES:
                instance._load_scenario(
                    copy.deepcopy(initial_config.get(class_name, {})), long_context=long_context
                )
            for attr in dir(instance):
                if not attr.startswith("_") and callable(getattr(instance, attr)):
                    self._methods[attr] = getattr(instance, attr)

    def call(self, name: str, arguments: dict[str, Any]) -> str:
        """Run one call on the backends; its reply as BFCL would show it."""
        method = self._methods.get(name)
        if method is None:
            return f"Error during execution: no function named {name}"
        try:
            return _as_reply(method(**copy.deepcopy(arguments)))
        except Exception as exc:
            return f"Error during execution: {exc}"


def _tools(data_dir: Path, classes: list[str], excluded: list[str]) -> list[Tool]:
    config = importlib.import_module("bfcl_eval.constants.executable_backend_config")
    tools: list[Tool] = []
    for class_name in classes:
        path = (
            data_dir / "multi_turn_func_doc" / config.MULTI_TURN_FUNC_DOC_FILE_MAPPING[class_name]
        )
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                tool = Tool.from_any(json.loads(line))
                if tool.name not in excluded:
                    tools.append(tool)
    return tools


def _long_context(category: str) -> bool:
    """Whether BFCL loads this category's backends with its long-context flag (it decides
    from the category name, as here)."""
    return "long_context" in category or "composite" in category


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a BFCL file, one a line; anything else a FormatError saying where."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"cannot read BFCL file {path.name}: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            raise FormatError(f"{path.name} line {number} is not JSON") from None
        if not isinstance(record, dict):
            raise FormatError(f"{path.name} line {number} is not a JSON object")
        yield record


def read_bfcl_multi_turn(
    category: str = "multi_turn_base", data_dir: Path | None = None, *, execute: bool = True
) -> Iterator[Trajectory]:
    """Every entry of a BFCL multi-turn category with its ground truth, as trajectories.

    The categories: ``multi_turn_base``, ``multi_turn_miss_param``,
    ``multi_turn_long_context`` (backends loaded with BFCL's long-context flag)
    and ``multi_turn_miss_func`` (each held-out function absent from the tools
    until the turn where BFCL adds it back, which becomes a user message that
    offers it; see docs/formats.md). With ``execute=False`` tool replies are
    left empty (no backend runs). Raises :class:`FormatError` naming the entry
    for anything in it that cannot be read.
    """
    if not category.isidentifier():  # it becomes part of a file name
        raise FormatError(f"BFCL has no category {category!r}")
    base = data_dir or bfcl_data_dir()
    entries = _jsonl(base / f"BFCL_v4_{category}.json")
    answers = {
        str(a.get("id")): a.get("ground_truth")
        for a in _jsonl(base / "possible_answer" / f"BFCL_v4_{category}.json")
    }
    for entry in entries:
        name = str(entry.get("id", "?"))
        try:
            yield _trajectory(base, category, entry, answers.get(name), execute=execute)
        except FormatError as exc:
            raise FormatError(f"BFCL {category} entry {name!r}: {exc}") from None
        except Exception as exc:  # BFCL's own backends and data files can raise anything
            raise FormatError(f"BFCL {category} entry {name!r}: {exc!r}") from None


def _trajectory(
    base: Path, category: str, entry: dict[str, Any], answer: Any, *, execute: bool
) -> Trajectory:
    if not isinstance(answer, list):
        raise FormatError("no ground truth (a list of turns) in possible_answer")
    tools = _tools(base, entry["involved_classes"], entry.get("excluded_function", []))
    by_name = {t.name: t for t in tools}
    held_out = {int(turn): names for turn, names in entry.get("missed_function", {}).items()}
    hidden = {name for names in held_out.values() for name in names}
    if hidden - by_name.keys():
        raise FormatError(f"held-out functions {sorted(hidden - by_name.keys())} are not tools")
    backends = (
        BfclBackends(
            entry["involved_classes"],
            entry.get("initial_config", {}),
            long_context=_long_context(category),
        )
        if execute
        else None
    )
    messages: list[Message] = []
    count = 0
    for turn, (questions, calls) in enumerate(zip(entry["question"], answer, strict=False)):
        if turn in held_out:
            if questions:
                raise FormatError(f"turn {turn} adds functions back but also has user messages")
            messages.append(_offer(tuple(by_name[n] for n in held_out[turn])))
        messages += [Message(role="user", content=q["content"]) for q in questions]
        for text in calls:
            name, arguments = parse_call_string(text, by_name.get(text.split("(")[0].strip()))
            call = ToolCall(id=f"{entry['id']}-t{turn}-c{count}", name=name, arguments=arguments)
            count += 1
            reply = backends.call(name, arguments) if backends else ""
            messages += [
                Message(role="assistant", tool_calls=(call,)),
                Message(role="tool", content=reply, tool_call_id=call.id, name=name),
            ]
        messages.append(Message(role="assistant", content=""))
    return Trajectory(
        id=f"bfcl-{entry['id']}",
        tools=tuple(t for t in tools if t.name not in hidden),
        messages=tuple(messages),
        provenance=Provenance(document_id=entry["id"]),
        labels={"source": f"bfcl/{category}"},
    )


def _offer(tools: tuple[Tool, ...]) -> Message:
    """The user message of a turn where BFCL adds held-out functions back: BFCL's own
    words for it (its prompting form: the function docs, then the question), and the
    tools themselves on the message."""
    prompts = importlib.import_module("bfcl_eval.constants.default_prompts")
    docs = json.dumps(
        [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in tools],
        ensure_ascii=False,
    )
    text = prompts.DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING.format(functions=docs)
    return Message(role="user", content=text, tools=tools)


FORMAT = importer(
    "bfcl",
    "read only: a BFCL multi-turn category (multi_turn_base, ...), named as the source "
    "(needs bfcl-eval)",
    read_bfcl_multi_turn,
    unit="entry",
)
"""The ``bfcl`` entry of the format registry: an importer whose source is a category name."""
