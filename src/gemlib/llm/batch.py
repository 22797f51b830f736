"""Batch mode: requests gathered into provider batches at batch prices.

    teacher = LLM("openai/gpt-4.1-mini", batch=True)        # or BatchSettings(...)
    pipe = Pipeline.gem("openai/gpt-4.1-mini", batch=True)

:class:`BatchBackend` is a backend like any other: ``acomplete(request)``
queues the request and waits for its own result. Queued requests are flushed
into one batch file when ``max_requests`` or ``max_bytes`` is reached, when
``flush_after`` seconds have passed since the first was queued, or when no
request has come for ``idle_after`` seconds (every item in flight is then
waiting). Each batch is uploaded, created, polled every ``poll_interval``
seconds, and its output and error files are read; each caller then gets its
reply, or the error its line got. The ``LLM`` around the backend treats those
errors exactly as for a direct request: a transient one (a 5xx line, a line
the batch never ran because it expired, failed or was cancelled) is retried,
which queues it into a later batch; a 4xx line is the request's own fault.
Items move on batch by batch, and a repair request goes out in the next batch.

Crash safety comes from the :class:`~gemlib.llm.batch_ledger.BatchLedger`:
a request's ID is the hash of its content (model, messages, parameters,
sample) and server, so one batch never holds the same ID twice (identical
requests share one line) and a rerun asks for the same IDs. A batch is in the
ledger, with its lines, before anything is sent; a rerun polls the batches it
finds there, adopts one the provider created before the ledger could record
it (found by the ledger ID in the batch's metadata), submits one the provider
never received, and returns replies already in the ledger without asking
again. No request is submitted twice unless its earlier attempt failed.

Providers sit behind :class:`BatchAPI`: :class:`OpenAIBatchAPI` (OpenAI, and
any OpenAI-compatible server with ``/files`` and ``/batches``) and
:class:`~gemlib.llm.batch_anthropic.AnthropicBatchAPI` (Message Batches).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Container, Iterable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import attrs

from gemlib._secrets import scrub
from gemlib.errors import CacheError, ModelError, ModelRequestError, TransientModelError
from gemlib.llm.backends.openai_compat import PROVIDERS, parse_completion
from gemlib.llm.batch_ledger import BatchLedger, default_ledger_path
from gemlib.llm.http_status import error_for_status, retry_after_seconds
from gemlib.llm.model_id import ModelId
from gemlib.llm.prices import prices
from gemlib.llm.protocol import ChatReply, ChatRequest
from gemlib.llm.usage import BatchCounts

__all__ = [
    "BatchAPI",
    "BatchBackend",
    "BatchSettings",
    "LineResult",
    "OpenAIBatchAPI",
    "ProviderBatch",
    "custom_id",
]

log = logging.getLogger("gemlib")

OPENAI_API = "https://api.openai.com/v1"
TERMINAL = ("completed", "expired", "failed", "cancelled")
CHAT_PATH = "/v1/chat/completions"
OWN_FAULT = (400, 413, 422)
"""Statuses of a batch line that say the request itself was wrong; another 4xx (402
billing, 409 conflict...) is about the account or the provider, never the item."""


def provider_error(
    status: int, text: str, headers: Any, model: str, own: tuple[int, ...] = ()
) -> ModelError:
    """:func:`error_for_status`, except that a client error whose status is not in ``own``
    is transient: it is the account's or the provider's, not the request's."""
    error = error_for_status(status, text[:300], model, retry_after=retry_after_seconds(headers))
    if isinstance(error, ModelRequestError) and status not in own:
        return TransientModelError(
            str(error).removeprefix(f"{model}: "), model=model, status=status
        )
    return error


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port}"


@attrs.frozen
class BatchSettings:
    """How requests are gathered into batches, polled and priced.

    ``max_requests`` and ``max_bytes``: per batch file (OpenAI allows 50,000
    requests and 200 MB). ``flush_after``: seconds a request may wait for its
    batch to fill; ``idle_after``: a batch goes out once no request has come
    for this long. ``poll_interval``: seconds between status checks.
    ``max_wait``: the longest a batch is waited for (beyond it the batch is
    cancelled and its unfinished requests fail as transient and go into a later
    batch). ``max_in_flight``: requests queued or in batches at once (the
    pipeline's window follows it).
    ``ledger``: the ledger's path (default: ``batches.sqlite`` beside the
    request cache). ``price_factor``: batch price as a share of the direct
    price, overriding litellm's table (default: the table's batch prices, else
    half for OpenAI, Anthropic, Azure, Gemini and Vertex AI models).
    """

    max_requests: int = attrs.field(default=50_000, validator=attrs.validators.ge(1))
    max_bytes: int = attrs.field(default=190_000_000, validator=attrs.validators.ge(1024))
    flush_after: float = 60.0
    idle_after: float = 2.0
    poll_interval: float = 30.0
    max_wait: float = 26 * 3600.0
    completion_window: str = "24h"
    max_in_flight: int = attrs.field(default=4096, validator=attrs.validators.ge(1))
    ledger: str | Path | None = None
    price_factor: float | None = None


def custom_id(request: ChatRequest, endpoint: str) -> str:
    """The request's ID in a batch: a hash of its content and server, the same in every run."""
    return "gemlib-" + request.cache_key(endpoint)[:48]


@attrs.frozen
class ProviderBatch:
    """A batch as its provider reports it: ``done`` once it will change no more."""

    id: str
    status: str
    done: bool
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen
class LineResult:
    """One request's outcome in a finished batch: a reply, or a failure.

    ``status`` is the HTTP status of a request the provider answered with an
    error; ``None`` for a failure that says nothing about the request (the
    batch expired or was cancelled first, a line the provider garbled).
    """

    custom_id: str
    reply: ChatReply | None = None
    status: int | None = None
    message: str = ""


class BatchAPI(Protocol):
    """A provider's batch endpoints, as :class:`BatchBackend` uses them."""

    def line(self, request: ChatRequest, custom_id: str) -> str:
        """The request as one line of a batch (JSON)."""
        ...

    async def submit(self, local_id: str, lines: list[str], window: str) -> str:
        """Create a batch of ``lines``, tagged with the ledger's ``local_id``; its ID."""
        ...

    async def find(
        self, local_id: str, since: float, count: int, known: Container[str]
    ) -> str | None:
        """The ID of the batch tagged ``local_id`` (of ``count`` lines) created since
        ``since``, if there is one; ``known`` holds batch IDs the ledger has already."""
        ...

    async def status(self, batch_id: str) -> ProviderBatch:
        """A batch's current state."""
        ...

    async def results(self, batch: ProviderBatch) -> list[LineResult]:
        """A finished batch's outcomes, one per line it reports on."""
        ...

    async def cancel(self, batch_id: str) -> None:
        """Ask the provider to stop a batch."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@attrs.define
class HTTPBatchAPI:
    """JSON over one pooled HTTP session, failures mapped to gemlib errors: the providers' base."""

    api_base: str
    api_key: str | None = attrs.field(default=None, repr=False)
    model: str = ""
    timeout: float = 120.0
    _session: aiohttp.ClientSession | None = attrs.field(default=None, repr=False)

    def headers(self) -> dict[str, str]:
        """Headers every request carries (credentials)."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    async def _call(
        self, method: str, path: str, *, body: Any = None, form: aiohttp.FormData | None = None
    ) -> bytes:
        """``path`` below ``api_base``, or an absolute URL the provider gave."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self.headers(), timeout=aiohttp.ClientTimeout(total=self.timeout)
            )
        url = path if path.startswith(("http://", "https://")) else self.api_base.rstrip("/") + path
        if _origin(url) != _origin(self.api_base):  # the session carries the API key
            raise TransientModelError(
                f"the provider pointed to another server: {_origin(url)}", model=self.model
            )
        try:
            async with self._session.request(method, url, json=body, data=form) as response:
                status, content, headers = response.status, await response.read(), response.headers
        except asyncio.TimeoutError:
            raise TransientModelError(
                f"no reply within {self.timeout}s", model=self.model
            ) from None
        except aiohttp.ClientError as exc:
            problem = self.scrub(f"{type(exc).__name__}: {exc}")
            raise TransientModelError(problem, model=self.model) from None
        if status != 200:
            # no call to a batch endpoint is about one request's content
            raise provider_error(
                status, self.scrub(content.decode("utf-8", "replace")), headers, self.model
            )
        return content

    def scrub(self, text: str) -> str:
        """``text`` without the API key or anything shaped like a credential."""
        return scrub(text, (self.api_key,))

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        content = await self._call(method, path, **kwargs)
        try:
            data = json.loads(content)
        except ValueError:
            raise TransientModelError(f"unreadable reply from {path}", model=self.model) from None
        if not isinstance(data, dict):
            raise TransientModelError(f"unreadable reply from {path}", model=self.model)
        return data

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


@attrs.define
class OpenAIBatchAPI(HTTPBatchAPI):
    """The files and batches endpoints of the OpenAI API (or a server that copies them)."""

    api_base: str = OPENAI_API

    def line(self, request: ChatRequest, custom_id: str) -> str:
        """A ``/v1/chat/completions`` request line."""
        body = {
            **request.params,
            "model": ModelId.parse(request.model).served_as(PROVIDERS),
            "messages": [dict(m) for m in request.messages],
        }
        line = {"custom_id": custom_id, "method": "POST", "url": CHAT_PATH, "body": body}
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))

    async def submit(self, local_id: str, lines: list[str], window: str) -> str:
        """Upload the lines as a file, then create a batch over it."""
        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        content = ("\n".join(lines) + "\n").encode()
        name = f"gemlib-{local_id}.jsonl"
        form.add_field("file", content, filename=name, content_type="application/jsonl")
        file_id = str((await self._json("POST", "/files", form=form))["id"])
        body = {
            "input_file_id": file_id,
            "endpoint": CHAT_PATH,
            "completion_window": window,
            "metadata": {"gemlib_batch": local_id},
        }
        return str((await self._json("POST", "/batches", body=body))["id"])

    async def status(self, batch_id: str) -> ProviderBatch:
        """``GET /batches/{id}``."""
        raw = await self._json("GET", f"/batches/{batch_id}")
        status = str(raw.get("status"))
        return ProviderBatch(batch_id, status, status in TERMINAL, raw)

    async def cancel(self, batch_id: str) -> None:
        """``POST /batches/{id}/cancel``."""
        await self._json("POST", f"/batches/{batch_id}/cancel")

    async def results(self, batch: ProviderBatch) -> list[LineResult]:
        """The output file's and the error file's lines."""
        found: list[LineResult] = []
        for key in ("output_file_id", "error_file_id"):
            if batch.raw.get(key):
                content = await self._call("GET", f"/files/{batch.raw[key]}/content")
                found += [r for r in map(self._result, content.splitlines()) if r is not None]
        return found

    def _result(self, raw: bytes) -> LineResult | None:
        try:
            entry = json.loads(raw)
            cid = str(entry["custom_id"])
        except (ValueError, KeyError, TypeError):
            return None  # not a result line: its request counts as unfinished
        response = entry.get("response") or {}
        error = entry.get("error")
        status = response.get("status_code")
        if status == 200 and not error:
            try:
                return LineResult(cid, parse_completion(response.get("body"), self.model))
            except TransientModelError as exc:
                return LineResult(cid, message=str(exc))
        if isinstance(status, int):
            body = self.scrub(json.dumps(response.get("body"))[:500])
            return LineResult(cid, status=status, message=body)
        message = error.get("message") if isinstance(error, dict) else str(error)
        return LineResult(cid, message=self.scrub(f"batch line error: {message}"))

    async def find(
        self, local_id: str, since: float, count: int, known: Container[str]
    ) -> str | None:
        """The batch whose metadata holds ``local_id``, looking back to ``since``."""
        after: str | None = None
        while True:
            query = "?limit=100" + (f"&after={after}" if after else "")
            page = await self._json("GET", f"/batches{query}")
            batches = page.get("data") or []
            for batch in batches:
                if (batch.get("metadata") or {}).get("gemlib_batch") == local_id:
                    return str(batch["id"])
            if not page.get("has_more") or not batches:
                return None
            if min(float(b.get("created_at") or 0) for b in batches) < since:
                return None  # newest first: older pages cannot hold it
            after = str(batches[-1].get("id"))


def _error_outcome(status: int | None, message: str) -> str:
    return json.dumps({"status": status, "message": message[:500]})


@attrs.define
class _LoopState:
    """What a backend holds for one event loop: the queue, the waiters, the batch tasks."""

    queue: dict[str, str] = attrs.field(factory=dict)
    queued_bytes: int = 0
    first_queued: float = 0.0
    last_queued: float = 0.0
    waiters: dict[str, list[asyncio.Future[ChatReply]]] = attrs.field(factory=dict)
    batches: dict[str, asyncio.Task[None]] = attrs.field(factory=dict)
    sizes: dict[str, int] = attrs.field(factory=dict)
    """Requests in each batch being worked on."""
    members: dict[str, set[str]] = attrs.field(factory=dict)
    """Custom IDs this process waits for in each batch (known without the ledger)."""
    flusher: asyncio.Task[None] | None = None


@attrs.define
class BatchBackend:
    """Sends requests in provider batches; see the module docstring."""

    model: str
    api: BatchAPI
    settings: BatchSettings = attrs.field(factory=BatchSettings)
    endpoint: str = ""
    submitted: int = 0
    """Batches this backend submitted (this process)."""
    done: int = 0
    """Batches whose results it read."""
    requests_submitted: int = 0
    requests_done: int = 0
    _ledger: BatchLedger | None = attrs.field(default=None, repr=False)
    _states: dict[asyncio.AbstractEventLoop, _LoopState] = attrs.field(factory=dict, repr=False)

    @property
    def ledger(self) -> BatchLedger:
        """The ledger (opened on first use)."""
        if self._ledger is None:
            try:
                self._ledger = BatchLedger(self.settings.ledger)
            except (sqlite3.Error, OSError) as exc:  # as for the request cache: stop at once
                raise CacheError(
                    f"the batch ledger {self._ledger_path()} cannot be used "
                    f"({type(exc).__name__}: {exc}); free or fix its disk, move the file "
                    "aside (batches it records would be submitted again), or set "
                    "BatchSettings.ledger to another file"
                ) from None
        return self._ledger

    def _ledger_path(self) -> Path:
        return Path(self.settings.ledger) if self.settings.ledger else default_ledger_path()

    @property
    def in_progress(self) -> int:
        """Batches being submitted or waited for."""
        return sum(len(s.batches) for s in self._states.values())

    def counts(self) -> BatchCounts:
        """Batches submitted, in progress and done by this process, with their requests."""
        return BatchCounts(
            self.submitted,
            self.in_progress,
            self.done,
            self.requests_submitted,
            sum(s.sizes.get(b, 0) for s in self._states.values() for b in s.batches),
            self.requests_done,
        )

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        for stale in [other for other in self._states if other.is_closed()]:
            del self._states[stale]
        return self._states.setdefault(loop, _LoopState())

    async def acomplete(self, request: ChatRequest) -> ChatReply:
        """Queue ``request`` into a batch (or join the batch already holding it); its reply."""
        cid = custom_id(request, self.endpoint)
        state = self._state()
        future: asyncio.Future[ChatReply] = asyncio.get_running_loop().create_future()
        state.waiters.setdefault(cid, []).append(future)
        try:
            try:
                known = self.ledger.reply(cid)
                holder = None if known is not None else self.ledger.pending_in(cid)
            except (sqlite3.Error, OSError) as exc:
                raise self._ledger_error(exc) from None
            if known is not None:
                return ChatReply.from_json(known)
            if holder is not None:
                self._watch(state, holder, [cid])
            elif cid not in state.queue:
                self._enqueue(state, cid, self.api.line(request, cid))
            return await future
        finally:
            waiting = state.waiters.get(cid, [])
            if future in waiting:
                waiting.remove(future)
            if not waiting:
                state.waiters.pop(cid, None)

    def _ledger_error(self, exc: BaseException) -> TransientModelError:
        """The ledger's disk failing is never the request's fault: retried like an outage."""
        return TransientModelError(f"batch ledger {self._ledger_path()}: {exc}", model=self.model)

    def _enqueue(self, state: _LoopState, cid: str, line: str) -> None:
        size = len(line.encode()) + 1
        if state.queue and state.queued_bytes + size > self.settings.max_bytes:
            self._flush(state)
        now = time.monotonic()
        if not state.queue:
            state.first_queued = now
        state.queue[cid] = line
        state.queued_bytes += size
        state.last_queued = now
        if len(state.queue) >= self.settings.max_requests:
            self._flush(state)
        elif state.flusher is None or state.flusher.done():
            state.flusher = asyncio.create_task(self._flush_when_due(state))

    async def _flush_when_due(self, state: _LoopState) -> None:
        while state.queue:
            due = min(
                state.first_queued + self.settings.flush_after,
                state.last_queued + self.settings.idle_after,
            )
            wait = due - time.monotonic()
            if wait <= 0:
                self._flush(state)
            else:
                await asyncio.sleep(wait)

    def _flush(self, state: _LoopState) -> None:
        """Write the queued requests to the ledger as one batch and start submitting it."""
        lines, state.queue, state.queued_bytes = state.queue, {}, 0
        if not lines:
            return
        local_id = uuid.uuid4().hex
        try:
            self.ledger.submitting(local_id, self.endpoint, lines)
        except (sqlite3.Error, OSError) as exc:  # nothing was sent: its callers retry
            self._fail(state, lines, self._ledger_error(exc))
            return
        self._watch(state, local_id, lines)

    def _watch(self, state: _LoopState, local_id: str, cids: Iterable[str]) -> None:
        state.members.setdefault(local_id, set()).update(cids)
        if local_id not in state.batches:
            task = asyncio.create_task(self._run_batch(state, local_id))
            state.batches[local_id] = task

            def forget(_: asyncio.Task[None]) -> None:
                state.batches.pop(local_id, None)
                state.sizes.pop(local_id, None)
                state.members.pop(local_id, None)

            task.add_done_callback(forget)

    async def _run_batch(self, state: _LoopState, local_id: str) -> None:
        lines = dict.fromkeys(state.members.get(local_id, ()), "")  # if the ledger fails
        try:
            lines = self.ledger.lines(local_id)
            state.sizes[local_id] = len(lines)
            batch_id = await self._submit(local_id, lines)
            batch = await self._poll(batch_id, self.ledger.batch(local_id).created)
            ok, failed = await self._results(batch, lines)
            self.ledger.finished(local_id, ok, failed)
        except ModelError as exc:  # not submitted, or not readable: its callers retry
            self._fail(state, lines, exc)
            return
        except (sqlite3.Error, OSError) as exc:  # the ledger's disk: the batch stays pending
            self._fail(state, lines, self._ledger_error(exc))
            return
        except Exception as exc:  # a provider's odd reply: never the item's
            problem = TransientModelError(f"batch {local_id}: {type(exc).__name__}: {exc}")
            self._fail(state, lines, problem)
            return
        self.done += 1
        self.requests_done += len(lines)
        log.info(
            "batch %s %s: %d replies, %d failed (%d batches in progress, %d done)",
            batch_id,
            batch.status,
            len(ok),
            len(failed),
            self.in_progress - 1,
            self.done,
        )
        for cid, reply in ok.items():
            for future in state.waiters.get(cid, []):
                if not future.done():
                    future.set_result(ChatReply.from_json(reply))
        for cid, error in failed.items():
            for future in state.waiters.get(cid, []):
                if not future.done():
                    future.set_exception(self._error(error))

    def _fail(self, state: _LoopState, lines: dict[str, str], exc: ModelError) -> None:
        for cid in lines:
            for future in state.waiters.get(cid, []):
                if not future.done():
                    future.set_exception(exc)

    async def _submit(self, local_id: str, lines: dict[str, str]) -> str:
        """The provider's batch ID: recorded, adopted from the provider, or newly created."""
        record = self.ledger.batch(local_id)
        if record.batch_id is not None:
            return record.batch_id
        found = await self.api.find(
            local_id, record.created - 600, len(lines), self.ledger.batch_ids()
        )
        if found is not None:
            self.ledger.submitted(local_id, found)
            return found
        batch_id = await self.api.submit(
            local_id, list(lines.values()), self.settings.completion_window
        )
        self.ledger.submitted(local_id, batch_id)
        self.submitted += 1
        self.requests_submitted += len(lines)
        log.info(
            "batch %s submitted: %d requests (%d batches in progress, %d done)",
            batch_id,
            len(lines),
            self.in_progress,
            self.done,
        )
        return batch_id

    async def _poll(self, batch_id: str, created: float) -> ProviderBatch:
        """Wait for a terminal status, within ``max_wait`` of the batch's creation."""
        failures = 0
        while True:
            try:
                batch = await self.api.status(batch_id)
                failures = 0
                if batch.done:
                    return batch
            except TransientModelError:
                failures += 1
                if failures > 10:
                    raise
            if time.time() - created > self.settings.max_wait:
                return await self._give_up(batch_id)
            await asyncio.sleep(self.settings.poll_interval)

    async def _give_up(self, batch_id: str) -> ProviderBatch:
        """A batch past ``max_wait``: cancelled if the provider lets us, and its requests
        freed for a later batch even if it will not end (else they would wait for it forever)."""
        log.warning(
            "batch %s did not finish within %.0fs: cancelling it; its unfinished requests go "
            "into a new batch",
            batch_id,
            self.settings.max_wait,
        )
        try:
            await self.api.cancel(batch_id)
            batch = await self.api.status(batch_id)
            if batch.done:
                return batch  # cancelled at once: the lines it ran are kept
        except ModelError as exc:
            log.warning("batch %s could not be cancelled: %s", batch_id, exc)
        return ProviderBatch(batch_id, "abandoned", True)

    async def _results(
        self, batch: ProviderBatch, lines: dict[str, str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Replies (JSON) and errors (JSON) by custom ID; lines without either failed too."""
        ok: dict[str, str] = {}
        failed: dict[str, str] = {}
        for result in await self.api.results(batch):
            if result.custom_id not in lines:
                continue
            if result.reply is not None:
                reply = attrs.evolve(result.reply, cost=self._cost(result.reply))
                ok[result.custom_id] = reply.to_json()
                failed.pop(result.custom_id, None)
            elif result.custom_id not in ok:  # a line listed twice: a reply wins
                failed[result.custom_id] = _error_outcome(result.status, result.message)
        for cid in lines:
            if cid not in ok and cid not in failed:
                message = f"the batch {batch.status} before this request ran"
                failed[cid] = _error_outcome(None, message)
        return ok, failed

    def _error(self, outcome: str) -> ModelError:
        data = json.loads(outcome)
        if data.get("status") is None:
            return TransientModelError(str(data.get("message")), model=self.model)
        status, message = int(data["status"]), str(data.get("message"))
        return provider_error(status, message, {}, self.model, OWN_FAULT)

    def _cost(self, reply: ChatReply) -> float:
        found = prices(self.model)
        if found is None:
            return 0.0
        if self.settings.price_factor is not None:
            direct = found.cost(reply.prompt_tokens, reply.completion_tokens)
            return direct * self.settings.price_factor
        return found.cost(reply.prompt_tokens, reply.completion_tokens, batch=True)

    async def aclose(self) -> None:
        """Stop this loop's batch tasks (the ledger keeps them for the next run) and close."""
        state = self._states.pop(asyncio.get_running_loop(), None)
        if state is not None:
            tasks = [*state.batches.values(), *([state.flusher] if state.flusher else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.api.aclose()
