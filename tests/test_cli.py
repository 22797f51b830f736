"""The `gemlib` command, in process through ``gemlib.cli.main`` (a few as real subprocesses)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import re
import runpy
import signal
import sys
from pathlib import Path

import pytest

from cli_runner import gemlib as _gemlib
from cli_runner import gemlib_process
from gemlib.formats.chat import from_chat

LOCAL_KEY = {"OPENAI_API_KEY": "none"}


def test_demo_without_the_local_extra_says_so_and_runs_the_model_free_stages(
    tmp_path: Path,
) -> None:
    if importlib.util.find_spec("llama_cpp") is not None:
        pytest.skip("llama-cpp-python is installed here; the slow tier runs the real demo")
    first = _gemlib("demo", "--out", "run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "model:    none" in first.stdout, "the demo must say plainly what ran"
    assert 'pip install --no-cache-dir "gemlib[local]"' in first.stdout
    assert "GGML_NATIVE=OFF" in first.stdout, "the install line carries the portable flags"
    assert "gemlib demo --model openai/gpt-4.1-mini" in first.stdout
    assert "procedure_prefilter           20      16         4" in first.stdout
    assert "history-printing:0" in first.stdout
    assert len((tmp_path / "run" / "outputs.jsonl").read_text().splitlines()) == 16
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert [s["name"] for s in manifest["stages"]] == ["segmenter", "procedure_prefilter"]

    second = _gemlib("demo", "--out", "run", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "20 inputs (20 already done" in second.stdout
    assert len((tmp_path / "run" / "outputs.jsonl").read_text().splitlines()) == 16


def test_demo_with_a_model_runs_all_of_gem_and_resumes_without_requests(tmp_path: Path) -> None:
    from fake_openai import FakeOpenAI
    from teacher import canned_reply

    with FakeOpenAI(canned_reply) as server:
        args = ("demo", "--model", "openai/teacher", "--api-base", server.url, "--quiet")
        first = _gemlib(*args, cwd=tmp_path, env=LOCAL_KEY)
        assert first.returncode == 0, first.stderr
        sent = len(server.requests)
        second = _gemlib(*args, cwd=tmp_path, env=LOCAL_KEY)
        assert second.returncode == 0, second.stderr
        assert len(server.requests) == sent, "a finished demo reruns with no model calls"
    out = first.stdout
    assert "model:    openai/teacher" in out
    # 16 procedural texts pass the prefilter; each makes 5 calls (relevance,
    # extraction, generation, refinement, judge) and ends as a trajectory. The
    # canned teacher writes the same conversation for every text, so a later
    # identical request can be a cache hit instead of a request.
    calls = {
        m[1]: (int(m[2]), int(m[3]))
        for m in re.finditer(r"^(\w+) +openai/teacher +(\d+) +(\d+) ", out, re.M)
    }
    assert len(calls) == 5, calls
    assert all(sum(n) == 16 for n in calls.values()), calls
    assert sent == sum(requests for requests, _ in calls.values())
    assert "llm_judge                     16      16         0" in out
    assert "procedure_prefilter           20      16         4" in out
    kept = (tmp_path / "gemlib-demo-run" / "outputs.jsonl").read_text().splitlines()
    assert len(kept) == 16
    assert "trajectories:   gemlib-demo-run/outputs.jsonl (16)" in out
    assert "for real trajectories, rerun with a capable model" in out
    assert "20 inputs (20 already done" in second.stdout


def test_version_and_usage_errors(tmp_path: Path) -> None:
    """Through the entry point, as a real process: the exit code a shell sees."""
    version = _gemlib("--version", cwd=tmp_path)
    assert (version.returncode, version.stdout.startswith("gemlib ")) == (0, True)
    wrong = gemlib_process("frobnicate", cwd=tmp_path)
    assert wrong.returncode == 2
    assert "invalid choice" in wrong.stderr


def test_main_returns_every_exit_code_and_leaves_no_global_state(tmp_path: Path) -> None:
    """``main(argv)`` in process: codes returned (never SystemExit), nothing left behind.

    Fails on the old code: usage errors and --version raised SystemExit, and the
    first call's log handler stayed on the root logger (bound to that call's stderr).
    """
    from gemlib.cli import main

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    sigterm = signal.getsignal(signal.SIGTERM)
    assert _gemlib("--version", cwd=tmp_path).returncode == 0
    assert _gemlib("--help", cwd=tmp_path).stdout.startswith("usage: gemlib")
    wrong = _gemlib("run", "--mask-turns", "x", cwd=tmp_path)
    assert (wrong.returncode, "invalid float value" in wrong.stderr) == (2, True)
    assert _gemlib("-v", "stats", "nope.jsonl", cwd=tmp_path).returncode == 2
    assert main(["stats", str(tmp_path / "nope.jsonl")]) == 2
    assert (root.handlers, root.level) == (handlers, level)
    assert signal.getsignal(signal.SIGTERM) is sigterm


def _five_docs(tmp_path: Path) -> Path:
    source = Path(__file__).parents[1] / "examples" / "corpus" / "gem_examples.jsonl"
    keep = {
        "return-online-order",
        "calendar-meeting",
        "history-printing",
        "smart-thermostat",
        "bank-transfer",
    }
    lines = [ln for ln in source.read_text().splitlines() if json.loads(ln)["id"] in keep]
    corpus = tmp_path / "five.jsonl"
    corpus.write_text("\n".join(lines) + "\n")
    return corpus


def _run_command(tmp_path: Path, api_base: str) -> list[str]:
    """`gemlib run` over five example texts against a teacher server, into ./run."""
    corpus = _five_docs(tmp_path)
    return ["run", str(corpus), "--model", "openai/teacher", "--api-base", api_base, "--out", "run"]


def test_run_command_drives_gem_against_a_server(tmp_path: Path) -> None:
    from fake_openai import FakeOpenAI
    from teacher import teacher_reply

    with FakeOpenAI(teacher_reply) as server:
        command = _run_command(tmp_path, server.url)
        done = _gemlib(*command, cwd=tmp_path, env=LOCAL_KEY)
        assert done.returncode == 0, done.stderr
        assert "1 trajectories in run/outputs.jsonl" in done.stdout
        assert "relevance_filter/not_procedural" in done.stdout
        requests = len(server.requests)
        again = _gemlib(*command, cwd=tmp_path, env=LOCAL_KEY)
        assert again.returncode == 0, again.stderr
        assert "5 inputs (5 already done" in again.stdout
        assert len(server.requests) == requests, "a resumed run sends nothing"


def test_mask_turns_keeps_trajectories_with_masked_turns(tmp_path: Path) -> None:
    from fake_openai import FakeOpenAI
    from teacher import teacher_reply

    with FakeOpenAI(teacher_reply) as server:
        command = [*_run_command(tmp_path, server.url), "--mask-turns"]
        done = _gemlib(*command, cwd=tmp_path, env=LOCAL_KEY)
        assert done.returncode == 0, done.stderr
        # Without the flag one trajectory is kept; turn-level verdicts keep three.
        assert "3 trajectories in run/outputs.jsonl" in done.stdout
        assert "turn_validator" in done.stdout
        settings = json.loads((tmp_path / "run" / "run.json").read_text())
        assert settings["mask_turns"] == 0.5
        bad = _gemlib(*command[:-1], "--mask-turns", "2", "--out", "r2", cwd=tmp_path)
        assert bad.returncode == 2
        assert "max_masked is a share between 0 and 1" in bad.stderr


def test_run_command_user_mistakes_fail_before_spending(tmp_path: Path) -> None:
    missing = _gemlib("run", "nope.jsonl", "--model", "openai/x", "--out", "r", cwd=tmp_path)
    assert missing.returncode == 2
    assert "gemlib: error: corpus not found: nope.jsonl" in missing.stderr
    assert "Traceback" not in missing.stderr
    corpus = _five_docs(tmp_path)
    bad_stage = _gemlib(
        "run",
        str(corpus),
        "--model",
        "openai/x",
        "--out",
        "r",
        "--stage-model",
        "judging=openai/y",
        cwd=tmp_path,
    )
    assert bad_stage.returncode == 2
    assert "unknown stage keys ['judging']" in bad_stage.stderr


def _example(name: str, *args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """Run ``examples/NAME`` as ``python NAME ARGS`` would, in this process: (exit code, stdout)."""
    script = Path(__file__).parents[1] / "examples" / name
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    monkeypatch.setenv("GEMLIB_CACHE_DIR", str(cwd / "cache"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_path(str(script), run_name="__main__")
            code = 0
        except SystemExit as exit:
            code = 0 if exit.code is None else int(exit.code)
    return code, out.getvalue()


def test_example_script_runs_gem_on_a_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fake_openai import FakeOpenAI
    from teacher import teacher_reply

    monkeypatch.setenv("OPENAI_API_KEY", "none")
    with FakeOpenAI(teacher_reply) as server:
        code, out = _example(
            "run_gem.py",
            "--model",
            "openai/teacher",
            "--api-base",
            server.url,
            "--corpus",
            str(_five_docs(tmp_path)),
            "--out",
            str(tmp_path / "ex"),
            cwd=tmp_path,
            monkeypatch=monkeypatch,
        )
    assert code == 0
    assert "1 trajectories" in out
    assert "complexity_refiner" in out


def test_a_missing_api_key_stops_the_run_with_the_fix(tmp_path: Path) -> None:
    from fake_openai import FakeOpenAI, Reply

    def needs_a_key(body: dict[str, object], n: int) -> Reply:
        return Reply(status=401)  # what a server that wants a key answers

    corpus = _five_docs(tmp_path)
    with FakeOpenAI(needs_a_key) as server:
        command = ("run", str(corpus), "--model", "openai/x", "--api-base", server.url)
        done = _gemlib(*command, "--out", "r", cwd=tmp_path, env={"OPENAI_API_KEY": None})
        sent = len(server.requests)
    assert done.returncode == 2
    assert "HTTP 401" in done.stderr
    assert "OPENAI_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr
    assert sent <= 5, "stops at once: only the requests already in flight went out"


def test_stats_export_and_validate_commands(tmp_path: Path) -> None:
    from gemlib.formats import write_jsonl
    from test_model import OPENAI_RECORD

    good = from_chat(OPENAI_RECORD)
    bad = good.model_copy(update={"id": "bad", "messages": good.messages[:3]})
    write_jsonl([good, bad], tmp_path / "in.jsonl", "openai")

    stats = _gemlib("stats", "in.jsonl", "--html", "report.html", "--fast", cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert "2 trajectories" in stats.stdout
    assert (tmp_path / "report.html").read_text().startswith("<!doctype html>")

    for name in ("sharegpt", "hermes", "gem", "openai"):
        out = _gemlib(
            "export", "in.jsonl", "--format", name, "--out", f"out/{name}.jsonl", cwd=tmp_path
        )
        assert out.returncode == 0, out.stderr
        assert f"wrote 2 trajectories to out/{name}.jsonl" in out.stdout
    assert "sharegpt" in (tmp_path / "out" / "dataset_info.json").read_text()

    check = _gemlib("validate", "out/hermes.jsonl", cwd=tmp_path)
    assert check.returncode == 1
    assert "bad:" in check.stdout
    assert "[turn_order]" in check.stdout
    assert "1 of 2 trajectories pass" in check.stdout

    missing = _gemlib("stats", "nope.jsonl", cwd=tmp_path)
    assert missing.returncode == 2
    assert "gemlib: error: no such file: nope.jsonl" in missing.stderr
    unknown = _gemlib("export", "in.jsonl", "--format", "csv", "--out", "x", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "invalid choice: 'csv'" in unknown.stderr


def test_stats_on_a_run_directory_include_the_funnel(tmp_path: Path) -> None:
    from fake_openai import FakeOpenAI
    from teacher import teacher_reply

    with FakeOpenAI(teacher_reply) as server:
        done = _gemlib(*_run_command(tmp_path, server.url), cwd=tmp_path, env=LOCAL_KEY)
    assert done.returncode == 0, done.stderr
    stats = _gemlib("stats", "run", "--fast", cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert "== funnel ==" in stats.stdout
    assert "llm_judge" in stats.stdout
    assert "1 trajectories" in stats.stdout


def test_config_file_resume_and_judge_model(tmp_path: Path) -> None:
    from fake_openai import FakeOpenAI
    from teacher import teacher_reply

    corpus = _five_docs(tmp_path)
    with FakeOpenAI(teacher_reply) as server:
        (tmp_path / "gem.toml").write_text(
            f'corpus = "{corpus}"\nout = "run"\nmodel = "openai/teacher"\n'
            f'api_base = "{server.url}"\nconcurrency = 4\n\n'
            '[stage_models]\nrelevance = "openai/small-teacher"\n'
        )
        done = _gemlib(
            "run",
            "--config",
            "gem.toml",
            "--judge-model",
            "openai/judge",
            cwd=tmp_path,
            env=LOCAL_KEY,
        )
        assert done.returncode == 0, done.stderr
        models = {r["model"] for r in server.requests}
        assert models == {"small-teacher", "teacher", "judge"}, "config, table and flag all apply"
        spec = json.loads((tmp_path / "run" / "run.json").read_text())
        assert spec["judge_model"] == "openai/judge"
        assert spec["stage_models"] == {"relevance": "openai/small-teacher"}
        assert "key" not in json.dumps(spec).lower()
        sent = len(server.requests)
        resumed = _gemlib("resume", "run", cwd=tmp_path, env=LOCAL_KEY)
        assert resumed.returncode == 0, resumed.stderr
        assert "5 inputs (5 already done" in resumed.stdout
        assert len(server.requests) == sent


def test_config_mistakes_are_named(tmp_path: Path) -> None:
    missing = _gemlib("run", "--config", "nope.toml", cwd=tmp_path)
    assert missing.returncode == 2
    assert "config file not found: nope.toml" in missing.stderr
    (tmp_path / "bad.toml").write_text("model = [unclosed\n")
    bad = _gemlib("run", "--config", "bad.toml", cwd=tmp_path)
    assert bad.returncode == 2
    assert "bad.toml: not valid TOML" in bad.stderr
    (tmp_path / "typo.toml").write_text('modle = "openai/x"\n')
    typo = _gemlib("run", "x.jsonl", "--out", "r", "--config", "typo.toml", cwd=tmp_path)
    assert typo.returncode == 2
    assert "modle: Extra inputs are not permitted" in typo.stderr
    assert "model: required: pass the flag or set it in the config" in typo.stderr
    nothing = _gemlib("resume", "elsewhere", cwd=tmp_path)
    assert nothing.returncode == 2
    assert "elsewhere has no run.json" in nothing.stderr


def test_corpus_from_standard_input_and_parquet(tmp_path: Path) -> None:
    from fake_openai import FakeOpenAI
    from teacher import teacher_reply

    corpus = _five_docs(tmp_path)
    with FakeOpenAI(teacher_reply) as server:
        piped = _gemlib(
            "run", "-", "--model", "openai/teacher", "--api-base", server.url,
            "--out", "stdin-run",
            cwd=tmp_path, env=LOCAL_KEY, stdin=corpus.read_text(),
        )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert "5 inputs" in piped.stdout

    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    pq.write_table(
        pyarrow.Table.from_pylist([{"key": r["id"], "body": r["text"]} for r in rows]),
        tmp_path / "corpus.parquet",
    )
    from gemlib import read_corpus

    docs = list(read_corpus(tmp_path / "corpus.parquet", text_field="body", id_field="key"))
    assert [d.id for d in docs] == [r["id"] for r in rows]


def test_export_for_training_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fake_openai import FakeOpenAI
    from teacher import teacher_reply

    with FakeOpenAI(teacher_reply) as server:
        assert (
            _gemlib(*_run_command(tmp_path, server.url), cwd=tmp_path, env=LOCAL_KEY).returncode
            == 0
        )
    code, out = _example(
        "export_for_training.py", "run", "data", cwd=tmp_path, monkeypatch=monkeypatch
    )
    assert code == 0
    for name in ("openai", "sharegpt", "hermes"):
        assert (tmp_path / "data" / f"gem.{name}.jsonl").read_text().count("\n") == 1
    assert (tmp_path / "data" / "synthesizer" / "train.jsonl").exists()
    assert "1 trajectories" in out
