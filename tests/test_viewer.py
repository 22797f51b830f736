"""`gemlib view`: the page it writes (self-contained, safe with hostile text) and --serve."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from gemlib.analysis.viewer import write_viewer
from gemlib.formats import write_jsonl
from gemlib.pipeline.rundir import read_trajectories
from viewer_data import HOSTILE, NEEDLE, make_run


def _parts(page: str) -> tuple[dict[str, object], str, str]:
    """The embedded data (records unpacked), the inline script and the CSP of a viewer page."""
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert len(scripts) == 3, "exactly the index, the packed records and the viewer's script"
    (data_attrs, data), (records_attrs, records), (code_attrs, code) = scripts
    assert 'type="application/json"' in data_attrs
    assert 'type="application/octet-stream"' in records_attrs
    assert code_attrs == ""
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert csp is not None
    unpacked = json.loads(data)
    unpacked["records"] = json.loads(gzip.decompress(base64.b64decode(records)))
    return unpacked, code, csp.group(1)


def test_the_page_holds_every_item_and_loads_nothing(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    page_path = write_viewer(run)
    assert page_path == run / "viewer.html"
    page = page_path.read_text(encoding="utf-8")
    data, code, csp = _parts(page)
    index = data["index"]
    assert isinstance(index, list)
    kinds = [e["kind"] for e in index]
    assert kinds.count("kept") == 19
    assert kinds.count("rejected") == 3
    assert data["stage_order"] == ["writer", "rule_validator"]
    records = [json.loads(r) for r in data["records"]]  # type: ignore[attr-defined]
    assert any(NEEDLE in json.dumps(r) for r in records)
    flagged = next(r for r in records if r.get("rule") == "ungrounded_argument")
    assert flagged["detail"]["item"]["messages"][2]["tool_calls"][0]["arguments"] == {
        "code": "K-999"
    }
    assert flagged["detail"]["problems"][0]["message_index"] == 2
    # Nothing is fetched: no URL in the page, a CSP of default-src 'none', and the one
    # script allowed by its hash (so an injected one would not run).
    assert not re.search(r"https?://|(src|href)=\"(?!data:)", page.replace(HOSTILE, ""))
    assert "default-src 'none'" in csp
    digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


def test_hostile_text_stays_text(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    page = write_viewer(run).read_text(encoding="utf-8")
    assert HOSTILE not in page, "the closing script tag is escaped in the embedded JSON"
    data, _, _ = _parts(page)
    texts = [json.loads(r) for r in data["records"]]  # type: ignore[attr-defined]
    assert any(HOSTILE in m["content"] for r in texts for m in r.get("messages", [])), (
        "and decodes back to the same text"
    )
    code = (Path(__file__).parents[1] / "src/gemlib/data/viewer.js").read_text()
    assert "innerHTML" not in code
    assert "insertAdjacentHTML" not in code


def test_a_trajectory_file_in_any_format_can_be_viewed(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    write_jsonl(read_trajectories(run), tmp_path / "data.jsonl", "openai")
    done = subprocess.run(
        [sys.executable, "-m", "gemlib.cli", "view", "data.jsonl"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "data.viewer.html"
    data, _, _ = _parts((tmp_path / "data.viewer.html").read_text(encoding="utf-8"))
    assert len(data["index"]) == 19  # type: ignore[arg-type]
    missing = subprocess.run(
        [sys.executable, "-m", "gemlib.cli", "view", "nope"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2
    assert "no such file or run directory: nope" in missing.stderr


def test_serve_answers_on_loopback_only_with_the_page(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "gemlib.cli", "view", str(run), "--serve"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == str(run / "viewer.html")
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url is not None, line
        with urllib.request.urlopen(url.group(0), timeout=10) as reply:
            assert reply.read() == (run / "viewer.html").read_bytes()
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(url.group(0) + "outputs.jsonl", timeout=10)
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.parametrize("sigint", [signal.SIG_IGN, signal.SIG_DFL], ids=["ignored", "default"])
def test_sigterm_stops_serving_even_with_sigint_ignored(
    tmp_path: Path, sigint: signal.Handlers
) -> None:
    """A shell starts a job with ``&`` with SIGINT ignored; SIGTERM must still stop it.

    gemlib turns SIGTERM into SIGINT for asyncio's clean stop; with SIGINT ignored,
    raising it did nothing, and the command ran on until killed. (`view --serve`
    treats an interrupt while it serves as its normal end, exit 0; one that comes
    between the printed address and the serving loop is the command's, exit 143.)
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "gemlib.cli", "view", str(make_run(tmp_path)), "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()
        assert "serving on http://127.0.0.1:" in process.stdout.readline()
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode in (0, 143), stderr
    assert "Traceback" not in stderr


def test_a_run_that_keeps_documents_lists_their_text(tmp_path: Path) -> None:
    from gemlib import Pipeline
    from gemlib.gem.prefilter import ProcedurePrefilter
    from gemlib.gem.segmenter import Segmenter

    corpus = Path(__file__).parents[1] / "examples" / "corpus" / "gem_examples.jsonl"
    run = tmp_path / "segments"
    Pipeline([Segmenter(), ProcedurePrefilter()]).run(corpus, run_dir=run, progress_interval=None)
    data, _, _ = _parts(write_viewer(run).read_text(encoding="utf-8"))
    kept = [e for e in data["index"] if e["kind"] == "kept"]  # type: ignore[attr-defined]
    assert len(kept) == 16
    first = kept[0]
    assert first["messages"] is None
    assert first["preview"].startswith("How to return an item you bought online")
