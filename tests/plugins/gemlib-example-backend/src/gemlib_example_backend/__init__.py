"""An example backend: serves ``example/<name>`` models without any server.

Its replies are the last user message, upper-cased and prefixed with the
served name (``example/shout`` answers ``hello`` with ``shout: HELLO``), so a
test can see which backend answered. A message holding ``fail-once`` is
answered with a transient error the first time, which gemlib retries.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from gemlib.errors import TransientModelError
from gemlib.llm import BackendOptions, ChatReply, ChatRequest, ModelId

__all__ = ["ExampleBackend"]


@attrs.define
class ExampleBackend:
    """Answers in process; at most ``default_concurrency`` requests in flight by default."""

    default_concurrency: ClassVar[int] = 3

    name: str
    failed: set[str] = attrs.field(factory=set)
    closed: int = 0

    @classmethod
    def build(cls, options: BackendOptions) -> ExampleBackend:
        """One backend per ``LLM``, named by the model's served name."""
        return cls(ModelId.parse(options.model).name)

    async def acomplete(self, request: ChatRequest) -> ChatReply:
        """The last user message, shouted back."""
        text = str(request.messages[-1].get("content") or "")
        if "fail-once" in text and text not in self.failed:
            self.failed.add(text)
            raise TransientModelError("the example backend fails once", model=request.model)
        answer = f"{self.name}: {text.upper()}"
        return ChatReply(
            text=answer,
            prompt_tokens=len(text.split()),
            completion_tokens=len(answer.split()),
            model=request.model,
        )

    async def aclose(self) -> None:
        """Count the closes (a run closes its backends when it ends)."""
        self.closed += 1
