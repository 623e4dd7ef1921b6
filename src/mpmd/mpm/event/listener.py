"""The event MPM's listener as a transport: reading heads, parking, lingering (httpd mpm_event).

Theory: every connection that is not with a worker is an ``EventConn`` in the listener's epoll
set, in one of five states: READ_HEAD (a new connection, or a head not yet whole), READ_BODY
(the body of a request whose handler reads it, Rule 7), KEEPALIVE (between requests), BUSY (a
worker has it) and LINGER (closing).  The listener reads request heads itself (non-blocking,
MSG_DONTWAIT on an otherwise blocking socket) into the connection's sans-I/O ``Connection``; a
whole ``Request`` (or a ``ProtocolError``) makes the connection ready for a worker, which runs
the request cycle (``mpm/conn.py``) and gives the connection back.  This file writes no HTTP
bytes but a "100 Continue" (Rule 7): the workers answer, errors included.

Rule 1: timer queues (``TimeoutQueue``): a new connection or a partial head has Timeout, an idle
        keep-alive connection KeepAliveTimeout, a lingering close LINGER_S.  A partial head that
        times out is answered 408 (by a worker); an idle connection is closed silently.
Rule 2: a connection fd is armed EPOLLONESHOT: one readiness event, then the listener decides
        (re-arm, hand to a worker, close).  Only the listener touches epoll and closes sockets.
Rule 4: an idle keep-alive connection keeps no parser: ``Connection`` is dropped when nothing is
        buffered and made again when bytes arrive (this is what keeps idle connections cheap).
Rule 5: the lingering close is the cycle's policy (core/cycle.py Rule 5) on the listener's
        poller: shut the write side, read and drop until EOF or LINGER_S.
Rule 6: TLS (a listener whose ``tls`` is set): the listener peeks at the first bytes (plain
        HTTP is handed to a worker as ``PlainHttpOnTls``, answered with httpd's 400), wraps
        the socket and runs the handshake non-blocking, under Timeout like a head; a failure
        closes that connection only (logged at info).  A TLS socket is non-blocking while the
        listener has it (the workers use the ssl module's time-outs), and bytes OpenSSL has
        already decrypted (``pending()``) are read at once: epoll cannot see them.
Rule 7: RequestReadTimeout (core/reqtimeout.py): a head is read under its address's header
        stage (from accept, the end of a TLS handshake, or a kept-alive connection's first
        byte), each read bounded by Timeout too; a stage's deadline moves with MinRate, so it
        waits in a heap (``stage_q``), checked again when it comes up.
        A request's body is read here first (READ_BODY) only when its handler reads it: the
        route cache (core/request.py ``cached_route``) of the request's vhost holds its route
        and the handler's kind is "blocking" or "async" (a WSGI or ASGI app), its declared
        length is within the directory's LimitRequestBody, and, on TLS with SNI, its Host is
        not misdirected.  Then the body is read under the vhost's body stage (MinRate in the
        same heap; Timeout alone when that stage is off) until it has all come or
        ``PREREAD_BYTES`` (core/body.py, 1 MiB) are buffered, Content-Length or chunked, and
        the request goes to a worker with the body's clock (mpm/conn.py Rule 9): past the
        bound the worker reads the rest itself, and a stage that ran out here, or a client
        that left, fails the body at the worker's first read (the 408 through the cycle: its
        error-log line, the app's read error, the request's access-log line).  So a slow body
        holds no worker.  Every other request goes to a worker with its head, as before: one
        whose route is not cached yet (the first to its URL in this child, or a route that is
        never cached), and every handler that may answer without the body (a static file, a
        405, a phase that answers), which must not wait for it (tests/integration/
        test_body_errors_e2e.py).  ``Expect: 100-continue``: the listener sends "100 Continue"
        itself before it reads (the handler reads the body, RFC 9110 10.1.1), and the worker's
        body counts it as sent; when the socket takes none of it the request goes to a worker
        as before.  A pipelined request whose body has not all come goes back from the worker
        to the listener, which decides it the same way.
Rule 8: RemoteIPProxyProtocol (mpm/proxy_header.py): a connection that must begin with a
        PROXY header reads it first, before a TLS handshake, when readable (MSG_PEEK, then
        exactly the header's bytes), under the head's time; its source address becomes the
        connection's client address (``ec.addr``; the balancer is ``ec.peer``).  A bad
        header closes the connection.
"""

from __future__ import annotations

import heapq
import itertools
import select
import socket
import ssl
import time
from typing import Any

from mpmd.core.body import CONTINUE, PREREAD_BYTES
from mpmd.core.exchange import ConnInfo
from mpmd.core.reqtimeout import Stage, StageClock, expired_error
from mpmd.core.request import cached_route
from mpmd.http.errors import ProtocolError
from mpmd.http.events import NEED_DATA, Request
from mpmd.mpm import proxy_header
from mpmd.mpm.conn import seen_as
from mpmd.tls import handshake
from mpmd.tls.plain import PlainHttpOnTls, is_plain_http
from mpmd.tls.variables import SNI_ATTR

RECV_BYTES = 65536
EPOLL_IN = select.EPOLLIN | select.EPOLLONESHOT | select.EPOLLRDHUP
EPOLL_OUT = select.EPOLLOUT | select.EPOLLONESHOT        # a handshake waiting to write
_WAIT_READ = (BlockingIOError, InterruptedError, ssl.SSLWantReadError)

# connection states (what the listener is waiting for)
READ_HEAD, KEEPALIVE, BUSY, LINGER, READ_BODY = range(5)
_SEQ = itertools.count()      # ties in the stage heap
_READS_BODY = ("blocking", "async")       # handler kinds whose body is read first (Rule 7)
_WAIT_WRITE = (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError)
STAGE_COMPACT_MIN = 1024      # the stage heap is never compacted below this many entries


class EventConn:
    """One client connection as the listener knows it (kept small: Rule 4)."""

    __slots__ = ("sock", "fd", "addr", "conn", "info", "state", "error", "request", "tls",
                 "context", "secure", "policy", "clock", "body_clock", "interim", "proxy", "peer")

    def __init__(self, sock: socket.socket, addr: Any, policy: Any) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.addr = addr
        self.policy = policy            # its address's (cycle.py Rule 8): timeouts, head limits
        self.conn: Any = None
        self.info: ConnInfo | None = None
        self.state = READ_HEAD
        self.error: ProtocolError | None = None       # answer this instead of a request
        self.request: Request | None = None           # parsed, waiting for a worker
        self.tls: Any = None                          # the listener's ListenerTls (Rule 6)
        self.context: ssl.SSLContext | None = None    # a handshake to do with this context
        self.secure = False                           # the handshake is done
        self.clock: StageClock | None = None          # the running read stage (Rule 7)
        self.body_clock: StageClock | None = None     # a body read here, for the worker
        self.interim: bytes | None = None             # "100 Continue" sent: what is left
        self.proxy: Any = None                        # a PROXY header to read first (Rule 8)
        self.peer: Any = None                         # the balancer, once ``addr`` is its client


class ConnectionStates:
    """The listener's half of ``Event``: what happens to a connection between requests.

    It uses the Event's ``buf``/``view``, ``policy``, ``ep``, ``conns``, the timer queues
    ``head_q``/``ka_q``/``linger_q`` and ``pending`` (ready for a worker).
    """

    buf: bytearray
    view: memoryview
    policy: Any
    ep: Any
    conns: dict[int, EventConn]
    head_q: Any
    ka_q: Any
    linger_q: Any
    pending: Any
    log: Any
    stage_q: list[tuple[float, int, StageClock, EventConn]]
    stage_compact_at = STAGE_COMPACT_MIN

    # -- reading request heads --------------------------------------------------------------
    def _readable(self, ec: EventConn) -> None:
        if ec.state == LINGER:
            self._linger_read(ec)
            return
        if ec.proxy is not None:
            self._proxy_step(ec)
            return
        if ec.context is not None:
            self._tls_step(ec)
            return
        n = self._recv(ec)
        if n is None:
            return
        if n <= 0 and ec.state == READ_BODY:
            self._body_read(ec)           # the worker's body finds the client gone (Rule 7)
            return
        if n < 0:
            self._close(ec)
            return
        if not n:
            self._eof(ec)
            return
        if ec.conn is None:
            ec.conn = ec.policy.connection()
        ec.conn.receive_data(self.view[:n])    # parsed before the buffer is read into again
        if ec.clock is not None:
            ec.clock.received(n, time.monotonic())
        if ec.state == READ_BODY:
            self._body_step(ec)
        else:
            self._advance(ec)

    def _recv(self, ec: EventConn) -> int | None:
        """One non-blocking read into ``self.buf``: its length (0 at EOF, -1 on an error), or
        None when nothing was there (``ec`` is re-armed)."""
        try:
            if ec.secure:               # non-blocking already; the ssl module takes no flags
                return ec.sock.recv_into(self.buf, RECV_BYTES)
            return ec.sock.recv_into(self.buf, RECV_BYTES, socket.MSG_DONTWAIT)
        except _WAIT_READ:
            self._rearm(ec)
            return None
        except OSError:
            return -1

    # -- the PROXY header (Rule 8) -------------------------------------------------------------
    def _proxy_step(self, ec: EventConn) -> None:
        try:
            done = proxy_header.step(ec.sock, ec.proxy, socket.MSG_DONTWAIT)
        except _WAIT_READ:
            self._rearm(ec)
            return
        except proxy_header.ProxyProtocolError as exc:
            proxy_header.refused(self.log, ec.addr, exc)
            self._close(ec)
            return
        except OSError:
            self._close(ec)
            return
        if not done:
            self._rearm(ec)
            return
        peer = ec.addr if isinstance(ec.addr, tuple) else (str(ec.addr), 0)
        ec.peer = peer = (str(peer[0]), int(peer[1]))
        ec.addr = proxy_header.client_of(ec.proxy, peer)
        ec.proxy = None
        self._readable(ec)        # a request or a TLS hello may have come with it

    # -- TLS (Rule 6) -----------------------------------------------------------------------
    def _tls_step(self, ec: EventConn) -> None:
        """One step towards a TLS connection: peek and wrap, then the handshake's next move."""
        if type(ec.sock) is not ssl.SSLSocket and not self._tls_wrap(ec):
            return
        try:
            ec.sock.do_handshake()
        except _WAIT_READ:
            self._rearm(ec)
            return
        except ssl.SSLWantWriteError:
            self._arm(ec, EPOLL_OUT)
            return
        except (OSError, ValueError) as exc:
            self._tls_failed(ec, exc)
            return
        self._tls_done(ec)

    def _tls_wrap(self, ec: EventConn) -> bool:
        """Peek at the first bytes; True once the socket is wrapped for the handshake."""
        try:
            first = handshake.peek(ec.sock, socket.MSG_DONTWAIT)
        except _WAIT_READ:
            self._rearm(ec)
            return False
        except OSError as exc:
            self._tls_failed(ec, exc)
            return False
        if not first:
            self._close(ec)
            return False
        if is_plain_http(first):
            handshake.plain_http(self.log, ec.addr)
            ec.context = None
            ec.error = PlainHttpOnTls()                # a worker answers it, plain
            self._ready(ec)
            return False
        try:
            ec.sock = ec.context.wrap_socket(ec.sock, server_side=True,   # type: ignore[union-attr]
                                             do_handshake_on_connect=False)
            ec.sock.setblocking(False)
        except (OSError, ValueError) as exc:
            self._tls_failed(ec, exc)
            return False
        return True

    def _tls_done(self, ec: EventConn) -> None:
        ec.context = None
        self.head_q.remove(ec)
        self._start_head(ec, time.monotonic())         # Rule 7: the head's time starts now
        ec.secure = True
        info = ec.info = _conn_info(ec)
        info.scheme, info.tls = "https", ec.tls.vars(ec.sock)
        info.sni = getattr(ec.sock, SNI_ATTR, None)
        self._readable(ec)          # the request may have come with the handshake's end

    def _tls_failed(self, ec: EventConn, exc: BaseException | str) -> None:
        handshake.handshake_failed(self.log, ec.addr, exc)
        self._close(ec)

    def _eof(self, ec: EventConn) -> None:
        if ec.conn is not None and ec.conn.partial_request:
            ec.conn.receive_data(b"")
            self._advance(ec)         # the core queues a 400 for the cut head
        else:
            self._close(ec)

    def _advance(self, ec: EventConn) -> None:
        """A Request (or an error) goes to a worker; otherwise wait for more bytes."""
        try:
            event = ec.conn.next_event()
        except ProtocolError as exc:
            ec.error = exc
            self._ready(ec)
            return
        if isinstance(event, Request):
            if not self._preread(ec, event):
                self._ready(ec, event)
        elif event is NEED_DATA:
            self._wait_head(ec)
        else:
            self._close(ec)

    def _wait_head(self, ec: EventConn) -> None:
        if ec.state == KEEPALIVE and ec.conn is not None and ec.conn.partial_request:
            self.ka_q.remove(ec)
            ec.state = READ_HEAD
            self._start_head(ec, time.monotonic())     # the first byte starts the stage
            if ec.clock is not None:
                ec.clock.received(ec.conn.bytes_buffered, time.monotonic())
        self._rearm(ec)

    # -- RequestReadTimeout (Rule 7) ---------------------------------------------------------
    def _start_head(self, ec: EventConn, now: float) -> None:
        """The head's time: the header stage, or Timeout when that stage is off."""
        ec.clock = ec.policy.read_timeout.header.start(now)
        if ec.clock is None:
            self.head_q.append(ec, now, ec.policy.timeout_s)
        else:
            self._stage_wait(ec)

    def _stage_wait(self, ec: EventConn) -> None:
        clock = ec.clock
        if len(self.stage_q) >= self.stage_compact_at:
            self._compact_stages()
        heapq.heappush(self.stage_q, (clock.deadline_s, next(_SEQ), clock, ec))  # type: ignore[union-attr]

    def _compact_stages(self) -> None:
        """Drop the entries of ended stages.  Lazy removal leaves one per connection until its
        deadline (header=20 s): under many short connections, every connection of the last 20
        s with its socket.  Past twice the live entries the heap is rebuilt (O(n), amortised
        over the pushes that filled it)."""
        conns = self.conns
        live = [e for e in self.stage_q if e[3].clock is e[2] and conns.get(e[3].fd) is e[3]]
        heapq.heapify(live)
        self.stage_q[:] = live
        self.stage_compact_at = max(STAGE_COMPACT_MIN, 2 * len(live))

    # -- a body read before its handler runs (Rule 7) ----------------------------------------
    def _preread(self, ec: EventConn, request: Request) -> bool:
        """True when the listener reads ``request``'s body before a worker gets it."""
        if not (request.chunked or request.content_length) or ec.conn.message_buffered():
            return False
        info = ec.info = ec.info or _conn_info(ec)
        policy = ec.policy.serving(request, info)
        route = cached_route(policy.cfg, request)
        if route is None:
            return False                  # not known yet: a worker runs the phases
        handler, dir_config = route
        if getattr(handler, "kind", "inline") not in _READS_BODY:
            return False                  # it may answer without the body: at once
        limit = int(getattr(dir_config, "limit_request_body", 0) or 0)
        if limit and (request.content_length or 0) > limit:
            return False                  # refused with 413 before the handler
        if info.sni is not None and policy.misdirected(request, info):
            return False                  # answered 400/421 without the body
        stage = policy.read_timeout.body
        if not stage.on:                  # Timeout alone bounds each read (mpm/conn.py Rule 9)
            stage = Stage(float("inf"), idle_s=policy.timeout_s)
        if request.expect_continue and not self._invite(ec):
            return False
        self.head_q.remove(ec)
        ec.state, ec.request = READ_BODY, request
        ec.clock = stage.start(time.monotonic())
        self._stage_wait(ec)
        self._rearm(ec)
        return True

    def _invite(self, ec: EventConn) -> bool:
        """"100 Continue" before the body is read; False when the socket took none of it (a
        worker then sends it on the body's first read, as before)."""
        try:
            if ec.secure:
                sent = ec.sock.send(CONTINUE)
            else:
                sent = ec.sock.send(CONTINUE, socket.MSG_DONTWAIT)
        except _WAIT_WRITE:
            return False
        except OSError:
            return False                  # the worker finds the connection gone
        if sent <= 0:
            return False
        ec.interim = CONTINUE[sent:]      # the worker writes what is left first
        return True

    def _body_step(self, ec: EventConn) -> None:
        conn = ec.conn
        if conn.message_buffered() or conn.bytes_buffered >= PREREAD_BYTES:
            self._body_read(ec)
        else:
            self._rearm(ec)

    def _body_read(self, ec: EventConn) -> None:
        """The body is here, past the bound, failed, or the client left: to a worker, with
        the stage's clock (mpm/conn.py Rule 9)."""
        clock = ec.clock
        self._ready(ec, ec.request)
        ec.body_clock = clock

    def _expire_stages(self, now: float) -> None:
        """Stages whose deadline came: moved on by MinRate (back in the heap), or over."""
        heap = self.stage_q
        while heap and heap[0][0] <= now:
            _, _, clock, ec = heapq.heappop(heap)
            if ec.clock is not clock or self.conns.get(ec.fd) is not ec:
                continue                  # that stage ended (lazy removal)
            if not clock.expired(now):
                self._stage_wait(ec)
                continue
            if ec.state == READ_BODY:
                self._body_read(ec)       # the worker's first read finds the stage over
                continue
            ec.clock = None
            partial = ec.conn is not None and ec.conn.partial_request
            error = expired_error("header", partial, self.log, ec.addr)
            if error is None:
                self._close(ec)
            else:
                ec.error = error          # a worker answers the 408
                self._ready(ec)

    def _rearm(self, ec: EventConn) -> None:
        if ec.secure and ec.state != LINGER and ec.sock.pending():
            self._readable(ec)          # decrypted bytes epoll cannot see (Rule 6)
            return
        self._arm(ec, EPOLL_IN)

    def _arm(self, ec: EventConn, mask: int) -> None:
        try:
            self.ep.modify(ec.fd, mask)
        except OSError:
            self._close(ec)

    def _ready(self, ec: EventConn, request: Request | None = None) -> None:
        self.head_q.remove(ec)
        self.ka_q.remove(ec)
        ec.clock = None
        ec.state = BUSY
        ec.request = request
        ec.info = ec.info or _conn_info(ec)
        self.pending.append(ec)

    def _park(self, ec: EventConn, now: float) -> None:
        conn = ec.conn
        if conn is not None and conn.has_buffered_request():
            self._advance(ec)
            return
        if conn is not None and not conn.partial_request and not conn.bytes_buffered:
            ec.conn = None                                  # Rule 4
        if conn is not None and conn.partial_request:
            ec.state = READ_HEAD
            self._start_head(ec, now)
        else:
            ec.state = KEEPALIVE
            self.ka_q.append(ec, now, ec.policy.keep_alive_timeout_s)
        self._rearm(ec)

    # -- lingering close (Rule 1) ------------------------------------------------------------
    def _start_linger(self, ec: EventConn, now: float) -> None:
        self.head_q.remove(ec)
        self.ka_q.remove(ec)
        ec.clock = None
        try:
            if ec.secure:
                handshake.close_notify(ec.sock)
            ec.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(ec)
            return
        ec.state = LINGER
        ec.conn = None
        self.linger_q.append(ec, now)
        self._rearm(ec)

    def _linger_read(self, ec: EventConn) -> None:
        n = self._recv(ec)
        if n is None:
            return
        if n > 0:
            self._rearm(ec)
        else:
            self._close(ec)

    def _close(self, ec: EventConn) -> None:
        self.head_q.remove(ec)
        self.ka_q.remove(ec)
        self.linger_q.remove(ec)
        if self.conns.get(ec.fd) is ec:
            del self.conns[ec.fd]
        try:
            ec.sock.close()                 # closing the fd also drops it from epoll
        except OSError:
            pass

    def _expire(self, now: float) -> None:
        if self.stage_q and self.stage_q[0][0] <= now:
            self._expire_stages(now)
        for ec in self.ka_q.expire(now):
            self._close(ec)
        for ec in self.linger_q.expire(now):
            self._close(ec)
        for ec in self.head_q.expire(now):
            if ec.proxy is not None:
                self._close(ec)             # no PROXY header in time: closed silently
            elif ec.context is not None:
                self._tls_failed(ec, "timed out")
            elif ec.conn is not None and ec.conn.partial_request:
                ec.error = ProtocolError(408, "request timed out")
                self._ready(ec)
            else:
                self._close(ec)


def _conn_info(ec: EventConn) -> ConnInfo:
    try:
        server = seen_as(ec.sock.getsockname())
    except OSError:
        server = ("", 0)
    addr = ec.addr if isinstance(ec.addr, tuple) else (str(ec.addr), 0)
    return ConnInfo(client_addr=(str(addr[0]), int(addr[1])), peer=ec.peer,
                    server_addr=server, conn_id=ec.fd, requests_served=0)
