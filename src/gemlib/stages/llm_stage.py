"""`LLMStage`: prompt -> model -> parse -> repair, for stages that ask a model.

Subclass and write two methods::

    class Summarise(LLMStage):
        def prompt(self, doc: Document) -> list[dict[str, str]]:
            return [{"role": "user", "content": f"Summarise in one line:\\n{doc.text}"}]

        def parse(self, text: str, doc: Document) -> Document:
            if not text.strip():
                raise ParseError("the summary is empty")
            return doc.model_copy(update={"meta": {**doc.meta, "summary": text.strip()}})

The base class sends the prompt through the stage's :class:`~gemlib.llm.LLM`
(limits, retries, cache, accounting), sends parse errors back to the model up
to ``max_repairs`` times, and turns the item's own failures into rejections:
``truncated_reply`` and ``unparseable_reply`` (with the raw reply kept), and
``prompt_too_long`` when the prompt does not fit the model's context. A model
that could not answer (outage, retries spent, any other
:class:`~gemlib.errors.ModelError`) is not the item's fault: the error leaves
``process``, and the runner leaves the item for the next run. Bad credentials,
an unknown model or an unreachable server stop the run
(:class:`~gemlib.errors.FatalError`), as does a template the sandbox refuses.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs
from pydantic import BaseModel

from gemlib.errors import PromptTooLong, ReplyError
from gemlib.llm.client import LLM, as_llm
from gemlib.llm.structured import Answer, ask
from gemlib.llm.usage import ModelUsage
from gemlib.model import Provenance, Rejection, StageRecord
from gemlib.model._base import _Model, copied
from gemlib.pipeline.stage import Stage, output_types_of, signature_types
from gemlib.prompts import load_prompt

__all__ = ["LLMStage"]


@attrs.define
class LLMStage(Stage):
    """A stage that asks a model; subclasses write :meth:`prompt` and :meth:`parse`.

    ``model``: a litellm model string or an :class:`~gemlib.llm.LLM` (share one
    ``LLM`` between stages to share its limits). ``max_repairs``: how many times
    a parse error is sent back to the model. ``sample``: which sample of the
    prompt to ask for (a different one bypasses the cache).
    """

    model: LLM = attrs.field(converter=as_llm)
    max_repairs: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    sample: int = 0
    template: str | Path | None = None
    """Another prompt template for this stage: a file path, or the template text."""
    params: dict[str, Any] = attrs.field(factory=dict)
    """Request settings for this stage only, over the model's own ``params``: for
    example ``{"reasoning_effort": "low"}``, or ``{"chat_template_kwargs":
    {"enable_thinking": False}}`` for a vLLM-served Qwen3 (see the models page)."""

    prompt_name: ClassVar[str | None] = None
    """The packaged template this stage renders (``None``: :meth:`prompt` builds messages)."""

    def prompt(self, item: Any) -> Sequence[Mapping[str, Any]]:
        """The chat messages to send for ``item``."""
        raise NotImplementedError(f"{type(self).__name__} must implement prompt()")

    def parse(self, text: str, item: Any) -> Any:
        """Turn the reply text into the stage's output; raise ``ParseError`` to ask for a repair."""
        raise NotImplementedError(f"{type(self).__name__} must implement parse()")

    def render(self, **variables: Any) -> list[dict[str, str]]:
        """The stage's template rendered in the sandbox, as one user message."""
        if self.prompt_name is None:
            raise NotImplementedError(f"{type(self).__name__} has no prompt template")
        text = load_prompt(self.prompt_name, self.template).render(**variables)
        return [{"role": "user", "content": text}]

    def prompt_hash(self) -> str | None:
        """A hash of the prompt template, recorded in provenance (``None``: not templated)."""
        if self.prompt_name is None:
            return None
        return load_prompt(self.prompt_name, self.template).hash

    def describe(self) -> dict[str, Any]:
        """Name, version, config and the prompt's hash (a changed prompt is a changed stage)."""
        return {**super().describe(), "prompt_hash": self.prompt_hash()}

    @property
    def input_type(self) -> Any:
        """What :meth:`prompt` takes."""
        return signature_types(self.prompt)[0]

    @property
    def output_types(self) -> tuple[Any, ...]:
        """What :meth:`parse` returns."""
        return output_types_of(typing.get_type_hints(self.parse).get("return", Any))

    async def process(self, item: Any) -> Any:
        """Ask the model about ``item``; return the parsed output or a rejection.

        Raises :class:`~gemlib.errors.ModelError` when the model could not answer:
        that is not the item's fault, and the runner leaves the item for the next run.
        """
        try:
            answer: Answer[Any] = await ask(
                self.model,
                self.prompt(item),
                # Held across the request: one partial (and its arguments) where a
                # closure is four objects for the garbage collector to traverse.
                functools.partial(_parse, self, item),
                stage=self.name,
                max_repairs=self.max_repairs,
                sample=self.sample,
                **self.params,
            )
        except ReplyError as exc:
            return Rejection(rule=exc.rule, reason=exc.reason, raw=exc.raw)
        except PromptTooLong as exc:
            return Rejection(rule="prompt_too_long", reason=str(exc))
        record = StageRecord(
            stage=self.name,
            version=self.version,
            model=self.model.model,
            prompt_hash=self.prompt_hash(),
            usage=answer.usage,
            reasoning=answer.reasoning,
        )
        return _with_record(answer.value, record)

    def usage(self) -> dict[str, ModelUsage]:
        """This stage's usage of its model."""
        return {self.model.model: self.model.usage_for(self.name)}

    def models(self) -> tuple[LLM, ...]:
        """The stage's model."""
        return (self.model,)

    async def aclose(self) -> None:
        """Close the model's connections for this run's event loop."""
        await self.model.aclose()


def _parse(stage: LLMStage, item: Any, text: str) -> Any:
    """``stage.parse(text, item)``: the reply parser :meth:`LLMStage.process` hands to ``ask``."""
    return stage.parse(text, item)


@functools.cache
def _holds_provenance(cls: type[BaseModel]) -> bool:
    """Whether ``cls`` has a ``provenance`` field (a class property pydantic builds on
    each read)."""
    return "provenance" in cls.model_fields


def _with_record(value: Any, record: StageRecord) -> Any:
    """Append ``record`` to the provenance of each produced item that can hold one."""
    if isinstance(value, list):
        return [_with_record(v, record) for v in value]
    if not isinstance(value, BaseModel) or not _holds_provenance(type(value)):
        return value
    provenance = getattr(value, "provenance", None) or Provenance(
        # An imported trajectory has no source document: it is its own origin.
        document_id=getattr(value, "document_id", None) or value.id,  # type: ignore[attr-defined]
        segment_index=getattr(value, "segment_index", None),
    )
    if isinstance(value, _Model):  # gemlib's own records, copied the quick way
        return copied(value, provenance=provenance.add(record))
    return value.model_copy(update={"provenance": provenance.add(record)})
