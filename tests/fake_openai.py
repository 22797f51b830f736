"""An OpenAI-compatible chat server on 127.0.0.1 with knobs for faults.

    with FakeOpenAI(reply=lambda body, n: Reply("hello"), latency=0.05) as server:
        LLM("openai/x", api_base=server.url, api_key="k")

``reply(body, n)`` gets the request JSON and its arrival number and returns a
:class:`Reply`: text, status, headers (``Retry-After``), an extra delay, a
``finish_reason``, a raw malformed body, empty choices, or a hang. The server
records every request, arrival times, and the peak number in progress.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Quiet(ThreadingHTTPServer):
    """A client that hangs up (a run stopping, a timeout) is normal here: no traceback
    on stderr, where in-process CLI tests read the command's own messages."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


@dataclass
class Reply:
    content: str = "ok"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    finish_reason: str = "stop"
    raw_body: bytes | None = None
    empty_choices: bool = False
    prompt_tokens: int = 10
    completion_tokens: int = 5
    reasoning_content: str | None = None  # vLLM --reasoning-parser, DeepSeek
    reasoning: str | None = None  # newer vLLM, OpenRouter
    reasoning_tokens: int | None = None  # usage.completion_tokens_details


Handler = Callable[[dict[str, Any], int], Reply]


def completion_body(spec: Reply, request: dict[str, Any]) -> dict[str, Any]:
    """The chat completion JSON a server sends for ``spec`` (a 200 reply)."""
    message: dict[str, Any] = {"role": "assistant", "content": spec.content}
    for key in ("reasoning_content", "reasoning"):
        if getattr(spec, key) is not None:
            message[key] = getattr(spec, key)
    choices = (
        []
        if spec.empty_choices
        else [{"index": 0, "message": message, "finish_reason": spec.finish_reason}]
    )
    usage: dict[str, Any] = {
        "prompt_tokens": spec.prompt_tokens,
        "completion_tokens": spec.completion_tokens,
        "total_tokens": spec.prompt_tokens + spec.completion_tokens,
    }
    if spec.reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": spec.reasoning_tokens}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "fake"),
        "choices": choices,
        "usage": usage,
    }


class FakeOpenAI:
    """A threaded HTTP server speaking enough of the OpenAI chat API for litellm."""

    def __init__(self, reply: Handler | None = None, latency: float = 0.0, port: int = 0) -> None:
        self.reply = reply or (lambda body, n: Reply())
        self.latency = latency
        self.requests: list[dict[str, Any]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.arrivals: list[float] = []
        self.active = 0
        self.peak = 0
        self.served_seconds = 0.0  # the sum of every reply's latency: the ideal's work
        self._lock = threading.Lock()
        self._port = port
        self._server: _Quiet | None = None
        self._connections: set[Any] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with fake._lock:
                    fake._connections.add(self.connection)

            def finish(self) -> None:
                with fake._lock:
                    fake._connections.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    number = len(fake.requests)
                    fake.requests.append(body)
                    fake.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
                    fake.arrivals.append(time.monotonic())
                    fake.active += 1
                    fake.peak = max(fake.peak, fake.active)
                try:
                    spec = fake.reply(body, number)
                    with fake._lock:
                        fake.served_seconds += fake.latency + spec.delay
                    time.sleep(fake.latency + spec.delay)
                finally:
                    with fake._lock:
                        fake.active -= 1
                self._send(spec, body)

            def do_GET(self) -> None:  # /stats, for benchmarks running the server apart
                with fake._lock:
                    stats = {"requests": len(fake.requests), "served_seconds": fake.served_seconds}
                self._send(Reply(), {}, json.dumps(stats).encode())

            def _send(self, spec: Reply, body: dict[str, Any], raw: bytes | None = None) -> None:
                if raw is not None or spec.raw_body is not None:
                    payload = raw if raw is not None else spec.raw_body
                elif spec.status != 200:
                    payload = json.dumps(
                        {"error": {"message": f"fake error {spec.status}", "type": "fake"}}
                    ).encode()
                else:
                    payload = json.dumps(completion_body(spec, body)).encode()
                try:
                    self.send_response(spec.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in spec.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        _Quiet.request_queue_size = 1024
        self._server = _Quiet(("127.0.0.1", self._port), _Handler)
        self._server.daemon_threads = True
        # A short poll: shutdown() waits up to one interval, and every test stops a server.
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def kill(self) -> None:
        """Die like a crashed server: stop listening and drop every open connection."""
        self.stop()
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":  # a standalone server for benchmarks: prints its port, runs until killed
    import argparse
    import random

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per reply (the mean)")
    parser.add_argument("--teacher", action="store_true", help="answer as the canned GEM teacher")
    parser.add_argument(
        "--shape",
        choices=("fixed", "lognormal"),
        default="fixed",
        help="fixed: every reply takes --latency; lognormal: heavy-tailed with mean --latency "
        "per 1000 characters of reply (at least one unit), as a teacher writing long replies",
    )
    parser.add_argument("--sigma", type=float, default=1.0, help="lognormal spread")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    answer: Handler = lambda body, n: Reply()  # noqa: E731
    if args.teacher:
        from teacher import canned_reply

        answer = canned_reply
    latency = args.latency
    if args.shape == "lognormal":
        rng, draw, base = random.Random(args.seed), threading.Lock(), answer

        def heavy_tailed(body: dict[str, Any], n: int) -> Reply:
            spec = base(body, n)
            with draw:  # mean 1: mu = -sigma^2 / 2
                factor = rng.lognormvariate(-(args.sigma**2) / 2, args.sigma)
            spec.delay += args.latency * factor * max(1.0, len(spec.content) / 1000)
            return spec

        answer, latency = heavy_tailed, 0.0
    server = FakeOpenAI(answer, latency=latency).start()
    print(server.port, flush=True)
    threading.Event().wait()
