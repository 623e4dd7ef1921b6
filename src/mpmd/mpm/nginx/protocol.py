"""HttpProtocol: one connection on the loop; RequestRunner: one request through the pipeline.

Theory: bytes from ``data_received`` go into the shared sans-I/O ``Connection``; each
``Request`` event is prepared by the pipeline (``core.request.prepare``) and its handler run
where its ``kind`` says: "inline" on the loop, "blocking" in the process's thread pool, "async"
awaited on the loop.  ``core.respond.finalize_plan`` makes the head; a ``bytes`` body (or an
async body whose ``complete`` bytes are all there, mod_asgi) leaves in the same
``transport.write`` as the head, anything else is streamed by ``writer.py``.

Rule 1: one request at a time per connection: the core holds pipelined requests (PAUSED)
        until ``start_next_cycle``; while busy, more than ``PIPELINE_BYTES`` of unparsed input
        pauses reading.
Rule 2: phases and timeouts (httpd semantics, swept by ``loop.py``): a fresh connection waits
        Timeout for its first request, an idle keep-alive one KeepAliveTimeout; reading a head
        or body and every write progress get Timeout; a head that stalls gets 408, a write that
        stalls is aborted; an idle connection that expires is closed silently.
Rule 3: a response that ends the connection is followed by a lingering close: shutdown the
        write side, drop what the client still sends, close on its EOF or after ``LINGER_S``.
Rule 4: the client leaving cancels an async handler's task and ends the body iterator; the
        Response's ``on_close`` (WSGI close(), ASGI http.disconnect) always runs exactly once.
"""

from __future__ import annotations

import asyncio
from time import time as _time
from typing import Any

from mpmd.core.exchange import ConnInfo, EmptyBody, Response
from mpmd.http.connection import Connection
from mpmd.http.errors import ProtocolError
from mpmd.http.events import NEED_DATA, PAUSED, Data, EndOfMessage, Request
from mpmd.mpm.conn import _addr, _close_body, _error_for, _request_line, refusal_bytes
from mpmd.mpm.nginx.body import BodyChannel, ClientGone
from mpmd.scoreboard.layout import Status

# Plain ints: an IntEnum member costs 60 ns to look up and more to compare.
BUSY_WRITE, READY, GRACEFUL = int(Status.BUSY_WRITE), int(Status.READY), int(Status.GRACEFUL)
PIPELINE_BYTES = 1 << 16
LINGER_S = 2.0
_EMPTY = EmptyBody()


class RequestRunner:
    """The per-process pipeline entry points (looked up once, not per request)."""

    def __init__(self, worker: Any) -> None:
        from mpmd.core import request as pipeline
        from mpmd.core.respond import finalize_plan, plan_for
        self.w = worker
        self.begin = pipeline.begin
        self.prepare = pipeline.prepare
        self.run_handler = pipeline.run_handler
        self.handler_failed = pipeline.handler_failed
        self.no_answer = pipeline.no_answer
        self.log = pipeline.log
        self.log_error = pipeline._log_error
        self.error = pipeline.error
        self.finalize = finalize_plan
        self.plan_for = plan_for
        self.logs = pipeline.logs_requests(worker.cfg)


class HttpProtocol(asyncio.Protocol):
    __slots__ = ("w", "transport", "conn", "info", "deadline", "timed", "phase_writing",
                 "lingering", "closed", "busy", "body", "task", "served", "paused_write",
                 "drain", "read_paused", "keep", "ctx", "kind", "released", "peer_eof",
                 "advancing", "home")

    def __init__(self, worker: Any) -> None:
        self.w = worker
        self.transport: Any = None
        self.conn = Connection(worker.limits)
        self.info: Any = None
        self.deadline = worker.loop.time() + worker.timeout_s
        self.timed = False              # busy phase the sweep may expire (Rule 2)
        self.phase_writing = False
        self.lingering = False
        self.closed = False
        self.busy = False               # a request is in flight
        self.body: BodyChannel | None = None
        self.task: asyncio.Task[Any] | None = None
        self.served = 0
        self.paused_write = False
        self.drain: asyncio.Future[None] | None = None
        self.read_paused = False
        self.keep = False
        self.ctx: Any = None
        self.kind = "inline"
        self.released = False           # LoopWorker.forget() has counted it out
        self.peer_eof = False
        self.advancing = False          # inside advance(): a finished answer does not recurse
        self.home: dict[Any, None] | None = None   # which of the worker's dicts holds it

    # -- asyncio callbacks --------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.info = ConnInfo(_addr(transport.get_extra_info("peername")),
                             _addr(transport.get_extra_info("sockname")),
                             conn_id=self.w.accepted)
        if self.closed:                      # evicted before the transport existed
            transport.abort()
            return
        fresh = self.w.fresh
        fresh[self] = None
        self.home = fresh

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
        if self.busy:
            self.deadline = self.w.loop.time() + self.w.timeout_s
            body = self.body
            if body is not None and not body.done:
                self.pump_body()
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
                self.pump_body()
        else:
            self.advance()
        return True                          # keep the write side for an answer in flight

    def pause_writing(self) -> None:
        self.paused_write = True

    def resume_writing(self) -> None:
        self.paused_write = False
        self.deadline = self.w.loop.time() + self.w.timeout_s
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
        self.deadline = w.loop.time() + w.timeout_s

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
                    return
                if event is PAUSED:
                    return
                self.close()                 # ConnectionClosed: EOF between requests
                return
        finally:
            self.advancing = False

    def pump_body(self) -> None:
        """Move Data/EndOfMessage events into the body channel."""
        conn, body = self.conn, self.body
        assert body is not None
        while not body.done:
            try:
                event = conn.next_event()
            except ProtocolError as exc:
                body.fail(exc)
                return
            if type(event) is Data:
                body.feed(event.data)
            elif type(event) is EndOfMessage:
                body.finish()
            elif event is NEED_DATA:
                return
            else:
                body.fail(ClientGone("connection closed in the body"))

    def start(self, request: Request) -> None:
        """A new request: build its context and run its handler where its kind says."""
        w = self.w
        self.busy = True                     # it joins w.busy only if it outlives this call
        if request.chunked or request.content_length:           # Request.has_body
            self.body = body = BodyChannel(self, request, w.limit_body)
            self._to_busy(True)
            self.pump_body()
        else:
            self.conn.next_event()           # the EndOfMessage right behind the head
            self.body = None
            body = _EMPTY
        now = _time()
        ws = w.ws
        w.inflight += 1
        ws.set_status(BUSY_WRITE)
        if w.extended_status:                # httpd records who/what only with ExtendedStatus
            ws.start_request(self.info.client_addr[0].encode("latin-1", "replace"),
                             _request_line(request), request.header(b"host") or b"")
        runner = w.runner
        ctx, handler = runner.begin(request, self.info, w.cfg, body, w.mpm, now)
        self.ctx = ctx
        if handler is None:                  # not in the route cache: run the phases
            try:
                handler = runner.prepare(ctx)
            except Exception as exc:  # noqa: BLE001 - a phase that raises is a 500 (request.py Rule 2)
                runner.log_error(ctx, "MPMD0301", f"request phase failed: {exc!r}")
                handler = runner.error(500, ctx)
        if type(handler) is Response:
            self.respond(handler)
            return
        try:
            kind = handler.kind
        except AttributeError:               # a plain function registered as a handler
            kind = "inline"
        self.kind = kind
        if kind == "inline":
            try:                             # run_handler, inline: once per request
                resp = handler(ctx)
            except Exception:  # noqa: BLE001 - a handler that raises is a 500 (request.py Rule 2)
                resp = runner.handler_failed(ctx)
            self.respond(resp if resp is not None else runner.no_answer(ctx))
            return
        if self.body is None:
            self._to_busy(False)
        if kind == "blocking":
            w.executor().call(runner.run_handler, (ctx, handler), self._blocking_done)
        elif getattr(handler, "answers_itself", False):      # mod_asgi: no wrapper coroutine
            ctx.respond = self.respond
            self.task = w.loop.create_task(handler(ctx))
        else:
            self.task = w.loop.create_task(self._run_async(ctx, handler))

    def _blocking_done(self, resp: Any, error: BaseException | None) -> None:
        """The pool ran a blocking handler (pool.py Rule 3); on the loop."""
        if error is not None:                    # run_handler answers app errors itself
            runner = self.w.runner
            runner.log_error(self.ctx, "MPMD0301", f"handler failed: {error!r}")
            resp = runner.error(500, self.ctx)
        self.respond(resp)

    async def _run_async(self, ctx: Any, handler: Any) -> None:
        """Await an async handler; it answers through ``ctx.respond`` or by returning."""
        runner = self.w.runner
        ctx.respond = self.respond
        try:
            resp = await handler(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - an app failure is a 500
            runner.log_error(ctx, "MPMD0301", f"handler failed: {exc!r}")
            resp = None
        if resp is not None:
            self.respond(resp)
        elif self.ctx is ctx and not self.phase_writing:     # it never answered
            self.respond(runner.error(500, ctx))

    # -- answering ------------------------------------------------------------------------------
    def respond(self, resp: Response) -> None:
        """Finalize and write ``resp`` (one write for a bytes body)."""
        ctx = self.ctx
        body = self.body
        if self.closed:
            from mpmd.mpm.nginx.writer import drop_body
            drop_body(self, resp)
            return
        if body is not None and isinstance(body.error, ProtocolError):
            resp = _error_for(body.error, ctx)
            resp.close_connection = True
        content = resp.body
        w = self.w
        keep_ok = (w.keep_alive and not resp.close_connection and not w.stopping
                   and (not w.max_keep_alive or self.served + 1 < w.max_keep_alive)
                   and (body is None or body.done or not body.expect_continue
                        or body.continue_sent))   # else the client holds its body back
        plan = w.runner.plan_for(ctx, resp, keep_ok)
        self.keep = plan.keep_alive
        if not plan.send_body:
            self.transport.write(plan.head)
            _close_body(resp)
            self.finish(resp, 0)
        elif type(content) is bytes:
            self.transport.write(plan.whole or plan.head + content)
            on_close = resp.on_close
            if on_close is not None:             # bytes have no close(): only the callback
                resp.on_close = None
                on_close()
            self.finish(resp, len(content))
        else:
            from mpmd.mpm.nginx.writer import write_body
            self._to_busy(True)
            self.phase_writing = True
            self.task = self.w.loop.create_task(write_body(self, ctx, plan, resp))

    def finish(self, resp: Response, nbytes: int) -> None:
        """The answer is out: log it, then keep the connection or close it."""
        w = self.w
        ctx = self.ctx
        runner = w.runner
        if runner.logs:
            runner.log(ctx, resp, nbytes)
        w.inflight -= 1
        w.done_requests += 1                 # to the scoreboard at the loop iteration's end
        w.done_bytes += nbytes
        w.done_time = ctx.start_time
        if not w.tally_due:
            w.tally_due = True
            w.loop.call_soon(w.tally)
        self.served += 1
        self.phase_writing = False
        self.ctx = None
        self.task = None
        if self.closed:
            return
        if not self.keep or self.conn.closing and not self.conn.has_buffered_request():
            self.linger_close()
            return
        body = self.body
        if body is not None and not body.done:
            body.discard(self.next_cycle, self.linger_close)    # body.py Rule 4
            return
        self.next_cycle()

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
        self.deadline = w.loop.time() + w.keep_alive_timeout_s
        if self.read_paused:
            self.resume_reading()
        self.advance()

    def fail(self, exc: ProtocolError) -> None:
        """A request the core refused: answer its status and close (Rule 3)."""
        self._to_busy(True)
        self.busy = True
        self.transport.write(refusal_bytes(self.w.runner.finalize, exc))
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
        elif self.busy and body is not None and not body.done:
            if body.discarding:
                self.abort()
            else:
                body.fail(ProtocolError(408, "request body timed out"))
                self.timed = False
        elif not self.busy and self.conn.partial_request:
            self.fail(ProtocolError(408, "request timed out"))
        elif self.ctx is None:               # idle, or between an answer and the next cycle
            self.abort()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
