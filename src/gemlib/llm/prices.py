"""Prices per token, direct and in provider batches, from the price table litellm ships.

The table is read as a file: importing litellm would stall the event loop for
seconds at the first reply (it did: every request in flight then took 1.7 s
instead of 0.1 s). A model is looked up as given (``openai/gpt-4.1-mini``), then
without its provider prefix. Batch prices are the table's ``*_batches``
entries; where it has none, half the direct price for the providers whose
batch APIs are sold at half price (OpenAI, Anthropic, Azure OpenAI, Gemini,
Vertex AI), else the direct price.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

import attrs

from gemlib.llm.model_id import ModelId

__all__ = ["BATCH_DISCOUNT_PROVIDERS", "Prices", "cost", "prices"]

PRICE_TABLE = "model_prices_and_context_window_backup.json"

BATCH_DISCOUNT_PROVIDERS = ("openai", "anthropic", "azure", "gemini", "vertex_ai")
"""Providers whose batch APIs cost half the direct price (used when the table says nothing)."""


@attrs.frozen
class Prices:
    """US dollars per prompt and completion token, sent directly and in a batch.

    ``source`` says where the batch prices came from: ``table``, ``half`` (the
    provider's usual discount), ``direct`` (no discount known), or ``override``.
    """

    prompt: float
    completion: float
    batch_prompt: float
    batch_completion: float
    source: str = "table"

    def cost(self, prompt_tokens: int, completion_tokens: int, *, batch: bool = False) -> float:
        """Dollars for these tokens."""
        if batch:
            return prompt_tokens * self.batch_prompt + completion_tokens * self.batch_completion
        return prompt_tokens * self.prompt + completion_tokens * self.completion


@functools.lru_cache(maxsize=1)
def _price_table() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / PRICE_TABLE
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


@functools.lru_cache(maxsize=256)
def prices(model: str) -> Prices | None:
    """The prices of ``model`` (a litellm string); ``None`` for models the table does not price."""
    table = _price_table()
    model_id = ModelId.parse(model)
    for name in (model, model_id.name):
        entry = table.get(name)
        if isinstance(entry, dict) and "input_cost_per_token" in entry:
            prompt = float(entry["input_cost_per_token"])
            completion = float(entry.get("output_cost_per_token") or 0.0)
            if "input_cost_per_token_batches" in entry:
                return Prices(
                    prompt,
                    completion,
                    float(entry["input_cost_per_token_batches"]),
                    float(entry.get("output_cost_per_token_batches") or completion / 2),
                )
            provider = str(entry.get("litellm_provider") or model_id.provider)
            if provider.startswith(BATCH_DISCOUNT_PROVIDERS):
                return Prices(prompt, completion, prompt / 2, completion / 2, "half")
            return Prices(prompt, completion, prompt, completion, "direct")
    return None


def cost(model: str, prompt_tokens: int, completion_tokens: int, *, batch: bool = False) -> float:
    """Dollars for a reply of ``model`` (0 for models the table does not price)."""
    found = prices(model)
    return found.cost(prompt_tokens, completion_tokens, batch=batch) if found else 0.0
