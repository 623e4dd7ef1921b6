"""The HTTP/1.1 client mod_proxy talks to backends with: pooled connections, httptools parsing.

Theory: a ``Worker`` is httpd's proxy_worker: one backend (scheme, host, port) with its
parameters (timeout, retry, keepalive, max, ttl), its idle connections and its state (ok, or
in error until a time).  ``exchange`` sends one request head (and streams its body) on a
pooled connection and reads the answer's head with httptools' parser; the body is then read
by iterating ``BackendAnswer.body()``, chunk by chunk as the client takes it, so nothing is
buffered whole and a slow client slows the backend (backpressure through TCP).

Rule 1: a connection goes back to its worker's pool only when its answer was read to the end
        and both sides keep it alive; a pool keeps at most ``max`` idle connections, each for
        at most ``ttl`` seconds (httpd's keepalive/max/ttl worker parameters).
Rule 2: a reused connection the backend closed before answering (the keep-alive race) is
        retried once on a fresh one when the request's body was not sent yet or was empty.
Rule 3: the errors are ``BackendError(status)``: 503 when the backend cannot be reached (the
        worker goes in error state for ``retry`` seconds, during which it is not tried), 504
        when it does not answer within the timeout, 502 when its answer is not HTTP.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from typing import Any, Callable, Iterator

import httptools

READ_SIZE = 65536
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate",
                        b"proxy-authorization", b"te", b"trailer", b"trailers",
                        b"transfer-encoding", b"upgrade", b"proxy-connection"})


class BackendError(Exception):
    """Rule 3: the answer the client gets (``status``) and why (``text``, for the ErrorLog)."""

    def __init__(self, status: int, msg_id: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.msg_id = msg_id
        self.text = text


class Worker:
    """httpd's proxy_worker: a backend, its parameters, pool and state."""

    def __init__(self, url: str, scheme: str, host: str, port: int,
                 params: dict[str, Any]) -> None:
        self.url = url
        self.scheme = scheme
        self.host = host
        self.port = port
        self.params = params
        self.retry = float(params.get("retry", 60))
        self.timeout: float | None = params.get("timeout")
        self.keepalive = params.get("keepalive", True)
        self.max = int(params.get("max", 0) or 0)
        self.ttl: float | None = params.get("ttl")
        self.connect_timeout: float | None = params.get("connectiontimeout")
        self.loadfactor = int(params.get("loadfactor", 1))
        self.route = str(params.get("route", ""))
        self.hot_standby = "H" in str(params.get("status", "")).upper()
        self.disabled = "D" in str(params.get("status", "")).upper()
        self.error_until = 0.0           # in error state until this time (Rule 3)
        self.idle: deque[tuple[socket.socket, float]] = deque()
        self.idle_async: deque[tuple[tuple[Any, Any], float]] = deque()   # on the nginx MPM
        self.lock = threading.Lock()
        self.busy = 0                    # requests in progress (bybusyness)
        self.elected = 0                 # requests given (byrequests' lbstatus lives apart)
        self.lbstatus = 0
        self.transferred = 0             # bytes sent (bytraffic)
        self.read = 0                    # bytes received (bytraffic)
        self.opened = 0                  # connections opened (balancer-manager)

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def usable(self, now: float) -> bool:
        return not self.disabled and now >= self.error_until

    def in_error(self) -> bool:
        return time.monotonic() < self.error_until

    def put_in_error(self) -> None:
        self.error_until = time.monotonic() + self.retry

    # -- the pool (Rule 1) --------------------------------------------------------------------
    def take(self, timeout: float) -> tuple[socket.socket, bool]:
        """(a connection, whether it was reused)."""
        now = time.monotonic()
        with self.lock:
            while self.idle:
                sock, since = self.idle.pop()
                if self.ttl is not None and now - since > self.ttl:
                    sock.close()
                    continue
                sock.settimeout(timeout)
                return sock, True
        try:
            sock = socket.create_connection((self.host, self.port),
                                            timeout=self.connect_timeout or timeout)
            sock.settimeout(timeout)
        except socket.timeout as exc:
            raise BackendError(503, "AH00957", f"HTTP: attempt to connect to "
                               f"{self.hostport} ({self.host}:{self.port}) failed: {exc}")
        except OSError as exc:
            raise BackendError(503, "AH00957", f"HTTP: attempt to connect to "
                               f"{self.hostport} ({self.host}) failed: {exc.strerror or exc}")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.opened += 1
        return sock, False

    def give_back(self, sock: socket.socket) -> None:
        if not self.keepalive:
            sock.close()
            return
        with self.lock:
            if self.max and len(self.idle) >= self.max:
                sock.close()
                return
            self.idle.append((sock, time.monotonic()))

    def give_back_async(self, conn: tuple[Any, Any]) -> None:
        if not self.keepalive or (self.max and len(self.idle_async) >= self.max):
            conn[1].close()
            return
        self.idle_async.append((conn, time.monotonic()))

    def close_idle(self) -> None:
        with self.lock:
            while self.idle:
                self.idle.pop()[0].close()


def persists(version: str, headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the backend keeps the connection (RFC 9112 9.3), from the answer's head
    (llhttp's should_keep_alive depends on when it is asked)."""
    tokens = {t.strip().lower() for name, value in headers if name.lower() == b"connection"
              for t in value.split(b",")}
    if b"close" in tokens:
        return False
    return version != "1.0" or b"keep-alive" in tokens


class _Parse:
    """httptools callbacks for one answer."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.done = False
        self.chunks: list[bytes] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class BackendAnswer:
    """An answer's head (status, headers) and its body as an iterator (Rule 1)."""

    def __init__(self, worker: Worker, sock: socket.socket, parser: Any, state: _Parse,
                 head_request: bool, on_end: Callable[[], None]) -> None:
        self.worker = worker
        self.sock: socket.socket | None = sock
        self.parser = parser
        self.state = state
        self.status = parser.get_status_code()
        self.headers = state.headers
        self.keep = persists(parser.get_http_version(), state.headers)
        self.no_body = head_request or self.status in (204, 304) or 100 <= self.status < 200
        self.on_end = on_end
        self.upgraded = False

    def body(self) -> Iterator[bytes]:
        state = self.state
        try:
            while True:
                if state.chunks:
                    chunks, state.chunks = state.chunks, []
                    if state.done:
                        # the answer is complete: pooled before its last bytes go out, as
                        # the driver may stop asking once it has Content-Length bytes
                        self._finish(True)
                    for chunk in chunks:
                        self.worker.read += len(chunk)
                        yield chunk
                if state.done or self.no_body:
                    self._finish(True)
                    return
                data = self._recv()
                if not data:
                    # close-delimited body: EOF ends it; otherwise the backend broke off
                    self.parser.feed_data(b"")  # lets httptools end a close-delimited body
                    if not state.done and not state.chunks:
                        self._finish(False)
                        return
                    continue
                self.parser.feed_data(data)
        finally:
            if self.sock is not None:
                self._finish(False)

    def _recv(self) -> bytes:
        assert self.sock is not None
        try:
            return self.sock.recv(READ_SIZE)
        except OSError:
            return b""

    def _finish(self, complete: bool) -> None:
        sock, self.sock = self.sock, None
        if sock is None:
            return
        if complete and self.keep and self.status != 101:
            self.worker.give_back(sock)
        else:
            sock.close()
        self.on_end()

    def close(self) -> None:
        """The client went away (or the body was not wanted): the connection is not reused."""
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()
            self.on_end()

    def take_socket(self) -> socket.socket:
        """The connection, for a tunnel after a 101 (wstunnel): no longer pooled."""
        sock, self.sock = self.sock, None
        assert sock is not None
        self.on_end()
        return sock


def _body_source(body: Any, length: int | None, chunked: bool) -> Iterator[bytes]:
    """The client's request body as the chunks to write to the backend."""
    if body is None:
        return
    while True:
        data = body.read(READ_SIZE)
        if not data:
            break
        yield b"%x\r\n%s\r\n" % (len(data), data) if chunked else data
    if chunked:
        yield b"0\r\n\r\n"


def head_failure(exc: BaseException, worker: Worker, may_retry: bool) -> BackendError | None:
    """What a failure while reading a backend's answer head means, for the blocking and the
    async exchange alike: None to retry once on a fresh connection (a pooled one the backend
    had closed), else the client's 502 or 504 (httpd's AH01102)."""
    where = f"remote server {worker.hostport}"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        if may_retry:
            return None
        return BackendError(502, "AH01102", f"error reading status line from {where}: {exc}")
    if isinstance(exc, TimeoutError):            # socket.timeout and asyncio's, both
        return BackendError(504, "AH01102", f"error reading status line from {where}: timed out")
    if isinstance(exc, httptools.HttpParserError):
        return BackendError(502, "AH01102", f"error reading status line from {where}: {exc}")
    return BackendError(502, "AH01102", f"error reading from {where}: {exc}")


def exchange(worker: Worker, head: bytes, body: Any, length: int | None, chunked: bool,
             head_request: bool, timeout: float) -> BackendAnswer:
    """Send ``head`` (and the body) to ``worker``; the answer once its head is read."""
    worker.busy += 1
    worker.elected += 1
    ended = [False]

    def on_end() -> None:
        if not ended[0]:
            ended[0] = True
            worker.busy -= 1

    try:
        for attempt in (0, 1):
            sock, reused = worker.take(timeout)
            sent_body = False
            try:
                sock.sendall(head)
                worker.transferred += len(head)
                if length or chunked:
                    for piece in _body_source(body, length, chunked):
                        sent_body = True
                        sock.sendall(piece)
                        worker.transferred += len(piece)
                state = _Parse()
                parser = httptools.HttpResponseParser(state)
                got = False
                while not state.head_done:
                    data = sock.recv(READ_SIZE)
                    if not data:
                        if reused and not got and not sent_body and attempt == 0:
                            raise _Stale()
                        raise BackendError(502, "AH01102", "error reading status line from "
                                           f"remote server {worker.hostport}")
                    got = True
                    parser.feed_data(data)
            except _Stale:
                sock.close()
                continue
            except httptools.HttpParserUpgrade:
                pass                    # a 101: the head is complete; the rest is the tunnel's
            except (httptools.HttpParserError, OSError) as exc:
                sock.close()
                failure = head_failure(exc, worker, reused and attempt == 0 and not sent_body)
                if failure is None:
                    continue
                raise failure from None
            return BackendAnswer(worker, sock, parser, state, head_request, on_end)
        raise BackendError(502, "AH01102", f"remote server {worker.hostport} closed the "
                           "connection twice")
    except BaseException:
        on_end()
        raise


class _Stale(Exception):
    pass


# -- the same exchange on an event loop (the nginx MPM: the proxy never blocks its loop) --------

class AsyncAnswer:
    """BackendAnswer's counterpart on asyncio streams: the body is an async iterator."""

    def __init__(self, worker: Worker, conn: tuple[Any, Any], parser: Any, state: _Parse,
                 head_request: bool, timeout: float, on_end: Callable[[], None]) -> None:
        self.worker = worker
        self.conn: tuple[Any, Any] | None = conn
        self.parser = parser
        self.state = state
        self.status = parser.get_status_code()
        self.headers = state.headers
        self.keep = persists(parser.get_http_version(), state.headers)
        self.no_body = head_request or self.status in (204, 304) or 100 <= self.status < 200
        self.timeout = timeout
        self.on_end = on_end

    async def body(self) -> Any:
        state = self.state
        try:
            while True:
                if state.chunks:
                    chunks, state.chunks = state.chunks, []
                    if state.done:
                        # the answer is complete: pooled before its last bytes go out, as
                        # the driver may stop asking once it has Content-Length bytes
                        self._finish(True)
                    for chunk in chunks:
                        self.worker.read += len(chunk)
                        yield chunk
                if state.done or self.no_body:
                    self._finish(True)
                    return
                assert self.conn is not None
                try:
                    async with asyncio.timeout(self.timeout):   # cheaper than wait_for: no task
                        data = await self.conn[0].read(READ_SIZE)
                except (OSError, asyncio.TimeoutError):
                    data = b""
                if not data:
                    self.parser.feed_data(b"")
                    if not state.done and not state.chunks:
                        self._finish(False)
                        return
                    continue
                self.parser.feed_data(data)
        finally:
            if self.conn is not None:
                self._finish(False)

    def _finish(self, complete: bool) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        if complete and self.keep and self.status != 101:
            self.worker.give_back_async(conn)
        else:
            conn[1].close()
        self.on_end()

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn[1].close()
            self.on_end()

    def take_streams(self) -> tuple[Any, Any]:
        conn, self.conn = self.conn, None
        assert conn is not None
        self.on_end()
        return conn


async def _take_async(worker: Worker, timeout: float) -> tuple[tuple[Any, Any], bool]:
    now = time.monotonic()
    idle = worker.idle_async
    while idle:
        conn, since = idle.pop()
        if (worker.ttl is not None and now - since > worker.ttl) or conn[1].is_closing() \
                or conn[0].at_eof():
            conn[1].close()
            continue
        return conn, True
    try:
        conn = await asyncio.wait_for(asyncio.open_connection(worker.host, worker.port),
                                      worker.connect_timeout or timeout)
    except asyncio.TimeoutError:
        raise BackendError(503, "AH00957", f"HTTP: attempt to connect to {worker.hostport} "
                           f"({worker.host}) failed: timed out") from None
    except OSError as exc:
        raise BackendError(503, "AH00957", f"HTTP: attempt to connect to {worker.hostport} "
                           f"({worker.host}) failed: {exc.strerror or exc}") from None
    worker.opened += 1
    return conn, False


async def _abody(body: Any, chunked: bool) -> Any:
    aread = getattr(body, "aread", None)
    while True:
        data = await aread(READ_SIZE) if aread is not None else body.read(READ_SIZE)
        if not data:
            break
        yield b"%x\r\n%s\r\n" % (len(data), data) if chunked else data
    if chunked:
        yield b"0\r\n\r\n"


async def aexchange(worker: Worker, head: bytes, body: Any, length: int | None, chunked: bool,
                    head_request: bool, timeout: float) -> AsyncAnswer:
    """``exchange`` on the running loop (Rules 1-3)."""
    worker.busy += 1
    worker.elected += 1
    ended = [False]

    def on_end() -> None:
        if not ended[0]:
            ended[0] = True
            worker.busy -= 1

    try:
        for attempt in (0, 1):
            conn, reused = await _take_async(worker, timeout)
            reader, writer = conn
            sent_body = False
            try:
                writer.write(head)
                worker.transferred += len(head)
                if (length or chunked) and body is not None:
                    async for piece in _abody(body, chunked):
                        sent_body = True
                        writer.write(piece)
                        worker.transferred += len(piece)
                        async with asyncio.timeout(timeout):   # per write, as httpd's
                            await writer.drain()
                # asyncio.timeout, not wait_for: a timer, no task per read
                async with asyncio.timeout(timeout):
                    state = _Parse()
                    parser = httptools.HttpResponseParser(state)
                    got = False
                    while not state.head_done:
                        data = await reader.read(READ_SIZE)
                        if not data:
                            if reused and not got and not sent_body and attempt == 0:
                                raise _Stale()
                            raise BackendError(502, "AH01102", "error reading status line "
                                               f"from remote server {worker.hostport}")
                        got = True
                        parser.feed_data(data)
            except _Stale:
                writer.close()
                continue
            except httptools.HttpParserUpgrade:
                pass                    # a 101: the head is complete; the rest is the tunnel's
            except (httptools.HttpParserError, OSError) as exc:
                writer.close()
                failure = head_failure(exc, worker, reused and attempt == 0 and not sent_body)
                if failure is None:
                    continue
                raise failure from None
            return AsyncAnswer(worker, conn, parser, state, head_request, timeout, on_end)
        raise BackendError(502, "AH01102", f"remote server {worker.hostport} closed the "
                           "connection twice")
    except BaseException:
        on_end()
        raise
