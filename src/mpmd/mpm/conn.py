"""ConnectionDriver: the blocking transport between a socket and the request cycle.

Shared by prefork (a process per connection), worker (a thread per connection) and event (its
worker threads; the listener thread reads the first head itself and hands over the parsed
``Request`` and its ``Connection`` through ``serve_ready``).  Each request is a
``core.cycle.Cycle``; this file only moves bytes between the socket, the sans-I/O
``Connection`` and the cycle, and is the body's ``BodySource`` (core/body.py): a handler that
reads its body reads the socket in its own thread.

Rule 1: timeouts are kernel socket options (SO_RCVTIMEO/SO_SNDTIMEO) on a blocking socket, so a
        recv is one syscall: KeepAliveTimeout while waiting for the next request's first byte,
        Timeout once a request has started and for every send.
Rule 2: a started request that stalls gets 408 and a close; an idle keep-alive connection that
        times out (or a new one that never sends a byte) is closed silently.
Rule 3: a ProtocolError is answered (``cycle.refusal``), then the connection is closed
        lingering (cycle.py Rule 5).
Rule 4: files go through os.sendfile when EnableSendfile is on; nothing on this path logs
        unless the level asks for it.
Rule 5: scoreboard: R from accept on and while a head needs more than one read; the cycle
        owns the rest (cycle.py Rule 1).  A head that one read brings whole goes from K to W
        directly: its R would last no time, and each write costs prefork a few cache lines
        the other children have evicted.
Rule 6: TLS (a listener whose ``tls`` is set, mpmd/tls): the first bytes are peeked (plain
        HTTP gets httpd's 400 page, tls/plain.py), then the socket is wrapped and the
        handshake runs, bounded by Timeout.  A TLS socket's time-outs are the ssl module's
        (``settimeout``: the kernel's SO_RCVTIMEO would make OpenSSL retry forever), files
        are written from user space (sendfile cannot encrypt), and a close sends close_notify.
Rule 7: with <VirtualHost>s, a connection's Timeout, KeepAliveTimeout and head limits are
        those of its local address's default server (``Policy.for_address``, cycle.py Rule 8);
        once a head names its vhost, that vhost's Timeout governs the body and the answer, as
        httpd's ap_read_request switches to r->server's.
Rule 8: RequestReadTimeout (core/reqtimeout.py): while a head or a body is read, the stage's
        time left is the receive time-out, and each read feeds the stage's clock (MinRate).  The
        head stage is the address's server's; it starts at accept (after a TLS handshake) or
        with a kept-alive connection's first byte.  The body stage is the request's vhost's and
        starts with the first read of the body.  A stage that runs out is a 408.
Rule 9: a body the event MPM's listener began to read (event/listener.py Rule 7) comes with
        that body stage's clock (``serve_ready``'s ``clock``): the worker's reads go on with it,
        so MinRate counts the whole body and a stage that ran out in the listener fails the
        body at its first read, a 408 as if the worker had waited (a clock made of Timeout
        alone when the body stage is off: 408 "request timed out").  ``interim``: what the
        listener could not write of the "100 Continue" it sent (b"": all of it), and the body
        counts it as sent.
Rule 10: a 101 (an accepted websocket, modules/asgi_websocket.py) hands the connection over:
        the head is written, then a duplicate of the socket goes to the event loop that runs
        the app (the ASGI loop thread; ``connect_accepted_socket``) with the bytes the core
        held after the request's head, and this thread waits for the connection's end, then
        logs the 101 and closes.  So no thread reads or writes a plain websocket.  A TLS
        socket cannot move to another loop: this thread moves its bytes (``TlsPump``: it
        reads and writes the SSL socket, the loop thread runs the protocol).  A graceful stop
        seen meanwhile closes the process's websockets after the grace
        (``core.exchange.upgraded_grace_s``, ``close_upgraded``).
Rule 11: RemoteIPProxyProtocol (mpm/proxy_header.py): the PROXY header is read first, before
        a TLS handshake, under Timeout; its client address is the connection's client
        (``ConnInfo.client_addr``), the balancer stays its ``peer``.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import ssl
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from mpmd.core.body import CONTINUE, ClientGone, RequestBody
from mpmd.core.cycle import (KEEP, LINGER_READS, LINGER_S, NO_BODY, Cycle, NullSlot, Policy,
                             refuse, close_response)
from mpmd.core.exchange import (ConnInfo, FileBody, MultipartBody, close_upgraded, Response,
                                upgraded_grace_s)
from mpmd.core.reqtimeout import Stage, StageClock, expired_error
from mpmd.http.errors import ProtocolError
from mpmd.http.events import NEED_DATA, Request
from mpmd.mpm import proxy_header
from mpmd.scoreboard.layout import Status
from mpmd.tls import handshake
from mpmd.tls.plain import PlainHttpOnTls, is_plain_http
from mpmd.tls.variables import SNI_ATTR

RECV_BYTES = 65536
FILE_CHUNK = 1 << 18
_TIMEOUT_ERRORS = (BlockingIOError, TimeoutError, socket.timeout)
_READ, _WRITE, _CLOSING = int(Status.BUSY_READ), int(Status.BUSY_WRITE), int(Status.CLOSING)
_BUFFERS = (bytes, bytearray, memoryview)


class _Closed(Exception):
    """The connection is finished (peer gone, timeout, or must close)."""


def _timeval(seconds: float) -> bytes:
    whole = int(seconds)
    return struct.pack("ll", whole, int((seconds - whole) * 1_000_000))


class ConnectionDriver:
    """Drives blocking sockets through the cycle; one instance per worker (process or thread)."""

    def __init__(self, cfg: Any, worker_slot: Any = None, mpm: Any = None,
                 policy: Policy | None = None) -> None:
        self.cfg = cfg
        self.slot = worker_slot if worker_slot is not None else NullSlot()
        self.mpm = mpm
        # Set by the MPM when its process goes graceful: answers close their connections.  A
        # flag, not a callback: it is read once per request.
        self.stopping = False
        # ``policy``: one the master built from ``cfg`` before fork (ForkingMPM.preload)
        self.policy = policy = policy if policy is not None else Policy.from_config(cfg)
        self.conn_policy = policy                 # the connection's (Rule 7)
        self.timeout_s = policy.timeout_s
        self.keep_alive_timeout_s = policy.keep_alive_timeout_s
        self._rcv_timeout = -1.0
        # The read buffer is made at the first read (``_buffer``): a process that has not yet
        # served a connection (an idle prefork child) writes none of its pages.
        self.buf: bytearray | None = None
        self.view: memoryview | None = None
        self.conn_count = 0
        self.sock: Any = None                     # the connection being served (BodySource)
        self.conn: Any = None
        self.secure = False                       # that connection speaks TLS (Rule 6)
        self.stage: Stage | None = None           # the read stage to start (Rule 8)
        self.clock: StageClock | None = None      # the running stage's clock (Rule 8)
        self.stage_name = "header"
        self.client: Any = None                   # the peer's address, for the log
        self.handed: tuple[StageClock, bool] | None = None   # Rule 9: clock, 100 sent

    def _buffer(self) -> bytearray:
        """The read buffer and its view, made once, at this driver's first read."""
        self.buf = bytearray(RECV_BYTES)
        self.view = memoryview(self.buf)
        return self.buf

    # -- socket plumbing --------------------------------------------------------------------
    def _set_rcv_timeout(self, sock: socket.socket, seconds: float) -> None:
        if seconds != self._rcv_timeout:
            if self.secure:
                sock.settimeout(seconds)          # Rule 6
            else:
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
        addr = seen_as(lsock.getsockname())
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
            clock = self.clock
            if clock is not None:                 # Rule 8: the stage's time left
                wanted = clock.left(time.monotonic())
                if wanted <= 0:
                    raise self._stage_expired(conn)
                wanted = max(wanted, 0.001)       # SO_RCVTIMEO 0 would wait for ever
            else:
                wanted = self.timeout_s if started or idle_timeout_s is None else idle_timeout_s
            if wanted != self._rcv_timeout:
                self._set_rcv_timeout(sock, wanted)
            try:
                n = sock.recv_into(self.buf if self.buf is not None else self._buffer())
            except _TIMEOUT_ERRORS:
                if clock is not None and clock.expired(time.monotonic()):
                    raise self._stage_expired(conn) from None
                if started or conn.partial_request:
                    raise ProtocolError(408, "request timed out") from None
                raise _Closed() from None
            except OSError:
                raise _Closed() from None
            if n and not started:
                started = reading = True
            if n:
                if clock is None and self.stage is not None:   # a kept-alive head's first byte
                    self.clock = clock = self.stage.start(time.monotonic())
                if clock is not None:
                    clock.received(n, time.monotonic())
            conn.receive_data(self.view[:n])      # parsed before the buffer is read into again

    def _stage_expired(self, conn: Any) -> Exception:
        """Rule 8: the running stage ran out: a 408 (logged), or a silent close for a
        connection that never sent a byte."""
        if self.stage is None:                    # Rule 9: a handed clock of Timeout alone
            return ProtocolError(408, "request timed out")
        error = expired_error(self.stage_name, conn.partial_request,
                              getattr(self.mpm, "log", None), self.client)
        return error if error is not None else _Closed()

    def _begin_stage(self, name: str, stage: Stage, now_s: float | None) -> None:
        """Rule 8: ``name`` is read from here on, its clock started at ``now_s`` (None: with
        the next byte, or the body's first read); a stage that is off leaves Timeout."""
        self.stage_name = name
        self.stage = stage if stage.on else None
        self.clock = stage.start(now_s) if now_s is not None else None

    # -- the connection loop ----------------------------------------------------------------
    def serve_connection(self, sock: socket.socket, addr: Any, conn: Any = None,
                         first: Request | None = None, requests_served: int = 0,
                         adopted: Adopted | None = None, tls: Any = None) -> None:
        """Serve every request on ``sock`` then close it (optionally starting from a parsed head).
        ``adopted``: what ``adopt_listener`` returned for the socket's listener; the socket
        then came from accept() with the listener's options, and blocking.  ``tls``: the
        listener's ``ListenerTls`` (Rule 6), None for plain HTTP."""
        self.conn_count += 1
        self.slot.set_status(_READ)     # busy from accept on, as httpd counts it
        self.secure = False
        try:
            local = adopted.local if adopted is not None else None
            if self.policy.hosts is not None:         # Rule 7
                local = local or seen_as(sock.getsockname())
                self._use_policy(sock, self.policy.for_address(local), adopted is not None)
            if adopted is None:
                self._prepare_socket(sock)
            else:
                self._rcv_timeout = self.policy.timeout_s      # what the listener gave it
            conn = conn if conn is not None else self.conn_policy.connection()
            client = peer = inet_address(addr)
            if self.policy.proxy_anywhere and proxy_header.expected(
                    proxy_header.rule_for(self.policy, local, sock), client):   # Rule 11
                self._set_rcv_timeout(sock, self.timeout_s)
                client = proxy_header.read_blocking(sock, getattr(self.mpm, "log", None), client)
                if client is None:
                    return
            info = ConnInfo(client_addr=client, peer=peer if client is not peer else None,
                            server_addr=local or seen_as(sock.getsockname()),
                            conn_id=self.conn_count, requests_served=requests_served)
            if tls is not None:
                secured = self.start_tls(sock, tls, info)
                if secured is None:
                    return
                sock = secured
            self._loop(sock, conn, info, first)
        except (_Closed, OSError):
            pass
        finally:
            self.slot.set_status(_CLOSING)
            try:
                sock.close()
            except OSError:
                pass

    def _use_policy(self, sock: socket.socket, policy: Policy, adopted: bool) -> None:
        """Rule 7: this connection's heads are read with ``policy``'s timeouts and limits."""
        self.conn_policy = policy
        self.timeout_s, self.keep_alive_timeout_s = policy.timeout_s, policy.keep_alive_timeout_s
        if adopted and policy.timeout_s != self.policy.timeout_s:   # not the listener's
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(policy.timeout_s))

    def start_tls(self, sock: socket.socket, tls: Any, info: ConnInfo) -> Any:
        """Rule 6: the socket to serve (an SSLSocket, or ``sock`` when this address is plain),
        or None when the connection is done (plain HTTP answered, handshake failed)."""
        context = tls.context_for(sock)
        if context is None:
            return sock
        log = getattr(self.mpm, "log", None)
        sock.settimeout(self.timeout_s)
        self._rcv_timeout = -1.0
        try:
            first = handshake.peek(sock)
        except OSError as exc:
            handshake.handshake_failed(log, info.client_addr, exc)
            return None
        if not first:
            return None                           # gone before a byte: nothing to log
        if is_plain_http(first):
            handshake.plain_http(log, info.client_addr)
            if self.answer_error(sock, PlainHttpOnTls(), info):
                self.linger(sock)
            return None
        return self._handshake(sock, context, tls, info, log)

    def _handshake(self, sock: socket.socket, context: ssl.SSLContext, tls: Any,
                   info: ConnInfo, log: Any) -> Any:
        try:
            secured = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError) as exc:
            handshake.handshake_failed(log, info.client_addr, exc)
            return None
        try:
            secured.do_handshake()
        except (OSError, ValueError) as exc:
            handshake.handshake_failed(log, info.client_addr, exc)
            secured.close()
            return None
        self.secure = True
        self._rcv_timeout = self.timeout_s
        info.scheme, info.tls, info.sni = "https", tls.vars(secured), getattr(secured, SNI_ATTR, None)
        return secured

    def _loop(self, sock: socket.socket, conn: Any, info: ConnInfo, first: Request | None) -> None:
        self.sock, self.conn = sock, conn         # the BodySource's connection
        self.client = info.client_addr
        request = first
        header = self.conn_policy.read_timeout.header
        while True:
            if request is None:            # wait for the next head (Rule 8)
                self._begin_stage("header", header,
                                  None if info.requests_served else time.monotonic())
                try:
                    event = self.next_event(sock, conn, False, self.keep_alive_timeout_s
                                            if info.requests_served else self.timeout_s)
                except ProtocolError as exc:
                    if self.answer_error(sock, exc, info, conn):
                        self.linger(sock)
                    return
                if type(event) is not Request:
                    return                 # ConnectionClosed (EOF between requests)
                request = event
            if not self.serve_request(sock, conn, request, info):
                self.linger(sock)
                return
            conn.start_next_cycle()
            request = None

    def serve_ready(self, sock: socket.socket, conn: Any, request: Request | None,
                    info: ConnInfo, error: ProtocolError | None = None,
                    clock: StageClock | None = None, interim: bytes | None = None) -> bool:
        """Event MPM workers: serve ``request`` and every request already buffered behind it.

        The socket (blocking, SO_SNDTIMEO already set) was handed over by another thread, and
        it goes back to that thread afterwards: True = it may wait for another request (the
        caller parks it), False = it must be closed (the caller does the lingering close).
        ``error`` answers a protocol error found while the head was read; ``clock`` and
        ``interim``: the body the listener began to read (Rule 9).
        """
        self._rcv_timeout = -1.0                  # another socket than the last one
        self.sock, self.conn = sock, conn         # the BodySource's connection
        self.client = info.client_addr
        self.secure = type(sock) is ssl.SSLSocket
        if self.policy.hosts is not None:         # Rule 7: the listener set SO_SNDTIMEO
            policy = self.policy.for_address(info.server_addr)
            self.conn_policy = policy
            self.timeout_s, self.keep_alive_timeout_s = policy.timeout_s, policy.keep_alive_timeout_s
        try:
            if self.secure:                       # non-blocking in the listener (Rule 6)
                self._set_rcv_timeout(sock, self.timeout_s)
            if clock is not None:                 # Rule 9
                self.handed = (clock, interim is not None)
                if interim:
                    sock.sendall(interim)
            while error is None and request is not None:
                if not self.serve_request(sock, conn, request, info):
                    return False
                conn.start_next_cycle()
                if not conn.has_buffered_request():
                    return not conn.closing
                if not conn.message_buffered():
                    return True                   # the listener reads its body (Rule 9)
                try:
                    event = conn.next_event()
                except ProtocolError as exc:
                    error = exc
                    break
                request = event if isinstance(event, Request) else None
        except (_Closed, OSError):
            return False
        finally:
            self.handed = None
        if error is not None:
            self.answer_error(sock, error, info, conn)
        return False

    def answer_error(self, sock: socket.socket, exc: ProtocolError, info: ConnInfo,
                     conn: Any = None) -> bool:
        """Write the answer to a refused request (no linger); False when the write failed."""
        self.slot.set_status(_WRITE)
        try:
            sock.sendall(refuse(exc, self.conn_policy, info, conn, self.mpm))
        except OSError:
            return False
        return True

    def linger(self, sock: socket.socket) -> None:
        """The lingering close (cycle.py Rule 5) on a blocking socket."""
        self.slot.set_status(_CLOSING)
        try:
            if self.secure:
                handshake.close_notify(sock)
                self._rcv_timeout = -1.0          # close_notify left it non-blocking
            sock.shutdown(socket.SHUT_WR)
            self._set_rcv_timeout(sock, LINGER_S / 4)
            deadline = time.monotonic() + LINGER_S
            for _ in range(LINGER_READS):
                if not sock.recv_into(self.buf if self.buf is not None else self._buffer()) \
                        or time.monotonic() > deadline:
                    break
        except (OSError, ValueError):
            pass

    # -- one request --------------------------------------------------------------------------
    def serve_request(self, sock: socket.socket, conn: Any, request: Request, info: ConnInfo) -> bool:
        """One request through its cycle, the answer written; True = keep the connection."""
        cycle = Cycle(self.policy, conn, request, info, self.slot, self.mpm, self)
        self._begin_stage("body", cycle.policy.read_timeout.body, None)   # Rule 8
        handed = self.handed
        if handed is not None:                    # Rule 9: the listener's body stage goes on
            self.handed = None
            self.clock = handed[0]
            if handed[1] and cycle.body is not NO_BODY:
                cycle.body.continue_sent = True
        if cycle.policy.timeout_s != self.timeout_s:   # Rule 7: the vhost's, for body and answer
            self._request_timeout(sock, cycle.policy.timeout_s)
        plan = cycle.answer(cycle.run(), self.stopping, info.requests_served)
        resp = cycle.response
        if resp.status == 101:                    # type: ignore[union-attr]
            self._switch(sock, conn, cycle, resp)   # type: ignore[arg-type]
            info.requests_served += 1
            return False
        keep = plan.keep_alive
        if self.secure:                           # the head's read may have left KeepAliveTimeout
            self._set_rcv_timeout(sock, self.timeout_s)
        try:
            sock.sendall(cycle.first)
            if cycle.whole:
                nbytes = len(resp.body) if plan.send_body else 0      # type: ignore[union-attr,arg-type]
            else:
                nbytes = self._write_body(sock, cycle, resp.body, plan.chunked)   # type: ignore[union-attr]
        except OSError:
            raise                                 # the connection is gone: nothing to log
        except Exception as exc:  # noqa: BLE001 - a body iterator that raises: cut, close
            cycle.body_failed(exc)
            nbytes, keep = cycle.sent, False
        finally:
            if resp.on_close is not None or type(resp.body) is not bytes:   # type: ignore[union-attr]
                close_response(resp)                                       # type: ignore[arg-type]
        step = cycle.finish(nbytes, keep)
        info.requests_served += 1
        if self.timeout_s != self.conn_policy.timeout_s:
            self._request_timeout(sock, self.conn_policy.timeout_s)   # back to the address's
        return step is KEEP

    def _switch(self, sock: socket.socket, conn: Any, cycle: Cycle, resp: Response) -> None:
        """Rule 10."""
        tunnel: Any = resp.body
        ended = threading.Event()
        sent: list[int] = [0]

        def on_end(nbytes: int) -> None:
            sent[0] = nbytes
            ended.set()
        tunnel.on_end = on_end
        tunnel.tail = conn.take_over()
        loop = tunnel.loop
        graceful = [False]

        def going() -> None:
            if not graceful[0] and (self.stopping or getattr(self.mpm, "graceful", False)):
                graceful[0] = True
                grace = upgraded_grace_s(self.cfg)
                loop.call_soon_threadsafe(loop.call_later, grace, close_upgraded)
        try:
            sock.sendall(cycle.first)
            if self.secure:
                TlsPump(sock, loop, tunnel).run(tunnel.tail, going)
                ended.wait(5.0)
                cycle.finish(sent[0], False)
                return
            twin = socket.socket(fileno=os.dup(sock.fileno()))
        except OSError:
            loop.call_soon_threadsafe(tunnel.close)
            cycle.finish(0, False)
            raise

        async def adopt() -> None:
            try:
                await loop.connect_accepted_socket(lambda: tunnel, sock=twin)
            except Exception as exc:  # noqa: BLE001 - the peer left meanwhile
                twin.close()
                tunnel.connection_lost(exc)
        asyncio.run_coroutine_threadsafe(adopt(), loop)
        while not ended.wait(0.25):
            going()
        cycle.finish(sent[0], False)

    def _request_timeout(self, sock: socket.socket, seconds: float) -> None:
        """Timeout from here on (reads and writes) is ``seconds``."""
        self.timeout_s = seconds
        if self.secure:
            self._set_rcv_timeout(sock, seconds)      # settimeout: both directions
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(seconds))

    # -- BodySource (core/body.py): the handler's thread reads the socket -----------------------
    def wait(self, body: RequestBody, enough: Any) -> None:
        """Read the socket (Timeout, 408 when it stalls) until ``enough()`` or the body's end."""
        if self.clock is None and self.stage is not None:     # the body's first read (Rule 8)
            self.clock = self.stage.start(time.monotonic())
        while not enough() and not body.done:
            try:
                body.take(self.next_event(self.sock, self.conn, started=True))
            except ProtocolError as exc:
                body.fail(exc)
            except (_Closed, OSError):
                body.fail(ClientGone("connection lost in the body"))
                return
            body.pump()                           # the rest of what that read brought

    async def arrive(self, body: RequestBody) -> None:
        raise RuntimeError("a blocking MPM's request body has no async reader")

    def send_continue(self) -> None:
        self.sock.sendall(CONTINUE)

    def fed(self, body: RequestBody) -> None: ...
    def taken(self, body: RequestBody) -> None: ...

    # -- writing the body ---------------------------------------------------------------------
    def _write_body(self, sock: socket.socket, cycle: Cycle, body: Any, chunked: bool) -> int:
        """What follows the head; body bytes sent (for the access log)."""
        if isinstance(body, _BUFFERS):
            sock.sendall(body)
            return len(body)
        if isinstance(body, FileBody):
            return self._send_file_region(sock, cycle.ctx, body)
        if isinstance(body, MultipartBody):
            sent = 0
            for part in body.parts:
                if isinstance(part, FileBody):
                    sent += self._send_file_region(sock, cycle.ctx, part)
                else:
                    sock.sendall(part)
                    sent += len(part)
            return sent
        for piece in cycle.framed(body, chunked):
            sock.sendall(piece)
        return cycle.sent

    def _send_file_region(self, sock: socket.socket, ctx: Any, body: FileBody) -> int:
        sent, offset, left = 0, body.offset, body.length
        if getattr(ctx.dir_config, "enable_sendfile", False) and not self.secure:
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


# Accepted TCP sockets start with the listener's TCP_NODELAY and send/receive time-outs.
_INHERITS_OPTIONS = os.uname().sysname == "Linux"


class TlsPump:
    """Rule 10 on a TLS socket: the request's thread reads and writes the SSL socket (OpenSSL
    wants one thread on it) and the loop thread runs ``protocol``; this is the protocol's
    transport (``write``, ``close``, ``abort``, ``pause_reading``/``resume_reading``, called
    on the loop thread).  Writes queue here and wake the thread; past ``HIGH`` bytes queued the
    protocol is told to pause writing until the queue is written."""

    HIGH = 1 << 20

    def __init__(self, sock: Any, loop: Any, protocol: Any) -> None:
        self.sock, self.loop, self.protocol = sock, loop, protocol
        self.out: deque[bytes] = deque()
        self.lock = threading.Lock()
        self.queued = 0
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_w.setblocking(False)
        self.closing = self.aborting = self.read_paused = self.write_paused = False

    # -- the transport, on the loop thread ----------------------------------------------------
    def write(self, data: bytes) -> None:
        with self.lock:
            self.out.append(data)
            self.queued += len(data)
            over = self.queued > self.HIGH and not self.write_paused
            if over:
                self.write_paused = True
        if over:
            self.protocol.pause_writing()
        self._wake()

    def close(self) -> None:
        self.closing = True
        self._wake()

    def abort(self) -> None:
        self.aborting = True
        self._wake()

    def is_closing(self) -> bool:
        return self.closing or self.aborting

    def pause_reading(self) -> None:
        self.read_paused = True

    def resume_reading(self) -> None:
        self.read_paused = False
        self._wake()

    def _wake(self) -> None:
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass                                  # full (a wake-up is pending) or closed

    # -- the pump, on the request's thread ----------------------------------------------------
    def run(self, tail: bytes, tick: Callable[[], None]) -> None:
        sock, loop, protocol = self.sock, self.loop, self.protocol
        loop.call_soon_threadsafe(protocol.attach, self, tail)
        try:
            while not self.aborting:
                self._flush()
                if self.closing and not self.out:
                    break
                tick()
                if not self.read_paused and sock.pending():
                    ready: list[Any] = [sock]
                else:
                    watch = [self.wake_r] if self.read_paused else [self.wake_r, sock]
                    ready = select.select(watch, [], [], 0.5)[0]
                if self.wake_r in ready:
                    self.wake_r.recv(4096)
                if sock in ready and not self.read_paused:
                    try:
                        data = sock.recv(RECV_BYTES)
                    except ssl.SSLWantReadError:
                        continue
                    if not data:
                        break
                    loop.call_soon_threadsafe(protocol.data_received, data)
        except (OSError, ValueError):
            pass
        finally:
            self.wake_r.close()
            self.wake_w.close()
            loop.call_soon_threadsafe(protocol.connection_lost, None)

    def _flush(self) -> None:
        while True:
            with self.lock:
                if not self.out:
                    resume = self.write_paused
                    self.write_paused = False
                    self.queued = 0
                    break
                data = self.out.popleft()
                self.queued -= len(data)
            self.sock.sendall(data)
        if resume:
            self.loop.call_soon_threadsafe(self.protocol.resume_writing)


@dataclass(frozen=True)
class Adopted:
    """A listener whose options its connections inherit (``ConnectionDriver.adopt_listener``)."""

    local: tuple[str, int] | None        # their local address; None: ask each socket


# ListenRemap (supervisor/listeners.py Rule 6): bound port -> the Listen port it stands for,
# filled by the master before it forks
SEEN_PORTS: dict[int, int] = {}


def seen_as(addr: Any) -> tuple[str, int]:
    """A connection's local (host, port) as the configuration sees it: a remapped listener's
    port is the Listen line's.  Without ListenRemap, one test of an empty dict."""
    host, port = inet_address(addr)
    if SEEN_PORTS:
        port = SEEN_PORTS.get(port, port)
    return host, port


def inet_address(addr: Any) -> tuple[str, int]:
    """(host, port) of a socket address (a Unix socket's path, port 0)."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        return str(addr[0]), int(addr[1])
    return (str(addr), 0)
