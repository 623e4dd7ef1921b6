"""HttpProtocol: one connection on the loop, the transport of the request cycle.

Theory: bytes from ``data_received`` go into the shared sans-I/O ``Connection``; each
``Request`` event opens a ``core.cycle.Cycle``, whose handler runs where its ``kind`` says:
"answered"/"inline" on the loop, "blocking" in the process's thread pool, "async" awaited on
the loop.  A ``bytes`` answer leaves in one ``transport.write``, anything else is streamed by
``writer.py``.  The protocol is the body's ``BodySource`` (core/body.py): the loop pumps the
body as it arrives, a reader on a pool thread waits for it, an async reader awaits it.

Rule 1: one request at a time per connection: the core holds pipelined requests (PAUSED)
        until ``start_next_cycle``; while busy, more than ``PIPELINE_BYTES`` of unparsed input
        pauses reading.
Rule 2: phases and timeouts (httpd semantics, swept by ``loop.py``): a fresh connection waits
        Timeout for its first request, an idle keep-alive one KeepAliveTimeout; reading a head
        or body and every write progress get Timeout; a head that stalls gets 408, a write that
        stalls is aborted; an idle connection that expires is closed silently.
Rule 3: a response that ends the connection is followed by a lingering close (cycle.py
        Rule 5): shutdown the write side, drop what the client still sends, close on its EOF
        or after ``LINGER_S``.
Rule 4: the client leaving cancels an async handler's task and ends the body iterator; the
        Response's ``on_close`` (WSGI close(), ASGI http.disconnect) always runs exactly once.
Rule 5: TLS (loop.py Rule 4): ``tls`` is the listener's ListenerTls when uvloop's TLS transport
        carries the connection (ConnInfo gets the httpd SSL variables); ``refuse`` is an
        answer to give at once instead of reading requests (plain HTTP on a TLS port).
Rule 6: RequestReadTimeout (core/reqtimeout.py), on the loop's clock: a head is read under its
        address's header stage (from connection_made, or a kept-alive connection's first byte),
        a body under its vhost's body stage (from the head's end); each arrival feeds the
        stage's clock and the deadline is the clock's.  The sweep finds a stage whose deadline
        MinRate moved on and waits again; one that ran out is a 408 (none for a head never
        begun).  A stage that is off leaves Timeout per progress.
Rule 7: a "blocking" handler's body (a WSGI app's) is read on the loop before the pool gets
        the request (``prereading``), as nginx's proxy_request_buffering: until the body has
        come, failed (its stage ran out: 408; the client left; LimitRequestBody) or
        ``PREREAD_BYTES`` (core/body.py) are buffered, Content-Length or chunked; then a pool
        thread runs the handler, which finds the body whole (or failed, as its read would have
        found it) and never waits for the client, or, past the bound, reads the rest itself.
        So slow bodies hold no pool thread.  An ``Expect: 100-continue`` request is sent "100
        Continue" first (``RequestBody.invite``: the handler reads the body, RFC 9110 10.1.1).
        Every other kind answers at once, its body discarded after ("answered", "inline": a
        405, a static file), or reads it on the loop ("async").
Rule 8: a 101 (an accepted websocket, modules/asgi_websocket.py) hands the connection over:
        the head is written, the transport gets the Response's body as its protocol
        (``set_protocol``) with the bytes the core held after the request's head, and the
        connection leaves the sweep (no Timeout; the app's task is no longer cancelled by
        the client leaving: the app gets a disconnect).  When the transport closes, the
        cycle logs the 101 and the connection is counted out.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

from mpmd.core.body import CONTINUE, HIGH_BYTES, LOW_BYTES, PREREAD_BYTES, ClientGone, RequestBody
from mpmd.core.cycle import KEEP, LINGER, LINGER_S, NO_BODY, Cycle, close_response, refuse
from mpmd.core.exchange import ConnInfo, Response
from mpmd.core.reqtimeout import StageClock, expired_error
from mpmd.http.errors import ProtocolError
from mpmd.http.events import NEED_DATA, PAUSED, Request
from mpmd.mpm.conn import inet_address, seen_as
from mpmd.tls.variables import SNI_ATTR

PIPELINE_BYTES = 1 << 16
_ALL = 1 << 62                  # a bytes body of any size leaves with its head


class HttpProtocol(asyncio.Protocol):
    __slots__ = ("w", "transport", "conn", "info", "deadline", "timed", "phase_writing",
                 "lingering", "closed", "busy", "body", "task", "served", "paused_write",
                 "drain", "read_paused", "keep", "cycle", "kind", "released", "peer_eof",
                 "advancing", "home", "body_waiter", "tls", "refuse", "policy", "timeout_s", "clock",
                 "prereading", "wanting", "proxied")

    def __init__(self, worker: Any) -> None:
        self.w = worker
        self.transport: Any = None
        self.policy = worker.policy     # its address's, once known (cycle.py Rule 8)
        self.timeout_s = worker.timeout_s   # the request's server's, while one is served
        self.conn = worker.policy.connection()
        self.info: Any = None
        self.deadline = worker.loop.time() + worker.timeout_s
        self.timed = False              # busy phase the sweep may expire (Rule 2)
        self.phase_writing = False
        self.lingering = False
        self.closed = False
        self.busy = False               # a request is in flight
        self.body: RequestBody | None = None
        self.task: asyncio.Task[Any] | None = None
        self.served = 0
        self.paused_write = False
        self.drain: asyncio.Future[None] | None = None
        self.read_paused = False
        self.keep = False
        self.cycle: Cycle | None = None
        self.body_waiter: asyncio.Future[None] | None = None
        self.kind = "inline"
        self.released = False           # LoopWorker.forget() has counted it out
        self.peer_eof = False
        self.advancing = False          # inside advance(): a finished answer does not recurse
        self.home: dict[Any, None] | None = None   # which of the worker's dicts holds it
        self.tls: Any = None            # Rule 5
        self.refuse: ProtocolError | None = None
        self.clock: StageClock | None = None       # the running read stage (Rule 6)
        self.prereading = False         # a blocking handler waits for its body (Rule 7)
        self.wanting = False            # a pool thread waits for more of the body
        self.proxied: Any = None        # the client a PROXY header named (loop.py Rule 6)

    # -- asyncio callbacks --------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = inet_address(transport.get_extra_info("peername"))
        self.info = ConnInfo(self.proxied or peer, seen_as(transport.get_extra_info("sockname")),
                             conn_id=self.w.accepted, peer=peer if self.proxied else None)
        if self.policy.hosts is not None:    # this address's timeouts and head limits
            self.policy = policy = self.policy.for_address(self.info.server_addr)
            self.timeout_s = policy.timeout_s
            self.conn = policy.connection()
            self.deadline = self.w.loop.time() + policy.timeout_s
        self.clock = clock = self.policy.read_timeout.header.start(self.w.loop.time())
        if clock is not None:
            self.deadline = clock.deadline_s
        if self.closed:                      # evicted before the transport existed
            transport.abort()
            return
        if self.tls is not None:
            self._secured(transport)
        fresh = self.w.fresh
        fresh[self] = None
        self.home = fresh
        if self.refuse is not None:
            self.fail(self.refuse)

    def _secured(self, transport: Any) -> None:
        """Rule 5: the connection's TLS facts, once uvloop's handshake is done."""
        sslobj = transport.get_extra_info("ssl_object")
        info = self.info
        info.scheme, info.tls = "https", self.tls.vars(sslobj)
        info.sni = getattr(sslobj, SNI_ATTR, None)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.closed and self.transport is None:
            return
        self.closed = True
        self._wake_drain(ClientGone())
        if self.body is not None and not self.body.done:
            self.body.fail(ClientGone("client closed the connection"))
        task = self.task
        if task is not None and not task.done() and self.kind != "blocking":
            task.cancel()                    # Rule 4 (a thread cannot be cancelled: see respond)
        self.transport = None
        self.w.forget(self)

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return
        self.conn.receive_data(data)
        clock = self.clock
        if clock is not None:
            clock.received(len(data), self.w.loop.time())
        if self.busy:
            self.deadline = self.w.loop.time() + self.timeout_s if clock is None else clock.deadline_s
            body = self.body
            if body is not None and not body.done:
                body.pump()
            elif self.conn.bytes_buffered > PIPELINE_BYTES:
                self.pause_reading()
            return
        self.advance()

    def eof_received(self) -> bool:
        if self.lingering:
            return False                     # the transport closes itself
        self.peer_eof = True
        self.conn.receive_data(b"")
        if self.busy:
            if self.body is not None and not self.body.done:
                self.body.pump()
        else:
            self.advance()
        # keep the write side for an answer in flight (TLS has no half-close: uvloop closes)
        return self.tls is None

    def pause_writing(self) -> None:
        self.paused_write = True

    def resume_writing(self) -> None:
        self.paused_write = False
        self.deadline = self.w.loop.time() + self.timeout_s
        self._wake_drain(None)

    # -- flow control helpers (also used by body.py / writer.py) --------------------------------
    def pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and self.transport is not None:
            self.read_paused = False
            self.transport.resume_reading()

    def write_raw(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def _wake_drain(self, exc: BaseException | None) -> None:
        drain, self.drain = self.drain, None
        if drain is not None and not drain.done():
            if exc is None:
                drain.set_result(None)
            else:
                drain.set_exception(exc)

    async def drained(self) -> None:
        """Wait until the transport takes more (pause_writing/resume_writing backpressure)."""
        if self.closed:
            raise ClientGone()
        if self.paused_write:
            self.drain = self.w.loop.create_future()
            await self.drain

    # -- moving between the worker's dicts ------------------------------------------------------
    def _to_busy(self, timed: bool) -> None:
        w = self.w
        busy = w.busy
        home = self.home
        if home is not busy:
            if home is not None:
                home.pop(self, None)
            busy[self] = None
            self.home = busy
        self.timed = timed
        self.deadline = w.loop.time() + self.timeout_s

    # -- reading requests -----------------------------------------------------------------------
    def advance(self) -> None:
        """Parse and serve what is buffered until the core needs more data (Rule 1)."""
        if self.advancing:
            return                           # an answer finished inside the loop below
        self.advancing = True
        conn = self.conn
        try:
            while not self.busy and not self.closed:
                try:
                    event = conn.next_event()
                except ProtocolError as exc:
                    self.fail(exc)
                    return
                if type(event) is Request:
                    self.start(event)
                    continue
                if event is NEED_DATA:
                    if not self.timed and conn.partial_request:
                        self._to_busy(True)
                        self._head_stage()
                    elif self.clock is not None:
                        self.deadline = self.clock.deadline_s
                    return
                if event is PAUSED:
                    return
                self.close()                 # ConnectionClosed: EOF between requests
                return
        finally:
            self.advancing = False

    def _head_stage(self) -> None:
        """Rule 6: a kept-alive connection's next head began: its header stage starts."""
        if self.clock is None:
            self.clock = clock = self.policy.read_timeout.header.start(self.w.loop.time())
            if clock is not None:
                clock.received(self.conn.bytes_buffered, self.w.loop.time())
        if self.clock is not None:
            self.deadline = self.clock.deadline_s

    def start(self, request: Request) -> None:
        """A new request: open its cycle and run its handler where its kind says."""
        w = self.w
        self.busy = True                     # it joins w.busy only if it outlives this call
        self.cycle = cycle = Cycle(w.policy, self.conn, request, self.info, w.slot, w.mpm, self)
        self.timeout_s = cycle.policy.timeout_s      # httpd: the vhost's Timeout from here on
        if w.stuck_s:
            w.running[self] = False                  # watched until it ends (loop.py Rule 5)
        body = cycle.body
        self.clock = None
        if body is NO_BODY:
            self.body = None
        else:
            self.body = body
            self._to_busy(True)
            self.clock = clock = cycle.policy.read_timeout.body.start(w.loop.time())   # Rule 6
            if clock is not None:
                self.deadline = clock.deadline_s
        self.kind = kind = cycle.kind
        if kind == "answered" or kind == "inline":
            self.respond(cycle.run())
            return
        if self.body is None:
            self._to_busy(False)
        if kind == "blocking":
            if self.body is not None and not body.done and len(body.buf) < PREREAD_BYTES:
                self.prereading = True       # Rule 7: the pool gets it once the body is read
                if body.expect_continue:
                    body.invite()
                return
            w.executor().call(cycle.run, (), self._blocking_done)
        elif getattr(cycle.handler, "answers_itself", False):   # mod_asgi: no wrapper coroutine
            cycle.ctx.respond = self.respond
            self.task = w.loop.create_task(cycle.handler(cycle.ctx))
        else:
            self.task = w.loop.create_task(self._run_async(cycle))

    def _blocking_done(self, resp: Any, error: BaseException | None) -> None:
        """The pool ran a blocking handler (pool.py Rule 3); on the loop."""
        cycle = self.cycle
        if cycle is None:
            return
        self.respond(cycle.failed(error) if error is not None else resp)

    async def _run_async(self, cycle: Cycle) -> None:
        """Await an async handler; it answers through ``ctx.respond`` or by returning."""
        ctx = cycle.ctx
        ctx.respond = self.respond
        try:
            resp = await cycle.handler(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - an app failure is a 500 (cycle.py Rule 2)
            resp = cycle.failed(exc)
            if self.cycle is not cycle or self.phase_writing:
                return                       # it had answered already
        if resp is not None:
            self.respond(resp)
        elif self.cycle is cycle and not self.phase_writing:     # it never answered
            self.respond(cycle.unanswered())

    # -- answering ------------------------------------------------------------------------------
    def respond(self, resp: Response) -> None:
        """The cycle's Plan for ``resp``, written: one write for a bytes body."""
        cycle = self.cycle
        if cycle is None:
            return
        if self.closed:
            from mpmd.mpm.nginx.writer import drop_body
            drop_body(self, resp)
            cycle.response = resp
            self.finish(0)
            return
        if resp.status == 101:
            self._switch(resp)
            return
        plan = cycle.answer(resp, self.w.stopping, self.served, _ALL)
        resp = cycle.response                # type: ignore[assignment]
        self.keep = plan.keep_alive
        if cycle.whole:
            self.transport.write(cycle.first)
            if resp.on_close is not None or type(resp.body) is not bytes:
                close_response(resp)
            self.finish(len(resp.body) if plan.send_body else 0)  # type: ignore[arg-type]
        else:
            from mpmd.mpm.nginx.writer import write_body
            self._to_busy(True)
            self.phase_writing = True
            self.task = self.w.loop.create_task(write_body(self, cycle, plan, cycle.first))

    def _switch(self, resp: Response) -> None:
        """Rule 8."""
        cycle = self.cycle
        assert cycle is not None
        cycle.answer(resp, self.w.stopping, self.served, _ALL)
        tunnel = resp.body
        self.keep = False
        self.task = None
        self._to_busy(False)
        if self.w.stuck_s:
            self.w.running.pop(self, None)
        self.transport.write(cycle.first)
        tunnel.on_end = self._switched_end                  # type: ignore[union-attr]
        self.transport.set_protocol(tunnel)
        tunnel.attach(self.transport, self.conn.take_over())   # type: ignore[union-attr]

    def _switched_end(self, nbytes: int) -> None:
        self.connection_lost(None)
        self.finish(nbytes)

    def finish(self, nbytes: int) -> None:
        """The answer is out: the cycle logs it and says what the connection does next."""
        cycle = self.cycle
        if cycle is None:
            return
        keep = self.keep and not self.closed
        step = cycle.finish(nbytes, keep) if self.body is None else \
            cycle.finish(nbytes, keep, self.next_cycle, self.linger_close)
        if self.w.stuck_s:
            self.w.running.pop(self, None)
        self.served += 1
        self.phase_writing = False
        self.cycle = None
        self.task = None
        if self.closed:
            return
        if step is KEEP:
            self.next_cycle()
        elif step is LINGER:
            self.linger_close()
        # DRAINING: the body calls next_cycle or linger_close once it ends (body.py Rule 4)

    def next_cycle(self) -> None:
        self.conn.start_next_cycle()
        self.busy = False
        self.body = None
        self.kind = "inline"
        w = self.w                           # to the keep-alive dict, inline: once per request
        keepalive = w.keepalive
        home = self.home
        if home is not None:
            home.pop(self, None)             # to the young end: the dict stays in deadline order
        keepalive[self] = None
        self.home = keepalive
        self.timed = False
        policy = self.policy
        self.timeout_s = policy.timeout_s    # the next head is read with the address's
        self.clock = None                    # its header stage starts with its first byte
        self.deadline = w.loop.time() + policy.keep_alive_timeout_s
        if self.read_paused:
            self.resume_reading()
        self.advance()

    # -- BodySource (core/body.py) --------------------------------------------------------------
    def _on_loop(self) -> bool:
        return threading.get_ident() == self.w.loop_thread

    def _soon(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn`` on the loop: now when already there, else thread-safely."""
        if self._on_loop():
            fn(*args)
        else:
            self.w.loop.call_soon_threadsafe(fn, *args)

    def wait(self, body: RequestBody, enough: Callable[[], bool]) -> None:
        """A reader on a pool thread waits for the loop; on the loop it never waits.  While
        it waits it wants more than is buffered (a whole ``read()`` of a body past
        HIGH_BYTES), so reading goes on whatever the buffer holds (``wanting``)."""
        if self._on_loop():
            return
        with body.cond:
            while not enough() and not body.done:
                self.wanting = True
                if self.read_paused:
                    self.w.loop.call_soon_threadsafe(self.resume_reading)
                body.cond.wait(1.0)
            self.wanting = False

    async def arrive(self, body: RequestBody) -> None:
        self.body_waiter = waiter = self.w.loop.create_future()
        try:
            await waiter
        finally:
            self.body_waiter = None

    def fed(self, body: RequestBody) -> None:
        if len(body.buf) > HIGH_BYTES and not self.wanting:
            self.pause_reading()
        waiter = self.body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.prereading and (body.done or len(body.buf) >= PREREAD_BYTES):
            self.prereading = False          # Rule 7: read (or failed, or past the bound)
            cycle = self.cycle
            if cycle is not None and cycle.body is body:
                self.w.executor().call(cycle.run, (), self._blocking_done)

    def taken(self, body: RequestBody) -> None:
        if self.read_paused and len(body.buf) < LOW_BYTES:
            self._soon(self.resume_reading)

    def send_continue(self) -> None:
        self._soon(self.write_raw, CONTINUE)

    def fail(self, exc: ProtocolError) -> None:
        """A request the core refused: answer its status and close (Rule 3)."""
        self._to_busy(True)
        self.busy = True
        self.transport.write(refuse(exc, self.policy, self.info, self.conn, self.w.mpm))
        self.linger_close()

    # -- closing --------------------------------------------------------------------------------
    def linger_close(self) -> None:
        if self.closed or self.transport is None:
            return
        self.lingering = self.timed = True
        self._to_busy(True)
        self.deadline = self.w.loop.time() + LINGER_S
        transport = self.transport
        self.resume_reading()
        if self.peer_eof:
            transport.close()                # the client already sent EOF: nothing to drain
        elif transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()

    def close(self) -> None:
        """Close now (idle expiry, eviction, graceful stop); it stops counting at once."""
        self.w.forget(self)
        if self.transport is not None:
            self.transport.close()
        else:
            self.closed = True

    def on_timeout(self) -> None:
        """Rule 2: the sweep found this busy connection past its deadline.  Only a handler
        still running (``ctx`` set, body read or not needed) is let be: any other state ends
        here, so no connection outlives Timeout by waiting for something that cannot come."""
        body = self.body
        if self.lingering and self.transport is not None:
            self.transport.close()           # FIN was sent; a reset could destroy the answer
        elif self.phase_writing or self.transport is None:
            self.abort()
        elif self._stage_moved():
            return
        elif self.busy and body is not None and not body.done:
            if body.discarding:
                self.abort()
            else:
                body.fail(self._expired("body") or ProtocolError(408, "request body timed out"))
                self.timed = False
        elif not self.busy and self.conn.partial_request:
            self.fail(self._expired("header") or ProtocolError(408, "request timed out"))
        elif self.cycle is None:             # idle, or between an answer and the next cycle
            self.abort()

    def _stage_moved(self) -> bool:
        """Rule 6: MinRate moved the running stage's deadline on: wait until then."""
        clock = self.clock
        reading = not self.busy or (self.body is not None and not self.body.done)
        if clock is None or not reading or clock.expired(self.w.loop.time()):
            return False
        self.deadline = clock.deadline_s
        return True

    def _expired(self, stage: str) -> ProtocolError | None:
        """The 408 of a stage that ran out (logged), None when no stage runs (Timeout's)."""
        if self.clock is None:
            return None
        self.clock = None
        return expired_error(stage, True, getattr(self.w.mpm, "log", None),
                             self.info.client_addr if self.info else None)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
