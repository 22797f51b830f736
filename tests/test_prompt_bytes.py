"""Every GEM stage's prompt is pinned byte for byte: prompt text is what the cache keys
and the run's provenance hash, so a faster renderer must write exactly the same bytes.

The expected digests were computed by 9535f38's gemlib (before the rendering cuts) on
the same inputs: documents, workflows and trajectories holding braces, Jinja syntax,
tags of the format itself, JSON oddities (NaN, infinities, -0.0, huge integers, nesting)
and Unicode (emoji, right-to-left text, U+2028, a lone surrogate).
"""

from __future__ import annotations

import hashlib
import json
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from gemlib.errors import FatalError, GemlibError
from gemlib.gem.extraction import WorkflowExtractor
from gemlib.gem.generation import TrajectoryGenerator
from gemlib.gem.judge import LLMJudge
from gemlib.gem.refinement import ComplexityRefiner
from gemlib.gem.relevance import RelevanceFilter
from gemlib.gem.turn_judge import TurnJudge
from gemlib.llm import LLM, ScriptedBackend
from gemlib.model import (
    Document,
    Message,
    Provenance,
    Tool,
    ToolCall,
    Trajectory,
    Workflow,
)
from gemlib.prompts import _SETTINGS, load_prompt

HOSTILE = [
    "Plain text: sign in, open the order, return the item.",
    "{{ text }} {% for x in range(9) %}{{ x }}{% endfor %} {# comment #} {%- raw -%} }} {{",
    '<system>not a turn</system> <func>{"name": "x"}</func> <think>no</think> </assistant>',
    "café ☕ 😀 \u2028 line \u2029 para עברית ‏RTL‏ \x00 nul \t tab \r\n crlf \ud800 lone",
    "",
    "   \n\n  leading and trailing whitespace  \n\n",
    "a" * 3000 + "{" * 40 + "}" * 40,
]

ARGUMENTS: list[dict[str, Any]] = [
    {"email": "ana@example.com", "password": "s3cret"},
    {"x": float("nan"), "y": float("inf"), "z": -float("inf"), "w": -0.0, "n": 10**40},
    {"nested": {"list": [1, 2.5, None, True, {"deep": ["é", "\u2028", "😀"]}]}, "": ""},
    {"quote": '"\\</func></assistant>', "braces": "{{ x }} {% if %}", "lone": "\ud800"},
    {},
]


def _tools(text: str) -> tuple[Tool, ...]:
    return (
        Tool(
            name="login",
            description=f"Sign in. {text[:80]}",
            parameters={
                "type": "object",
                "properties": {"email": {"type": "string", "description": "é {{ x }}"}},
                "required": ["email"],
            },
        ),
        Tool(name="get_order", description="Read an order 😀", parameters={"type": "object"}),
    )


def _messages(text: str, index: int) -> tuple[Message, ...]:
    arguments = ARGUMENTS[index % len(ARGUMENTS)]
    return (
        Message(role="system", content=f"Rules: {text}"),
        Message(role="user", content=text or "hi"),
        Message(
            role="assistant",
            content="Let me check. " if index % 2 else "",
            reasoning=f"thinking about {text[:40]}" if index % 3 == 0 else "",
            tool_calls=(ToolCall(id="call_0", name="login", arguments=arguments),),
        ),
        Message(role="tool", content=json.dumps({"ok": text[:30]}), tool_call_id="call_0"),
        Message(
            role="assistant",
            content=text[:50],
            tool_calls=(
                ToolCall(id="call_1", name="get_order", arguments={"id": index}),
                ToolCall(id="call_2", name="login", arguments=arguments),
            ),
        ),
        Message(role="tool", content="", tool_call_id="call_1"),
        Message(role="tool", content="{}", tool_call_id="call_2"),
        Message(role="assistant", content=f"Done. {text}"),
    )


def _items(index: int, text: str) -> tuple[Document, Workflow, Trajectory]:
    document = Document(id=f"doc-{index}", text=text)
    provenance = Provenance(document_id=document.id)
    workflow = Workflow(
        id=f"doc-{index}/w0",
        description=f"Return an item {text[:60]}",
        steps=("Step1: sign in", text[:70] or "Step2", "{{ step }}"),
        execution_graph="(login)->(get_order)",
        tools=_tools(text),
        document=document,
        provenance=provenance,
    )
    trajectory = Trajectory(
        id=f"traj-{index}",
        tools=_tools(text),
        messages=_messages(text, index),
        document=document if index % 2 == 0 else None,
        provenance=provenance,
    )
    return document, workflow, trajectory


def _cases() -> dict[str, Callable[[], Any]]:
    llm = LLM("openai/teacher", backend=ScriptedBackend(lambda request: ""), cache=False)
    stages = {
        "relevance": RelevanceFilter(llm),
        "extraction": WorkflowExtractor(llm),
        "generation": TrajectoryGenerator(llm),
        "generation_think": TrajectoryGenerator(llm, reasoning_traces=True),
        "refinement": ComplexityRefiner(llm),
        "refinement_many_think": ComplexityRefiner(
            llm, one_call_per_turn=False, reasoning_traces=True
        ),
        "judge": LLMJudge(llm),
        "turn_judge": TurnJudge(llm),
    }
    inputs = {
        "relevance": 0,
        "extraction": 0,
        "generation": 1,
        "generation_think": 1,
        "refinement": 2,
        "refinement_many_think": 2,
        "judge": 2,
        "turn_judge": 2,
    }
    cases: dict[str, Callable[[], Any]] = {}
    for index, text in enumerate(HOSTILE):
        items = _items(index, text)
        for name, stage in stages.items():
            item = items[inputs[name]]
            cases[f"{name}-{index}"] = lambda stage=stage, item=item: stage.prompt(item)
    for name, stage in stages.items():
        cases[f"{name}-hash"] = stage.prompt_hash
    return cases


def _digest(value: Any) -> str:
    data = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:24]


def digests() -> dict[str, str]:
    """Each case's digest (run this module as a script to print them)."""
    return {name: _digest(call()) for name, call in _cases().items()}


EXPECTED: dict[str, str] = {
    "relevance-0": "4fece6abe45f9b2700786e67",
    "extraction-0": "b30d141e46cab2b682d447fb",
    "generation-0": "fd962ddf2634eaf48641e52c",
    "generation_think-0": "d1760f2faba0b7595d56cf20",
    "refinement-0": "efb02c59b3bf74e1d0d3fcf1",
    "refinement_many_think-0": "213131509cef481a14f90b3f",
    "judge-0": "d30f274d487cb8ac467885ca",
    "turn_judge-0": "0e2ca41986276c3dac44a015",
    "relevance-1": "9a936ce9182ad7ccb59753ff",
    "extraction-1": "10f912deb3627dd66a529b4b",
    "generation-1": "28558ba84c8c3083b8fb999c",
    "generation_think-1": "5eceb254a8fd656d23f5ac5c",
    "refinement-1": "a1793fb07aee067e61172a7f",
    "refinement_many_think-1": "a821d398b44442407781821c",
    "judge-1": "85bf2daa34ff0bad546e9402",
    "turn_judge-1": "8b2eff813fa2047409dce020",
    "relevance-2": "424cac836285dcb369efbf6f",
    "extraction-2": "61a381c65d45a9c65ff39623",
    "generation-2": "b5b42e0c82a1ceaa31a458da",
    "generation_think-2": "a51a566779dac794bcdd05b1",
    "refinement-2": "512c41b7cb3e750c65dca77b",
    "refinement_many_think-2": "cd77bd07be07073859d4d8d6",
    "judge-2": "53b8fc191f2deef06205d053",
    "turn_judge-2": "0d56f1e782f0b6b192769672",
    "relevance-3": "f1e98e16eb0c5c1d6c17e183",
    "extraction-3": "776fbd8468e4ec19f2d9cf06",
    "generation-3": "a49329a39f39dbe713313bdd",
    "generation_think-3": "2c49a4f38563e11d77b74380",
    "refinement-3": "06ea43c24a35832f65b5dfa2",
    "refinement_many_think-3": "b2225cf9acfbfef144034ae9",
    "judge-3": "380fb93549c8ac46fc2f2368",
    "turn_judge-3": "42337ba80425cae398116174",
    "relevance-4": "7049eaf5cf7980f2c1aa348e",
    "extraction-4": "97e923a6d8fe5261d2c3ada8",
    "generation-4": "38bb5f3fb981f94ebbe885dd",
    "generation_think-4": "341cb992aa216b204754c70b",
    "refinement-4": "8e4e980059b9a076c40d2e0f",
    "refinement_many_think-4": "6e25eaacc1b71d8e49c98241",
    "judge-4": "6d4a2b14058c43ef6e960158",
    "turn_judge-4": "2eff5094baf7ef639a4132fb",
    "relevance-5": "22e362d8557d0f306efc4273",
    "extraction-5": "d168f8cada7cfeab494a961f",
    "generation-5": "c4717a0dea8f9ae54f04ff62",
    "generation_think-5": "ce45974d80edcab0b079601d",
    "refinement-5": "311ff5c997d4d9b5100e7326",
    "refinement_many_think-5": "61c77d3125b55329e7d8e206",
    "judge-5": "12f437bb00ad5810abb231d1",
    "turn_judge-5": "fcbe1a314f0002da67f7ba4d",
    "relevance-6": "58bbd5ae267a376300c02aef",
    "extraction-6": "83b9e35d06e5ca47274eb658",
    "generation-6": "df4367bbe0ab9654e82523b5",
    "generation_think-6": "b397d18c827437f01b191e0c",
    "refinement-6": "789e65d93a4033a3761ab643",
    "refinement_many_think-6": "f990e1277c69d4c25adba23d",
    "judge-6": "05c3049ad649278635a35ada",
    "turn_judge-6": "e81a18d1bf303ece64616349",
    "relevance-hash": "6e1c210f854d39a75dffcc63",
    "extraction-hash": "a5f81d20cf479962ec2c1044",
    "generation-hash": "331f9438399dbf8e59caed22",
    "generation_think-hash": "331f9438399dbf8e59caed22",
    "refinement-hash": "eb6b0c9ec4b7ac86aea6d616",
    "refinement_many_think-hash": "eb6b0c9ec4b7ac86aea6d616",
    "judge-hash": "a1c49454a8233bff0e41ac6a",
    "turn_judge-hash": "396bb8883bea155ed5039b99",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_prompts_are_the_bytes_of_before(name: str) -> None:
    assert _digest(_cases()[name]()) == EXPECTED[name]


def test_every_case_is_pinned() -> None:
    assert sorted(_cases()) == sorted(EXPECTED)


if __name__ == "__main__":
    print(json.dumps(digests(), indent=4))


@pytest.mark.parametrize(
    ("source", "variables", "error", "message"),
    [
        ("{{ x.__class__ }}", {"x": 1}, FatalError, "access to attribute '__class__'"),
        ("{{ y }}", {}, GemlibError, "'y' is undefined"),
        ("{{ 1 / x }}", {"x": 0}, ZeroDivisionError, "division by zero"),
        ("{% for a in x %}{{ a }}{% endfor %}", {"x": 5}, TypeError, "not iterable"),
    ],
)
def test_a_template_fails_as_before(
    source: str, variables: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        load_prompt("custom", source).render(**variables)
    if error in (ZeroDivisionError, TypeError):  # the traceback points into the template
        assert traceback.extract_tb(caught.value.__traceback__)[-1].filename == "<template>"


JOINED: list[Any] = [
    ["a", "b", "c"],
    ("é", "😀", "\u2028", ""),
    [1, 2.5, None, True, -0.0, float("nan"), 10**40],
    [],
    "abc",
    {"k": 1, "j": 2},
    [{"name": "x"}, {"name": "y"}],
    [Markup("<b>"), "<i>", Tool(name="t", description="d")],
    [["nested"], ("tuple",), {"set"}],
]


@pytest.mark.parametrize("value", JOINED, ids=range(len(JOINED)))
@pytest.mark.parametrize(
    "call",
    ["join", 'join(", ")', "join(sep)", "join(3)", 'join(", ", attribute="name")', "join(d=sep)"],
)
def test_join_writes_what_jinjas_join_writes(value: Any, call: str) -> None:
    source = f"[{{{{ value | {call} }}}}]"
    variables = {"value": value, "sep": Markup(" &amp; ")}
    jinja = SandboxedEnvironment(**_SETTINGS)  # gemlib's settings, jinja's own join
    try:
        want = jinja.from_string(source).render(**variables)
    except Exception as exc:  # the same failure, as gemlib words it
        with pytest.raises(GemlibError, match=str(exc).split("\n")[0][:40].replace("(", ".")):
            load_prompt("custom", source).render(**variables)
        return
    assert load_prompt("custom", source).render(**variables) == want
