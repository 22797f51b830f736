"""A self-contained HTML viewer of a run's trajectories and rejections.

    gemlib view runs/one               # writes runs/one/viewer.html and prints its path
    gemlib view runs/one --serve       # and serves it on http://127.0.0.1:PORT/

Every kept trajectory is shown as a conversation (system prompt, turns, tool
calls with their arguments, tool replies, reasoning where recorded) beside its
source segment, with its tools and provenance (document, segment, workflow,
stage records), and every flagged or masked turn marked at its message.
Rejections are listed by stage and rule with the item's ID, the reason, the
model's reply and the problems found. The list is filtered (kept or rejected,
stage, rule, domain, task, tool count) and searched as you type, a page at a
time; each item's record is parsed only when it is opened, so a page of 10,000
trajectories stays usable (figures in docs/viewer.md).

The page is one file. The list's index is embedded as JSON, and the records as
gzip-compressed JSON, which the browser unpacks with ``DecompressionStream``
(a third to a tenth of the size). The script and styles are inline, and the
Content-Security-Policy lets the page load nothing at all (the script is
allowed by its hash). Model-written text is only ever set as text, never as
HTML.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import http.server
import json
import os
import threading
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from gemlib.analysis.summary import RunSummary, load_summary
from gemlib.errors import GemlibError
from gemlib.model import Rejection

__all__ = ["build_viewer", "serve_viewer", "write_viewer"]

PAGE_SIZE = 50
"""Items per page of the list."""


def _index_kept(record: dict[str, Any]) -> dict[str, Any]:
    labels = record.get("labels") or {}
    messages = record.get("messages") or []
    provenance = record.get("provenance") or {}
    problems = labels.get("problems") if isinstance(labels, dict) else None
    if not isinstance(record.get("messages"), list):  # a document or another kind of output
        text = record.get("text")
        preview = " ".join(text.split())[:160] if isinstance(text, str) else ""
        return {
            "kind": "kept",
            "id": str(record.get("id", "")),
            "stage": "",
            "rule": "",
            "domain": "",
            "task": "",
            "tools": 0,
            "messages": None,
            "preview": preview,
            "document": record.get("parent_id") or record.get("id"),
        }
    return {
        "kind": "kept",
        "id": str(record.get("id", "")),
        "stage": "",
        "rule": "",
        "domain": labels.get("domains") or labels.get("domain") or "",
        "task": labels.get("task") or "",
        "tools": len(record.get("tools") or []),
        "messages": len(messages),
        "calls": sum(len(m.get("tool_calls") or []) for m in messages if isinstance(m, dict)),
        "masked": sum(1 for m in messages if isinstance(m, dict) and m.get("train") is False),
        "flagged": len(problems) if isinstance(problems, list) else 0,
        "document": provenance.get("document_id") if isinstance(provenance, dict) else None,
    }


def _index_rejected(rejection: Rejection) -> dict[str, Any]:
    return {
        "kind": "rejected",
        "id": rejection.item_id,
        "stage": rejection.stage,
        "rule": rejection.rule,
        "reason": rejection.reason[:200],
        "document": rejection.document_id,
        "domain": "",
        "task": "",
        "tools": 0,
    }


def _kept_records(source: Path) -> Iterator[dict[str, Any]]:
    """Kept items as JSON-ready dicts, from a run directory or a file in any format."""
    if source.is_dir():
        from gemlib.pipeline.rundir import RunDir

        for record in RunDir(source).results()[0]:
            yield record if isinstance(record, dict) else {"value": record}
        return
    from gemlib.pipeline.rundir import read_trajectories

    for trajectory in read_trajectories(source):
        yield trajectory.model_dump(mode="json")


def _rejections(source: Path) -> Iterator[Rejection]:
    if source.is_dir():
        from gemlib.pipeline.rundir import RunDir

        yield from RunDir(source).results()[1]


def _funnel(summary: RunSummary | None) -> list[dict[str, Any]]:
    if summary is None:
        return []
    return [
        {
            "stage": name,
            "received": s.received,
            "emitted": s.emitted,
            "rejected": s.rejected,
            "rules": sorted(s.rejections_by_rule.items(), key=lambda kv: -kv[1]),
        }
        for name, s in summary.stats.stages.items()
    ]


def _embed(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</``, no ``<!--``)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _pack(records: list[str]) -> str:
    """The records as a JSON list, gzip-compressed and base64-encoded (no ``<`` in it)."""
    text = json.dumps(records, ensure_ascii=False, separators=(",", ":"))
    return base64.b64encode(gzip.compress(text.encode(), compresslevel=6, mtime=0)).decode()


def _record_text(record: Any) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def build_viewer(
    kept: Iterable[dict[str, Any]],
    rejections: Iterable[Rejection] = (),
    *,
    summary: RunSummary | None = None,
    title: str = "gemlib viewer",
) -> str:
    """The viewer page for ``kept`` records (trajectories as JSON) and ``rejections``."""
    index: list[dict[str, Any]] = []
    records: list[str] = []
    for record in kept:
        index.append(_index_kept(record))
        records.append(_record_text(record))
    for rejection in rejections:
        index.append(_index_rejected(rejection))
        records.append(_record_text(rejection.model_dump(mode="json")))
    kept_count = sum(1 for e in index if e["kind"] == "kept")
    data = {
        "index": index,
        "page_size": PAGE_SIZE,
        "stage_order": list(summary.stats.stages) if summary else [],
        "funnel": _funnel(summary),
    }
    script = (resources.files("gemlib") / "data" / "viewer.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    line = f"{kept_count} kept, {len(index) - kept_count} rejected"
    if summary is not None:
        models = sorted(set(summary.models().values()))
        line += f"; {summary.stats.inputs} corpus items; models: {', '.join(models) or 'none'}"
    template = Template(
        (resources.files("gemlib") / "data" / "viewer.html").read_text(encoding="utf-8")
    )
    return template.substitute(
        csp=csp,
        title=html.escape(title),
        summary=html.escape(line),
        data=_embed(data),
        records=_pack(records),
        script=script,
    )


def write_viewer(source: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Write the viewer of a run directory or a trajectory file; returns the page's path.

    ``out`` defaults to ``viewer.html`` inside a run directory, or beside a file.
    """
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"no such file or run directory: {path}")
    summary = load_summary(path) if path.is_dir() else None
    page = build_viewer(
        _kept_records(path), _rejections(path), summary=summary, title=f"gemlib: {path.name}"
    )
    target = Path(out) if out else (path / "viewer.html" if path.is_dir() else _beside(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, target)
    return target


def _beside(path: Path) -> Path:
    return path.with_name(path.stem + ".viewer.html")


class _OnePage(http.server.BaseHTTPRequestHandler):
    """Answers ``/`` with the page, anything else with 404."""

    page: bytes = b""

    def do_GET(self) -> None:  # the name http.server calls
        if self.path.split("?")[0] not in ("/", "/index.html"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.page)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the command prints the address once."""


def serve_viewer(
    page: str | os.PathLike[str], port: int = 0
) -> tuple[http.server.ThreadingHTTPServer, threading.Thread]:
    """Serve a written viewer page on 127.0.0.1 (``port`` 0: any free port), in a thread.

    Returns the server (``server.server_address[1]`` is the port; call
    ``server.shutdown()`` to stop) and its thread. Only loopback is bound.
    """
    try:
        body = Path(page).read_bytes()
    except OSError as exc:
        raise GemlibError(f"cannot read {page}: {exc.strerror}") from None
    handler = type("Page", (_OnePage,), {"page": body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, name="gemlib-viewer", daemon=True)
    thread.start()
    return server, thread
