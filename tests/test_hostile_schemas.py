"""Model-written tool schemas are hostile input: their regexes are bounded, their $refs local.

Before (checked): ``pattern`` and ``patternProperties`` ran on Python's ``re``,
so each case below froze the process for minutes or more, and a ``$ref`` URL
was fetched over the network.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gemlib import Tool, Trajectory
from gemlib.errors import ToolSchemaError
from gemlib.model import Message, ToolCall
from gemlib.validation import validate
from gemlib.validation.checks import valid_arguments
from gemlib.validation.schema_validator import RegexTooCostly, argument_validator
from test_cli import _gemlib

HOSTILE = "a" * 34 + "!"
# Catastrophic for Python's re; the first also for the regex module without a time limit.
PATTERNS = ["^(a|aa)+$", "^(a+)+$"]


def _trajectory(parameters: dict[str, Any], arguments: dict[str, Any]) -> Trajectory:
    call = ToolCall(id="c1", name="sign_in", arguments=arguments)
    return Trajectory(
        tools=(Tool.from_any({"name": "sign_in", "parameters": parameters}),),
        messages=(
            Message(role="user", content="Sign me in"),
            Message(role="assistant", tool_calls=(call,)),
            Message(role="tool", content="{}", tool_call_id="c1", name="sign_in"),
            Message(role="assistant", content="Done."),
        ),
    )


CASES = {
    "pattern": (
        {"properties": {"code": {"type": "string", "pattern": PATTERNS[0]}}},
        {"code": HOSTILE},
    ),
    "pattern, the classic": (
        {"properties": {"code": {"type": "string", "pattern": PATTERNS[1]}}},
        {"code": HOSTILE},
    ),
    "patternProperties": (
        {"patternProperties": {PATTERNS[0]: {"type": "string"}}},
        {HOSTILE: "x"},
    ),
    "patternProperties with additionalProperties false": (
        {"patternProperties": {PATTERNS[0]: {}}, "additionalProperties": False},
        {HOSTILE: 1},
    ),
    "nested in items": (
        {
            "properties": {
                "codes": {"type": "array", "items": {"type": "string", "pattern": PATTERNS[0]}}
            }
        },
        {"codes": ["ok", HOSTILE]},
    ),
    "counted repeats that explode when compiled": (
        {"properties": {"code": {"type": "string", "pattern": "^((a{99}){99}){99}$"}}},
        {"code": "a"},
    ),
}


QUICK = ("pattern, the classic", "counted repeats that explode when compiled")


@pytest.mark.parametrize(
    "case",
    # The others each wait out the time limit (about 2 s with the regex module's granularity).
    [c if c in QUICK else pytest.param(c, marks=pytest.mark.faults) for c in CASES],
)
def test_a_hostile_regex_is_the_items_fault_and_quick(case: str) -> None:
    parameters, arguments = CASES[case]
    started = time.perf_counter()
    report = validate(_trajectory(parameters, arguments), [valid_arguments()])
    assert time.perf_counter() - started < 10
    assert not report.ok
    problem = report.problems[-1]
    assert problem.rule == "argument_schema"
    assert "sign_in" in problem.text
    if case != "pattern, the classic":  # the regex module answers that one at once
        assert "pattern '" in problem.text


def test_ordinary_patterns_still_validate() -> None:
    parameters = {
        "properties": {
            "zip": {"type": "string", "pattern": r"^\d{5}$"},
            "tags": {"type": "object", "patternProperties": {"^x-": {"type": "integer"}}},
        },
        "additionalProperties": False,
    }
    ok = _trajectory(parameters, {"zip": "12345", "tags": {"x-a": 1}})
    assert validate(ok, [valid_arguments()]).ok
    bad = _trajectory(parameters, {"zip": "1234", "tags": {"x-a": "s"}, "extra": 1})
    texts = [p.text for p in validate(bad, [valid_arguments()]).problems]
    assert any("does not match" in t for t in texts)
    assert any("is not of type 'integer'" in t for t in texts)
    assert any("'extra' was unexpected" in t for t in texts)


def test_a_remote_ref_is_never_fetched() -> None:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"type": "string"}')

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/schema.json"
        trajectory = _trajectory({"properties": {"code": {"$ref": url}}}, {"code": "x"})
        report = validate(trajectory, [valid_arguments()])
    finally:
        server.shutdown()
        server.server_close()
    assert seen == []
    assert "cannot be resolved" in report.problems[0].text


@pytest.mark.faults
def test_a_hostile_schema_through_a_real_run_is_rejected_quickly_and_again_on_rerun(
    tmp_path: Path,
) -> None:
    from fake_openai import FakeOpenAI, Reply
    from teacher import REFINEMENT, teacher_reply

    # The first alternative froze Python's re; the second outlasts the regex module's limit.
    pattern = f"{PATTERNS[1]}|{PATTERNS[0]}"
    hostile = (
        REFINEMENT["Northwind"]
        .replace(
            '"password": {"type": "string"}',
            f'"password": {{"type": "string", "pattern": "{pattern}"}}',
        )
        .replace("Trail2026!", HOSTILE)
    )
    assert hostile != REFINEMENT["Northwind"]

    def reply(body: dict[str, Any], n: int) -> Reply:
        if body["messages"][0]["content"].startswith("Rewrite the conversation below"):
            return Reply(hostile)
        return teacher_reply(body, n)

    source = Path(__file__).parents[1] / "examples" / "corpus" / "gem_examples.jsonl"
    line = next(ln for ln in source.read_text().splitlines() if "Northwind" in ln)
    (tmp_path / "one.jsonl").write_text(line + "\n")
    with FakeOpenAI(reply) as server:
        command = ["run", "one.jsonl", "--model", "openai/t", "--api-base", server.url]
        for attempt, out in enumerate(["run", "again"]):  # the second is served from the cache
            started = time.perf_counter()
            done = _gemlib(*command, "--out", out, cwd=tmp_path, env={"OPENAI_API_KEY": "k"})
            assert done.returncode == 0, done.stderr
            assert time.perf_counter() - started < 60, attempt
            rejections = [
                json.loads(ln)
                for ln in (tmp_path / out / "rejections.jsonl").read_text().split("\n")
                if ln
            ]
            texts = [p["text"] for r in rejections for p in r["detail"].get("problems", [])]
            assert any(
                "tool 'login'" in t and pattern in t and "ran longer than" in t for t in texts
            ), rejections


ALTERNATIVES = "|".join("a" * i for i in range(1, 1000))  # 500,000 characters


@pytest.mark.parametrize(
    "parameters",
    [
        {"properties": {"code": {"type": "string", "pattern": ALTERNATIVES}}},
        {"patternProperties": {ALTERNATIVES: {}}},
    ],
    ids=["pattern", "patternProperties"],
)
def test_an_enormous_pattern_is_refused_before_anything_compiles_it(
    parameters: dict[str, Any],
) -> None:
    # Before: about 3 s in re.compile (the meta-schema check), then 9 s compiling with the
    # regex module and 18 s searching past its 0.5 s limit, which it checks too coarsely.
    started = time.monotonic()
    with pytest.raises(ToolSchemaError, match="500,498 characters"):
        Tool.from_any({"name": "sign_in", "parameters": parameters})
    assert time.monotonic() - started < 1


def test_the_validator_refuses_an_enormous_pattern_it_is_given_directly() -> None:
    schema = {"type": "string", "pattern": ALTERNATIVES}
    with pytest.raises(RegexTooCostly, match="characters long"):
        list(argument_validator(schema).iter_errors("b" * 1000))


@pytest.mark.parametrize(
    "parameters",
    [
        {"$ref": "#"},
        {
            "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
            "properties": {"code": {"$ref": "#/$defs/a"}},
        },
    ],
    ids=["itself", "two-definitions"],
)
def test_a_ref_loop_is_a_problem_not_a_recursion_error(parameters: dict[str, Any]) -> None:
    problems = validate(_trajectory(parameters, {"code": "x"})).problems
    assert any("refers back to itself" in p.text for p in problems), problems


def test_a_recursive_schema_that_ends_still_validates() -> None:
    node = {
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
    }
    parameters = {"$defs": {"node": node}, "properties": {"tree": {"$ref": "#/$defs/node"}}}
    arguments = {"tree": {"children": [{"children": []}, {"children": [{"children": []}]}]}}
    assert validate(_trajectory(parameters, arguments)).ok


def test_many_strings_each_just_under_the_limit_share_one_budget() -> None:
    # Each search of 29 characters takes ~0.2-0.4 s here, under the 0.5 s limit per search;
    # before, 200 of them held validation for about a minute.
    parameters = {
        "properties": {
            "codes": {"type": "array", "items": {"type": "string", "pattern": PATTERNS[0]}}
        }
    }
    trajectory = _trajectory(parameters, {"codes": ["a" * 29 + "!"] * 200})
    started = time.monotonic()
    problems = validate(trajectory).problems
    assert time.monotonic() - started < 10
    assert any("ran longer than" in p.text for p in problems), problems
