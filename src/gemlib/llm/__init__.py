"""Models: the protocol, the backends (:mod:`gemlib.llm.backends`), limits, the request cache,
structured replies."""

from gemlib.llm.cache import RequestCache
from gemlib.llm.client import LLM, as_llm
from gemlib.llm.limits import Limits
from gemlib.llm.model_id import ModelId
from gemlib.llm.protocol import (
    Backend,
    BackendOptions,
    BackendType,
    ChatReply,
    ChatRequest,
    ScriptedBackend,
)
from gemlib.llm.structured import ask, json_reply

__all__ = [
    "LLM",
    "Backend",
    "BackendOptions",
    "BackendType",
    "ChatReply",
    "ChatRequest",
    "Limits",
    "ModelId",
    "RequestCache",
    "ScriptedBackend",
    "as_llm",
    "ask",
    "json_reply",
]
