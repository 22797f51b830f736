"""What `gemlib run` keeps in run.json, exports that replace files at once, a streaming report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gemlib import GemlibError, Trajectory
from gemlib.cli.runspec import RunSpec
from gemlib.formats import write_jsonl
from gemlib.formats.chat import from_chat
from gemlib.pipeline.rundir import read_trajectories


def _spec(tmp_path: Path, api_base: str | None) -> RunSpec:
    return RunSpec(
        corpus="corpus.jsonl", out=str(tmp_path / "run"), model="openai/x", api_base=api_base
    )


def test_run_json_never_holds_url_credentials_and_resume_asks_for_them(tmp_path: Path) -> None:
    """Fails on the old code: run.json kept user:password@ and the key in plain text."""
    url = "http://alice:s3cret-pw@127.0.0.1:8000/v1?api_key=k3y-value&team=ops"
    spec = _spec(tmp_path, url)
    spec.save()
    text = (tmp_path / "run" / "run.json").read_text()
    assert "s3cret-pw" not in text
    assert "alice" not in text
    assert "k3y-value" not in text
    assert "127.0.0.1:8000/v1" in text, "the server is still named"
    with pytest.raises(GemlibError, match=r"resume .* --api-base URL"):
        RunSpec.load(tmp_path / "run")
    with pytest.raises(GemlibError, match="is not the server this run used"):
        RunSpec.load(tmp_path / "run", api_base="http://other:8000/v1")
    again = RunSpec.load(tmp_path / "run", api_base=url)
    assert again.api_base == url


def test_run_json_keeps_absolute_paths_and_resume_uses_the_directory_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails on the old code: relative paths, so resuming from elsewhere read another corpus."""
    monkeypatch.chdir(tmp_path)
    RunSpec(corpus="corpus.jsonl", out="run", model="openai/x").save()
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())
    assert recorded["corpus"] == str(tmp_path / "corpus.jsonl")
    assert recorded["out"] == str(tmp_path / "run")
    (tmp_path / "run").rename(tmp_path / "moved")
    monkeypatch.chdir("/")
    spec = RunSpec.load(tmp_path / "moved")
    assert spec.out == str(tmp_path / "moved")
    assert spec.corpus == str(tmp_path / "corpus.jsonl")


def test_an_interrupted_export_leaves_the_previous_file(tmp_path: Path) -> None:
    """Fails on the old code: the export truncated the file first, then died half-way."""
    from test_model import OPENAI_RECORD

    good = from_chat(OPENAI_RECORD)
    out = tmp_path / "data.jsonl"
    write_jsonl([good, good], out)
    previous = out.read_bytes()

    def dying() -> Iterator[Trajectory]:
        yield good
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_jsonl(dying(), out, "sharegpt")
    assert out.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"], "no temporary left"
    assert len(list(read_trajectories(out))) == 2


def test_the_end_of_run_report_streams_instead_of_loading_every_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fails on the old code: the report read every output and rejection into lists
    (1.1 GB for a million corpus lines)."""
    from fake_openai import FakeOpenAI
    from gemlib.cli import main
    from gemlib.pipeline.pipeline import RunResult
    from teacher import teacher_reply
    from test_cli import _five_docs

    def loads_everything(self: RunResult) -> list[object]:
        raise AssertionError("the report must stream, not load every result")

    monkeypatch.setattr(RunResult, "outputs", property(loads_everything))
    monkeypatch.setattr(RunResult, "rejections", property(loads_everything))
    monkeypatch.setenv("OPENAI_API_KEY", "none")
    monkeypatch.setenv("GEMLIB_CACHE_DIR", str(tmp_path / "cache"))
    with FakeOpenAI(teacher_reply) as server:
        args = ["run", str(_five_docs(tmp_path)), "--model", "openai/teacher", "--quiet"]
        args += ["--api-base", server.url, "--out", str(tmp_path / "run"), "--no-judge"]
        code = main(args)
    out = capsys.readouterr().out
    assert code == 0
    assert "rejected, with reasons:" in out
    assert "relevance_filter/not_procedural" in out
