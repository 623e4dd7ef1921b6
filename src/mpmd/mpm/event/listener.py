"""The event MPM's listener as a transport: reading heads, parking, lingering (httpd mpm_event).

Theory: every connection that is not with a worker is an ``EventConn`` in the listener's epoll
set, in one of four states: READ_HEAD (a new connection, or a head not yet whole), KEEPALIVE
(between requests), BUSY (a worker has it) and LINGER (closing).  The listener reads request
heads itself (non-blocking, MSG_DONTWAIT on an otherwise blocking socket) into the
connection's sans-I/O ``Connection``; a whole ``Request`` (or a ``ProtocolError``) makes the
connection ready for a worker, which runs the request cycle (``mpm/conn.py``) and gives the
connection back.  This file writes no HTTP bytes: the workers answer, errors included.

Rule 1: timer queues (``TimeoutQueue``): a new connection or a partial head has Timeout, an idle
        keep-alive connection KeepAliveTimeout, a lingering close LINGER_S.  A partial head that
        times out is answered 408 (by a worker); an idle connection is closed silently.
Rule 2: a connection fd is armed EPOLLONESHOT: one readiness event, then the listener decides
        (re-arm, hand to a worker, close).  Only the listener touches epoll and closes sockets.
Rule 4: an idle keep-alive connection keeps no parser: ``Connection`` is dropped when nothing is
        buffered and made again when bytes arrive (this is what keeps idle connections cheap).
Rule 5: the lingering close is the cycle's policy (core/cycle.py Rule 5) on the listener's
        poller: shut the write side, read and drop until EOF or LINGER_S.
"""

from __future__ import annotations

import select
import socket
import time
from typing import Any

from mpmd.core.exchange import ConnInfo
from mpmd.http.errors import ProtocolError
from mpmd.http.events import NEED_DATA, Request

RECV_BYTES = 65536
EPOLL_IN = select.EPOLLIN | select.EPOLLONESHOT | select.EPOLLRDHUP

# connection states (what the listener is waiting for)
READ_HEAD, KEEPALIVE, BUSY, LINGER = range(4)


class EventConn:
    """One client connection as the listener knows it (kept small: Rule 4)."""

    __slots__ = ("sock", "fd", "addr", "conn", "info", "state", "error", "request")

    def __init__(self, sock: socket.socket, addr: Any) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.addr = addr
        self.conn: Any = None
        self.info: ConnInfo | None = None
        self.state = READ_HEAD
        self.error: ProtocolError | None = None       # answer this instead of a request
        self.request: Request | None = None           # parsed, waiting for a worker


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

    # -- reading request heads --------------------------------------------------------------
    def _readable(self, ec: EventConn) -> None:
        if ec.state == LINGER:
            self._linger_read(ec)
            return
        n = self._recv(ec)
        if n is None:
            return
        if n < 0:
            self._close(ec)
            return
        if not n:
            self._eof(ec)
            return
        if ec.conn is None:
            ec.conn = self.policy.connection()
        ec.conn.receive_data(self.view[:n])    # parsed before the buffer is read into again
        self._advance(ec)

    def _recv(self, ec: EventConn) -> int | None:
        """One non-blocking read into ``self.buf``: its length (0 at EOF, -1 on an error), or
        None when nothing was there (``ec`` is re-armed)."""
        try:
            return ec.sock.recv_into(self.buf, RECV_BYTES, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            self._rearm(ec)
            return None
        except OSError:
            return -1

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
            self._ready(ec, event)
        elif event is NEED_DATA:
            self._wait_head(ec)
        else:
            self._close(ec)

    def _wait_head(self, ec: EventConn) -> None:
        if ec.state == KEEPALIVE and ec.conn is not None and ec.conn.partial_request:
            self.ka_q.remove(ec)
            ec.state = READ_HEAD
            self.head_q.append(ec, time.monotonic())
        self._rearm(ec)

    def _rearm(self, ec: EventConn) -> None:
        try:
            self.ep.modify(ec.fd, EPOLL_IN)
        except OSError:
            self._close(ec)

    def _ready(self, ec: EventConn, request: Request | None = None) -> None:
        self.head_q.remove(ec)
        self.ka_q.remove(ec)
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
            self.head_q.append(ec, now)
        else:
            ec.state = KEEPALIVE
            self.ka_q.append(ec, now)
        self._rearm(ec)

    # -- lingering close (Rule 1) ------------------------------------------------------------
    def _start_linger(self, ec: EventConn, now: float) -> None:
        self.head_q.remove(ec)
        self.ka_q.remove(ec)
        try:
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
        for ec in self.ka_q.expire(now):
            self._close(ec)
        for ec in self.linger_q.expire(now):
            self._close(ec)
        for ec in self.head_q.expire(now):
            if ec.conn is not None and ec.conn.partial_request:
                ec.error = ProtocolError(408, "request timed out")
                self._ready(ec)
            else:
                self._close(ec)


def _conn_info(ec: EventConn) -> ConnInfo:
    try:
        server = ec.sock.getsockname()
    except OSError:
        server = ("", 0)
    addr = ec.addr if isinstance(ec.addr, tuple) else (str(ec.addr), 0)
    return ConnInfo(client_addr=(str(addr[0]), int(addr[1])),
                    server_addr=(str(server[0]), int(server[1])), conn_id=ec.fd, requests_served=0)
