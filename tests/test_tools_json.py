"""tools_json: the tools as prompts show them, memoised per Tool without keeping Tools alive."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref

from gemlib.gem.generation import tools_json
from gemlib.model import Tool


def _tools() -> list[Tool]:
    return [
        Tool(
            name="get_order",
            description="Read an order ☕",
            parameters={
                "type": "object",
                "properties": {"id": {"type": "integer"}},
                "required": ["id"],
            },
        ),
        Tool(
            name="ship", output_schema={"type": "object", "properties": {"ok": {"type": "boolean"}}}
        ),
    ]


def _plain(tools: list[Tool]) -> str:
    return "[\n" + ",\n".join(json.dumps(t.to_mcp(), ensure_ascii=False) for t in tools) + "\n]"


def test_each_tool_is_one_line_of_mcp_json_every_time() -> None:
    tools = _tools()
    assert tools_json(tools) == _plain(tools)
    assert tools_json(tools) == _plain(tools)  # the memoised lines read the same
    assert tools_json(tools[::-1]) == _plain(tools[::-1])
    assert tools_json([]) == "[]"


def test_the_memo_keeps_no_tool_alive() -> None:
    tools = _tools()
    tools_json(tools)
    gone = [weakref.ref(t) for t in tools]
    del tools
    gc.collect()
    assert all(ref() is None for ref in gone)
    fresh = _tools()  # new objects (IDs may be reused): their own lines
    fresh[0] = fresh[0].model_copy(update={"description": "another"})
    assert '"description": "another"' in tools_json(fresh)


def test_tools_dying_after_the_module_is_torn_down_print_nothing() -> None:
    # At interpreter exit module globals are set to None before the last objects die: a
    # Tool freed then must not make its memo entry's callback fail ("Exception ignored").
    code = (
        "import gemlib.gem.generation as g\n"
        "from gemlib.model import Tool\n"
        "tool = Tool(name='late')\n"
        "g.tools_json([tool])\n"
        "vars(g)['_LINES'] = None\n"
        "del tool\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stderr == ""
