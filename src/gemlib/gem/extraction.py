"""`WorkflowExtractor`: one segment in, one `Workflow` per workflow the model finds.

Each workflow's tools go through :meth:`gemlib.Tool.from_any` (normalised and
checked against the JSON Schema meta-schema). A workflow is rejected, while
its siblings go on, when a tool cannot be normalised (``invalid_tool``), two
tools share a name (``duplicate_tool``), it has no tools (``no_tools``), or its
execution graph or example actions name a tool it does not define
(``unknown_tool_in_graph``, ``unknown_tool_in_actions``).
"""

from __future__ import annotations

from typing import Any

import attrs

from gemlib.errors import ToolSchemaError
from gemlib.formats.gem_tags import RawWorkflow, graph_tool_names, parse_workflows
from gemlib.model import Document, Provenance, Rejection, Tool, ToolCall, Workflow
from gemlib.model._base import built_valid, copied
from gemlib.stages.llm_stage import LLMStage

__all__ = ["WorkflowExtractor"]


def _check(raw: RawWorkflow, index: int) -> tuple[tuple[Tool, ...], Rejection | None]:
    where = f"workflow {index} ({raw.description[:60]!r})"
    try:
        tools = tuple(Tool.from_any(t) for t in raw.tools)
    except ToolSchemaError as exc:
        return (), Rejection(rule="invalid_tool", reason=f"{where}: {exc}")
    if not tools:
        return (), Rejection(rule="no_tools", reason=f"{where} defines no tools")
    names = [t.name for t in tools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        return (), Rejection(rule="duplicate_tool", reason=f"{where} defines {duplicates} twice")
    unknown = [n for n in graph_tool_names(raw.execution_graph) if n not in names]
    if unknown:
        return (), Rejection(
            rule="unknown_tool_in_graph",
            reason=f"{where}: the execution graph names {unknown}, not among its tools {names}",
        )
    called = [a.get("name") for a in raw.actions if a.get("name") not in names]
    if called:
        return (), Rejection(
            rule="unknown_tool_in_actions",
            reason=f"{where}: example actions call {called}, not among its tools {names}",
        )
    return tools, None


@attrs.define
class WorkflowExtractor(LLMStage):
    """Extract workflows and their tools from a segment (fan-out: one item per workflow)."""

    prompt_name = "extraction"

    def prompt(self, doc: Document) -> list[dict[str, str]]:
        """The extraction prompt for one segment."""
        return self.render(text=doc.text)

    def parse(self, text: str, doc: Document) -> list[Workflow | Rejection]:
        """One :class:`Workflow` or :class:`Rejection` per ``<workflow>`` block."""
        results: list[Workflow | Rejection] = []
        base = doc.provenance or Provenance(
            document_id=doc.document_id, segment_index=doc.segment_index
        )
        for index, raw in enumerate(parse_workflows(text)):
            workflow_id = f"{doc.id}/w{index}"
            tools, rejection = _check(raw, index)
            if rejection is not None:
                results.append(rejection.model_copy(update={"item_id": workflow_id}))
                continue
            actions = tuple(
                ToolCall(name=a["name"], arguments=a.get("arguments") or {}) for a in raw.actions
            )
            fields = {
                "id": workflow_id,
                "description": raw.description,
                "steps": raw.steps,
                "execution_graph": raw.execution_graph,
                "actions": actions,
                "tools": tools,
                "document": doc,
                "provenance": copied(base, workflow_index=index),
            }
            results.append(_workflow(fields, doc.meta.get("labels", {})))
        return results


def _workflow(fields: dict[str, Any], labels: Any) -> Workflow:
    """``Workflow(**fields, labels=labels)``: built without validating when every part is
    checked already (the reply's strings, validated calls and tools, the document and its
    provenance) and the labels are a dict with string keys (copied, as validating copies
    them); validated otherwise, for pydantic's conversions or error."""
    if (
        isinstance(fields["document"], Document)
        and type(labels) is dict
        and all(type(key) is str for key in labels)
    ):
        return built_valid(Workflow, **fields, labels=dict(labels))
    return Workflow(**fields, labels=labels)
