"""A small run directory for the viewer and report tests: kept, masked, flagged, rejected."""

from __future__ import annotations

from pathlib import Path

from gemlib import Document, Message, Pipeline, Rejection, Stage, Tool, ToolCall, Trajectory
from gemlib.stages.validators import RuleValidator

NEEDLE = "zanzibar-umbrella-42"
"""A string in exactly one kept trajectory's user turn."""
REASONING = "The lookup says the code is open, so I can tell the user it is done."
"""The reasoning behind the closing turn of the trajectory with :data:`NEEDLE`."""
HOSTILE = "</script><script>window.pwned=1</script><img src=x onerror=window.pwned=2>"


class Writer(Stage):
    """Turns a text into a trajectory: calls ``lookup`` once per 'call' word in it."""

    name = "writer"

    def process(self, doc: Document) -> Trajectory | Rejection:
        if doc.text.startswith("short"):
            return Rejection(rule="too_short", reason=f"only {len(doc.text)} characters")
        calls = max(1, doc.text.count("call"))
        messages = [
            Message(role="system", content="You are the lookup desk."),
            Message(role="user", content=doc.text),
        ]
        for n in range(calls):
            code = "K-0" if "bad" not in doc.text else "K-999"
            messages += [
                Message(
                    role="assistant",
                    tool_calls=(ToolCall(id=f"c{n}", name="lookup", arguments={"code": code}),),
                    train="masked" not in doc.text or n > 0,
                ),
                Message(
                    role="tool",
                    tool_call_id=f"c{n}",
                    name="lookup",
                    content='{"code": "K-0", "status": "open"}',
                ),
            ]
        thought = REASONING if NEEDLE in doc.text else ""
        messages.append(Message(role="assistant", content="Done.", reasoning=thought))
        domain = "travel" if "trip" in doc.text else "retail"
        return Trajectory(
            messages=tuple(messages),
            tools=(
                Tool(
                    name="lookup",
                    description="Look a code up.",
                    parameters={
                        "type": "object",
                        "properties": {"code": {"type": "string"}},
                    },
                ),
            ),
            document=doc,
            labels={"domains": [domain], "task": f"{domain}_desk"},
        )


TEXTS = [
    *(f"trip {i}: call the desk{' call' * (i % 4)} for code K-0" for i in range(8)),
    *(f"order {i}: call{' call' * (i % 3)} K-0 please" for i in range(8)),
    f"order with {NEEDLE}: call for K-0",
    "masked order: call call for K-0 and K-1",
    f"order {HOSTILE}: call for K-0",
    "bad order: call for the code",
    "short",
    "short too",
]


def make_run(tmp_path: Path) -> Path:
    """A run directory: writer then rule_validator over :data:`TEXTS`."""
    run = tmp_path / "run"
    Pipeline([Writer(), RuleValidator()]).run(TEXTS, run_dir=run, progress_interval=None)
    return run
