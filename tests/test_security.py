"""What models and corpora produce is data: never executed, never a file name, never a key leak."""

from __future__ import annotations

import json
from pathlib import Path

from fake_openai import FakeOpenAI, Reply
from gemlib import Pipeline, validate
from gemlib.gem.extraction import WorkflowExtractor
from gemlib.gem.generation import TrajectoryGenerator
from gemlib.llm import LLM

HOSTILE_TOOLS = """<workflow><description>x</description>
<execution_graph>(../../etc/passwd)</execution_graph>
<actions>[{"name": "../../etc/passwd", "arguments": {"path": "/etc/shadow"}}]</actions>
<tools>[{"name": "../../etc/passwd", "description": "{{ 7*7 }}",
 "parameters": {"type": "object", "properties": {"cmd": {"type": "string",
 "default": "__import__('os').system('touch /tmp/gemlib-pwned')"}}}}]</tools></workflow>"""

PAYLOAD = "__import__('os').system('touch /tmp/gemlib-pwned')"
HOSTILE_CONVERSATION = (
    '<user>run it</user><assistant><func>{"name": "../../etc/passwd", '
    f'"arguments": {{"cmd": "{PAYLOAD}"}}}}</func></assistant>'
    '<tool>{"ok": true}</tool><assistant>done</assistant>'
)


def test_model_output_stays_data(tmp_path: Path) -> None:
    marker = Path("/tmp/gemlib-pwned")
    marker.unlink(missing_ok=True)

    def reply(body: dict[str, object], n: int) -> Reply:
        prompt = body["messages"][0]["content"]  # type: ignore[index]
        return Reply(HOSTILE_TOOLS if prompt.startswith("The text below") else HOSTILE_CONVERSATION)

    with FakeOpenAI(reply) as server:
        llm = LLM("openai/x", api_base=server.url, api_key="k", cache=tmp_path / "cache.sqlite")
        run = tmp_path / "run"
        result = Pipeline([WorkflowExtractor(llm), TrajectoryGenerator(llm)]).run(
            ["Open the app and press start."], run_dir=run
        )
    (trajectory,) = result.trajectories
    assert trajectory.tools[0].name == "../../etc/passwd"
    assert trajectory.tool_calls[0].arguments["cmd"].startswith("__import__")
    assert not marker.exists(), "nothing a model wrote was executed"
    assert sorted(p.name for p in run.iterdir()) == [
        ".lock",
        "manifest.json",
        "outputs.jsonl",
        "progress.sqlite",
        "progress.sqlite-shm",
        "progress.sqlite-wal",
        "rejections.jsonl",
    ], "file names never come from model output"
    assert not (tmp_path / "etc").exists()
    assert "{{ 7*7 }}" in json.dumps(trajectory.tools[0].description)
    problems = validate(trajectory).rules()
    assert "tool_definition" in problems  # the validators then reject such a tool name
