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
- tool replies from running the calls on BFCL's own backends, loaded with the
  entry's initial state. Results are written as JSON (BFCL itself writes
  Python reprs for lists and for MathAPI's ``mpf`` numbers, which are not
  JSON; here they become floats); failures read ``Error during execution: ...``
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
from gemlib.errors import FormatError
from gemlib.model import Message, Provenance, Tool, ToolCall, Trajectory

__all__ = ["BfclBackends", "bfcl_data_dir", "parse_call_string", "read_bfcl_multi_turn"]


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
    try:
        node = ast.parse(text.strip(), mode="eval").body
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
    """BFCL's executable backend classes for one entry, loaded with its initial state."""

    def __init__(self, involved_classes: list[str], initial_config: dict[str, Any]) -> None:
        config = importlib.import_module("bfcl_eval.constants.executable_backend_config")
        self._methods: dict[str, Any] = {}
        for class_name in involved_classes:
            module = importlib.import_module(config.CLASS_FILE_PATH_MAPPING[class_name])
            instance = getattr(module, class_name)()
            if class_name not in config.STATELESS_CLASSES:
                instance._load_scenario(copy.deepcopy(initial_config.get(class_name, {})))
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


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def read_bfcl_multi_turn(
    category: str = "multi_turn_base", data_dir: Path | None = None, *, execute: bool = True
) -> Iterator[Trajectory]:
    """Every entry of a BFCL multi-turn category with its ground truth, as trajectories.

    With ``execute=False`` tool replies are left empty (no backend runs).
    """
    base = data_dir or bfcl_data_dir()
    entries = _jsonl(base / f"BFCL_v4_{category}.json")
    answers = {
        a["id"]: a["ground_truth"]
        for a in _jsonl(base / "possible_answer" / f"BFCL_v4_{category}.json")
    }
    for entry in entries:
        tools = _tools(base, entry["involved_classes"], entry.get("excluded_function", []))
        by_name = {t.name: t for t in tools}
        backends = (
            BfclBackends(entry["involved_classes"], entry.get("initial_config", {}))
            if execute
            else None
        )
        messages: list[Message] = []
        count = 0
        for turn, (questions, calls) in enumerate(
            zip(entry["question"], answers[entry["id"]], strict=False)
        ):
            messages += [Message(role="user", content=q["content"]) for q in questions]
            for text in calls:
                name, arguments = parse_call_string(text, by_name.get(text.split("(")[0].strip()))
                call = ToolCall(
                    id=f"{entry['id']}-t{turn}-c{count}", name=name, arguments=arguments
                )
                count += 1
                reply = backends.call(name, arguments) if backends else ""
                messages += [
                    Message(role="assistant", tool_calls=(call,)),
                    Message(role="tool", content=reply, tool_call_id=call.id, name=name),
                ]
            messages.append(Message(role="assistant", content=""))
        yield Trajectory(
            id=f"bfcl-{entry['id']}",
            tools=tuple(tools),
            messages=tuple(messages),
            provenance=Provenance(document_id=entry["id"]),
            labels={"source": f"bfcl/{category}"},
        )
