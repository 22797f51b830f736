"""The direct transport's HTTP/1.1 client: one JSON ``POST`` to one URL, pooled connections.

:class:`~gemlib.llm.backends.openai_compat.OpenAICompatBackend` sends every request
through :meth:`HttpClient.post`. It is written on :class:`asyncio.Protocol` because a
general client (aiohttp) spent about 0.35 ms of Python per request on work this one
request shape never needs; what it keeps:

- **Connections**: one pool per event loop; a finished reply hands its connection back
  for reuse, newest first; one that the server closed, that said ``Connection: close``,
  answered HTTP/1.0 without keep-alive, sent bytes nobody asked for, or sat idle for
  more than :data:`IDLE_SECONDS` is dropped. There is no cap on connections: the LLM's
  limiter bounds how many requests are in flight. If a *reused* connection ends before
  the first byte of a reply (the server closed it while it was idle), the request is
  sent once more on a new connection. aiohttp does not do this for a ``POST``; it is
  safe here because the LLM retries a failed attempt anyway, so a server that did
  act on the first copy sees no more duplicates than before.
- **Request**: the head and body go out in one write, with ``Host``, ``Content-Type:
  application/json``, ``Content-Length``, ``Accept-Encoding: identity``, a
  ``User-Agent`` and the caller's fixed headers (``Authorization``). A URL or header
  holding CR, LF or NUL is refused (:class:`ValueError`) before anything is sent.
- **Reply**: the head is bounded (:data:`MAX_HEAD` in all, :data:`MAX_LINE` per line);
  interim 1xx heads are skipped (all of them together bounded by :data:`MAX_HEAD`
  too); the body is framed by ``Content-Length`` (repeated or conflicting values
  refused), by chunked transfer coding (extensions and trailers
  read and ignored; a malformed size refused) or, with neither, by the server closing
  the connection. A body past the caller's cap stops the reading at once
  (:class:`BodyTooLarge`), even when only announced. A compressed body is refused:
  the request asks for ``identity``.
- **Time**: the whole exchange (connect, send, read) ends by one deadline,
  :class:`TimeoutError` after it; on a timeout, an error or a cancellation the
  connection is closed, never reused (its next reply would be the wrong one).
- **TLS** for ``https`` with :func:`ssl.create_default_context` (the system's
  certificate store), made once per client; a host name with several addresses
  (IPv4 and IPv6) has them tried as asyncio's "happy eyeballs" does, an IP address or
  a name with one address is simply connected to.
- **Not supported, on purpose**: proxies (``HTTP_PROXY`` and friends are ignored, as
  they were with ``trust_env=False``), redirects (a 3xx is handed back as a reply: the
  caller says where the ``api_base`` points instead), compression, HTTP/2.

Errors: :class:`ConnectError` (no connection: refused, unknown host, unreachable, TLS
refused), :class:`ProtocolError` (reset, closed mid-reply, malformed HTTP),
:class:`BodyTooLarge`, :class:`TimeoutError`, :class:`ValueError` (a URL or header that
cannot be sent). Their texts may quote the server; the caller scrubs them.
"""

from __future__ import annotations

import asyncio
import heapq
import ipaddress
import itertools
import re
import socket
import ssl
from collections.abc import Callable, Coroutine, Mapping
from typing import NamedTuple
from urllib.parse import quote, urlsplit

from gemlib._version import __version__

__all__ = [
    "IDLE_SECONDS",
    "MAX_HEAD",
    "MAX_LINE",
    "BodyTooLarge",
    "ConnectError",
    "HttpClient",
    "ProtocolError",
    "Response",
]

MAX_HEAD = 64 * 1024
"""Bytes a reply's head (status line and header fields) may take."""
MAX_LINE = 8 * 1024
"""Bytes one line of a reply's head, or one chunk-size line, may take."""
IDLE_SECONDS = 15.0
"""An idle connection older than this is closed instead of reused."""
HAPPY_EYEBALLS_DELAY = 0.25
"""Seconds before the next address of a host is tried in parallel (RFC 8305's default)."""

_FORBIDDEN = re.compile(r"[\r\n\x00]")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
# A head is checked whole by one pattern (lines bounded by MAX_LINE), its fields read by
# another; only a head that fails is split into lines, to say what is wrong with it.
_TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]"
_STATUS_LINE = f"HTTP/1\\.([01]) ([0-9]{{3}})(?:[ \\t][^\\r\\n]{{0,{MAX_LINE - 13}}})?"
_FIELD_LINE = f"{_TOKEN}{{1,{MAX_LINE}}}:[^\\r\\n]{{0,{MAX_LINE}}}"
_WHOLE_HEAD = re.compile(f"({_STATUS_LINE})(?:\\r?\\n{_FIELD_LINE})*")
_FIELD = re.compile(f"\\n({_TOKEN}+):[ \\t]*([^\\r\\n]*)")
_LINE_END = re.compile("\\r?\\n")
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_DIGITS = re.compile(r"[0-9]+")
_MAX_DIGITS = 15  # a size written with more digits passes any cap (and int() of it is slow)
_FREE_CHUNKS, _MIN_CHUNK = 1024, 16  # past that many chunks, at least this many bytes each


class ConnectError(Exception):
    """No connection to the server could be opened (refused, unknown host, unreachable)."""


class ProtocolError(Exception):
    """The connection broke, or the server's reply is not valid HTTP/1.1."""


class _Unanswered(ProtocolError):
    """The connection ended before the first byte of a reply."""


class BodyTooLarge(Exception):
    """A reply body longer than the caller's cap; ``announced`` is the size the server gave."""

    def __init__(self, limit: int, announced: int | None = None) -> None:
        self.limit = limit
        self.announced = announced
        super().__init__(
            f"the server announced a body of {announced} bytes (the cap is {limit})"
            if announced is not None
            else f"a body of more than {limit} bytes"
        )


class Response(NamedTuple):
    """A reply: its status, its header fields (names in lower case, values without their
    leading whitespace, repeats joined by ``", "``), and its body."""

    status: int
    headers: dict[str, str]
    body: bytes


class HttpClient:
    """Posts bodies to one URL with fixed extra ``headers``; a pool of connections per loop.

    Raises :class:`ValueError` for a URL or header that cannot be sent safely.
    """

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float) -> None:
        for text in (url, *headers, *headers.values()):
            if _FORBIDDEN.search(text):
                raise ValueError(
                    "a URL or header holding CR, LF or NUL (header injection) is not sent"
                )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL with a host")
        host = parts.hostname
        default_port = 443 if parts.scheme == "https" else 80
        port = default_port if parts.port is None else parts.port  # ':0' is not the default
        name = host if ":" in host or host.isascii() else host.encode("idna").decode("ascii")
        authority = f"[{name}]" if ":" in name else name
        if port != default_port:
            authority += f":{port}"
        target = quote(parts.path or "/", safe="/%!$&'()*+,;=:@-._~")
        if parts.query:
            target += "?" + quote(parts.query, safe="/?%!$&'()*+,;=:@-._~")
        lines = [
            f"POST {target} HTTP/1.1",
            f"Host: {authority}",
            f"User-Agent: gemlib/{__version__}",
            "Accept: application/json",
            "Accept-Encoding: identity",
            "Content-Type: application/json",
            *(f"{key}: {value}" for key, value in headers.items()),
            "Content-Length: ",
        ]
        self._prefix = "\r\n".join(lines).encode("utf-8")
        self._address = (name, port)
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        self._server_hostname = name.rstrip(".") if self._tls is not None else None
        self.timeout = timeout
        """Seconds each exchange may take, from connecting to the reply's last byte."""
        self._pools: dict[asyncio.AbstractEventLoop, _Pool] = {}

    def __repr__(self) -> str:  # the headers hold the key: never shown
        return f"HttpClient({self._address[0]}:{self._address[1]})"

    def post(self, body: bytes, max_body: int) -> Coroutine[object, object, Response]:
        """``POST`` ``body`` and return the reply, its body at most ``max_body`` bytes.

        Called in a coroutine of the event loop; the exchange is the pool's coroutine,
        handed back to be awaited (no coroutine of its own: each one in the chain is
        resumed, and kept by the collector, for every request)."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            for stale in [other for other in self._pools if other.is_closed()]:
                del self._pools[stale]
            pool = self._pools[loop] = _Pool(loop, self._address, self._tls, self._server_hostname)
        data = b"%s%d\r\n\r\n%s" % (self._prefix, len(body), body)
        now = loop.time()
        return pool.post(data, max_body, now, now + self.timeout)

    async def aclose(self) -> None:
        """Close every connection of this event loop's pool."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            pool.close()
            await asyncio.sleep(0)  # the transports finish closing their sockets


class _Pool:
    """The connections to one address in one event loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        address: tuple[str, int],
        tls: ssl.SSLContext | None,
        server_hostname: str | None,
    ) -> None:
        self.loop = loop
        self.address = address
        self.tls = tls
        self.server_hostname = server_hostname
        self.idle: dict[_Connection, float] = {}  # -> when it went idle; the newest last
        self.open: set[_Connection] = set()
        self.closed = False
        # The exchanges' deadlines, soonest first: one timer, armed for the soonest, serves
        # them all (a timer per request cost about as much as the rest of the exchange's
        # bookkeeping). An exchange that ended leaves its entry, emptied, until it is popped.
        self.deadlines: list[tuple[float, int, _Watch]] = []
        self.waiting = 0  # exchanges under way
        self.timer: asyncio.TimerHandle | None = None
        self.armed = 0.0  # when the timer fires
        self.numbers = itertools.count()

    async def post(self, data: bytes, max_body: int, now: float, deadline: float) -> Response:
        """Send ``data`` on an idle connection, or a new one, and read the reply by
        ``deadline``. One coroutine for the whole exchange (see :meth:`HttpClient.post`)."""
        connection = self._reusable(now)
        retry = connection is not None  # a reused connection may have been closed while idle
        while True:
            if connection is None:
                connection = await self._connect(deadline)
            reply = connection.send(data, max_body)
            watch = self._watch(deadline, reply)
            try:
                response = await reply
            except BaseException as exc:  # an error, the deadline, a cancellation: never reused
                connection.abort()
                if not retry or not isinstance(exc, _Unanswered):
                    raise
            else:
                break
            finally:
                watch.reply = None
                self.waiting -= 1
            connection, retry = None, False  # closed while idle: sent once more on a new one
        if connection.reusable and not self.closed:
            self.idle[connection] = self.loop.time()
        else:
            connection.abort()
        return response

    def _reusable(self, now: float) -> _Connection | None:
        """The newest idle connection still open, closing the ones idle for too long."""
        while self.idle:
            connection, since = self.idle.popitem()
            if now - since > IDLE_SECONDS:  # every other one has been idle longer still
                connection.abort()
                for older in list(self.idle):
                    older.abort()
                self.idle.clear()
                return None
            if connection.usable():
                return connection
            connection.abort()
        return None

    async def _connect(self, deadline: float) -> _Connection:
        if self.closed:  # aclose() ran while this request was in flight
            raise ProtocolError("the client was closed while the request was in flight")
        made: list[_Connection] = []

        def connection() -> _Connection:
            made.append(_Connection(self))
            return made[-1]

        host, port = self.address
        try:
            await asyncio.wait_for(self._open(connection), max(deadline - self.loop.time(), 0.0))
        except BaseException as exc:
            for each in made:  # a connection finished as the wait ended: not leaked
                each.abort()
            if isinstance(exc, OSError) and not isinstance(exc, asyncio.TimeoutError):
                raise ConnectError(
                    f"cannot connect to {host}:{port} ({type(exc).__name__}: {exc})"
                ) from None
            raise
        if self.closed:  # aclose() ran while it opened
            made[0].abort()
            raise ProtocolError("the client was closed while the request was in flight")
        return made[0]

    async def _open(self, connection: Callable[[], _Connection]) -> None:
        """Open a connection, racing the host's addresses only if it has several: Python
        3.11's race leaves the socket it has just connected open when cancelled then."""
        host, port = self.address
        race = None
        if not _is_address(host):
            found = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            race = HAPPY_EYEBALLS_DELAY if len({info[4] for info in found}) > 1 else None
        await self.loop.create_connection(
            connection,
            host,
            port,
            ssl=self.tls,
            server_hostname=self.server_hostname,
            happy_eyeballs_delay=race,
        )

    def _watch(self, deadline: float, reply: asyncio.Future[Response]) -> _Watch:
        """Fail ``reply`` with a :class:`TimeoutError` if it is not done by ``deadline``
        (unless the caller empties the watch first)."""
        deadlines = self.deadlines
        self.waiting += 1
        if len(deadlines) > 2 * self.waiting + 64:  # mostly ended exchanges: dropped
            deadlines[:] = [each for each in deadlines if each[2].reply is not None]
            heapq.heapify(deadlines)
        watch = _Watch(reply)
        heapq.heappush(deadlines, (deadline, next(self.numbers), watch))
        if self.timer is None or deadline < self.armed:
            if self.timer is not None:
                self.timer.cancel()
            self.timer, self.armed = self.loop.call_at(deadline, self._expire), deadline
        return watch

    def _expire(self) -> None:
        """Fail the replies past their deadline; arm the timer for the next one."""
        self.timer = None
        deadlines, now = self.deadlines, self.loop.time()
        while deadlines:
            deadline, _, watch = deadlines[0]
            if watch.reply is not None:
                if deadline > now:
                    self.timer, self.armed = self.loop.call_at(deadline, self._expire), deadline
                    return
                if not watch.reply.done():
                    watch.reply.set_exception(asyncio.TimeoutError())
            heapq.heappop(deadlines)

    def close(self) -> None:
        self.closed = True
        for connection in list(self.open):
            connection.abort()
        self.idle.clear()


class _Watch:
    """The reply of an exchange under way, until the exchange ends (then ``None``)."""

    __slots__ = ("reply",)

    def __init__(self, reply: asyncio.Future[Response]) -> None:
        self.reply: asyncio.Future[Response] | None = reply


# What a connection expects next from the server.
_HEAD, _SIZED, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _TO_CLOSE = range(7)


class _Connection(asyncio.Protocol):
    """One connection: sends a request, parses its reply as bytes arrive."""

    def __init__(self, pool: _Pool) -> None:
        self._pool = pool
        self._transport: asyncio.Transport | None = None
        self._reply: asyncio.Future[Response] | None = None
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer searched for the end of the head
        self._interim = 0  # bytes of interim (1xx) heads before this reply's
        self._state = _HEAD
        self._max_body = 0
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body = bytearray()  # a chunked body, as its chunks arrive
        self._left = 0  # bytes of the sized body or of the current chunk
        self._pos = 0  # bytes of the buffer the chunk states have read
        self._trailer = 0  # bytes of trailer fields so far
        self._chunks = 0  # chunks of the body so far
        self._answered = False  # a byte of the reply arrived
        self._keep_alive = False
        self._lost = False
        self.reusable = False

    # asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._pool.open.add(self)

    def data_received(self, data: bytes) -> None:
        reply = self._reply
        if reply is None or reply.done():  # bytes no request asked for: out of step
            self.abort()
            return
        self._answered = True
        self._buffer += data
        try:
            self._parse()
        except (ProtocolError, BodyTooLarge) as exc:
            self._fail(exc)

    def eof_received(self) -> None:
        self._ended(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self.reusable = False
        self._pool.open.discard(self)
        self._pool.idle.pop(self, None)
        self._ended(exc)

    # the pool's side

    def usable(self) -> bool:
        return not self._lost and self._transport is not None and not self._transport.is_closing()

    def send(self, data: bytes, max_body: int) -> asyncio.Future[Response]:
        reply = self._reply = self._pool.loop.create_future()
        self._state = _HEAD
        self._scanned = self._interim = 0
        self._max_body = max_body
        self._answered = self.reusable = False
        if self.usable():
            assert self._transport is not None
            self._transport.write(data)
        else:
            reply.set_exception(_Unanswered("the connection was closed before the request"))
        return reply

    def abort(self) -> None:
        self.reusable = False
        if self._transport is not None:
            self._transport.abort()

    # the reply

    def _fail(self, error: Exception) -> None:
        if self._reply is not None and not self._reply.done():
            self._reply.set_exception(error)
        self.abort()

    def _ended(self, exc: Exception | None) -> None:
        """The server closed its side, or the connection is gone."""
        reply = self._reply
        if reply is None or reply.done():
            return
        if self._state == _TO_CLOSE and exc is None:
            self._finish(bytes(self._buffer), extra=False)
            return
        why = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
        if self._answered:
            reply.set_exception(ProtocolError(f"the server closed the connection mid-reply{why}"))
        else:
            reply.set_exception(_Unanswered(f"the server closed the connection unanswered{why}"))

    def _finish(self, body: bytes, *, extra: bool) -> None:
        # Bytes past the reply's end mean the two sides disagree on where it ends.
        self.reusable = self._keep_alive and not extra and not self._lost
        self._buffer.clear()
        self._pos = 0
        assert self._reply is not None
        self._reply.set_result(Response(self._status, self._headers, body))

    def _parse(self) -> None:
        try:
            self._advance()
        finally:  # what the chunk states read is dropped once per arrival, not per chunk
            if self._pos:
                del self._buffer[: self._pos]
                self._pos = 0

    def _advance(self) -> None:
        buffer = self._buffer
        while True:
            state = self._state
            if state == _HEAD:
                if not self._head():
                    return
            elif state == _SIZED:
                if len(buffer) < self._left:
                    return
                self._finish(bytes(buffer[: self._left]), extra=len(buffer) > self._left)
                return
            elif state == _CHUNK_SIZE:
                line = self._line()
                if line is None:
                    return
                size = line.split(b";", 1)[0].strip(b" \t")
                if not _HEX.fullmatch(size):
                    raise ProtocolError(f"a malformed chunk size: {line[:40]!r}")
                size = size.lstrip(b"0") or b"0"
                if len(size) > _MAX_DIGITS or len(self._body) + int(size, 16) > self._max_body:
                    raise BodyTooLarge(self._max_body)
                self._left = int(size, 16)
                self._state = _CHUNK_DATA if self._left else _TRAILER
                self._chunks += 1
                if self._chunks > _FREE_CHUNKS and self._chunks * _MIN_CHUNK > len(self._body):
                    raise ProtocolError(
                        f"a body in chunks of under {_MIN_CHUNK} bytes on average (each "
                        "costs a pass of this parser: refused past the first "
                        f"{_FREE_CHUNKS})"
                    )
            elif state == _CHUNK_DATA:
                taken = min(len(buffer) - self._pos, self._left)
                if not taken:
                    return
                self._body += buffer[self._pos : self._pos + taken]
                self._pos += taken
                self._left -= taken
                if self._left:
                    return
                self._state = _CHUNK_END
            elif state == _CHUNK_END:
                line = self._line()
                if line is None:
                    return
                if line:
                    raise ProtocolError("a chunk longer than its size")
                self._state = _CHUNK_SIZE
            elif state == _TRAILER:
                line = self._line()
                if line is None:
                    return
                if not line:
                    self._finish(bytes(self._body), extra=len(buffer) > self._pos)
                    return
                self._trailer += len(line)
                if self._trailer > MAX_HEAD:
                    raise ProtocolError(f"trailer fields of more than {MAX_HEAD} bytes")
            else:  # _TO_CLOSE: the body is whatever comes until the server closes
                if len(buffer) > self._max_body:
                    raise BodyTooLarge(self._max_body)
                return

    def _line(self) -> bytes | None:
        """The next line from ``_pos`` without its end, or ``None`` until it is whole."""
        buffer, start = self._buffer, self._pos
        end = buffer.find(b"\n", start, start + MAX_LINE + 1)
        if end < 0:
            if len(buffer) - start > MAX_LINE:
                raise ProtocolError(f"a line of more than {MAX_LINE} bytes")
            return None
        self._pos = end + 1
        if end > start and buffer[end - 1] == 13:  # CR
            end -= 1
        return bytes(buffer[start:end])

    def _head(self) -> bool:
        """Parse a whole head if the buffer holds one; ``False`` until it does."""
        buffer = self._buffer
        start = max(self._scanned - 3, 0)
        end = buffer.find(b"\r\n\r\n", start)  # the common case: ten times faster than the pattern
        if end >= 0 and buffer.count(b"\n", 0, end) == buffer.count(b"\r\n", 0, end):
            after = end + 4
        else:  # not whole yet, or lines ending in a bare LF: the general pattern
            blank = _BLANK_LINE.search(buffer, start)
            if blank is None:
                self._scanned = len(buffer)
                if len(buffer) - buffer.rfind(b"\n") - 1 > MAX_LINE:
                    raise ProtocolError(f"a header line of more than {MAX_LINE} bytes")
                if len(buffer) > MAX_HEAD:
                    raise ProtocolError(f"a reply head of more than {MAX_HEAD} bytes")
                return False
            end, after = blank.span()
        self._scanned = 0
        if end > MAX_HEAD:
            raise ProtocolError(f"a reply head of more than {MAX_HEAD} bytes")
        text = buffer[:end].decode("latin-1")
        del buffer[:after]
        head = _WHOLE_HEAD.fullmatch(text)
        if head is None:
            raise _malformed(text)
        status = int(head.group(3))
        if status < 100:  # no such status; read as interim, its body would be the next head
            raise ProtocolError(f"a status of {status} (statuses run from 100 to 599)")
        if status < 200:
            if status == 101:
                raise ProtocolError("the server switched protocols (101), which nothing asked")
            self._interim += after  # a storm of them bounded as one head is
            if self._interim > MAX_HEAD:
                raise ProtocolError(f"interim (1xx) replies of more than {MAX_HEAD} bytes")
            return True  # an interim reply (100 Continue, 103 Early Hints): the next head
        fields = _FIELD.findall(text, head.end(1))
        headers = {name.lower(): value for name, value in fields}
        if len(headers) < len(fields):  # a field given more than once: its values joined
            values: dict[str, list[str]] = {}
            for name, value in fields:
                values.setdefault(name.lower(), []).append(value)
            headers = {key: ", ".join(each) for key, each in values.items()}
        self._status, self._headers = status, headers
        self._frame(status, head.group(2) == "1", headers)
        return True

    def _frame(self, status: int, http11: bool, headers: dict[str, str]) -> None:
        """How the body ends, and whether the connection outlives it."""
        connection = headers.get("connection")
        if connection is None:
            self._keep_alive = http11
        else:
            tokens = {token.strip().lower() for token in connection.split(",")}
            self._keep_alive = "close" not in tokens if http11 else "keep-alive" in tokens
        encoding = headers.get("content-encoding")
        if encoding is not None and encoding.strip().lower() not in ("identity", ""):
            raise ProtocolError(
                f"a reply compressed as {encoding[:40]!r}, though the request asked for identity"
            )
        transfer = headers.get("transfer-encoding")
        length = headers.get("content-length")
        if status in (204, 304):
            self._left, self._state = 0, _SIZED
        elif transfer is not None:
            codings = [coding.strip().lower() for coding in transfer.split(",")]
            if codings != ["chunked"]:
                raise ProtocolError(f"an unsupported Transfer-Encoding: {transfer[:60]!r}")
            self._body = bytearray()
            self._trailer = self._chunks = 0
            self._state = _CHUNK_SIZE
            if length is not None:  # both: a smuggling attempt or a broken proxy
                self._keep_alive = False
        elif length is not None:
            fits = len(length) <= _MAX_DIGITS and length.isascii() and length.isdigit()
            self._left = int(length) if fits else self._length(length)
            if self._left > self._max_body:
                raise BodyTooLarge(self._max_body, self._left)
            self._state = _SIZED
        else:
            self._keep_alive = False
            self._state = _TO_CLOSE

    def _length(self, length: str) -> int:
        """A ``Content-Length`` that is not plain digits: repeated, padded, or refused."""
        values = {value.strip() for value in length.split(",")}
        size = values.pop()
        if values or not _DIGITS.fullmatch(size):
            raise ProtocolError(f"an invalid Content-Length: {length[:60]!r}")
        size = size.lstrip("0") or "0"
        if len(size) > _MAX_DIGITS:
            raise BodyTooLarge(self._max_body)
        return int(size)


def _is_address(host: str) -> bool:
    """Whether ``host`` is an IP address rather than a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _malformed(head: str) -> ProtocolError:
    """What is wrong with a head its pattern refused."""
    lines = _LINE_END.split(head)
    if max(map(len, lines)) > MAX_LINE:
        return ProtocolError(f"a header line of more than {MAX_LINE} bytes")
    if not re.fullmatch(_STATUS_LINE, lines[0]):
        return ProtocolError(f"not an HTTP/1.x status line: {lines[0][:60]!r}")
    bad = next((line for line in lines[1:] if not re.fullmatch(_FIELD_LINE, line)), "")
    return ProtocolError(f"a malformed header line: {bad[:60]!r}")
