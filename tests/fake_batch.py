"""A loopback fake of OpenAI's files and batches endpoints, with knobs for every batch fault.

    with FakeBatch(teacher_reply, delay=0.2) as server:
        LLM("openai/teacher", api_base=server.url, api_key="k", batch=BatchSettings(...))

``reply(body, n)`` answers each request line as the chat fake does (a
:class:`fake_openai.Reply`; a status other than 200 becomes an error line).
``outcome(batch_number)`` chooses how a batch ends: ``completed``,
``expired`` (only the first ``partial`` share of its lines answered),
``failed`` or ``cancelled`` (none answered). Anthropic's Message Batches
(``/v1/messages/batches``) are served too, with the same knobs. ``on_create(batch)`` runs when a
batch is created, before the reply is sent (a test kills the client there).
``fault(method, path)`` may answer any call itself with ``(status, body, headers)``
(upload, create, retrieve failing); ``mangle(kind, lines)`` rewrites the lines of a
finished batch's ``output`` or ``error`` file (reordered, missing, duplicated, garbled).
A batch stays ``in_progress`` for ``delay`` seconds. Every created batch's
custom IDs are kept in ``submitted`` (in order); a batch holding the same
custom ID twice is refused with 400, as OpenAI refuses it.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from fake_openai import Handler, Reply, completion_body

Outcome = Callable[[int], str]
Fault = Callable[[str, str], "tuple[int, Any, dict[str, str]] | None"]
MESSAGE_BATCHES = "/v1/messages/batches"


def anthropic_message(spec: Reply, request: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages API reply for ``spec``."""
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": request["params"]["model"],
        "content": [{"type": "text", "text": spec.content}],
        "stop_reason": "max_tokens" if spec.finish_reason == "length" else "end_turn",
        "usage": {"input_tokens": spec.prompt_tokens, "output_tokens": spec.completion_tokens},
    }


class FakeBatch:
    """Files and batches over HTTP on 127.0.0.1; see the module docstring."""

    def __init__(
        self,
        reply: Handler | None = None,
        *,
        delay: float = 0.0,
        outcome: Outcome | None = None,
        partial: float = 0.5,
        on_create: Callable[[dict[str, Any]], None] | None = None,
        fault: Fault | None = None,
        mangle: Callable[[str, list[bytes]], list[bytes]] | None = None,
    ) -> None:
        self.reply = reply or (lambda body, n: Reply())
        self.delay = delay
        self.outcome = outcome or (lambda n: "completed")
        self.partial = partial
        self.on_create = on_create
        self.fault = fault
        self.mangle = mangle
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.submitted: list[list[str]] = []
        self.calls: list[str] = []
        self.answered = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def all_submitted(self) -> list[str]:
        """Every custom ID in every created batch, repeats included."""
        with self._lock:
            return [cid for batch in self.submitted for cid in batch]

    # ------------------------------------------------------------------ batch life

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    def _advance(self, batch: dict[str, Any]) -> None:
        """Finish a batch whose time has come (called under the lock on every read)."""
        if batch["status"] not in ("validating", "in_progress", "cancelling"):
            return
        if batch["status"] != "cancelling" and time.time() < batch["_due"]:
            batch["status"] = "in_progress"
            return
        ending = "cancelled" if batch["status"] == "cancelling" else batch["_ending"]
        lines = [json.loads(x) for x in self.files[batch["input_file_id"]].splitlines() if x]
        answer = {"completed": len(lines), "expired": int(len(lines) * self.partial)}
        outputs, errors = [], []
        for position, line in enumerate(lines):
            if position >= answer.get(ending, 0):
                if ending == "expired":
                    errors.append(
                        {
                            "id": self._new_id("batch_req"),
                            "custom_id": line["custom_id"],
                            "response": None,
                            "error": {"code": "batch_expired", "message": "expired"},
                        }
                    )
                continue
            spec = self.reply(line["body"], self.answered)
            self.answered += 1
            if spec.status == 200:
                body = completion_body(spec, line["body"])
                target = outputs
            else:
                body = {"error": {"message": f"fake error {spec.status}", "type": "fake"}}
                target = errors
            target.append(
                {
                    "id": self._new_id("batch_req"),
                    "custom_id": line["custom_id"],
                    "response": {"status_code": spec.status, "request_id": "r", "body": body},
                    "error": None,
                }
            )
        for key, entries in (("output_file_id", outputs), ("error_file_id", errors)):
            if entries:
                file_id = self._new_id("file")
                content = [json.dumps(e).encode() for e in entries]
                if self.mangle is not None:
                    content = self.mangle(key.split("_")[0], content)
                self.files[file_id] = b"".join(line + b"\n" for line in content)
                batch[key] = file_id
        batch["status"] = ending
        batch["request_counts"] = {
            "total": len(lines),
            "completed": len(outputs),
            "failed": len(errors),
        }

    def _end_messages(self, batch: dict[str, Any], host: str) -> None:
        """Finish an Anthropic message batch whose time has come (under the lock)."""
        status = batch["processing_status"]
        if status == "ended" or (status == "in_progress" and time.time() < batch["_due"]):
            return
        ending = "canceled" if status == "canceling" else batch["_ending"]
        answered = {"completed": len(batch["_requests"])}.get(
            ending, int(len(batch["_requests"]) * self.partial) if ending == "expired" else 0
        )
        lines, counts = (
            [],
            {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
        )
        for position, request in enumerate(batch["_requests"]):
            if position >= answered:
                kind = "expired" if ending == "expired" else "canceled"
                result: dict[str, Any] = {"type": kind}
            else:
                spec = self.reply(request["params"], self.answered)
                self.answered += 1
                if spec.status == 200:
                    result = {"type": "succeeded", "message": anthropic_message(spec, request)}
                else:
                    kinds = {400: "invalid_request_error", 429: "rate_limit_error"}
                    error = {"type": kinds.get(spec.status, "api_error"), "message": "fake"}
                    result = {"type": "errored", "error": {"type": "error", "error": error}}
                kind = result["type"]
            counts[kind] += 1
            lines.append(json.dumps({"custom_id": request["custom_id"], "result": result}))
        batch["_results"] = ("\n".join(lines) + "\n").encode()
        batch["processing_status"] = "ended"
        batch["request_counts"] = counts
        batch["results_url"] = f"http://{host}{MESSAGE_BATCHES}/{batch['id']}/results"

    def _public(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    # ------------------------------------------------------------------ HTTP

    def start(self) -> FakeBatch:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _faulted(self, method: str, path: str) -> bool:
                answer = fake.fault(method, path) if fake.fault is not None else None
                if answer is None:
                    return False
                status, body, headers = answer
                self._body()
                self._send(status, body, headers)
                return True

            def _send(
                self, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed (crash tests)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def do_POST(self) -> None:
                path = urlparse(self.path).path
                fake.calls.append(f"POST {path}")
                if self._faulted("POST", path):
                    return None
                if path == MESSAGE_BATCHES:
                    return self._create_messages()
                if path.startswith(MESSAGE_BATCHES + "/") and path.endswith("/cancel"):
                    with fake._lock:
                        batch = fake.batches[path.split("/")[4]]
                        if batch["processing_status"] == "in_progress":
                            batch["processing_status"] = "canceling"
                        return self._send(200, fake._public(batch))
                if path == "/v1/files":
                    return self._upload()
                if path == "/v1/batches":
                    return self._create()
                if path.startswith("/v1/batches/") and path.endswith("/cancel"):
                    with fake._lock:
                        batch = fake.batches[path.split("/")[3]]
                        if batch["status"] in ("validating", "in_progress"):
                            batch["status"] = "cancelling"
                        return self._send(200, fake._public(batch))
                return self._send(404, {"error": {"message": "no such route"}})

            def _upload(self) -> None:
                raw = b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n"
                message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                    raw + self._body()
                )
                content = b""
                for part in message.iter_parts():
                    if part.get_param("name", header="content-disposition") == "file":
                        content = part.get_payload(decode=True)
                with fake._lock:
                    file_id = fake._new_id("file")
                    fake.files[file_id] = content
                self._send(200, {"id": file_id, "object": "file", "purpose": "batch"})

            def _create(self) -> None:
                request = json.loads(self._body())
                with fake._lock:
                    content = fake.files.get(request["input_file_id"])
                    if content is None:
                        return self._send(404, {"error": {"message": "no such file"}})
                    ids = [json.loads(x)["custom_id"] for x in content.splitlines() if x]
                    if len(set(ids)) != len(ids):
                        return self._send(400, {"error": {"message": "duplicate custom_id"}})
                    number = len(fake.submitted)
                    fake.submitted.append(ids)
                    batch = {
                        "id": fake._new_id("batch"),
                        "object": "batch",
                        "endpoint": request["endpoint"],
                        "input_file_id": request["input_file_id"],
                        "completion_window": request["completion_window"],
                        "status": "validating",
                        "metadata": request.get("metadata") or {},
                        "created_at": int(time.time()),
                        "output_file_id": None,
                        "error_file_id": None,
                        "request_counts": {"total": len(ids), "completed": 0, "failed": 0},
                        "_due": time.time() + fake.delay,
                        "_ending": fake.outcome(number),
                    }
                    fake.batches[batch["id"]] = batch
                if fake.on_create is not None:
                    fake.on_create(fake._public(batch))
                self._send(200, fake._public(batch))

            def _create_messages(self) -> None:
                requests = json.loads(self._body())["requests"]
                ids = [r["custom_id"] for r in requests]
                with fake._lock:
                    if len(set(ids)) != len(ids):
                        return self._send(400, {"error": {"message": "duplicate custom_id"}})
                    number = len(fake.submitted)
                    fake.submitted.append(ids)
                    batch = {
                        "id": fake._new_id("msgbatch"),
                        "type": "message_batch",
                        "processing_status": "in_progress",
                        "request_counts": {
                            "processing": len(ids),
                            "succeeded": 0,
                            "errored": 0,
                            "canceled": 0,
                            "expired": 0,
                        },
                        "created_at": datetime.now(timezone.utc).isoformat(),
                        "results_url": None,
                        "_requests": requests,
                        "_due": time.time() + fake.delay,
                        "_ending": fake.outcome(number),
                    }
                    fake.batches[batch["id"]] = batch
                if fake.on_create is not None:
                    fake.on_create(fake._public(batch))
                self._send(200, fake._public(batch))

            def _messages_get(self, url: Any) -> None:
                parts = url.path.split("/")
                if url.path == MESSAGE_BATCHES:
                    found = [b for b in fake.batches.values() if "_requests" in b]
                    newest = sorted(found, key=lambda b: b["id"], reverse=True)
                    after = parse_qs(url.query).get("after_id", [None])[0]
                    if after is not None:
                        newest = [b for b in newest if b["id"] < after]
                    page = newest[:100]
                    for batch in page:
                        fake._end_messages(batch, self.headers["Host"])
                    listing = {
                        "data": [fake._public(b) for b in page],
                        "has_more": len(newest) > 100,
                    }
                    return self._send(200, listing)
                batch = fake.batches.get(parts[4])
                if batch is None:
                    return self._send(404, {"error": {"message": "no such batch"}})
                if url.path.endswith("/results"):
                    return self._send(200, batch["_results"])
                fake._end_messages(batch, self.headers["Host"])
                return self._send(200, fake._public(batch))

            def do_GET(self) -> None:
                url = urlparse(self.path)
                fake.calls.append(f"GET {url.path}")
                if self._faulted("GET", url.path):
                    return None
                parts = url.path.split("/")
                with fake._lock:
                    if url.path.startswith(MESSAGE_BATCHES):
                        return self._messages_get(url)
                    if url.path == "/v1/batches":
                        return self._list(parse_qs(url.query))
                    if url.path.startswith("/v1/batches/"):
                        batch = fake.batches.get(parts[3])
                        if batch is None:
                            return self._send(404, {"error": {"message": "no such batch"}})
                        fake._advance(batch)
                        return self._send(200, fake._public(batch))
                    if url.path.startswith("/v1/files/") and url.path.endswith("/content"):
                        content = fake.files.get(parts[3])
                        if content is None:
                            return self._send(404, {"error": {"message": "no such file"}})
                        return self._send(200, content)
                return self._send(404, {"error": {"message": "no such route"}})

            def _list(self, query: dict[str, list[str]]) -> None:
                newest = sorted(fake.batches.values(), key=lambda b: b["id"], reverse=True)
                after = query.get("after", [None])[0]
                if after is not None:
                    newest = [b for b in newest if b["id"] < after]
                limit = int(query.get("limit", ["20"])[0])
                page = newest[:limit]
                for batch in page:
                    fake._advance(batch)
                self._send(
                    200,
                    {
                        "object": "list",
                        "data": [fake._public(b) for b in page],
                        "has_more": len(newest) > limit,
                    },
                )

        ThreadingHTTPServer.request_queue_size = 256
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeBatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
