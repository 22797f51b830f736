"""Models: the protocol, the litellm backend, limits, the request cache, structured replies."""

from gemlib.llm.cache import RequestCache
from gemlib.llm.client import LLM, as_llm
from gemlib.llm.limits import Limits
from gemlib.llm.protocol import Backend, ChatReply, ChatRequest, ScriptedBackend
from gemlib.llm.structured import ask, json_reply

__all__ = [
    "LLM",
    "Backend",
    "ChatReply",
    "ChatRequest",
    "Limits",
    "RequestCache",
    "ScriptedBackend",
    "as_llm",
    "ask",
    "json_reply",
]
