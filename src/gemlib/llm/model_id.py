"""Model strings, parsed once: the provider prefix and the name the server knows.

gemlib names a model as litellm does, ``provider/name``: ``openai/gpt-4.1-mini``,
``hosted_vllm/Qwen/Qwen3-8B`` (the name keeps its own slashes),
``local//models/synth.gguf`` (a path as the name). A string without a slash
(``gpt-4.1-mini``) has no prefix: litellm guesses its provider. Every place that
reads a prefix (choosing a backend, the name sent to a server, prices, token
counting, batch APIs) asks :meth:`ModelId.parse` instead of slicing the string.
"""

from __future__ import annotations

import functools
from collections.abc import Container

import attrs

__all__ = ["ModelId"]


@attrs.frozen
class ModelId:
    """A model string split at its first slash: ``provider`` (``""`` if none) and ``name``.

    ``str(model_id)`` gives the string back unchanged.
    """

    provider: str
    name: str

    @staticmethod
    def parse(model: str) -> ModelId:
        """Split ``model``; a string with no slash, or starting with one, has no prefix."""
        return _parse(model)

    def __str__(self) -> str:
        return f"{self.provider}/{self.name}" if self.provider else self.name

    @property
    def leaf(self) -> str:
        """The last part of the name (``Qwen3-8B`` of ``hosted_vllm/Qwen/Qwen3-8B``): the
        model family, for rules such as which tokenizer counts its tokens."""
        return self.name.rsplit("/", 1)[-1]

    def served_as(self, providers: Container[str]) -> str:
        """The name to send to a server that speaks for ``providers``: without the prefix
        when it is one of them, else the whole string (a name such as
        ``meta-llama/Llama-3-8B`` forced onto such a server is sent as written)."""
        return self.name if self.provider in providers else str(self)


@functools.lru_cache(maxsize=1024)
def _parse(model: str) -> ModelId:
    # Cached: the direct client parses the model of every request it sends.
    provider, slash, name = model.partition("/")
    if not slash or not provider:
        return ModelId("", model)
    return ModelId(provider, name)
