"""Models: the protocol, the backends (:mod:`gemlib.llm.backends`), limits, the request cache,
structured replies.

Names are imported on first use, so that code needing only the light parts
(:mod:`gemlib.llm.usage`, :mod:`gemlib.llm.protocol`) does not load the client.
"""

from typing import TYPE_CHECKING

from gemlib._lazy import lazy_names as _lazy_names

if TYPE_CHECKING:
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

_WHERE = {
    "RequestCache": "gemlib.llm.cache",
    "LLM": "gemlib.llm.client",
    "as_llm": "gemlib.llm.client",
    "Limits": "gemlib.llm.limits",
    "ModelId": "gemlib.llm.model_id",
    "Backend": "gemlib.llm.protocol",
    "BackendOptions": "gemlib.llm.protocol",
    "BackendType": "gemlib.llm.protocol",
    "ChatReply": "gemlib.llm.protocol",
    "ChatRequest": "gemlib.llm.protocol",
    "ScriptedBackend": "gemlib.llm.protocol",
    "ask": "gemlib.llm.structured",
    "json_reply": "gemlib.llm.structured",
}


__getattr__, __dir__ = _lazy_names(__name__, _WHERE)


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
