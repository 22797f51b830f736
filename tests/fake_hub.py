"""A loopback fake of the Hugging Face Hub endpoints that ``huggingface_hub`` calls to upload.

    with FakeHub() as hub:   # then HF_ENDPOINT=hub.url for the uploading process
        ...
    hub.files                 # {repo_id: {path: bytes}} as committed
    hub.requests              # (method, path, headers in lower case) of every request

It speaks what ``HfApi.create_repo`` and ``HfApi.upload_folder`` send:
``POST /api/repos/create``, ``POST /api/validate-yaml`` (the card's front
matter, parsed and checked for the fields the Hub reads),
``POST /api/{type}s/{repo}/preupload/{revision}``
(every file is answered "regular", so no LFS or Xet transfer is needed) and
``POST /api/{type}s/{repo}/commit/{revision}`` (NDJSON: a header line, then one
base64 file per line). Anything else is a 404 that the test will see in
``requests``. A request without ``Authorization: Bearer <token>`` is refused
with 401 when ``token`` is set.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml


class FakeHub:
    """A threaded HTTP server on 127.0.0.1 recording repositories and commits."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.repos: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, bytes]] = {}
        self.commits: list[dict[str, Any]] = []
        self.cards: list[dict[str, Any]] = []
        """Every README front matter sent to /api/validate-yaml, parsed."""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                body = self._body()
                with hub._lock:
                    hub.requests.append(
                        (self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                    )
                if hub.token and self.headers.get("Authorization") != f"Bearer {hub.token}":
                    self._reply(401, {"error": "Invalid credentials in Authorization header"})
                    return
                path = self.path.split("?")[0]
                if self.command == "POST" and path == "/api/repos/create":
                    spec = json.loads(body)
                    repo = f"{spec.get('organization') or 'user'}/{spec['name']}"
                    repo = spec["name"] if "/" in spec["name"] else repo
                    hub.repos[repo] = spec
                    self._reply(200, {"url": f"{hub.url}/datasets/{repo}", "name": repo})
                    return
                if self.command == "POST" and path == "/api/validate-yaml":
                    self._validate_card(json.loads(body))
                    return
                match = re.fullmatch(r"/api/(\w+)s/(.+)/(preupload|commit)/([^/]+)", path)
                if self.command == "POST" and match:
                    _, repo, action, _ = match.groups()
                    if action == "preupload":
                        files = json.loads(body)["files"]
                        self._reply(
                            200,
                            {
                                "files": [
                                    {
                                        "path": f["path"],
                                        "uploadMode": "regular",
                                        "shouldIgnore": False,
                                    }
                                    for f in files
                                ]
                            },
                        )
                        return
                    lines = [json.loads(line) for line in body.decode().splitlines() if line]
                    stored = hub.files.setdefault(repo, {})
                    for line in lines:
                        if line["key"] == "file":
                            value = line["value"]
                            stored[value["path"]] = base64.b64decode(value["content"])
                    oid = hashlib.sha1(body).hexdigest()
                    hub.commits.append({"repo": repo, "header": lines[0]["value"], "oid": oid})
                    self._reply(
                        200,
                        {
                            "commitUrl": f"{hub.url}/datasets/{repo}/commit/{oid}",
                            "commitOid": oid,
                            "pullRequestUrl": None,
                        },
                    )
                    return
                self._reply(404, {"error": f"the fake hub does not know {self.command} {path}"})

            def _validate_card(self, spec: dict[str, Any]) -> None:
                """The card's front matter must parse and name the fields the Hub reads."""
                content = spec["content"]
                errors = []
                try:
                    front = yaml.safe_load(content.split("---\n")[1])
                except (IndexError, yaml.YAMLError) as exc:
                    front, errors = None, [{"message": f"no front matter: {exc}"}]
                if isinstance(front, dict):
                    hub.cards.append(front)
                    for key in ("license", "configs", "task_categories", "size_categories"):
                        if key not in front:
                            errors.append({"message": f'"{key}" is missing'})
                elif not errors:
                    errors.append({"message": "the front matter is not a mapping"})
                self._reply(400 if errors else 200, {"errors": errors, "warnings": []})

            do_GET = do_POST = do_PUT = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll: shutdown() waits up to one interval (0.5 s by default).
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
