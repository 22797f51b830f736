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
            names = [key, key.removeprefix("new_"), key.rstrip("s")] + ([last] if last != "id" else [])
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

        def run(name: str, arguments: dict[str, Any], env: Any = env, user: Any = user_tools) -> str:
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

    entries = [json.loads(line) for line in open(bfcl_data_dir() / "BFCL_v4_multi_turn_base.json")]
    tools_by_entry = {t.id: t.tools for t in read_bfcl_multi_turn(execute=False)}
    for number in range(count):
        rng = random.Random(f"bfcl-{seed}-{number}")
        entry = entries[(number * 7) % len(entries)]
        backends = BfclBackends(entry["involved_classes"], entry.get("initial_config", {}))
        pool = Pool(rng)
        pool.add(entry.get("initial_config", {}))
        tools = list(tools_by_entry[f"bfcl-{entry['id']}"])
        yield walk(f"walk-bfcl-{number}-{entry['id']}", tools, backends.call, pool, rng, length)


if __name__ == "__main__":
    from gemlib.validation.ledger import state_ledger

    per_source = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    check = state_ledger()
    sources: dict[str, Callable[[], Iterator[Trajectory]]] = {
        d: (lambda d=d: tau2_walks(d, per_source)) for d in ("airline", "retail", "telecom")
    }
    sources["bfcl"] = lambda: bfcl_walks(per_source * 2)
    for source, make in sources.items():
        traces = calls = writes = ok_writes = flagged = 0
        for t in make():
            traces += 1
            for i, m in enumerate(t.messages):
                for c in m.tool_calls:
                    calls += 1
                    if KINDS.kind(c.name) == "write":
                        writes += 1
                        ok_writes += not is_error_reply(reply_json(t.messages[i + 1].content))
            problems = list(check(t))
            flagged += bool(problems)
            for p in problems[:3]:
                print("  FALSE ALARM", t.id, p.message_index, p.text[:300])
        print(f"{source}: {traces} traces, {calls} calls, {writes} writes ({ok_writes} succeeded), "
              f"{flagged} flagged")
