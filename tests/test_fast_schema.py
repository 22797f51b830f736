"""The quick argument test never says yes where jsonschema finds an error."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from gemlib.validation.fast_schema import quick_check
from gemlib.validation.schema_validator import argument_validator

TYPES = ["string", "integer", "number", "boolean", "null", "array", "object"]


def random_schema(rnd: random.Random, depth: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    if rnd.random() < 0.7:
        schema["type"] = rnd.choice(TYPES) if rnd.random() < 0.8 else rnd.sample(TYPES, 2)
    if rnd.random() < 0.2:
        schema["enum"] = rnd.sample(["a", "b", "c", 1, True, None, 1.0], rnd.randint(1, 3))
    if rnd.random() < 0.15:
        schema[rnd.choice(["minimum", "maximum"])] = rnd.choice([0, 1, 2.5, -1])
    if rnd.random() < 0.15:
        schema[rnd.choice(["minLength", "maxLength", "minItems", "maxItems"])] = rnd.randint(0, 2)
    if rnd.random() < 0.05:
        schema[rnd.choice(["const", "multipleOf", "uniqueItems", "exclusiveMinimum", "x-a"])] = 1
    if depth < 2 and rnd.random() < 0.4:
        names = rnd.sample(["a", "b", "c"], rnd.randint(0, 3))
        schema["properties"] = {name: random_schema(rnd, depth + 1) for name in names}
        if rnd.random() < 0.5:
            schema["required"] = rnd.sample(["a", "b", "c", "d"], rnd.randint(0, 2))
        if rnd.random() < 0.5:
            schema["additionalProperties"] = rnd.choice([True, False])
    if depth < 2 and rnd.random() < 0.2:
        schema["items"] = random_schema(rnd, depth + 1)
    return schema


def random_value(rnd: random.Random, depth: int = 0) -> Any:
    draw = rnd.random()
    if depth < 2 and draw < 0.2:
        return {k: random_value(rnd, depth + 1) for k in rnd.sample("abcd", rnd.randint(0, 3))}
    if depth < 2 and draw < 0.3:
        return [random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 3))]
    return rnd.choice(["a", "b", "", "xyz", 0, 1, 2, -1, 2.5, 1.0, True, False, None, (1, 2)])


def test_a_quick_yes_is_always_a_jsonschema_yes() -> None:
    rnd = random.Random(20)
    said_yes = 0
    for _ in range(20_000):
        schema = random_schema(rnd)
        quick = quick_check(json.dumps(schema, sort_keys=True))
        value = random_value(rnd)
        if quick is not None and quick(value):
            said_yes += 1
            assert not list(argument_validator(schema).iter_errors(value)), (schema, value)
    assert said_yes > 2_000  # the quick test does answer for most plain schemas


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "integer"}, 1.0),  # an integer to jsonschema; the quick test is not sure
        ({"type": "array"}, (1, 2)),  # a tuple is no JSON array
        ({"properties": {"a": {"type": "string"}}}, {1: "x"}),  # a key that is no string
        ({"type": "object", "additionalProperties": False}, {"x": 1}),
    ],
)
def test_unsure_cases_fall_back_to_jsonschema(schema: dict[str, Any], value: Any) -> None:
    quick = quick_check(json.dumps(schema, sort_keys=True))
    assert quick is not None
    assert not quick(value)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": "^a"},  # regexes stay with the bounded validator
        {"enum": ["a", 1]},  # jsonschema's equality of mixed types (1 == 1.0, True != 1)
        {"anyOf": [{"type": "string"}]},
        {"$ref": "#/$defs/x"},
        {"properties": {"a": True}},  # a boolean subschema
        {"additionalProperties": {"type": "string"}},
    ],
)
def test_schemas_beyond_the_plain_keywords_get_no_quick_test(schema: dict[str, Any]) -> None:
    assert quick_check(json.dumps(schema, sort_keys=True)) is None


def test_facts_kept_per_schema_give_the_same_problems_every_time() -> None:
    from gemlib.model import Message, Tool, ToolCall, Trajectory
    from gemlib.validation.checks import tools_well_formed, valid_arguments

    tool = Tool(name="get", parameters={"type": "object", "properties": {"n": {"type": "integer"}}})
    broken = tool.model_copy(update={"parameters": {"type": "object", "properties": 3}})
    call = ToolCall(id="c1", name="get", arguments={"n": "three"})
    messages = (
        Message(role="user", content="get three"),
        Message(role="assistant", tool_calls=(call,)),
    )
    for _ in range(2):  # the second time from what was kept
        checked = Trajectory(id="t", tools=(tool,), messages=messages)
        assert [p.text for p in valid_arguments()(checked)] == [
            "call get: n: 'three' is not of type 'integer'"
        ]
        assert [
            p.text for p in tools_well_formed()(checked.model_copy(update={"tools": (broken,)}))
        ]
