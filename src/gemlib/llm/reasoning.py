"""Reasoning (thinking) separated from the answer, once, for the whole LLM layer.

Reasoning models hand their thinking back in one of several forms:

- a separate field of the reply message, ``reasoning_content`` (vLLM with a
  ``--reasoning-parser``, DeepSeek, litellm) or ``reasoning`` (newer vLLM,
  OpenRouter); the backends read it into :attr:`ChatReply.reasoning`;
- a ``<think>...</think>`` (or ``<thinking>``, ``<reasoning>``) block at the
  start of the text;
- only the end of such a block: the opening ``<think>`` was part of the prompt
  template (Qwen3 served without a reasoning parser), so the text is the
  reasoning, ``</think>`` on a line of its own, then the answer.

:func:`separate_reasoning` moves every form into ``reasoning`` so parsers see
the answer alone; :class:`gemlib.llm.LLM` applies it to every reply it returns.
Only reasoning *before* the answer is taken: tags later in the text belong to
the answer (the GEM format's per-turn ``<think>`` inside ``<assistant>``).
"""

from __future__ import annotations

import re

import attrs

from gemlib.llm.protocol import ChatReply

__all__ = ["separate_reasoning", "split_reasoning"]

_NAMES = "think|thinking|reasoning"
_OPENING = re.compile(rf"\s*<({_NAMES})>", re.IGNORECASE)
_CLOSING_LINE = re.compile(rf"\n[ \t]*</({_NAMES})>[ \t]*(?=\n|$)", re.IGNORECASE)
_FIRST_CLOSING_LINE = re.compile(rf"[ \t]*</({_NAMES})>[ \t]*(?=\n|$)", re.IGNORECASE)
"""A closing tag alone on its line (but for blanks): searched from the newline before it,
which the engine finds as fast as a string search does (from the tag's ``</``, each tag
of a reply in tags was tried, at three times the cost); the first line is matched apart."""


def _closing_line(text: str) -> tuple[str, int, int] | None:
    """The first closing tag on a line of its own: its name, where its line starts (the
    newline before it, or 0) and where the line ends. Linear. As reasoning models end a
    block whose opening tag the prompt template wrote; one among other text is left to
    the answer."""
    found = _FIRST_CLOSING_LINE.match(text) or _CLOSING_LINE.search(text)
    return None if found is None else (found.group(1), found.start(), found.end())


def split_reasoning(text: str) -> tuple[str, str]:
    """``(reasoning, answer)`` of a reply's text; ``("", text)`` when it holds no reasoning.

    Leading blocks are taken in turn; one never closed holds the rest of the
    text (the reply stopped while thinking, so there is no answer). Without a
    leading block, text before a ``</think>`` on a line of its own that no
    ``<think>`` opened is reasoning whose opening tag was in the prompt. Linear
    in the text's length.
    """
    thoughts: list[str] = []
    pos = 0
    while (opening := _OPENING.match(text, pos)) is not None:
        name = opening.group(1).lower()
        closing = re.compile(rf"</{name}>", re.IGNORECASE).search(text, opening.end())
        if closing is None:
            thoughts.append(text[opening.end() :])
            return _joined(thoughts), ""
        thoughts.append(text[opening.end() : closing.start()])
        pos = closing.end()
    if not thoughts and (line := _closing_line(text)) is not None:
        name, start, end = line
        if re.compile(rf"<{name}>", re.IGNORECASE).search(text, 0, start) is None:
            thoughts.append(text[:start])
            pos = end
    if not thoughts:
        return "", text
    return _joined(thoughts), text[pos:]


def _joined(parts: list[str]) -> str:
    return "\n\n".join(p.strip() for p in parts if p.strip())


def separate_reasoning(reply: ChatReply) -> ChatReply:
    """``reply`` with any reasoning in its text moved to ``reasoning`` and counted.

    The answer of a reply with reasoning starts at its first non-blank character.

    Reasoning tokens the provider reported are kept; otherwise they are
    estimated as the reasoning's share of the completion tokens, by length.
    """
    found, answer = split_reasoning(reply.text)
    if not found and not reply.reasoning:  # most replies: nothing to join
        return reply
    reasoning = _joined([reply.reasoning, found])
    if not reasoning:
        return reply
    answer = answer.lstrip()  # the blank line between reasoning and answer, in every form
    tokens = reply.reasoning_tokens
    if not tokens and reply.completion_tokens:
        share = len(reasoning) / (len(reasoning) + len(answer))
        tokens = max(1, round(reply.completion_tokens * share))
    return attrs.evolve(reply, text=answer, reasoning=reasoning, reasoning_tokens=tokens)
