"""A direct backend for OpenAI-compatible chat servers (vLLM, llama.cpp, TGI, ...).

litellm spends about 2.5 ms of CPU per call, which caps one process near 400
requests per second however fast the server is. Against a server that speaks
the OpenAI chat API, this backend posts the request through gemlib's own small
HTTP/1.1 client (:mod:`gemlib.llm.backends._http`: pooled keep-alive connections
per event loop, bounded heads and bodies, one deadline per request) and reads
the reply itself, for about a twentieth of that. (aiohttp, used before, spent
about 0.35 ms of Python per request on generality this one request shape never
needs; ``httpx``'s pool was measured slower still at high concurrency.)

Failures map onto the same gemlib errors as the litellm backend:

- no connection (refused, unknown host, unreachable, TLS certificate refused):
  :class:`~gemlib.errors.ConnectFailed` (a run whose model never answered stops
  with :class:`~gemlib.errors.ModelUnreachable`);
- no whole reply within ``timeout``, a reset, a connection closed mid-reply, a
  reply that is not valid HTTP/1.1 or is compressed, an unreadable body:
  :class:`~gemlib.errors.TransientModelError` (retried);
- a body past ``max_reply_bytes`` (sent or only announced):
  :class:`~gemlib.errors.ReplyTooLarge`;
- a status other than 200: :func:`~gemlib.llm.http_status.error_for_status`; a
  redirect is not followed (the key would travel to wherever it points) but
  stops the run saying where the ``api_base`` redirects;
- a key or ``api_base`` holding CR, LF or NUL (header injection):
  :class:`~gemlib.errors.ModelRequestError`, nothing sent.

Every text from the server is scrubbed of the key before it becomes an error.
Proxies are not used (``HTTP_PROXY`` and the like are ignored). Cost comes from
the price table litellm ships, read as a file (0 for a model it does not list,
as for any self-hosted model); litellm itself is never imported here.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring_ascii
from typing import Any, ClassVar

import attrs
from pydantic_core import from_json, to_json

from gemlib._secrets import check_api_base, scrub
from gemlib.errors import ConnectFailed, ModelRequestError, ReplyTooLarge, TransientModelError
from gemlib.llm.backends._http import BodyTooLarge, ConnectError, HttpClient, ProtocolError
from gemlib.llm.http_status import error_for_status, retry_after_seconds
from gemlib.llm.model_id import ModelId
from gemlib.llm.prices import cost
from gemlib.llm.protocol import BackendOptions, ChatReply, ChatRequest

__all__ = ["PROVIDERS", "OpenAICompatBackend", "key_from_environment", "parse_completion"]

PROVIDERS = ("openai", "hosted_vllm")
"""The prefixes this backend strips from a model string: the rest is the name the server knows."""

KEY_HINT = "pass api_key=..., or set OPENAI_API_KEY or HOSTED_VLLM_API_KEY"


def key_from_environment(model: str) -> str | None:
    """The key litellm would read for ``model``: ``HOSTED_VLLM_API_KEY`` for ``hosted_vllm/``,
    else ``OPENAI_API_KEY``."""
    provider = ModelId.parse(model).provider
    return os.environ.get("HOSTED_VLLM_API_KEY" if provider == "hosted_vllm" else "OPENAI_API_KEY")


@attrs.define
class OpenAICompatBackend:
    """Posts to ``{api_base}/chat/completions``; no retries here (the ``LLM`` retries)."""

    default_concurrency: ClassVar[int] = 16

    api_base: str = attrs.field()
    api_key: str | None = attrs.field(default=None, repr=False)
    timeout: float = 120.0
    price: bool = True
    max_reply_bytes: int = 16 * 2**20
    """A longer body is refused (:class:`~gemlib.errors.ReplyTooLarge`) without being read."""
    _client: HttpClient | None = attrs.field(default=None, init=False, repr=False, eq=False)

    @api_base.validator
    def _check(self, _: Any, value: str) -> None:
        check_api_base(value)

    @classmethod
    def build(cls, options: BackendOptions) -> OpenAICompatBackend:
        """The client for ``options.api_base``, with the given key or the environment's."""
        if not options.api_base:
            raise ValueError(f"{options.model}: the openai-compatible transport needs api_base")
        key = options.api_key or key_from_environment(options.model)
        return cls(options.api_base, key, options.timeout, max_reply_bytes=options.max_reply_bytes)

    @property
    def attempt_timeout(self) -> float | None:
        """``timeout``: an attempt fails with a :class:`TransientModelError`, "no reply
        within {timeout}s", once it has passed (the HTTP client's deadline covers the
        whole exchange, connect, send and read, and nothing else in :meth:`acomplete`
        waits); ``None`` if ``timeout`` was changed after the client was made. An ``LLM``
        whose attempts may take as long sets no timer of its own
        (:class:`~gemlib.llm.retrying.Retrying`)."""
        timeout = self.timeout
        return timeout if self._client is None or self._client.timeout == timeout else None

    def _http(self) -> HttpClient:
        # Made at the first request: a key or URL it refuses fails that request, as before.
        if self._client is None:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            url = self.api_base.rstrip("/") + "/chat/completions"
            self._client = HttpClient(url, headers, self.timeout)
        return self._client

    async def aclose(self) -> None:
        """Close this event loop's connections (a run calls it when it ends)."""
        if self._client is not None:
            await self._client.aclose()

    def _scrub(self, text: str) -> str:
        return scrub(text, (self.api_key,))

    async def acomplete(self, request: ChatRequest) -> ChatReply:
        """Send ``request`` once and map failures to gemlib errors."""
        model = request.model
        served = _SERVED.get(model)
        if served is None:
            if len(_SERVED) >= _MAX_KEPT:
                _SERVED.clear()
            served = _SERVED[model] = ModelId.parse(model).served_as(PROVIDERS)
        body = _request_body(request.params, served, request.messages)
        started = time.perf_counter()
        try:
            response = await self._http().post(body, self.max_reply_bytes)
        except asyncio.TimeoutError:
            raise TransientModelError(
                f"no reply within {self.timeout}s", model=request.model
            ) from None
        except ConnectError as exc:
            raise ConnectFailed(self._scrub(str(exc)), model=request.model) from None
        except ProtocolError as exc:
            raise TransientModelError(self._scrub(str(exc)), model=request.model) from None
        except BodyTooLarge as exc:
            raise ReplyTooLarge(
                f"the server announced a reply of {exc.announced} bytes "
                f"(max_reply_bytes={self.max_reply_bytes})"
                if exc.announced is not None
                else f"a reply of more than {self.max_reply_bytes} bytes (max_reply_bytes)",
                model=request.model,
            ) from None
        except ValueError as exc:  # a key or URL that cannot be sent (CR, LF, NUL in it)
            reason = self._scrub(f"{type(exc).__name__}: {exc}")
            raise ModelRequestError(reason, model=request.model) from None
        raw = response.body
        if response.status != 200:
            text = raw.decode("utf-8", errors="replace")
            location = response.headers.get("location")
            raise error_for_status(
                response.status,
                self._scrub(text[:300]),
                request.model,
                retry_after=retry_after_seconds(response.headers),
                key_hint=KEY_HINT,
                location=self._scrub(location[:300]) if location is not None else None,
            )
        try:
            data = _decode_json(raw)
        except (ValueError, RecursionError):
            # Undecodable bytes and bad JSON are ValueErrors, a body nested too deep to
            # parse a RecursionError: a server that sends them is broken, so retried.
            text = raw.decode("utf-8", errors="replace")
            raise TransientModelError(
                f"unreadable reply: {self._scrub(text[:200])!r}", model=request.model
            ) from None
        latency = time.perf_counter() - started
        return parse_completion(
            data, request.model, priced=self.price, latency=latency, secret=self.api_key
        )


def _request_body(
    params: Mapping[str, Any], model: str, messages: Sequence[Mapping[str, Any]]
) -> bytes:
    """``json.dumps({**params, "model": model, "messages": messages}).encode()``, byte for
    byte, for a third of the CPU on a prompt of a few thousand characters.

    json's escaping goes through a string one character at a time; pydantic-core's writes
    the same bytes for text that is ASCII without DEL (``\\x7f``, which json alone escapes),
    two to three times faster. Any other text, or a message that is not text alone, is
    written by json, as before.
    """
    if "messages" in params:  # it keeps its place among the params: json writes it all
        body = {**params, "model": model, "messages": [dict(m) for m in messages]}
        return json.dumps(body).encode()
    return b'%s, "messages": [%s]}' % (_head(params, model), b", ".join(map(_message, messages)))


_SERVED: dict[str, str] = {}
"""The name the server knows, by model string (see :meth:`ModelId.served_as`)."""
_HEADS: dict[tuple[object, ...], bytes] = {}
"""``json.dumps({**params, "model": model})`` without its closing brace, by model and
params: an LLM sends the same few settings again and again, and writing a float (its
shortest repr) alone costs more than the rest of the head."""
_MAX_KEPT = 256
"""Entries of either dict before it is emptied."""
_PLAIN = frozenset((str, int, float, bool, type(None)))
"""Values whose type and equality fix what json writes (but for a float's zero sign)."""


def _head(params: Mapping[str, Any], model: str) -> bytes:
    key: list[object] = [model]
    for name, value in params.items():
        kind = type(value)
        if type(name) is not str or kind not in _PLAIN:  # written afresh, never kept
            return json.dumps({**params, "model": model}).encode()[:-1]
        key += (name, kind, value)
        if kind is float and not value:
            key.append(math.copysign(1.0, value))  # -0.0 == 0.0, but json writes "-0.0"
    found = tuple(key)
    head = _HEADS.get(found)
    if head is None:
        if len(_HEADS) >= _MAX_KEPT:
            _HEADS.clear()
        head = _HEADS[found] = json.dumps({**params, "model": model}).encode()[:-1]
    return head


def _message(message: Mapping[str, Any]) -> bytes:
    if type(message) is dict and list(message) == _ROLE_CONTENT:  # most messages
        role, content = message["role"], message["content"]
        if type(role) is str and type(content) is str:
            role_json = _WRITTEN.get(role) or _string(role)
            return b'{"role": %s, "content": %s}' % (role_json, _string(content))
    fields = []
    for key, value in message.items():
        if type(key) is not str or type(value) is not str:
            return json.dumps(dict(message)).encode()
        written = _WRITTEN.get(value) if key == "role" else None
        fields.append(b"%s: %s" % (_WRITTEN.get(key) or _string(key), written or _string(value)))
    return b"{%s}" % b", ".join(fields)


def _string(text: str) -> bytes:
    if text.isascii() and "\x7f" not in text:
        return to_json(text)
    return encode_basestring_ascii(text).encode()


_ROLE_CONTENT = ["role", "content"]
_WRITTEN = {
    text: _string(text)
    for text in ("role", "content", "name", "tool_call_id", "system", "user", "assistant", "tool")
}
"""Message keys and roles, written once."""


def _decode_json(raw: bytes) -> Any:
    """``json.loads(raw)``: the same value, or a :class:`ValueError` (or ``RecursionError``).

    pydantic-core reads a reply two to three times faster; what it refuses (a byte
    order mark, UTF-16, an escaped lone surrogate, nesting past 200 levels, or malformed
    JSON) is read again by json, whose answer stands.
    """
    try:
        return from_json(raw)
    except ValueError:
        return json.loads(raw)


def parse_completion(
    data: Any,
    model: str,
    *,
    priced: bool = False,
    latency: float = 0.0,
    secret: str | None = None,
) -> ChatReply:
    """A chat completion's JSON body as a :class:`ChatReply`, its cost from the price
    table when ``priced`` (else 0), taking ``latency`` seconds.

    Raises :class:`TransientModelError` for a body that is not a completion, quoting its
    start with ``secret`` (the key the request carried) and credential shapes masked.
    """
    try:
        choice = data["choices"][0]
        message = choice["message"]
        content = message.get("content") or ""
        reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        usage = data.get("usage") or {}
        details = usage.get("completion_tokens_details")
        details = details if isinstance(details, dict) else {}
        if not isinstance(content, str):
            raise TypeError("the content is not a string")
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        return ChatReply(  # every field, by position: a third cheaper than by keyword
            content,
            str(choice.get("finish_reason") or "stop"),
            prompt,
            completion,
            cost(model, prompt, completion) if priced else 0.0,
            model,
            False,  # cached
            latency,
            reasoning if isinstance(reasoning, str) else "",
            int(details.get("reasoning_tokens") or 0),
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError, OverflowError):
        # OverflowError: int() of an infinite float in `usage`
        raise TransientModelError(
            f"unreadable reply: {scrub(repr(data)[:200], (secret,))}", model=model
        ) from None
