"""Backends, one per module, and the registry that picks one by the model's prefix.

- ``hosted_vllm/...``, and ``openai/...`` with an ``api_base``:
  :class:`~gemlib.llm.backends.openai_compat.OpenAICompatBackend`;
- ``local/...``: :class:`~gemlib.llm.backends.local.LocalBackend` (llama.cpp, in process);
- a plug-in's prefix: the plug-in's backend (entry-point group ``gemlib.backends``);
- anything else (``openai/...`` without ``api_base`` included):
  :class:`~gemlib.llm.backends.litellm.LiteLLMBackend`.

Another package serves a prefix by naming a :class:`~gemlib.llm.protocol.BackendType`
in its ``pyproject.toml``::

    [project.entry-points."gemlib.backends"]
    example = "my_package.backend:ExampleBackend"

after which ``LLM("example/any-name")`` sends its requests through it, with
gemlib's limits, retries, cache and accounting around it. gemlib's own prefixes
win over a plug-in of the same name.
"""

from __future__ import annotations

from typing import ClassVar

from gemlib.errors import ModelConfigError
from gemlib.llm.backends.litellm import LiteLLMBackend
from gemlib.llm.backends.openai_compat import OpenAICompatBackend
from gemlib.llm.backends.registry import BACKENDS
from gemlib.llm.model_id import ModelId
from gemlib.llm.protocol import Backend, BackendOptions, BackendType

__all__ = [
    "BACKENDS",
    "TRANSPORTS",
    "LiteLLMBackend",
    "OpenAICompatBackend",
    "backend_type",
    "default_timeout",
]


class _OpenAI:
    """``openai/...``: a self-hosted server (with ``api_base``) through the direct client,
    OpenAI's own API through litellm."""

    default_concurrency: ClassVar[int] = 16

    @classmethod
    def build(cls, options: BackendOptions) -> Backend:
        if options.api_base is None:
            return LiteLLMBackend.build(options)
        return OpenAICompatBackend.build(options)


BACKENDS.register("openai", _OpenAI)
BACKENDS.register("hosted_vllm", OpenAICompatBackend)
BACKENDS.register_lazy("local", "gemlib.llm.backends.local:LocalBackend")

TRANSPORTS: dict[str, BackendType] = {
    "litellm": LiteLLMBackend,
    "openai-compatible": OpenAICompatBackend,
}
"""The backends ``LLM(transport=...)`` forces, whatever the prefix."""


DEFAULT_TIMEOUT = 120.0
"""Seconds one attempt may take, for a backend that names no ``default_timeout``."""


def default_timeout(backend: BackendType) -> float:
    """The backend's ``default_timeout`` class attribute (optional: a plug-in may leave it
    out and get :data:`DEFAULT_TIMEOUT`)."""
    value = getattr(backend, "default_timeout", DEFAULT_TIMEOUT)
    return float(value)


def backend_type(model: str, transport: str = "auto") -> BackendType:
    """What serves ``model``: the forced ``transport``, else the backend registered for its
    prefix, else litellm (which knows most hosted providers, and says so when it does not)."""
    if transport != "auto":
        return TRANSPORTS[transport]
    provider = ModelId.parse(model).provider
    if not provider:  # no prefix: not a plug-in's, even one with an empty entry-point name
        return LiteLLMBackend
    try:
        found = BACKENDS.get(provider)  # plug-ins read only if not built in
    except ModelConfigError:
        return LiteLLMBackend
    concurrency = getattr(found, "default_concurrency", None)
    if not callable(getattr(found, "build", None)) or not isinstance(concurrency, int):
        raise ModelConfigError(
            f"the backend of {provider}/ models, {found!r}, is no gemlib backend type: it "
            "needs a build(options) classmethod and an int default_concurrency (see "
            "BackendType in gemlib.llm)"
        )
    return found
