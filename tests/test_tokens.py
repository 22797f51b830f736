"""Token counting offline: which tokenizer each model family gets, and the fallbacks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gemlib.llm import tokens
from gemlib.llm.tokens import tiktoken_encoding, token_counter

TEXT = "Open the settings menu, tap Accounts, then choose Add account."


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    """Forget the loaded tokenizers before and after (they are cached per process)."""
    tokens.tiktoken_encoding.cache_clear()
    tokens._anthropic.cache_clear()
    yield
    tokens.tiktoken_encoding.cache_clear()
    tokens._anthropic.cache_clear()


@pytest.mark.parametrize(
    ("model", "name", "exact"),
    [
        ("openai/gpt-4.1-mini", "o200k_base", True),
        ("gpt-4o", "o200k_base", True),
        ("azure/o3-mini", "o200k_base", True),
        ("openai/gpt-4", "cl100k_base", True),
        ("gpt-3.5-turbo", "cl100k_base", True),
        ("hosted_vllm/Qwen/Qwen3-8B", "cl100k_base (approximate for this model)", False),
    ],
)
def test_each_model_family_is_counted_with_its_own_tokenizer(
    model: str, name: str, exact: bool
) -> None:
    counter = token_counter(model)
    assert (counter.name, counter.exact) == (name, exact)
    encoding = tiktoken_encoding(name.split()[0])
    assert encoding is not None, "litellm ships this tokenizer's file"
    assert counter.count(TEXT) == len(encoding.encode(TEXT)) > 0
    assert counter.count("hello world") == 2
    assert counter.count("<|endoftext|>") > 1, "special tokens in text are counted as text"


def test_claude_is_counted_with_the_anthropic_tokenizer_and_says_it_is_approximate() -> None:
    counter = token_counter("anthropic/claude-3-5-sonnet-20241022")
    assert counter.name == "anthropic tokenizer (approximate for Claude 3 and later)"
    assert not counter.exact
    assert 5 < counter.count(TEXT) < len(TEXT)


def test_without_the_tokenizer_files_every_model_is_estimated_from_its_characters(
    fresh_caches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens, "_litellm_tokenizers", lambda: None)
    for model in ("openai/gpt-4.1-mini", "anthropic/claude-3-haiku", "hosted_vllm/x"):
        counter = token_counter(model)
        assert (counter.name, counter.exact) == ("estimate (characters / 4)", False)
        assert counter.count("x" * 41) == 10
    assert tiktoken_encoding("o200k_base") is None


def test_a_broken_tokenizer_file_falls_back_instead_of_failing(
    fresh_caches: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "anthropic_tokenizer.json").write_text("{not json", encoding="utf-8")
    monkeypatch.setattr(tokens, "_litellm_tokenizers", lambda: tmp_path)
    counter = token_counter("anthropic/claude-3-haiku")
    assert counter.name == "estimate (characters / 4)"
