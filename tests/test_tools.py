"""Tool.from_any: every wrapper and dialect normalises to one checked JSON-Schema form."""

from __future__ import annotations

import json

import pytest

from gemlib import Tool, ToolSchemaError

PARAMS = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "description": "The order."}},
    "required": ["order_id"],
}


def test_openai_bare_mcp_and_anthropic_forms_give_the_same_tool() -> None:
    forms = [
        {
            "type": "function",
            "function": {"name": "get_order", "description": "d", "parameters": PARAMS},
        },
        {"name": "get_order", "description": "d", "parameters": PARAMS},
        {"name": "get_order", "description": "d", "inputSchema": PARAMS},
        {"name": "get_order", "description": "d", "input_schema": PARAMS},
        json.dumps({"name": "get_order", "description": "d", "parameters": PARAMS}),
    ]
    tools = [Tool.from_any(f) for f in forms]
    assert all(t == tools[0] for t in tools)
    assert tools[0].parameters == PARAMS
    assert tools[0].to_openai() == forms[0]
    assert Tool.from_any(tools[0].to_mcp()) == tools[0]


def test_bfcl_loose_types_are_normalised() -> None:
    bfcl = {
        "name": "cd",
        "description": "Change directory.",
        "parameters": {
            "type": "dict",
            "properties": {
                "folder": {"type": "string"},
                "depth": {"type": "float", "default": 1.0},
                "point": {"type": "tuple", "items": {"type": "integer"}},
                "pair": {"type": "tuple", "items": [{"type": "str"}, {"type": "int"}]},
                "anything": {"type": "any"},
                "nested": {"type": "dict", "properties": {"x": {"type": "Boolean"}}},
            },
            "required": ["folder"],
        },
        "response": {"type": "dict", "properties": {"cwd": {"type": "string"}}},
    }
    tool = Tool.from_any(bfcl)
    props = tool.parameters["properties"]
    assert tool.parameters["type"] == "object"
    assert props["depth"] == {"type": "number", "default": 1.0}
    assert props["point"] == {"type": "array", "items": {"type": "integer"}}
    assert props["pair"] == {
        "type": "array",
        "prefixItems": [{"type": "string"}, {"type": "integer"}],
    }
    assert props["anything"] == {}
    assert props["nested"]["type"] == "object"
    assert props["nested"]["properties"]["x"] == {"type": "boolean"}
    assert tool.output_schema == {"type": "object", "properties": {"cwd": {"type": "string"}}}
    assert bfcl["parameters"]["type"] == "dict", "the input must not be mutated"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("HashMap", "object"),
        ("Hashtable", "object"),
        ("ArrayList", "array"),
        ("Queue", "array"),
        ("Stack", "array"),
        ("char", "string"),
        ("byte", "integer"),
        ("short", "integer"),
        ("Bigint", "integer"),
        ("String", "string"),
    ],
)
def test_bfcl_java_and_javascript_types_map_as_bfcl_maps_them(written: str, expected: str) -> None:
    tool = Tool.from_any(
        {
            "name": "Basic.checkSizes",
            "parameters": {
                "type": "dict",
                "properties": {
                    "x": {"type": written},
                    "xs": {"type": "Array", "items": {"type": written}},
                },
            },
        }
    )
    assert tool.parameters["properties"]["x"] == {"type": expected}
    assert tool.parameters["properties"]["xs"]["items"] == {"type": expected}


def test_an_empty_type_is_read_as_string_with_a_warning_naming_tool_and_place() -> None:
    from gemlib.errors import ToolSchemaWarning

    definition = {
        "name": "createAuthToken",
        "parameters": {"properties": {"options": {"properties": {"issuer": {"type": ""}}}}},
    }
    with pytest.warns(ToolSchemaWarning, match=r"createAuthToken.*options\.properties\.issuer"):
        tool = Tool.from_any(definition)
    assert tool.parameters["properties"]["options"]["properties"]["issuer"] == {"type": "string"}
    with pytest.raises(ToolSchemaError, match="unknown type 'Widget'"):
        Tool.from_any({"name": "f", "parameters": {"properties": {"w": {"type": "Widget"}}}})


def test_missing_object_type_and_missing_parameters() -> None:
    assert (
        Tool.from_any(
            {"name": "t", "parameters": {"properties": {"a": {"type": "string"}}}}
        ).parameters["type"]
        == "object"
    )
    assert Tool.from_any({"name": "ping"}).parameters == {"type": "object", "properties": {}}
    assert Tool.from_any({"name": "ping", "parameters": None}).description == ""


def test_old_style_required_flags_are_lifted() -> None:
    tool = Tool.from_any(
        {
            "name": "t",
            "parameters": {
                "type": "object",
                "properties": {
                    "a": {"type": "string", "required": True},
                    "b": {"type": "string", "required": False},
                },
            },
        }
    )
    assert tool.parameters["required"] == ["a"]
    assert "required" not in tool.parameters["properties"]["a"]


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        ({"description": "no name"}, "non-empty string name"),
        ({"name": "bad name"}, "whitespace"),
        ({"name": "t", "parameters": {"type": "string"}}, "must describe an object"),
        (
            {
                "name": "t",
                "parameters": {"type": "object", "properties": {"a": {"type": "banana"}}},
            },
            "unknown type 'banana' at parameters.properties.a",
        ),
        (
            {
                "name": "t",
                "parameters": {"type": "object", "properties": {"a": {"minLength": "x"}}},
            },
            "invalid JSON Schema at properties/a/minLength",
        ),
        (
            {
                "name": "t",
                "parameters": {"type": "object", "properties": {}, "required": ["ghost"]},
            },
            "names 'ghost', which is not a property",
        ),
        (
            {"name": "t", "parameters": {"type": "object", "properties": {"a": 3}}},
            "schema at parameters.properties.a must be an object",
        ),
        ({"name": "t", "parameters": {}, "inputSchema": {}}, "has both"),
        ("{not json", "not valid JSON"),
        (42, "expected a mapping"),
    ],
)
def test_unusable_definitions_raise_naming_tool_and_problem(
    definition: object, problem: str
) -> None:
    with pytest.raises(ToolSchemaError) as info:
        Tool.from_any(definition)  # type: ignore[arg-type]
    assert problem in str(info.value)
    if isinstance(definition, dict) and "name" in definition:
        assert info.value.tool == definition["name"]


def test_a_repeated_definition_gives_the_same_tool_without_normalising_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gemlib.model

    built: list[object] = []
    build = gemlib.model.Tool._build.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(
        gemlib.model.Tool,
        "_build",
        classmethod(lambda cls, d: built.append(d) or build(cls, d)),
    )
    definition = {"name": "memo_probe", "description": "d", "parameters": PARAMS}
    first = Tool.from_any(definition)
    again = Tool.from_any(json.loads(json.dumps(definition)))
    as_text = Tool.from_any(json.dumps(definition))
    assert again is first
    assert as_text == first
    assert len(built) == 2  # the mapping once, the JSON text once


def test_the_memo_keeps_every_difference_the_json_text_hides() -> None:
    listed = {"name": "memo_union", "parameters": {"anyOf": [{"type": "object"}]}}
    assert Tool.from_any(listed).parameters["anyOf"] == [{"type": "object"}]
    as_tuple = {"name": "memo_union", "parameters": {"anyOf": ({"type": "object"},)}}
    with pytest.raises(ToolSchemaError, match="must be a list"):  # as before: not a list
        Tool.from_any(as_tuple)
    # 1 and 1.0 print differently and build tools with different defaults
    one = Tool.from_any({"name": "memo_num", "parameters": {"properties": {"n": {"default": 1}}}})
    other = {"name": "memo_num", "parameters": {"properties": {"n": {"default": 1.0}}}}
    assert type(Tool.from_any(other).parameters["properties"]["n"]["default"]) is float
    assert type(one.parameters["properties"]["n"]["default"]) is int


def test_a_memoised_tool_shares_no_list_with_the_callers_definition() -> None:
    enum = ["a", "b"]
    definition = {
        "name": "memo_alias",
        "parameters": {"properties": {"x": {"type": "string", "enum": enum}}},
    }
    tool = Tool.from_any(definition)
    enum.append("c")  # the caller reuses its dict
    assert tool.parameters["properties"]["x"]["enum"] == ["a", "b"]
    assert Tool.from_any(definition).parameters["properties"]["x"]["enum"] == ["a", "b", "c"]


def test_a_definition_that_warns_warns_every_time() -> None:
    from gemlib.errors import ToolSchemaWarning

    definition = {"name": "memo_warn", "parameters": {"properties": {"x": {"type": ""}}}}
    for _ in range(2):
        with pytest.warns(ToolSchemaWarning, match="empty type"):
            Tool.from_any(definition)


@pytest.mark.parametrize("form", ["mapping", "text"])
def test_the_memo_keeps_no_definition_larger_than_its_key_limit(form: str) -> None:
    import gemlib.model.tool as tool_module

    name = f"memo_big_{form}"
    big = {"name": name, "description": "d" * 200_000, "parameters": PARAMS}
    definition = big if form == "mapping" else json.dumps(big)
    first = Tool.from_any(definition)
    assert Tool.from_any(definition) is not first  # normalised again: nothing kept
    held = [entry for entry in tool_module._TOOLS.values() if entry[1].name == name]
    assert held == []


def test_the_memo_keeps_no_copy_of_a_plain_mapping() -> None:
    import gemlib.model.tool as tool_module

    tool = Tool.from_any({"name": "memo_copy", "description": "d", "parameters": PARAMS})
    held = [entry for entry in tool_module._TOOLS.values() if entry[1] is tool]
    assert held == [(None, tool)]  # its key is its exact form: no parsed copy is needed
