"""Masked assistant turns: kept as context, never exported as trainable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemlib import Message, Trajectory
from gemlib.formats import openai, read_jsonl, write_jsonl
from gemlib.formats.masks import without_masks
from gemlib.formats.registry import get_format
from test_formats import JSONL_FORMATS, SETTINGS, trajectories


def _masked(t: Trajectory, picks: list[bool]) -> Trajectory:
    flags = iter(picks * len(t.messages))
    return t.model_copy(
        update={
            "messages": tuple(
                m.model_copy(update={"train": not next(flags)}) if m.role == "assistant" else m
                for m in t.messages
            )
        }
    )


def _trainable_texts(t: Trajectory) -> list[str]:
    return [m.content for m in t.messages if m.role == "assistant" and m.train]


@SETTINGS
@given(trajectories(), st.lists(st.booleans(), min_size=1, max_size=4))
def test_openai_records_carry_the_flags_and_read_them_back(
    t: Trajectory, picks: list[bool]
) -> None:
    masked = _masked(t, picks)
    record = openai.dump(masked)
    flagged = [m for m in record["messages"] if m.get("weight") == 0]
    assert len(flagged) == sum(not m.train for m in masked.messages)
    assert all(m["train"] is False and m["role"] == "assistant" for m in flagged)
    assert openai.load(json.loads(json.dumps(record))) == masked
    rebuilt = Trajectory(tools=masked.tools, messages=masked.messages)
    assert rebuilt.id == Trajectory(tools=t.tools, messages=t.messages).id, "ID ignores masks"


@SETTINGS
@given(trajectories(), st.lists(st.booleans(), min_size=1, max_size=4))
def test_formats_without_flags_never_export_a_masked_turn(t: Trajectory, picks: list[bool]) -> None:
    masked = _masked(t, picks)
    cut = without_masks(masked, "cut")
    assert without_masks(masked, "drop") is (masked if cut is masked else None)
    if cut is None:
        return
    assert all(m.train for m in cut.messages)
    assert cut.messages == masked.messages[: len(cut.messages)]
    assert cut.messages[-1].role == "assistant"
    assert not cut.messages[-1].tool_calls
    for name in JSONL_FORMATS:
        if name == "openai":
            continue
        chosen = get_format(name)
        back = chosen.load(json.loads(json.dumps(chosen.dump(cut))))
        assert len(back.messages) == len(cut.messages), name


def test_files_cut_or_drop_as_asked(tmp_path: Path) -> None:
    clean = Trajectory(
        messages=(
            Message(role="user", content="one"),
            Message(role="assistant", content="first answer"),
            Message(role="user", content="two"),
            Message(role="assistant", content="a bad answer", train=False),
            Message(role="user", content="three"),
            Message(role="assistant", content="third answer"),
        )
    )
    opens_masked = Trajectory(
        messages=(
            Message(role="user", content="one"),
            Message(role="assistant", content="bad", train=False),
        )
    )
    for name in ("sharegpt", "hermes", "gem"):
        out = tmp_path / f"{name}.jsonl"
        assert write_jsonl([clean, opens_masked], out, name) == 1
        (back,) = read_jsonl(out, name)
        assert [m.content for m in back.messages if m.role == "assistant"] == ["first answer"]
        assert "bad" not in out.read_text()
        assert write_jsonl([clean, opens_masked], out, name, masked="drop") == 0
    out = tmp_path / "openai.jsonl"
    assert write_jsonl([clean, opens_masked], out, "openai", masked="drop") == 2
    assert [_trainable_texts(t) for t in read_jsonl(out)] == [["first answer", "third answer"], []]


def test_parquet_keeps_the_flags(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    from gemlib.formats.hf import read_parquet, write_parquet

    t = Trajectory(
        messages=(
            Message(role="user", content="one"),
            Message(role="assistant", content="kept"),
            Message(role="user", content="two"),
            Message(role="assistant", content="masked", train=False),
        )
    )
    write_parquet([t], tmp_path / "x.parquet")
    assert list(read_parquet(tmp_path / "x.parquet")) == [t]


def test_only_assistant_turns_can_be_masked() -> None:
    with pytest.raises(ValueError, match="only assistant turns"):
        Message(role="user", content="x", train=False)
