"""ConnectionDriver: one blocking socket <-> http ``Connection`` <-> the request pipeline.

Shared by prefork (a process per connection), worker (a thread per connection) and event (its
worker threads; the listener thread parses the first head itself and hands over a parsed
``Request`` plus its ``Connection`` through ``serve_connection(..., first=request)``).

Theory: ``serve_connection`` loops request by request: wait for a ``Request`` event, ``serve_request``
it (pipeline -> finalize -> write), then keep the connection or close it.  Pipelined requests are
answered in order because the core yields PAUSED until ``start_next_cycle()`` (events.py Rule 2).

Rule 1: timeouts are kernel socket options (SO_RCVTIMEO/SO_SNDTIMEO) on a blocking socket, so a
        recv is one syscall: KeepAliveTimeout while waiting for the next request's first byte,
        Timeout once a request has started and for every send.
Rule 2: a started request that stalls gets 408 and a close; an idle keep-alive connection that
        times out (or a new one that never sends a byte) is closed silently.
Rule 3: a ProtocolError is answered with its status, then the connection is closed with a
        lingering close (shutdown(SHUT_WR), drain briefly) so the client reads the answer.
Rule 4: a small response is one sendall (head + body); files go through os.sendfile when
        EnableSendfile is on.  Nothing on this path logs unless the level asks for it.
Rule 5: the body the application reads is ``BodyReader``: it pulls Data events, enforces
        LimitRequestBody (413) and sends "100 Continue" on the first read (RFC 9110 10.1.1).
        A body that fails raises ``RequestBodyError`` (an OSError, as mod_wsgi's "request
        data read error") to the application; the driver answers the ProtocolError behind it.
        Before the answer goes out, what the core already parsed of an unread body is taken
        (``take_buffered``, no socket read), so an error in it is answered with its status and
        ``Connection: close`` rather than by an answer that claims keep-alive (as the nginx
        MPM, which pumps the body as it comes).
Rule 6: scoreboard states, as httpd shows them: R from accept on and while a head needs more
        than one read, W from the parsed head to the end of the answer, then K (or C) written
        with the request's counters in one ``finish``.  A head that one read brings whole
        goes from K to W directly: its R would last no time, and each write costs prefork a
        few cache lines the other children have evicted.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass
from time import time as _time
from typing import Any, Callable, Iterable

from mpmd.core.exchange import (ConnInfo, EmptyBody, FileBody, MultipartBody,
                                Response)
from mpmd.core.request import logs_requests
from mpmd.http.errors import ProtocolError, RequestBodyError
from mpmd.http.events import NEED_DATA, Data, Request
from mpmd.mpm.base import setting
from mpmd.scoreboard.layout import Status

RECV_BYTES = 65536
FILE_CHUNK = 1 << 18
LINGER_S = 2.0
LINGER_READS = 32
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_TIMEOUT_ERRORS = (BlockingIOError, TimeoutError, socket.timeout)
# The scoreboard states a request passes through, as plain ints: looking a member up on the
# IntEnum costs 60 ns, and each request changes state four times.
_READ, _KEEPALIVE, _WRITE, _LOG, _CLOSING = (int(s) for s in (
    Status.BUSY_READ, Status.BUSY_KEEPALIVE, Status.BUSY_WRITE, Status.BUSY_LOG, Status.CLOSING))


class _Closed(Exception):
    """The connection is finished (peer gone, timeout, or must close)."""


def _timeval(seconds: float) -> bytes:
    whole = int(seconds)
    return struct.pack("ll", whole, int((seconds - whole) * 1_000_000))


class _NullSlot:
    """Stands in for a scoreboard WorkerSlot when none is given (tests, tools)."""

    def set_status(self, status: int) -> None: ...
    def start_request(self, client: bytes, request_line: bytes, vhost: bytes = b"") -> None: ...
    def add_requests(self, count: int, nbytes: int, last: float) -> None: ...
    def finish(self, nbytes: int, last: float, status: int) -> None: ...


LIMIT_FIELDS = {"request_line": "limit_request_line", "field_size": "limit_request_field_size",
                "fields": "limit_request_fields", "body": "limit_request_body"}


def make_limits(cfg: Any) -> Any:
    """The core's ``Limits`` from the LimitRequest* directives (defaults where unset)."""
    from mpmd.http.limits import Limits
    values = {name: setting(cfg, src, None) for name, src in LIMIT_FIELDS.items()}
    return Limits(**{k: int(v) for k, v in values.items() if v is not None})


def make_connection(cfg: Any, limits: Any = None) -> Any:
    """A fresh sans-I/O ``Connection`` with the configured Limit* values."""
    from mpmd.http.connection import Connection
    return Connection(limits if limits is not None else make_limits(cfg))


class BodyReader:
    """wsgi.input over the connection's Data events (Rule 5)."""

    __slots__ = ("_driver", "_sock", "_conn", "_request", "_buf", "_done", "_seen", "_limit",
                 "continue_sent", "error")

    def __init__(self, driver: "ConnectionDriver", sock: socket.socket, conn: Any,
                 request: Request) -> None:
        self._driver = driver
        self._sock = sock
        self._conn = conn
        self._request = request
        self._buf = bytearray()
        self._done = False                # until EndOfMessage is seen, even without a body
        self._seen = 0
        self._limit = driver.limit_body
        self.continue_sent = False
        self.error: ProtocolError | None = None   # kept: the pipeline may turn it into a 500

    @property
    def done(self) -> bool:
        return self._done

    def _pull(self) -> bool:
        """One more Data chunk into the buffer; False at the end of the body."""
        if self._done:
            return False
        if self._request.expect_continue and not self.continue_sent and self._request.has_body:
            self.continue_sent = True
            self._sock.sendall(CONTINUE)
        try:
            event = self._driver.next_event(self._sock, self._conn, started=True)
            if isinstance(event, Data):
                self._count(event.data)
        except ProtocolError as exc:
            self.error = exc
            self._done = True
            raise RequestBodyError(exc) from None
        except _Closed:                   # the peer reset: nothing will be answered
            self.error = ProtocolError(400, "connection lost in the body")
            self._done = True
            raise RequestBodyError(self.error) from None
        if isinstance(event, Data):
            self._buf += event.data
            return True
        self._done = True
        return False

    def _count(self, data: bytes) -> None:
        self._seen += len(data)
        if self._limit and self._seen > self._limit:
            raise ProtocolError(413, "request body larger than LimitRequestBody")

    def take_buffered(self) -> None:
        """Rule 5: move what the core already parsed of the body into the buffer (still there
        for an application that reads it while its answer streams); an error is kept."""
        conn = self._conn
        try:
            while not self._done:
                event = conn.next_event()
                if event is NEED_DATA:
                    return
                if type(event) is Data:
                    self._count(event.data)
                    self._buf += event.data
                else:
                    self._done = True     # EndOfMessage
        except ProtocolError as exc:
            self.error = exc
            self._done = True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            while self._pull():
                pass
            size = len(self._buf)
        while len(self._buf) < size and self._pull():
            pass
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

    def readline(self, size: int = -1) -> bytes:
        while b"\n" not in self._buf and (size < 0 or len(self._buf) < size) and self._pull():
            pass
        end = self._buf.find(b"\n") + 1 or len(self._buf)
        if size >= 0:
            end = min(end, size)
        out = bytes(self._buf[:end])
        del self._buf[:end]
        return out

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def discard(self) -> None:
        """Read and drop what the application left (so the next request can be parsed)."""
        while self._pull():
            self._buf.clear()
        self._buf.clear()


class NoBody(EmptyBody):
    """wsgi.input of a request without a body (its EndOfMessage already taken): one shared,
    stateless instance with what the driver asks of a BodyReader, instead of one per request."""

    __slots__ = ()
    done = True
    continue_sent = False
    error = None


NO_BODY = NoBody()


def _pipeline() -> tuple[Callable[..., Any], ...]:
    from mpmd.core import request as pipeline
    return (pipeline.begin, pipeline.prepare, pipeline.handler_failed, pipeline.no_answer,
            pipeline.log)


def _finalize() -> tuple[Callable[..., Any], Callable[..., Any]]:
    from mpmd.core.respond import finalize_plan, plan_for
    return finalize_plan, plan_for


def _error_for(exc: ProtocolError, ctx: Any) -> Response:
    """The Response for a protocol error (core/errors.py), with a plain fallback."""
    try:
        from mpmd.core import errors
        if hasattr(errors, "response_for"):
            return errors.response_for(exc)  # type: ignore[no-any-return]
        return errors.error_response(exc.status, ctx)  # type: ignore[no-any-return]
    except ImportError:
        body = f"<html><body><h1>{exc.status} {exc.reason}</h1></body></html>\n".encode()
        return Response(exc.status, [("Content-Type", "text/html; charset=iso-8859-1")], body)


def refusal_bytes(finalize: Callable[..., Any], exc: ProtocolError) -> bytes:
    """The answer to a request the core refused: head and error page, or the head alone when
    the refused request was a HEAD (RFC 9110 9.3.2; its Content-Length is still the page's,
    as for any HEAD).  Shared with the nginx MPM."""
    resp = _error_for(exc, None)
    resp.close_connection = True
    head = finalize(None, resp, False).head
    if exc.method == "HEAD":
        return head                          # type: ignore[no-any-return]
    return head + (resp.body if isinstance(resp.body, bytes) else b"")  # type: ignore[no-any-return]


class ConnectionDriver:
    """Drives blocking sockets through the core; one instance per worker (process or thread)."""

    def __init__(self, cfg: Any, worker_slot: Any = None, mpm: Any = None) -> None:
        self.cfg = cfg
        self.slot = worker_slot if worker_slot is not None else _NullSlot()
        self.mpm = mpm
        # Set by the MPM when its process goes graceful: answers close their connections.  A
        # flag, not a callback: it is read once per request.
        self.stopping = False
        self.timeout_s = float(setting(cfg, "timeout", 60))
        self.keep_alive = bool(setting(cfg, "keep_alive", True))
        self.keep_alive_timeout_s = float(setting(cfg, "keep_alive_timeout", 5))
        self.max_keep_alive = int(setting(cfg, "max_keep_alive_requests", 100))
        self.limit_body = int(setting(cfg, "limit_request_body", 0) or 0)
        (self.begin, self.prepare, self.handler_failed, self.no_answer,
         self.log_request) = _pipeline()
        self.logs = logs_requests(cfg)      # asked once: see core/request.py
        self.finalize, self.plan_for = _finalize()
        self.limits = make_limits(cfg)
        self.extended_status = bool(setting(cfg, "extended_status", False))
        self._rcv_timeout = -1.0
        self.buf = bytearray(RECV_BYTES)
        self.view = memoryview(self.buf)
        self.conn_count = 0

    # -- socket plumbing --------------------------------------------------------------------
    def _set_rcv_timeout(self, sock: socket.socket, seconds: float) -> None:
        if seconds != self._rcv_timeout:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(seconds))
            self._rcv_timeout = seconds

    def adopt_listener(self, lsock: socket.socket) -> Adopted | None:
        """Give the listening socket what every connection needs, once: Linux copies
        TCP_NODELAY, SO_SNDTIMEO and SO_RCVTIMEO to the sockets accept() returns, which saves
        a process-per-connection MPM four system calls a connection (with setblocking()).
        None where that does not hold (not Linux, not TCP): each socket is set up itself."""
        if not _INHERITS_OPTIONS or not self._connection_options(lsock):
            return None
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(self.timeout_s))
        addr = _addr(lsock.getsockname())
        # a specific address is every connection's local address; a wildcard's is asked
        return Adopted(None if addr[0] in ("0.0.0.0", "::") else addr)

    def _prepare_socket(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        self._rcv_timeout = -1.0
        self._connection_options(sock)

    def _connection_options(self, sock: socket.socket) -> bool:
        """TCP_NODELAY and the send time-out, on a connection or on the listener it will
        inherit them from; False when the socket is not TCP (no TCP_NODELAY)."""
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tcp = True
        except OSError:
            tcp = False
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(self.timeout_s))
        return tcp

    def next_event(self, sock: socket.socket, conn: Any, started: bool,
                   idle_timeout_s: float | None = None) -> Any:
        """The next event, reading as needed (Rule 1, Rule 2).  Raises _Closed or ProtocolError."""
        reading = False
        while True:
            event = conn.next_event()
            if event is not NEED_DATA:
                return event
            if reading:                 # a head that one read did not bring: R until it ends
                reading = False
                self.slot.set_status(_READ)
            wanted = self.timeout_s if started or idle_timeout_s is None else idle_timeout_s
            if wanted != self._rcv_timeout:
                self._set_rcv_timeout(sock, wanted)
            try:
                n = sock.recv_into(self.buf)
            except _TIMEOUT_ERRORS:
                if started or conn.partial_request:
                    raise ProtocolError(408, "request timed out") from None
                raise _Closed() from None
            except OSError:
                raise _Closed() from None
            if n and not started:
                started = reading = True
            conn.receive_data(self.view[:n])      # parsed before the buffer is read into again

    # -- the connection loop ----------------------------------------------------------------
    def serve_connection(self, sock: socket.socket, addr: Any, conn: Any = None,
                         first: Request | None = None, requests_served: int = 0,
                         adopted: Adopted | None = None) -> None:
        """Serve every request on ``sock`` then close it (optionally starting from a parsed head).
        ``adopted``: what ``adopt_listener`` returned for the socket's listener; the socket
        then came from accept() with the listener's options, and blocking."""
        self.conn_count += 1
        self.slot.set_status(_READ)     # busy from accept on, as httpd counts it
        try:
            if adopted is None:
                self._prepare_socket(sock)
                local = None
            else:
                self._rcv_timeout = self.timeout_s
                local = adopted.local
            conn = conn if conn is not None else make_connection(self.cfg, self.limits)
            info = ConnInfo(client_addr=_addr(addr), server_addr=local or _addr(sock.getsockname()),
                            conn_id=self.conn_count, requests_served=requests_served)
            self._loop(sock, conn, info, first)
        except _Closed:
            pass
        except OSError:
            pass
        finally:
            self.slot.set_status(_CLOSING)
            try:
                sock.close()
            except OSError:
                pass

    def _loop(self, sock: socket.socket, conn: Any, info: ConnInfo, first: Request | None) -> None:
        request = first
        while True:
            if request is None:            # wait for the next head (inline: once per request)
                try:
                    event = self.next_event(sock, conn, False, self.keep_alive_timeout_s
                                            if info.requests_served else self.timeout_s)
                except ProtocolError as exc:
                    self._send_error(sock, exc, info)
                    return
                if type(event) is not Request:
                    return                 # ConnectionClosed (EOF between requests)
                request = event
            keep = self.serve_request(sock, conn, request, info)
            info.requests_served += 1
            if not keep:
                self._linger(sock)
                return
            conn.start_next_cycle()
            request = None

    def _send_error(self, sock: socket.socket, exc: ProtocolError, info: ConnInfo) -> None:
        """Answer a protocol error and close with a lingering close (Rule 3)."""
        if self.answer_error(sock, exc):
            self._linger(sock)

    def answer_error(self, sock: socket.socket, exc: ProtocolError) -> bool:
        """Write the error response for ``exc`` (no linger); False when the write failed."""
        self.slot.set_status(_WRITE)
        try:
            sock.sendall(refusal_bytes(self.finalize, exc))
        except (OSError, TypeError, AttributeError):
            return False
        return True

    def serve_ready(self, sock: socket.socket, conn: Any, request: Request | None,
                    info: ConnInfo, error: ProtocolError | None = None) -> bool:
        """Event MPM workers: serve ``request`` and every request already buffered behind it.

        The socket (blocking, SO_SNDTIMEO already set) was handed over by another thread, and
        it goes back to that thread afterwards: True = it may wait for another request (the
        caller parks it), False = it must be closed (the caller does the lingering close).
        ``error`` answers a protocol error found while the head was read.
        """
        self._rcv_timeout = -1.0                  # another socket than the last one
        try:
            while error is None and request is not None:
                keep = self.serve_request(sock, conn, request, info)
                info.requests_served += 1
                if not keep:
                    return False
                conn.start_next_cycle()
                if not conn.has_buffered_request():
                    return not conn.closing
                try:
                    event = conn.next_event()
                except ProtocolError as exc:
                    error = exc
                    break
                request = event if isinstance(event, Request) else None
        except (_Closed, OSError):
            return False
        if error is not None:
            self.answer_error(sock, error)
        return False

    def _linger(self, sock: socket.socket) -> None:
        """shutdown(SHUT_WR), then read and drop for up to LINGER_S (httpd lingering_close)."""
        self.slot.set_status(_CLOSING)
        try:
            sock.shutdown(socket.SHUT_WR)
            self._set_rcv_timeout(sock, LINGER_S / 4)
            deadline = time.monotonic() + LINGER_S
            for _ in range(LINGER_READS):
                if not sock.recv_into(self.buf) or time.monotonic() > deadline:
                    break
        except (OSError, ValueError):
            pass

    # -- one request --------------------------------------------------------------------------
    def serve_request(self, sock: socket.socket, conn: Any, request: Request, info: ConnInfo) -> bool:
        """Run one request through the pipeline and write the answer; True = keep the connection."""
        now = _time()
        slot = self.slot
        # The head is read: httpd shows W from here on, handler included (the status page
        # shows its own request as W); who and what only with ExtendedStatus, as httpd.
        slot.set_status(_WRITE)
        if self.extended_status:
            slot.start_request(info.client_addr[0].encode("latin-1", "replace"),
                               _request_line(request), request.header(b"host") or b"")
        if request.chunked or request.content_length:
            body: Any = BodyReader(self, sock, conn, request)
        else:
            conn.next_event()                     # the EndOfMessage right behind the head
            body = NO_BODY
        ctx, resp = self.begin(request, info, self.cfg, body, self.mpm, now)
        try:
            if resp is None:                      # not in the route cache: run the phases
                resp = self.prepare(ctx)
            if type(resp) is not Response:        # run_handler, inline: once per request
                try:
                    resp = resp(ctx)
                except Exception:  # noqa: BLE001 - a handler that raises is a 500 (request.py Rule 2)
                    resp = self.handler_failed(ctx)
                if resp is None:
                    resp = self.no_answer(ctx)
            error = body.error                    # kept even if the app caught it
        except ProtocolError as exc:              # body limit hit while the app read
            error = exc
        if not body.done:                         # an unread body: what is already here (Rule 5)
            body.take_buffered()
            error = error or body.error
        if error is not None:                     # answer with the body's error, not a 500
            resp = _error_for(error, ctx)
            resp.close_connection = True
        # Keep-alive as far as the server goes (the client's wish is finalize's): inline, as
        # it is asked once per request.
        max_ka = self.max_keep_alive
        keep_ok = self.keep_alive and not resp.close_connection and not self.stopping \
            and not (max_ka and info.requests_served + 1 >= max_ka) \
            and not (request.expect_continue and request.has_body and not body.continue_sent
                     and not body.done)    # the client holds its body back: cannot reuse
        plan = self.plan_for(ctx, resp, keep_ok)
        keep = plan.keep_alive
        content = resp.body
        if type(content) is bytes and plan.send_body and len(content) < RECV_BYTES \
                and resp.on_close is None:
            nbytes = len(content)                 # the common answer: one send, nothing to close
            sock.sendall(plan.whole or plan.head + content)
        else:
            nbytes = self.write_response(sock, ctx, plan.head, resp, plan.send_body, plan.chunked)
        if keep and not body.done:
            try:
                body.discard()
            except (RequestBodyError, ProtocolError, _Closed):
                keep = False
        if self.logs:
            slot.set_status(_LOG)
            self.log_request(ctx, resp, nbytes)
        slot.finish(nbytes, now, _KEEPALIVE if keep else _CLOSING)
        return keep

    # -- writing ------------------------------------------------------------------------------
    def write_response(self, sock: socket.socket, ctx: Any, head: bytes, resp: Response,
                       send_body: bool = True, chunked: bool = False) -> int:
        """Write head + body as finalize planned; body bytes sent (for the access log)."""
        body = resp.body
        try:
            if not send_body:
                sock.sendall(head)
                return 0
            if isinstance(body, (bytes, bytearray, memoryview)):
                sock.sendall(head + bytes(body) if len(body) < RECV_BYTES else head)
                if len(body) >= RECV_BYTES:
                    sock.sendall(body)
                return len(body)
            if chunked:
                return self._write_iterable(sock, ctx, head, body, True)
            writer = _BODY_WRITERS.get(type(body), ConnectionDriver._write_iterable)
            return writer(self, sock, ctx, head, body)
        finally:
            _close_body(resp)

    def _write_file(self, sock: socket.socket, ctx: Any, head: bytes, body: FileBody) -> int:
        sock.sendall(head)
        return self._send_file_region(sock, ctx, body)

    def _send_file_region(self, sock: socket.socket, ctx: Any, body: FileBody) -> int:
        dir_cfg = getattr(ctx, "dir_config", None)
        use_sendfile = bool(getattr(dir_cfg, "enable_sendfile", False))
        sent, offset, left = 0, body.offset, body.length
        if use_sendfile:
            fd = body.file.fileno()
            while left > 0:
                n = os.sendfile(sock.fileno(), fd, offset, min(left, 1 << 30))
                if n == 0:
                    break
                sent, offset, left = sent + n, offset + n, left - n
            return sent
        body.file.seek(offset)
        while left > 0:
            chunk = body.file.read(min(left, FILE_CHUNK))
            if not chunk:
                break
            sock.sendall(chunk)
            sent, left = sent + len(chunk), left - len(chunk)
        return sent

    def _write_multipart(self, sock: socket.socket, ctx: Any, head: bytes, body: MultipartBody) -> int:
        sock.sendall(head)
        sent = 0
        for part in body.parts:
            if isinstance(part, FileBody):
                sent += self._send_file_region(sock, ctx, part)
            else:
                sock.sendall(part)
                sent += len(part)
        return sent

    def _write_iterable(self, sock: socket.socket, ctx: Any, head: bytes, body: Iterable[bytes],
                        chunked: bool = False) -> int:
        sock.sendall(head)
        sent = 0
        for chunk in body:
            if not chunk:
                continue
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            sent += len(chunk)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
        return sent


_BODY_WRITERS: dict[type, Callable[..., int]] = {
    FileBody: ConnectionDriver._write_file,
    MultipartBody: ConnectionDriver._write_multipart,
}


def _close_body(resp: Response) -> None:
    body = resp.body
    closer = getattr(body, "close", None)
    if closer is not None and not isinstance(body, (bytes, bytearray)):
        try:
            closer()
        except Exception:  # noqa: BLE001 - a body's close() must not kill the connection
            pass
    if resp.on_close is not None:
        on_close, resp.on_close = resp.on_close, None
        on_close()


def _request_line(request: Request) -> bytes:
    return b"%s %s HTTP/%s" % (request.method.encode("latin-1"), request.target,
                               request.http_version.encode("ascii"))


# Accepted TCP sockets start with the listener's TCP_NODELAY and send/receive time-outs.
_INHERITS_OPTIONS = os.uname().sysname == "Linux"


@dataclass(frozen=True)
class Adopted:
    """A listener whose options its connections inherit (``ConnectionDriver.adopt_listener``)."""

    local: tuple[str, int] | None        # their local address; None: ask each socket


def _addr(addr: Any) -> tuple[str, int]:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return str(addr[0]), int(addr[1])
    return (str(addr), 0)
