"""Masked turns in formats that cannot flag them: cut the conversation, or drop it.

A masked assistant turn (:attr:`gemlib.Message.train` is ``False``) stays in
the conversation as context but is not trained on. OpenAI JSONL, Parquet and
native outputs carry the flag per message; ShareGPT (LLaMA-Factory), Hermes
text and the GEM tag format have no place for it, so a trajectory with masked
turns is exported there in one of two ways, chosen by ``masked=``:

- ``"cut"`` (the default): keep the conversation up to the last assistant
  answer (a turn without calls) before the first masked turn, so that every
  exported assistant turn is one that may be trained on and the conversation
  still ends on an answer; a trajectory whose first answer comes after a masked
  turn is dropped;
- ``"drop"``: leave out every trajectory with a masked turn.
"""

from __future__ import annotations

from typing import Literal

from gemlib.model import Trajectory

__all__ = ["MASK_FALLBACKS", "MaskFallback", "without_masks"]

MaskFallback = Literal["cut", "drop"]
MASK_FALLBACKS: tuple[MaskFallback, ...] = ("cut", "drop")


def without_masks(trajectory: Trajectory, fallback: MaskFallback = "cut") -> Trajectory | None:
    """``trajectory`` with no masked turn: unchanged, cut (``"cut"``), or ``None`` (dropped)."""
    messages = trajectory.messages
    first = next((i for i, m in enumerate(messages) if not m.train), None)
    if first is None:
        return trajectory
    if fallback == "drop":
        return None
    end = next(
        (
            i
            for i in range(first - 1, -1, -1)
            if messages[i].role == "assistant" and not messages[i].tool_calls
        ),
        None,
    )
    if end is None:
        return None
    return trajectory.model_copy(update={"messages": messages[: end + 1]})
