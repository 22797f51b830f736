"""Infrastructure failures are never the item's fault (issue 14, runtime part).

An outage, a wrong address or model name, spent retries, a broken cache: the
item stays not done (no output, no rejection) and the next run retries it; a
model that cannot be reached at all stops the run within seconds with exit 2.
Marked ``faults``; everything talks to the loopback fake server or to
subprocesses on this machine.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI, Reply
from gemlib import Document, Pipeline, stage
from gemlib.errors import RunAborted
from gemlib.llm import LLM, Limits
from gemlib.pipeline.rundir import open_results
from test_faults import Echo

pytestmark = pytest.mark.faults


def _llm(url: str, tmp_path: Path, **options: Any) -> LLM:
    options.setdefault("max_retries", 2)
    options.setdefault("cache", tmp_path / "cache.sqlite")
    return LLM(
        "openai/flaky",
        api_base=url,
        api_key="k",
        timeout=2.0,
        backoff_base=0.02,
        backoff_max=0.1,
        limits=Limits(max_concurrency=4),
        **options,
    )


def _echo(body: dict[str, Any], n: int) -> Reply:
    return Reply("echo " + body["messages"][0]["content"].removeprefix("Repeat: "))


def _closed_port() -> int:
    probe = FakeOpenAI().start()
    port = probe.port
    probe.stop()
    return port


def _results(run_dir: Path) -> tuple[list[str], list[str]]:
    outputs, rejections = open_results(run_dir)
    return sorted(o["id"] for o in outputs), sorted(r.item_id for r in rejections)


def test_an_outage_leaves_items_for_retry_and_the_rerun_finishes_them(tmp_path: Path) -> None:
    """Spent retries are not the item's fault: not rejected, retried by the next run.

    Fails on the code before the fix: the items became final `model_error` rejections.
    """
    docs = [Document(id=f"d{i:02d}", text="x") for i in range(30)]
    down = {f"d{i:02d}" for i in range(0, 30, 3)}

    def half_down(body: dict[str, Any], n: int) -> Reply:
        token = body["messages"][0]["content"].removeprefix("Repeat: ")
        return Reply(status=503) if token in down else _echo(body, n)

    with FakeOpenAI(half_down) as server:
        first = Pipeline([Echo(_llm(server.url, tmp_path))]).run(
            docs, run_dir=tmp_path / "run", progress_interval=None
        )
    assert first.stats.left_for_retry == {"echo: TransientModelError (HTTP 503)": len(down)}
    assert "HTTP 503" in first.stats.left_for_retry_examples["echo: TransientModelError (HTTP 503)"]
    assert first.rejections == []
    assert {o.id for o in first.outputs} == {d.id for d in docs} - down

    with FakeOpenAI(_echo) as server:
        second = Pipeline([Echo(_llm(server.url, tmp_path))]).run(
            docs, run_dir=tmp_path / "run", progress_interval=None
        )
        asked = {r["messages"][0]["content"].removeprefix("Repeat: ") for r in server.requests}
    assert asked == down, "the rerun asks only about the items left for retry"
    assert second.stats.left_for_retry == {}
    assert _results(tmp_path / "run") == (sorted(d.id for d in docs), [])


def test_what_a_stage_exception_means(tmp_path: Path) -> None:
    """ValueError is the item's fault (rejection); any other exception leaves it for retry.

    Fails on the code before the fix: the KeyError became an `exception` rejection.
    """

    @stage
    def picky(doc: Document) -> Document:
        if doc.text == "bad value":
            raise ValueError("not a number")
        if doc.text == "bug":
            raise KeyError("meta")
        return doc

    result = Pipeline([picky]).run(["fine", "bad value", "bug"], progress_interval=None)
    assert [d.text for d in result.outputs] == ["fine"]
    (rejection,) = result.rejections
    assert rejection.rule == "exception"
    assert "not a number" in rejection.reason
    assert result.stats.left_for_retry == {"picky: KeyError": 1}


def test_the_error_rate_counts_model_failures_over_a_recent_window(tmp_path: Path) -> None:
    """A model that starts failing mid-run stops the run even behind an always-fine stage.

    Fails on the code before the fix: failures were rejections, never counted, and the
    segmenter-like first stage kept the share under the bound: the run ended with exit 0.
    """

    @stage
    def always_fine(doc: Document) -> Document:
        return doc

    def dies_after_40(body: dict[str, Any], n: int) -> Reply:
        return _echo(body, n) if n < 40 else Reply(status=500)

    docs = [Document(id=f"d{i:03d}", text="x") for i in range(400)]
    with FakeOpenAI(dies_after_40) as server:
        llm = _llm(server.url, tmp_path, max_retries=1)
        with pytest.raises(RunAborted, match=r"of the last \d+ calls of stage 'echo' failed"):
            Pipeline([always_fine, Echo(llm)]).run(
                docs, run_dir=tmp_path / "run", progress_interval=None
            )
        sent = len(server.requests)
    kept, rejected = _results(tmp_path / "run")
    assert rejected == [], "a failing model rejects nothing"
    assert len(kept) >= 30
    assert sent < 200, "the run stops soon after the model starts failing"


def _cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gemlib.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "GEMLIB_CACHE_DIR": str(cwd / "cache"), "OPENAI_API_KEY": "none"},
    )


def _northwind() -> str:
    source = Path(__file__).parents[1] / "src" / "gemlib" / "data" / "gem_examples.jsonl"
    for line in source.read_text().splitlines():
        if "Northwind" in line:
            return str(json.loads(line)["text"])
    raise AssertionError("the example corpus lost its Northwind text")


def _corpus(tmp_path: Path, n: int, name: str = "corpus.jsonl") -> Path:
    """``n`` copies of the Northwind text (canned_reply answers them), told apart by a tag."""
    text = _northwind()
    corpus = tmp_path / name
    corpus.write_text(
        "".join(
            json.dumps({"id": f"doc{i:03d}", "text": f"{text}\n\n(copy tag-{i:03d})"}) + "\n"
            for i in range(n)
        )
    )
    return corpus


@pytest.mark.parametrize(
    ("model", "says"),
    [
        ("openai/teacher", "cannot reach the model at http://127.0.0.1:"),
        ("opnai/teacher", "unknown provider in the model name 'opnai/teacher'"),
        ("teacher", "unknown provider in the model name 'teacher'"),
    ],
)
def test_an_unusable_model_stops_the_run_within_seconds(
    tmp_path: Path, model: str, says: str
) -> None:
    """A closed port, a misspelt provider, no provider: one line, exit 2, nothing rejected.

    Fails on the code before the fix: every item became a rejection and the run exited 0.
    """
    corpus = _corpus(tmp_path, 40)
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    started = time.monotonic()
    done = _cli(
        "run",
        str(corpus),
        "--model",
        model,
        "--api-base",
        url,
        "--out",
        "r",
        "--quiet",
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert elapsed < 30
    kept, rejected = _results(tmp_path / "r")
    assert kept == []
    assert rejected == []


def test_the_cli_summary_says_what_was_left_for_retry(tmp_path: Path) -> None:
    """`gemlib run` says how many items were left for retry and why (exit 3); the rerun
    finishes them (exit 0) and the run equals an uninterrupted one.

    Fails on the code before the fix: exit 0 and the items were `model_error` rejections.
    """
    from teacher import canned_reply

    corpus = _corpus(tmp_path, 6)
    flaky = ("tag-001", "tag-004")

    def two_down(body: dict[str, Any], n: int) -> Reply:
        if any(tag in json.dumps(body) for tag in flaky):
            return Reply(status=502)
        return canned_reply(body, n)

    def command(out: str, url: str) -> list[str]:
        return ["run", str(corpus), "--model", "openai/t", "--api-base", url, "--out", out]

    with FakeOpenAI(canned_reply) as server:
        reference = _cli(*command("ref", server.url), cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    with FakeOpenAI(two_down) as server:
        first = _cli(*command("r", server.url), cwd=tmp_path)
    assert first.returncode == 3, first.stdout + first.stderr
    assert "2 items left for retry" in first.stdout
    assert "TransientModelError (HTTP 502)" in first.stdout
    kept, rejected = _results(tmp_path / "r")
    assert not any(k.startswith(("doc001", "doc004")) for k in kept + rejected)
    with FakeOpenAI(canned_reply) as server:
        again = _cli(*command("r", server.url), cwd=tmp_path)
        resumed = _cli("resume", "r", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "items left for retry" not in again.stdout
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "6 already done" in resumed.stdout
    assert _results(tmp_path / "r") == _results(tmp_path / "ref")


def test_a_prompt_too_long_is_the_items_fault(tmp_path: Path) -> None:
    """A 400 saying the prompt passes the context is a rejection; other 400s are not.

    Fails on the code before the fix: both became `model_error` rejections.
    """

    def context(body: dict[str, Any], n: int) -> Reply:
        token = body["messages"][0]["content"].removeprefix("Repeat: ")
        if token == "long":
            return Reply(
                status=400,
                raw_body=b'{"error": {"message": "This model\'s maximum context length is '
                b'8192 tokens. However, you requested 9000 tokens."}}',
            )
        if token == "odd":
            return Reply(status=400)
        return _echo(body, n)

    docs = [Document(id=i, text="x") for i in ("long", "odd", "fine")]
    with FakeOpenAI(context) as server:
        result = Pipeline([Echo(_llm(server.url, tmp_path))]).run(docs, progress_interval=None)
    assert [d.id for d in result.outputs] == ["fine"]
    (rejection,) = result.rejections
    assert rejection.rule == "prompt_too_long"
    assert rejection.item_id == "long"
    assert "maximum context length" in rejection.reason
    assert result.stats.left_for_retry == {"echo: ModelRequestError (HTTP 400)": 1}


def test_a_stage_exception_is_logged_once_per_cause_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The traceback of a stage's own exception is shown once, with credentials masked."""

    @stage
    def leaky(doc: Document) -> Document:
        raise RuntimeError("upstream said: Authorization: Bearer sk-abcdefghijklmnopqrstuvwx")

    with caplog.at_level(logging.WARNING, logger="gemlib"):
        result = Pipeline([leaky]).run(["a", "b", "c"], progress_interval=None)
    assert result.stats.left_for_retry == {"leaky: RuntimeError": 3}
    assert caplog.text.count("the item is left for the next run") == 1
    assert "Traceback" in caplog.text
    assert "sk-abcdefghijklmnopqrstuvwx" not in caplog.text + json.dumps(result.stats.model_dump())
