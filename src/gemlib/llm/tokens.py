"""Token counting offline, with the tokenizer files litellm ships, without importing litellm.

litellm's ``token_counter`` would load litellm (seconds) and, for some model
families, look a tokenizer up on the Hugging Face hub. The files it bundles
cover what can be counted exactly offline: OpenAI's ``o200k_base`` (GPT-4o,
GPT-4.1, o-series, GPT-5) and ``cl100k_base`` (GPT-4, GPT-3.5), and the
Anthropic tokenizer litellm uses for Claude. Any other model is counted with
``cl100k_base`` and the counter says it is an approximation; without the
files or ``tiktoken``, characters / 4.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from gemlib.llm.model_id import ModelId

__all__ = ["TokenCounter", "tiktoken_encoding", "token_counter"]

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
_O200K = ("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "gpt-oss")


@attrs.frozen
class TokenCounter:
    """Counts tokens of a text; ``name`` says with what, ``exact`` whether it is the model's own."""

    count: Callable[[str], int]
    name: str
    exact: bool


def _litellm_tokenizers() -> Path | None:
    spec = importlib.util.find_spec("litellm")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"


@functools.cache
def tiktoken_encoding(name: str) -> Any | None:
    """tiktoken's encoding ``name`` from litellm's bundled copy (``None`` when absent).

    tiktoken names its cached files by the sha1 of their download URL; when the
    file is missing it would download it, so it is checked first.
    """
    folder = _litellm_tokenizers()
    cached = hashlib.sha1(_BLOB.format(name).encode()).hexdigest()  # tiktoken's key
    if folder is None or not (folder / cached).is_file():
        return None
    if importlib.util.find_spec("tiktoken") is None:
        return None
    saved = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)
    try:
        return importlib.import_module("tiktoken").get_encoding(name)
    except Exception:  # a broken or changed copy: callers fall back to an estimate
        return None
    finally:
        if saved is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = saved


@functools.cache
def _anthropic() -> Any | None:
    folder = _litellm_tokenizers()
    path = folder / "anthropic_tokenizer.json" if folder else None
    if path is None or not path.is_file() or importlib.util.find_spec("tokenizers") is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        source = data["tokenizer"] if isinstance(data, dict) and "tokenizer" in data else data
        return importlib.import_module("tokenizers").Tokenizer.from_str(json.dumps(source))
    except Exception:
        return None


def _estimate(text: str) -> int:
    return len(text) // 4


def _from_tiktoken(name: str, exact: bool) -> TokenCounter | None:
    encoding = tiktoken_encoding(name)
    if encoding is None:
        return None
    label = name if exact else f"{name} (approximate for this model)"
    return TokenCounter(
        lambda text: len(encoding.encode(text, disallowed_special=())), label, exact
    )


def token_counter(model: str) -> TokenCounter:
    """A counter for ``model`` (a litellm model string), exact where the files allow."""
    bare = ModelId.parse(model).leaf.lower()
    if bare.startswith(_O200K) and (counter := _from_tiktoken("o200k_base", True)):
        return counter
    if bare.startswith(("gpt-4", "gpt-3.5")) and (counter := _from_tiktoken("cl100k_base", True)):
        return counter
    if "claude" in bare and (tokenizer := _anthropic()) is not None:
        return TokenCounter(
            lambda text: len(tokenizer.encode(text).ids),
            "anthropic tokenizer (approximate for Claude 3 and later)",
            False,
        )
    return _from_tiktoken("cl100k_base", False) or TokenCounter(
        _estimate, "estimate (characters / 4)", False
    )
