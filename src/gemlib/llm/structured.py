"""Structured replies: parse a model's reply, and send parse errors back for repair.

:func:`ask` sends a conversation, parses the reply with a function the stage
gives, and on a parse error shows the model its reply and the precise error,
at most ``max_repairs`` times. A reply cut off by the token limit is a failure
at once (never parsed as if whole). Failures raise
:class:`~gemlib.errors.ReplyError` with a rule name and the raw reply, which an
LLM stage turns into a rejection.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import attrs
from pydantic import BaseModel, ValidationError

from gemlib._turns import cpu_turn
from gemlib.errors import ParseError, ReplyError
from gemlib.llm.client import LLM
from gemlib.llm.protocol import ChatReply

__all__ = ["Answer", "ParseError", "ask", "json_reply"]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

NO_ANSWER = "(no answer)"
"""What a repair request shows as the previous reply when it held reasoning alone."""
REPAIR_PROMPT = (
    "Your previous reply could not be used: {error}\n"
    "Reply again with the complete answer in the required format, and nothing else."
)


@attrs.frozen
class Answer(Generic[T]):
    """A parsed reply and every raw reply it took (the first, then the repairs)."""

    value: T
    replies: tuple[ChatReply, ...]

    @property
    def usage(self) -> dict[str, float]:
        """Tokens and cost over all the replies, for provenance records."""
        prompt = completion = reasoning = hits = 0
        cost = 0.0
        for r in self.replies:  # one pass: this runs once per model request
            prompt += r.prompt_tokens
            completion += r.completion_tokens
            reasoning += r.reasoning_tokens
            cost += r.cost
            hits += r.cached
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "reasoning_tokens": reasoning,
            "cost": cost,
            "requests": len(self.replies),
            "cache_hits": hits,
        }

    @property
    def reasoning(self) -> str | None:
        """The reasoning behind the reply that was used, if the model wrote any."""
        return self.replies[-1].reasoning or None


async def ask(
    llm: LLM,
    messages: Sequence[Mapping[str, Any]],
    parse: Callable[[str], T],
    *,
    stage: str = "",
    max_repairs: int = 2,
    sample: int = 0,
    **params: Any,
) -> Answer[T]:
    """Send ``messages`` and return the reply parsed by ``parse``.

    ``parse`` raises :class:`ParseError` (or ``ValueError`` / pydantic's
    ``ValidationError``) with a message precise enough for the model to fix its
    reply. Raises :class:`ReplyError` with rule ``truncated_reply`` or
    ``unparseable_reply`` when no usable reply comes.
    """
    # Tuples: the request keeps the conversation as it is (no copy), and no list of
    # replies is held across the first request's wait.
    conversation = tuple([dict(m) for m in messages])
    replies: tuple[ChatReply, ...] = ()
    for attempt in range(max_repairs + 1):
        reply = await llm.acomplete(conversation, stage=stage, sample=sample, **params)
        replies += (reply,)
        if reply.truncated:
            raise ReplyError(
                "truncated_reply",
                f"the reply was cut off at the token limit ({reply.completion_tokens} tokens); "
                "raise max_tokens",
                reply.text,
            )
        await cpu_turn()  # parsing waits for the requests and reads that are ready
        try:
            if reply.reasoning and not reply.text.strip():
                raise ParseError("the reply holds reasoning but no answer after it")
            return Answer(parse(reply.text), replies)
        except (ValueError, ValidationError) as exc:
            error = _describe(exc)
            if attempt == max_repairs:
                raise ReplyError(
                    "unparseable_reply",
                    f"{error} (still wrong after {max_repairs} repair attempts)",
                    reply.text,
                ) from None
            conversation += (
                # The answer alone (reasoning is never sent back), and never empty:
                # some providers refuse an empty assistant message.
                {"role": "assistant", "content": reply.text or NO_ANSWER},
                {"role": "user", "content": REPAIR_PROMPT.format(error=error)},
            )
    raise AssertionError("unreachable")  # pragma: no cover


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'reply'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc)


_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n(.*?)\n\s*```\s*$", re.DOTALL)


def json_reply(model: type[M]) -> Callable[[str], M]:
    """A parser for replies holding one JSON object validated by the pydantic ``model``.

    Code fences and text around the object are ignored.
    """

    def parse(text: str) -> M:
        fenced = _FENCE.match(text)
        body = fenced.group(1) if fenced else text
        start, end = body.find("{"), body.rfind("}")
        if start < 0 or end < start:
            raise ParseError("the reply holds no JSON object")
        return model.model_validate_json(body[start : end + 1])

    return parse
