"""Formats are registry entries: the CLI's choices and help, detection and reading come from
the registry, plug-ins join it through the entry-point group ``gemlib.formats``, and a
broken plug-in leaves the built-in formats working.

The example plug-in is the real package in tests/plugins/gemlib-example-format, which
noxfile.py installs (and requires, through ``GEMLIB_REQUIRE_PLUGINS``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import third_party
from gemlib import Message, Trajectory
from gemlib.cli import main
from gemlib.errors import FormatError
from gemlib.formats import (
    Format,
    detect_format,
    export,
    read_trajectories,
    registry,
    write_jsonl,
)
from gemlib.formats.masks import without_masks
from gemlib.pipeline.rundir import read_trajectories as read_run
from test_noxfile import Session, _noxfile
from test_registry import _dist
from viewer_data import make_run

PLUGIN = Path(__file__).parent / "plugins" / "gemlib-example-format"


def _require_example_plugin() -> None:
    """Skip without the example plug-in installed; fail instead where it is required (nox)."""
    if importlib.metadata.entry_points(group="gemlib.formats", name="transcript"):
        return
    if os.environ.get("GEMLIB_REQUIRE_PLUGINS"):
        pytest.fail("the example format plug-in is not installed but GEMLIB_REQUIRE_PLUGINS is set")
    pytest.skip(f"the example format plug-in is not installed: pip install --no-deps {PLUGIN}")


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main([*argv, "--help"]) == 0  # main returns argparse's code
    return capsys.readouterr().out


def test_the_installed_plugin_format_is_offered_and_exports_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _require_example_plugin()
    page = _help(capsys, "export")
    assert "--format {gem,hermes,hf,openai,parquet,sharegpt,transcript}" in page
    assert "transcript" in page.split("formats:")[1]
    assert "a readable transcript per trajectory" in page
    # It writes but does not read: not a choice where a format is read.
    assert "transcript" not in _help(capsys, "stats").split("--format")[1].split("--html")[0]

    run = make_run(tmp_path)
    out = tmp_path / "out" / "run.transcript.jsonl"
    assert main(["export", str(run), "--format", "transcript", "--out", str(out)]) == 0
    # The plug-in cannot flag masked turns, so they are cut (one trajectory has nothing left).
    kept = [t for t in map(without_masks, read_run(run)) if t is not None]
    assert 0 < len(kept) < len(list(read_run(run)))
    assert f"wrote {len(kept)} trajectories to {out} (transcript)" in capsys.readouterr().out
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == [t.id for t in kept]
    for record, trajectory in zip(records, kept, strict=True):
        user = next(m for m in trajectory.messages if m.role == "user")
        assert f"user: {user.content}" in record["transcript"]
        assert "assistant -> lookup(" in record["transcript"]


def test_a_fresh_gemlib_process_finds_the_plugin_through_its_entry_point(tmp_path: Path) -> None:
    _require_example_plugin()
    page = subprocess.run(
        [sys.executable, "-m", "gemlib.cli", "export", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "transcript" in page.split("formats:")[1]


def _broken_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Install six plug-ins on ``sys.path``: four broken, one greedy, one good."""
    tmp_path.mkdir()
    _dist(
        tmp_path,
        "gemlib.formats",
        {
            "exploding": "exploding_format:FORMAT",
            "unhelpful": "unhelpful_format:FORMAT",
            "notaformat": "odd_formats:NUMBER",
            "misnamed": "odd_formats:MISNAMED",
            "greedy": "odd_formats:GREEDY",
            "plain": "odd_formats:PLAIN",
        },
        {
            "exploding_format": "raise RuntimeError('this plug-in is broken')\n",
            "unhelpful_format": (
                "from gemlib.formats import Format\n"
                "FORMAT = Format(name='unhelpful', description='a help text\\n  --format openai')\n"
            ),
            "odd_formats": """
                from gemlib import Message, Trajectory
                from gemlib.formats import Format

                def _refuse(record):
                    raise RuntimeError("recognise crashed")

                def _plain(record):
                    return Trajectory(messages=(
                        Message(role="user", content=record["plain"][0]),
                        Message(role="assistant", content=record["plain"][1]),
                    ))

                NUMBER = 42
                MISNAMED = Format(name="other", description="named otherwise")
                GREEDY = Format(name="greedy", description="claims every record",
                                recognise=_refuse, load=_plain)
                PLAIN = Format(name="plain", description="a question and its answer",
                               recognise=lambda record: "plain" in record, load=_plain)
            """,
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    monkeypatch.setattr(registry, "FORMATS", registry.new_registry())
    for module in ("exploding_format", "unhelpful_format", "odd_formats"):
        monkeypatch.delitem(sys.modules, module, raising=False)


def test_broken_plugins_leave_the_builtin_formats_working(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = make_run(tmp_path)
    _broken_plugins(tmp_path / "plugins", monkeypatch)
    plugin = ["transcript"] if "transcript" in registry.FORMATS else []
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        page = _help(capsys, "export")
        listed = page.split("formats:")[1]
        for name in ("openai", "sharegpt", "hermes", "gem", "parquet", "hf"):
            assert f"\n  {name} " in listed, name
        choices = page.split("--format {")[1].split("}")[0].split(",")
        assert choices == ["gem", "hermes", "hf", "openai", "parquet", "sharegpt", *plugin]
        for name in ("exploding", "unhelpful", "notaformat", "misnamed", "other"):
            assert name not in listed, name
        for name in ("openai", "hermes"):
            out = tmp_path / f"out.{name}.jsonl"
            assert main(["export", str(run), "--format", name, "--out", str(out)]) == 0
            assert f"({name})" in capsys.readouterr().out
            assert list(read_trajectories(out)), name  # and read back, guessing the format
    assert "skipped the format plug-in 'exploding'" in caplog.text
    assert "this plug-in is broken" in caplog.text
    assert "skipped the format plug-in 'unhelpful'" in caplog.text  # a description of two lines
    assert "skipped the format 'notaformat'" in caplog.text
    assert "skipped the format 'misnamed'" in caplog.text
    with pytest.raises(FormatError, match=r"not a gemlib\.formats\.format\.Format named"):
        registry.get_format("misnamed")


def test_plugins_are_asked_after_the_builtin_formats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _broken_plugins(tmp_path / "plugins", monkeypatch)
    # A plug-in never takes a record a built-in format recognises; the greedy plug-in's
    # recognise raises on every record and is passed over; the plain one is found.
    assert detect_format({"messages": [], "plain": ["a", "b"]}) == "openai"
    assert detect_format({"plain": ["What is two and two?", "Four."]}) == "plain"
    with pytest.raises(FormatError, match="cannot tell the format"):
        detect_format({"unheard_of": 1})
    mixed = tmp_path / "mixed.jsonl"
    write_jsonl([_answer()], mixed, "sharegpt")
    with mixed.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"plain": ["What is two and two?", "Four."]}) + "\n")
    read = list(read_trajectories(mixed))
    assert [m.content for m in read[1].messages] == ["What is two and two?", "Four."]
    assert read[0].messages[-1].content == "Paris."


def _answer() -> Trajectory:
    return Trajectory(
        messages=(
            Message(role="user", content="The capital of France?"),
            Message(role="assistant", content="Paris."),
        )
    )


def test_builtin_formats_are_registry_entries_under_their_own_names() -> None:
    for name in ("openai", "sharegpt", "hermes", "gem", "native", "parquet", "hf", "tau2", "bfcl"):
        found = registry.get_format(name)
        assert isinstance(found, Format)
        assert found.name == name
        assert found.description
        assert found.reads or found.writes
    assert not registry.get_format("hf").reads
    assert not registry.get_format("tau2").writes
    assert registry.file_format(".PARQUET") is registry.get_format("parquet")
    assert registry.file_format(".jsonl") is None


def test_what_a_format_cannot_do_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="parquet format does not write JSONL records"):
        write_jsonl([_answer()], tmp_path / "x.jsonl", "parquet")
    with pytest.raises(FormatError, match="hf format is write only"):
        list(read_trajectories(tmp_path, "hf"))
    with pytest.raises(FormatError, match="tau2 format is read only"):
        export(tmp_path, tmp_path / "x", "tau2")
    with pytest.raises(FormatError, match=r"BFCL has no category '\.\./x'"):
        list(read_trajectories("../x", "bfcl"))  # a name, never a path
    lines = tmp_path / "answers.jsonl"
    write_jsonl([_answer()], lines, "openai")
    with pytest.raises(FormatError, match="line 1: the parquet format has no JSONL records"):
        list(read_trajectories(lines, "parquet"))


def test_an_importer_is_a_source_for_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    third_party("tau2")
    from gemlib.formats.tau2 import read_tau2_tasks

    tasks = list(read_tau2_tasks("mock"))
    out = tmp_path / "mock.jsonl"
    assert (
        main(["export", "mock", "--input-format", "tau2", "--format", "openai", "--out", str(out)])
        == 0
    )
    assert f"wrote {len(tasks)} trajectories" in capsys.readouterr().out
    assert [t.id for t in read_trajectories(out)] == [t.id for t in tasks]
    with pytest.raises(FormatError, match="tau2-bench has no domain"):
        list(read_trajectories("../mock", "tau2"))


def test_without_the_example_plugin_its_tests_skip_unless_nox_requires_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: [])
    monkeypatch.delenv("GEMLIB_REQUIRE_PLUGINS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="pip install --no-deps"):
        _require_example_plugin()
    monkeypatch.setenv("GEMLIB_REQUIRE_PLUGINS", "1")
    with pytest.raises(pytest.fail.Exception, match="not installed"):
        _require_example_plugin()


class _Session(Session):
    posargs: list[str] = []

    def install(self, *args: str, **kwargs: object) -> None:
        self.commands.append(("install", *args))

    def run(self, *args: object, **kwargs: object) -> None:
        self.commands.append((*args, kwargs.get("env")))


@pytest.mark.parametrize("name", ["tests", "faults"])
def test_nox_installs_the_plugins_and_requires_them(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    noxfile = _noxfile()
    assert str(PLUGIN.relative_to(PLUGIN.parents[2])) in noxfile.TEST_PLUGINS
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GEMLIB_REQUIRE_PYTHON_DOCS", raising=False)
    monkeypatch.setattr(noxfile.shutil, "which", lambda name: None)
    session = _Session()
    getattr(noxfile, name)(session)
    assert ("install", "--no-deps", *noxfile.TEST_PLUGINS) in session.commands
    pytest_run = next(c for c in session.commands if c[0] == "pytest")
    assert pytest_run[-1]["GEMLIB_REQUIRE_PLUGINS"] == "1"
    for folder in noxfile.TEST_PLUGINS:
        assert (PLUGIN.parents[2] / folder / "pyproject.toml").is_file()


def test_a_plugin_format_whose_write_fails_is_one_line_without_its_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fails on the old code (checked): the plug-in's exception (here a wrong signature,
    then a RuntimeError quoting a URL's password) was a traceback from `gemlib export`."""
    from gemlib.formats.format import ExportRequest, Format

    def wrong_signature(trajectories: object, out: object) -> str:
        return "never"

    def leaks(request: ExportRequest) -> str:
        raise RuntimeError("upload to https://bob:s3cretpw@host.invalid failed")

    run = make_run(tmp_path)
    for name, write, said in (
        ("wrongargs", wrong_signature, "TypeError: "),
        ("leaky", leaks, "RuntimeError: upload to https://"),
    ):
        plugin = Format(name=name, description="a broken plug-in", write=write)
        monkeypatch.setitem(registry.FORMATS._entries, name, plugin)
        out = tmp_path / f"{name}.jsonl"
        code = main(["export", "--format", name, "--out", str(out), str(run)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, err
        assert len(err) == 1, err
        assert f"the {name} format failed to write {out}: {said}" in err[0]
        assert "s3cretpw" not in err[0]
