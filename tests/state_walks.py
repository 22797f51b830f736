"""State-consistent traces by construction, and the ways simulated environments break them.

``tau2_walks`` and ``bfcl_walks`` run random walks of reads and writes on real
environments (tau2-bench's airline, retail and telecom databases and user
devices; BFCL's executable backends): each call's arguments are drawn from
values the database or an earlier reply holds (the last replies first, so a
walk reads an order and then changes it), each reply is what the environment
answered. ``mutations`` changes such a trace the ways an LLM-simulated
environment fails. Run as a script for the sweep docs/validation.md reports::

    python tests/state_walks.py [walks per source]
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import importlib
import json
import random
import sys
from collections.abc import Callable, Iterator
from typing import Any

from gemlib import Message, Tool, ToolCall, Trajectory
from gemlib.validation.ledger import is_error_reply, reply_json
from gemlib.validation.tool_kinds import ToolKinds

KINDS = ToolKinds()
Runner = Callable[[str, dict[str, Any]], str]


class Pool:
    """Values by key name: the database's, then every reply's (recent ones weigh more)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.values: dict[str, list[Any]] = collections.defaultdict(list)
        self.recent: dict[str, list[Any]] = collections.defaultdict(list)

    def add(self, value: Any, key: str = "", recent: bool = False) -> None:
        target = self.recent if recent else self.values
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, dict) and key:  # records keyed by ID: the key is a value
                    target[f"{key.rstrip('s')}_id"].append(k)
                    target["name"].append(k)
                self.add(v, str(k), recent)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, (dict, list)):
                    self.add(item, key, recent)
                else:
                    target[key].append(item)
                    target[key.rstrip("s")].append(item)
        elif key:
            target[key].append(value)

    def pick(self, key: str) -> Any:
        for source in (self.recent, self.values):
            last = key.split("_")[-1]
            names = [key, key.removeprefix("new_"), key.rstrip("s")] + (
                [last] if last != "id" else []
            )
            if key.endswith("_name") or key in ("source", "destination", "folder", "path"):
                names.append("name")  # file-system entries
            for name in names:
                choices = source.get(name)
                if choices and (source is self.recent or name == key or self.rng.random() < 0.7):
                    if source is self.recent and self.rng.random() < 0.25:
                        break
                    return self.rng.choice(choices[-40:] if source is self.recent else choices)
        return None

    def forget_recent(self) -> None:
        for values in self.recent.values():
            del values[:-40]


def _arguments(schema: dict[str, Any], pool: Pool, rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    required = set(schema.get("required") or [])
    for name, sub in (schema.get("properties") or {}).items():
        if name not in required and rng.random() < 0.6:
            continue
        value = _value(name, sub if isinstance(sub, dict) else {}, pool, rng)
        if value is not None:
            out[name] = value
    return out


def _value(name: str, schema: dict[str, Any], pool: Pool, rng: random.Random) -> Any:
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return _value(name, options[0], pool, rng) if options else None
    if kind == "array":
        items = schema.get("items") or {}
        count = rng.randint(1, 2)
        values = [_value(name.rstrip("s"), items, pool, rng) for _ in range(count)]
        return [v for v in values if v is not None]
    if kind == "object" and schema.get("properties"):
        return _arguments(schema, pool, rng)
    picked = pool.pick(name)
    if kind == "boolean":
        return picked if isinstance(picked, bool) else rng.random() < 0.5
    if kind == "integer":
        return int(picked) if isinstance(picked, (int, float)) else rng.randint(1, 5)
    if kind == "number":
        return float(picked) if isinstance(picked, (int, float)) else float(rng.randint(1, 50))
    if picked is not None:
        return picked if isinstance(picked, str) else str(picked)
    return rng.choice(["a", "test", "x1"])


def walk(
    trace_id: str, tools: list[Tool], run: Runner, pool: Pool, rng: random.Random, length: int
) -> Trajectory:
    """One random walk of ``length`` calls, replies from ``run``."""
    messages = [Message(role="user", content=f"random walk {trace_id}")]
    writes = [t for t in tools if KINDS.kind(t) == "write"]
    reads = [t for t in tools if KINDS.kind(t) == "read"]
    by_name = {t.name: t for t in tools}
    done_reads: list[ToolCall] = []
    check_next: ToolCall | None = None
    for number in range(length):
        if check_next is not None:  # read back what a write changed
            tool, arguments = by_name[check_next.name], check_next.arguments
        elif (
            done_reads
            and rng.random() < 0.2
            and (
                follow := [
                    w
                    for w in writes
                    if set(done_reads[-1].arguments) & set(w.parameters.get("properties", {}))
                ]
            )
        ):  # change what was just read
            tool = rng.choice(follow)
            arguments = {
                **_arguments(tool.parameters, pool, rng),
                **{
                    k: v
                    for k, v in done_reads[-1].arguments.items()
                    if k in tool.parameters.get("properties", {})
                },
            }
        else:
            tool = rng.choice(writes if writes and rng.random() < 0.4 else reads or writes)
            arguments = _arguments(tool.parameters, pool, rng)
        call = ToolCall(id=f"{trace_id}-{number}", name=tool.name, arguments=arguments)
        reply = run(tool.name, call.arguments)
        decoded = reply_json(reply)
        check_next = None
        if not is_error_reply(decoded):
            pool.add(decoded, tool.name, recent=True)
            if KINDS.kind(tool) == "read":
                done_reads.append(call)
            elif rng.random() < 0.7:
                values = {json.dumps(v) for v in call.arguments.values()}
                check_next = next(
                    (
                        r
                        for r in reversed(done_reads)
                        if values & {json.dumps(v) for v in r.arguments.values()}
                    ),
                    None,
                )
        pool.forget_recent()
        messages += [
            Message(role="assistant", tool_calls=(call,)),
            Message(role="tool", content=reply, tool_call_id=call.id, name=tool.name),
        ]
    messages.append(Message(role="assistant", content="done"))
    return Trajectory(id=trace_id, tools=tuple(tools), messages=tuple(messages))


def tau2_walks(domain: str, count: int, length: int = 40, seed: int = 0) -> Iterator[Trajectory]:
    """Random walks on fresh copies of a tau2 domain (telecom: the user's device tools too)."""
    module = importlib.import_module(f"tau2.domains.{domain}.environment")
    importlib.import_module("loguru").logger.disable("tau2")
    for number in range(count):
        rng = random.Random(f"{domain}-{seed}-{number}")
        env = module.get_environment()
        user_tools = set()
        tools = [Tool.from_any(t.openai_schema) for t in env.get_tools()]
        if getattr(env, "user_tools", None) is not None:
            extra = [Tool.from_any(t.openai_schema) for t in env.get_user_tools()]
            user_tools = {t.name for t in extra}
            tools += extra
        tools = [t for t in tools if t.name != "transfer_to_human_agents"]
        pool = Pool(rng)
        pool.add(env.tools.db.model_dump(mode="json"))
        if user_tools:
            pool.add(env.user_tools.db.model_dump(mode="json"))

        def run(
            name: str, arguments: dict[str, Any], env: Any = env, user: Any = user_tools
        ) -> str:
            try:
                if name in user:
                    result = env.use_user_tool(name, **copy.deepcopy(arguments))
                else:
                    result = env.use_tool(name, **copy.deepcopy(arguments))
                env.sync_tools()
                reply = env.to_json_str(result)
            except Exception as exc:
                return f"Error: {exc}"
            return reply if isinstance(reply, str) else json.dumps(reply)

        yield walk(f"walk-tau2-{domain}-{number}", tools, run, pool, rng, length)


def bfcl_walks(count: int, length: int = 40, seed: int = 0) -> Iterator[Trajectory]:
    """Random walks on BFCL's backends, loaded with the initial states of multi_turn_base."""
    from gemlib.formats.bfcl import BfclBackends, bfcl_data_dir, read_bfcl_multi_turn

    path = bfcl_data_dir() / "BFCL_v4_multi_turn_base.json"
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    tools_by_entry = {t.id: t.tools for t in read_bfcl_multi_turn(execute=False)}
    for number in range(count):
        rng = random.Random(f"bfcl-{seed}-{number}")
        entry = entries[(number * 7) % len(entries)]
        backends = BfclBackends(entry["involved_classes"], entry.get("initial_config", {}))
        pool = Pool(rng)
        pool.add(entry.get("initial_config", {}))
        tools = list(tools_by_entry[f"bfcl-{entry['id']}"])
        yield walk(f"walk-bfcl-{number}-{entry['id']}", tools, backends.call, pool, rng, length)


@dataclasses.dataclass
class Step:
    """One call of a trace: where it is, what it did."""

    at: int
    """The index of the tool reply."""
    call: ToolCall
    reply: Any
    kind: str
    ok: bool


def steps(t: Trajectory) -> list[Step]:
    out = []
    for i, m in enumerate(t.messages):
        if m.role == "tool":
            call = t.messages[i - 1].tool_calls[0]
            decoded = reply_json(m.content)
            out.append(Step(i, call, decoded, KINDS.kind(call.name), not is_error_reply(decoded)))
    return out


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 7
    return f"{value}-X" if value != "" else "X"


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path, value


def _set(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    value = copy.deepcopy(value)
    if not path:
        return new
    target = value
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = new
    return value


def _replace_reply(t: Trajectory, at: int, reply: Any) -> Trajectory:
    messages = list(t.messages)
    content = reply if isinstance(reply, str) else json.dumps(reply)
    messages[at] = messages[at].model_copy(update={"content": content})
    return t.model_copy(update={"messages": tuple(messages)})


def _insert_read(t: Trajectory, after: int, call: ToolCall, reply: Any, tag: str) -> Trajectory:
    messages = list(t.messages)
    new_call = call.model_copy(update={"id": f"{call.id}-{tag}"})
    content = reply if isinstance(reply, str) else json.dumps(reply)
    messages[after + 1 : after + 1] = [
        Message(role="assistant", tool_calls=(new_call,)),
        Message(role="tool", content=content, tool_call_id=new_call.id, name=call.name),
    ]
    return t.model_copy(update={"messages": tuple(messages)})


def _stable(path: tuple[Any, ...]) -> bool:
    """Not a clock field (the ledger's documented tolerance)."""
    return not any(
        isinstance(p, str) and {"time", "timestamp", "date"} & set(p.lower().split("_"))
        for p in path
    )


def _id_like(key: Any) -> bool:
    return isinstance(key, str) and (key.lower() == "id" or key.lower().endswith("_id"))


def _deleting(call: ToolCall) -> bool:
    return call.name in ("rm", "rmdir") or call.name.startswith(("delete_", "remove_file"))


def mutants(t: Trajectory, rng: random.Random) -> Iterator[tuple[str, Trajectory, str]]:
    """``(kind, mutant, where)`` for every site in ``t`` where a kind of failure can be planted."""
    found = steps(t)
    for n, write in enumerate(found):
        if write.kind != "write" or not write.ok:
            continue
        later = found[n + 1 :]
        nxt = next((s for s in later if s.kind == "write"), None)
        window = [s for s in later if nxt is None or s.at < nxt.at]
        previous = max((s.at for s in found[:n] if s.kind == "write"), default=-1)
        earlier = {  # reads since the write before: the state this write changed
            json.dumps([s.call.name, s.call.arguments], sort_keys=True): s
            for s in found[:n]
            if s.kind == "read" and s.ok and s.at > previous
        }
        set_by_write = dict(_leaves(write.reply)) if isinstance(write.reply, (dict, list)) else {}
        ids = {json.dumps(p) for p in write.call.arguments.items() if _id_like(p[0])}
        if ids:  # an argument the write sets, read back from the entity it names
            set_by_write.update({(k,): v for k, v in write.call.arguments.items()})
        else:  # no entity named: only effects the reply reports, not echoed arguments
            set_by_write = {
                p: v for p, v in set_by_write.items() if p[-1] not in write.call.arguments
            }
        for read in window:
            if read.kind != "read" or not read.ok or not isinstance(read.reply, (dict, list)):
                continue
            if ids and not ids & {json.dumps(p) for p in read.call.arguments.items()}:
                continue  # a read of another entity
            # a later read contradicts the write: a field the write set, read as something else
            before = earlier.get(json.dumps([read.call.name, read.call.arguments], sort_keys=True))
            old = dict(_leaves(before.reply)) if before is not None else {}
            candidates = sorted(_leaves(read.reply), key=lambda leaf: leaf[0] in old)
            for path, value in candidates:  # the fields the write added first
                expected = set_by_write.get(path)
                if expected is None and (path not in old if old else len(path) == 1):
                    expected = set_by_write.get(path[-1:])  # an argument, new at this path
                if path and _id_like(path[-1]):
                    continue  # changing an ID is the id_changed kind
                if expected is not None and expected == value and _stable(path):
                    yield (
                        "contradicts_write",
                        _replace_reply(t, read.at, _set(read.reply, path, _changed(value))),
                        f"{write.call.name}@{write.at} then {read.call.name}@{read.at} {path}",
                    )
                    break
            # the write's effect is missing: the read shows the state from before the write
            if before is not None and before.reply != read.reply:
                yield (
                    "effect_missing" if ids else "effect_missing_unkeyed",
                    _replace_reply(t, read.at, before.reply),
                    f"{write.call.name}@{write.at} then {read.call.name}@{read.at}",
                )
            break
    for read in found:
        if read.kind == "read" and read.ok and not KINDS.is_volatile(read.call.name):
            leaves = [(p, v) for p, v in _leaves(read.reply) if _stable(p)]
            if leaves:
                path, value = rng.choice(leaves)
                changed = _set(read.reply, path, _changed(value))
                yield (
                    "repeat_changed",
                    _insert_read(t, read.at, read.call, changed, "again"),
                    f"{read.call.name}@{read.at} {path}",
                )
    for read in found:  # a reply about another ID than the one asked for
        if read.kind == "read" and read.ok and isinstance(read.reply, dict):
            echoed = [
                k for k, v in read.call.arguments.items() if _id_like(k) and read.reply.get(k) == v
            ]
            if echoed:
                changed = _set(read.reply, (echoed[0],), _changed(read.reply[echoed[0]]))
                yield (
                    "id_changed",
                    _replace_reply(t, read.at, changed),
                    f"{read.call.name}@{read.at} {echoed[0]}",
                )
    for n, delete in enumerate(found):
        if not (delete.kind == "write" and delete.ok and _deleting(delete.call)):
            continue
        target = {json.dumps(pair) for pair in delete.call.arguments.items()}
        user = next(
            (
                s
                for s in reversed(found[:n])
                if s.ok
                and s.kind == "read"
                and target & {json.dumps(pair) for pair in s.call.arguments.items()}
            ),
            None,
        )
        if user is not None:
            yield (
                "resurrected",
                _insert_read(t, delete.at, user.call, user.reply, "undead"),
                f"{delete.call.name}@{delete.at} then {user.call.name}",
            )


def sweep(per_source: int, show: bool = True) -> dict[str, Any]:
    """False alarms, traces, calls and writes per source, and mutants caught per kind."""
    from gemlib.validation.ledger import state_ledger

    check = state_ledger()
    sources: dict[str, Callable[[], Iterator[Trajectory]]] = {
        d: (lambda d=d: tau2_walks(d, per_source)) for d in ("airline", "retail", "telecom")
    }
    sources["bfcl"] = lambda: bfcl_walks(per_source * 2)
    caught: collections.Counter[str] = collections.Counter()
    sites: collections.Counter[str] = collections.Counter()
    figures: dict[str, Any] = {"sources": {}, "missed": []}
    for source, make in sources.items():
        traces = calls = writes = ok_writes = flagged = 0
        for t in make():
            traces += 1
            found = steps(t)
            calls += len(found)
            writes += sum(s.kind == "write" for s in found)
            ok_writes += sum(s.kind == "write" and s.ok for s in found)
            problems = list(check(t))
            flagged += bool(problems)
            figures["missed"] += [f"FALSE ALARM {t.id}: {p.text}" for p in problems]
            for kind, mutant, where in mutants(t, random.Random(t.id)):
                sites[f"{source}/{kind}"] += 1
                if any(True for _ in check(mutant)):
                    caught[f"{source}/{kind}"] += 1
                else:
                    figures["missed"].append(f"MISSED {kind} {t.id} {where}")
        figures["sources"][source] = {
            "traces": traces,
            "calls": calls,
            "writes": writes,
            "succeeded": ok_writes,
            "flagged": flagged,
        }
    figures["caught"] = {key: (caught[key], sites[key]) for key in sorted(sites)}
    if show:
        print(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    sweep(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
