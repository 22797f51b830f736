"""Batch mode as a hostile provider meets it: garbled files, billing errors, echoed keys, disks."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fake_batch import FakeBatch
from fake_openai import Reply
from gemlib.errors import TransientModelError
from gemlib.llm import LLM
from gemlib.llm.batch import BatchSettings, ProviderBatch
from gemlib.llm.batch_anthropic import AnthropicBatchAPI
from gemlib.llm.batch_ledger import BatchLedger
from test_batch import FAST, _ask_all, _echo

KEY = "hunter2-not-shaped-like-a-key"


def _llm(server: FakeBatch, ledger: Path, **options: Any) -> LLM:
    return LLM(
        "openai/teacher",
        api_base=server.url,
        api_key=KEY,
        cache=False,
        backoff_base=0.01,
        batch=BatchSettings(ledger=ledger, **FAST),
        **options,
    )


def _once(kinds: dict[str, int]) -> Any:
    """A reply handler failing each named question once with the given status."""
    seen: set[str] = set()

    def reply(body: dict[str, Any], n: int) -> Reply:
        text = body["messages"][0]["content"]
        if text in kinds and text not in seen:
            seen.add(text)
            return Reply(status=kinds[text])
        return _echo(body, n)

    return reply


def test_a_billing_error_on_a_line_is_not_the_requests_fault(tmp_path: Path) -> None:
    with FakeBatch(_once({"q1": 402, "q2": 409})) as server:
        replies = _ask_all(_llm(server, tmp_path / "l.sqlite"), 4)
    assert replies == [f"re q{i}" for i in range(4)], "402/409 lines are retried, not rejected"


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/files"), ("POST", "/v1/batches")])
@pytest.mark.parametrize("status", [402, 400])
def test_a_refused_upload_or_create_is_not_the_requests_fault(
    tmp_path: Path, method: str, path: str, status: int
) -> None:
    failed: list[str] = []

    def fault(m: str, p: str) -> Any:
        if (m, p) == (method, path) and not failed:
            failed.append(p)
            return status, {"error": {"message": "insufficient_quota", "code": "billing"}}, {}
        return None

    with FakeBatch(_echo, fault=fault) as server:
        replies = _ask_all(_llm(server, tmp_path / "l.sqlite"), 3)
    assert failed
    assert replies == ["re q0", "re q1", "re q2"]


def test_a_key_echoed_in_errors_reaches_no_reason_and_no_ledger(tmp_path: Path) -> None:
    def fault(m: str, p: str) -> Any:
        if (m, p) == ("POST", "/v1/files"):
            return 500, {"error": {"message": f"Incorrect API key provided: {KEY}"}}, {}
        return None

    def leaky(kind: str, lines: list[bytes]) -> list[bytes]:
        return [line.replace(b"fake error", f"bad key {KEY}".encode()) for line in lines]

    ledger = tmp_path / "l.sqlite"
    with FakeBatch(_echo, fault=fault) as server:
        upload = _ask_all(_llm(server, ledger, max_retries=0), 1)
    with FakeBatch(lambda body, n: Reply(status=400), mangle=leaky) as server:
        line = _ask_all(_llm(server, ledger, max_retries=0), 1)
    for error in (*upload, *line):
        assert isinstance(error, Exception)
        assert KEY not in str(error)
        assert KEY not in repr(error)
    found = [p for p in tmp_path.iterdir() if KEY.encode() in p.read_bytes()]
    assert found == [], "the key reached the ledger's files"


def _mangled(mangle: Any, tmp_path: Path, count: int = 6) -> tuple[list[Any], FakeBatch]:
    with FakeBatch(_echo, mangle=mangle) as server:
        replies = _ask_all(_llm(server, tmp_path / "l.sqlite"), count)
    return replies, server


def test_output_lines_in_another_order_with_garbage_and_strangers_are_matched_by_id(
    tmp_path: Path,
) -> None:
    def mangle(kind: str, lines: list[bytes]) -> list[bytes]:
        stranger = json.loads(lines[0])
        stranger["custom_id"] = "gemlib-not-ours"
        stranger["response"]["body"]["choices"][0]["message"]["content"] = "WRONG"
        return [b"not json {", json.dumps(stranger).encode(), *reversed(lines), b"", b"[1]"]

    replies, server = _mangled(mangle, tmp_path)
    assert replies == [f"re q{i}" for i in range(6)]
    assert len(server.submitted) == 1


def test_missing_output_lines_are_resubmitted_and_only_they(tmp_path: Path) -> None:
    def mangle(kind: str, lines: list[bytes]) -> list[bytes]:
        return lines[2:] if len(lines) == 6 else lines

    replies, server = _mangled(mangle, tmp_path)
    assert replies == [f"re q{i}" for i in range(6)]
    assert [len(b) for b in server.submitted] == [6, 2]


def test_a_duplicated_custom_id_keeps_its_reply_in_the_ledger(tmp_path: Path) -> None:
    def mangle(kind: str, lines: list[bytes]) -> list[bytes]:
        twin = json.loads(lines[0])
        twin["response"] = {"status_code": 500, "body": {"error": {"message": "late twin"}}}
        return [*lines, json.dumps(twin).encode()]

    with FakeBatch(_echo, mangle=mangle) as server:
        first = _ask_all(_llm(server, tmp_path / "l.sqlite"), 6)
        again = _ask_all(_llm(server, tmp_path / "l.sqlite"), 6)
    assert first == again == [f"re q{i}" for i in range(6)]
    assert len(server.submitted) == 1, "every reply was kept; the rerun sent nothing"


def test_a_ledger_failing_after_the_batch_ran_never_leaves_callers_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(BatchLedger, "finished", full)
    with FakeBatch(_echo) as server:
        llm = _llm(server, tmp_path / "l.sqlite", max_retries=0)

        replies: list[Any] = []
        worker = threading.Thread(target=lambda: replies.extend(_ask_all(llm, 2)), daemon=True)
        worker.start()
        worker.join(20)
    assert not worker.is_alive(), "the callers hang once the ledger cannot record the results"
    assert [type(r).__name__ for r in replies] == ["TransientModelError"] * 2


def test_a_results_url_on_another_server_never_gets_the_key() -> None:
    with FakeBatch(_echo) as ours, FakeBatch(_echo) as theirs:
        api = AnthropicBatchAPI(api_base=ours.url.removesuffix("/v1"), api_key=KEY, model="m")
        stranger = {"results_url": theirs.url + "/messages/batches/x/results"}

        async def read() -> None:
            try:
                await api.results(ProviderBatch("x", "ended", True, stranger))
            finally:
                await api.aclose()

        with pytest.raises(TransientModelError, match="another server"):
            asyncio.run(read())
    assert theirs.calls == []


def test_a_batch_that_never_ends_and_cannot_be_cancelled_frees_its_requests(
    tmp_path: Path,
) -> None:
    cancels: list[str] = []

    def fault(m: str, p: str) -> Any:
        if p.endswith("/cancel"):
            cancels.append(p)
            server.delay = 0.0  # later batches finish; the first stays in_progress forever
            return 500, {"error": {"message": "cannot cancel"}}, {}
        return None

    with FakeBatch(_echo, delay=1e9, fault=fault) as server:
        llm = LLM(
            "openai/teacher",
            api_base=server.url,
            api_key=KEY,
            cache=False,
            backoff_base=0.01,
            max_retries=2,
            # The never-ending batch costs one max_wait; the retries' batches must finish
            # within one too, which 0.3 s did not under coverage on a loaded machine.
            batch=BatchSettings(ledger=tmp_path / "l.sqlite", **{**FAST, "max_wait": 1.0}),
        )
        replies = _ask_all(llm, 3)
    assert cancels
    assert replies == ["re q0", "re q1", "re q2"]
    assert [len(b) for b in server.submitted] == [3, 3]


def test_429_with_retry_after_on_create_and_500s_on_retrieve_are_waited_out(
    tmp_path: Path,
) -> None:
    seen: dict[str, int] = {}

    def fault(m: str, p: str) -> Any:
        kind = (
            "create" if p == "/v1/batches" else "retrieve" if p.startswith("/v1/batches/") else ""
        )
        seen[kind] = seen.get(kind, 0) + 1
        if kind == "create" and seen[kind] == 1:
            return 429, {"error": {"message": "slow down"}}, {"Retry-After": "0.5"}
        if kind == "get" and seen[kind] <= 4:
            return 500, {"error": {"message": "oops"}}, {}
        return None

    with FakeBatch(_echo, fault=fault) as server:
        started = time.monotonic()
        replies = _ask_all(_llm(server, tmp_path / "l.sqlite"), 3)
    assert replies == ["re q0", "re q1", "re q2"]
    assert time.monotonic() - started >= 0.5, "Retry-After was honoured"
    assert [len(b) for b in server.submitted] == [3], "one batch, created on the second try"
