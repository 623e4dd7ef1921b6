"""mod_asgi: ASGI 3 applications (http, websocket, lifespan) on every MPM.

Configuration (server or virtual-host context):
  ASGIApp /path package.module:app       (WSGIPythonPath applies here too)
  WebSocketMaxMessageSize bytes          (16 MiB; a larger message closes with 1009)
  WebSocketCompression On|Off            (permessage-deflate when the client offers it)

A GET with ``Upgrade: websocket`` to a mount runs the app with the websocket scope
(asgi_websocket.py, on the same loop as http requests: the nginx MPM's, or the loop thread).

Interface with the MPMs (the "asgi-app" handler; its ``kind`` is set per process in child_init):

* nginx MPM -- ``kind == "async"``: the MPM awaits ``handler(ctx)`` in a task of the worker's
  loop, and the app runs in that same task (no second task per request, as under uvicorn).
  - The Response is handed to ``ctx.respond(response)`` as soon as it is known, while the app
    may go on running; the handler then returns None.  It returns a Response itself only when
    the app never answered (a 500).  The Response leaves at the first body message (with the
    whole body when that message ends it, so head and body go out in one write) or one loop
    iteration after ``http.response.start``, so a streaming app's head is not held back.
  - Request body: if ``ctx.body`` has ``async def aread(size) -> bytes`` it is awaited (``b""`` =
    end of body; raising ``OSError`` = the client went away or its body failed, a
    ``RequestBodyError``: the app gets ``http.disconnect`` and the MPM answers the body's
    status); otherwise ``ctx.body.read(size)`` is called and must not block (a body the MPM
    has already buffered).
  - ``response.body`` is an async iterator of bytes: the MPM writes each chunk and asks for the
    next only when the transport can take more (backpressure reaches ``send()``).
  - Client gone: the MPM calls ``response.on_close()`` (always, once, also after a normal end);
    the app's ``receive()`` then returns ``http.disconnect`` and later ``send()`` calls are dropped.
    If the client leaves before the response was handed over, cancel the handler's task: that
    cancels the app.
  - Lifespan startup runs on that loop before the first request; child_exit runs the shutdown with
    ``loop.run_until_complete`` if the loop is no longer running, else schedules it.
* prefork / worker / event -- ``kind == "blocking"`` (the fallback, chosen over refusing the config):
  each process runs ONE event-loop thread ("asgi-loop") where lifespan and every request's app
  coroutine run; the request's own thread waits on a queue and serves the app's body reads
  (``ctx.body.read``) and writes (the Response body is a generator it feeds from the queue).  So app
  state bound to the loop (pools, clients) made at startup works, as under uvicorn.  The answer
  begins as on the nginx MPM (``BlockingCycle``), and a child's exit lets apps' work after
  their answers end first (up to TASK_GRACE_S).

Rule 1: receive() gives ``http.request`` messages with ``more_body`` until the body is done, then
        blocks until the response is over or the client is gone, then ``http.disconnect``.
Rule 2: headers are sent with ``http.response.start``; a body without Content-Length is chunked
        by the driver.  ``send()`` with ``more_body`` False ends the body; the app may go on running.
Rule 3: an exception before the response is handed over -> 500 + traceback in the ErrorLog
        (MPMD0802); after it the body iterator raises and the MPM drops the connection (MPMD0803).
Rule 4: lifespan: ``lifespan.startup`` once per worker process; an app that raises on the lifespan
        scope does not support it and is served anyway (uvicorn's "auto"); ``startup.failed`` is
        logged (MPMD0804) and the app answers 500.
Rule 5: ``mpmd -t``, start-up and each restart import every mount's application in a throwaway
        process (app_probe.py): one that cannot be imported fails the configuration at its
        line, with the import error; one that is not a coroutine function (nor its
        ``__call__``) is named in a warning, as it may be a WSGI application.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import traceback
from typing import Any, AsyncIterator, Callable, ClassVar, Iterator

from mpmd.config import values as v
from mpmd.config.directives import Args, Ctx, Directive, Merge
from mpmd.core.exchange import PROCESS_TASK, TASK_GRACE_S, Response, work_after_answers
from mpmd.core.memo import derived_by_content
from mpmd.core.modules import Module
from mpmd.http.errors import RequestBodyError
from mpmd.http.websocket import MAX_SIZE, is_upgrade
from mpmd.modules import asgi_websocket
from mpmd.mpm.base import awaits_handlers
from mpmd.modules.app_probe import MountLine, check_mounts, lines_of
from mpmd.modules.mod_wsgi import (VHOST_FIRST, AppBodyError, _app_spec, _log, _server_error, add_python_path,
                                   flatten, load_object, python_path)
from mpmd.modules.mounts import MountTable, find_mount
from mpmd.tls.variables import asgi_extension

HANDLER_NAME = "asgi-app"
READ_SIZE = 65536
STARTUP_TIMEOUT_S = 60.0
SHUTDOWN_TIMEOUT_S = 10.0

DIRECTIVES = [
    Directive("ASGIApp", args=Args.TAKE2, context=Ctx.SERVER | Ctx.VHOST, value=_app_spec,
              default=[], field="asgi_app", merge=Merge.APPEND, owner="asgi_module", extra=VHOST_FIRST,
              syntax="ASGIApp URL-path package.module:app",
              doc="Serve an ASGI 3 application under a URL path (lifespan once per worker process)."),
    Directive("WebSocketMaxMessageSize", Args.TAKE1, Ctx.SERVER | Ctx.VHOST, v.size, MAX_SIZE,
              "websocket_max_message_size", owner="asgi_module",
              syntax="WebSocketMaxMessageSize bytes",
              doc="Largest websocket message an ASGI app is given (after inflation); a larger "
                  "one closes the connection with 1009. 0: the default, 16 MiB."),
    Directive("WebSocketCompression", Args.FLAG, Ctx.SERVER | Ctx.VHOST, v.flag, True,
              "websocket_compression", owner="asgi_module",
              syntax="WebSocketCompression On|Off",
              doc="Agree on permessage-deflate (RFC 7692) with websocket clients that offer it."),
]


def build_scope(ctx: Any, mount: str, state: dict[str, Any] | None) -> dict[str, Any]:
    """The ASGI http scope: ``path`` is the whole decoded path, ``root_path`` the mount."""
    req = ctx.request
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": req.http_version,
        "method": req.method,
        "scheme": ctx.conn.scheme,
        "path": ctx.uri_path,
        "raw_path": req.path,
        "query_string": req.query,
        "root_path": mount,
        "headers": list(req.headers),
        "client": tuple(ctx.useragent or ctx.conn.client_addr),     # after mod_remoteip
        "server": tuple(ctx.conn.server_addr),
    }
    if state is not None:
        scope["state"] = dict(state)
    if ctx.conn.tls is not None:                 # mod_ssl: the ASGI TLS extension
        scope["extensions"] = {"tls": asgi_extension(ctx.conn.tls)}
    return scope


_HEADS: dict[tuple[Any, ...], tuple[tuple[str, str], ...]] = {}
HEAD_CACHE_SIZE = 1024


def _head(message: dict[str, Any]) -> tuple[int, Any]:
    """(status, headers as str pairs); a short hashable header list is decoded once (apps
    send the same headers again and again) into an immutable tuple."""
    headers = derived_by_content(_HEADS, message.get("headers", ()), _decoded, HEAD_CACHE_SIZE)
    return int(message["status"]), headers


def _decoded(raw: Any) -> tuple[tuple[str, str], ...]:
    return tuple((bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in raw)


class Lifespan:
    """The lifespan protocol for one app in one process (Rule 4)."""

    def __init__(self, app: Any, log: Any, what: str) -> None:
        self.app = app
        self.log = log
        self.what = what
        self.state: dict[str, Any] = {}
        self.supported = True
        self.failed = False
        self._inbox: asyncio.Queue[dict[str, Any]] | None = None
        self._events: dict[str, asyncio.Future[Any]] = {}
        self._task: asyncio.Task[Any] | None = None

    async def startup(self) -> None:
        loop = asyncio.get_running_loop()
        self._inbox = asyncio.Queue()
        self._events = {k: loop.create_future() for k in ("startup", "shutdown")}
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        # Named so the nginx MPM's graceful stop knows it lives as long as the process.
        self._task = loop.create_task(self._run(scope), name=f"{PROCESS_TASK}{self.what}")
        await self._inbox.put({"type": "lifespan.startup"})
        await self._events["startup"]

    async def _run(self, scope: dict[str, Any]) -> None:
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:
            if not self._events["startup"].done():
                self.supported = False          # no lifespan support: serve anyway
            elif not isinstance(exc, asyncio.CancelledError):
                _log(self.log, "error", "MPMD0804", f"lifespan of {self.what} raised:\n{traceback.format_exc().rstrip()}")
        finally:
            for fut in self._events.values():
                if not fut.done():
                    fut.set_result(None)

    async def _receive(self) -> dict[str, Any]:
        assert self._inbox is not None
        return await self._inbox.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        phase = "startup" if ".startup." in kind else "shutdown"
        if kind.endswith(".failed"):
            if phase == "startup":
                self.failed = True
            _log(self.log, "error", "MPMD0804",
                 f"lifespan {phase} of {self.what} failed: {message.get('message', '')}")
        fut = self._events[phase]
        if not fut.done():
            fut.set_result(None)

    async def shutdown(self) -> None:
        if self._task is None or self._task.done() or self._inbox is None:
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(asyncio.shield(self._events["shutdown"]), SHUTDOWN_TIMEOUT_S)
        except asyncio.TimeoutError:
            self._task.cancel()


class ASGIApplication:
    """One mount: the app, its lifespan and the per-request cycle for both MPM families."""

    def __init__(self, mount: str, spec: str) -> None:
        self.mount = mount
        self.spec = spec
        self.app: Any = None
        self.log: Any = None
        self.lifespan: Lifespan | None = None
        self._started: asyncio.Future[Any] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.heads_due: list[AsyncCycle] = []     # started this loop iteration, no body yet

    def load(self) -> Any:
        if self.app is None:
            self.app = load_object(self.spec)
        return self.app

    # -- nginx: awaited on the MPM's loop --------------------------------------------------
    async def ensure_started(self) -> None:
        if self._started is None:
            # The loop is kept: get_running_loop() costs a getpid() syscall on every call.
            self.loop = asyncio.get_running_loop()
            self._started = self.loop.create_future()
            self.lifespan = Lifespan(self.load(), self.log, self.spec)
            try:
                await asyncio.wait_for(self.lifespan.startup(), STARTUP_TIMEOUT_S)
            finally:
                self._started.set_result(None)
        await self._started

    async def run_async(self, ctx: Any) -> None:
        """The app, in the MPM's task; every outcome is answered through ``ctx.respond``
        (the handler's ``answers_itself`` promise, core/exchange.py)."""
        started = self._started
        if started is None or not started.done():
            try:
                await self.ensure_started()
            except Exception:
                ctx.respond(self._fail(ctx, "MPMD0802"))
                return
        if self.lifespan is not None and self.lifespan.failed:
            ctx.respond(_server_error())
            return
        state = self.lifespan.state if self.lifespan and self.lifespan.supported else None
        if ctx.request.method == "GET" and is_upgrade(ctx.request):
            ws = websocket_cycle(ctx, self.loop, ctx.respond)     # type: ignore[arg-type]
            await asgi_websocket.serve(self, ctx, ws, state, lambda e: self._finished_early(ctx, e))
            return
        cycle = AsyncCycle(ctx, self)
        try:
            await self.app(build_scope(ctx, self.mount, state), cycle.receive, cycle.send)
        except asyncio.CancelledError:
            cycle.ended(None)
            raise
        except Exception as exc:  # noqa: BLE001 - Rule 3
            if not cycle.delivered:
                cycle.ended(None)
                ctx.respond(self._fail(ctx, "MPMD0802", exc, unsent=True))
                return
            cycle.ended(exc)
            return
        cycle.ended(None)
        if cycle.delivered:
            return
        if cycle.head is None:
            ctx.respond(self._finished_early(ctx, None))
        else:
            cycle.deliver(cycle.body())          # a head without a body: it ends empty

    def send_due_heads(self) -> None:
        """One loop iteration after their ``http.response.start``: heads still without a body
        leave now (AsyncCycle), so a streaming app's head is not held back."""
        due, self.heads_due = self.heads_due, []
        for cycle in due:
            cycle._head_due()

    def _finished_early(self, ctx: Any, exc: BaseException | None) -> Response:
        """The app ended before answering: its error (``exc``) or a plain 500."""
        if exc is not None:
            return self._fail(ctx, "MPMD0802", exc, unsent=True)
        _log(self.log, "error", "MPMD0805", f"ASGI app {self.spec} returned without a response")
        return _server_error(ctx)

    def _fail(self, ctx: Any, msg_id: str, exc: BaseException | None = None,
              unsent: bool = False) -> Response:
        """Log the app's failure; the 500 to send (ErrorDocument 500 applies when ``unsent``:
        nothing of the app's answer went out)."""
        tb = "".join(traceback.format_exception(exc)) if exc is not None else traceback.format_exc()
        where = f"{ctx.request.method} {ctx.request.target.decode('latin-1')}"
        _log(self.log, "error", msg_id, f"exception in ASGI application {self.spec} ({where}):\n{tb.rstrip()}")
        return _server_error(ctx if unsent else None)


def _wake(fut: asyncio.Future[Any] | None) -> None:
    if fut is not None and not fut.done():
        fut.set_result(None)


def websocket_cycle(ctx: Any, loop: Any, answer: Any) -> asgi_websocket.WebSocketCycle:
    server = ctx.server
    return asgi_websocket.WebSocketCycle(
        ctx, loop, answer, int(getattr(server, "websocket_max_message_size", MAX_SIZE) or MAX_SIZE),
        bool(getattr(server, "websocket_compression", True)))


class AsyncCycle:
    """receive/send of one request on the MPM's loop (nginx), in the handler's own task.

    The Response goes to ``ctx.respond`` once (``deliver``): whole (a bytes body) at a final
    first body message, streaming at a first ``more_body`` message or, through the mount's
    ``heads_due`` (one ``call_soon`` for all the heads started in one loop iteration), one loop
    iteration after ``http.response.start`` if no body came yet.  Streamed
    chunks are handed over one at a time (``chunk``): a second ``send`` waits until the MPM took
    the first (backpressure), a final chunk never waits.
    """

    __slots__ = ("loop", "ctx", "mount", "head", "delivered", "closed", "done", "error", "gone",
                 "chunk", "taken", "ready", "body_done")

    def __init__(self, ctx: Any, mount: "ASGIApplication") -> None:
        self.loop = mount.loop
        self.ctx = ctx
        self.mount = mount
        self.head: tuple[int, list[tuple[str, str]]] | None = None
        self.delivered = False
        self.closed = False                                # the client is gone / the body ended
        self.done = False                                  # the app returned or raised
        self.error: BaseException | None = None
        self.gone: asyncio.Future[Any] | None = None       # receive() waits for the end
        self.chunk: tuple[bytes, bool] | None = None       # handed over, not taken yet
        self.taken: asyncio.Future[Any] | None = None      # send() waits: a chunk is pending
        self.ready: asyncio.Future[Any] | None = None      # body() waits: no chunk yet
        self.body_done = False

    def deliver(self, body: Any) -> None:
        self.delivered = True
        status, headers = self.head  # type: ignore[misc]
        self.ctx.respond(Response(status, headers, body, False, self.close))

    def _head_due(self) -> None:
        if not self.delivered and not self.done and not self.closed:
            self.deliver(self.body())

    def ended(self, error: BaseException | None) -> None:
        self.done = True
        self.error = error
        if self.ready is not None:
            _wake(self.ready)

    async def receive(self) -> dict[str, Any]:
        if not self.body_done:
            try:
                aread = getattr(self.ctx.body, "aread", None)
                data = await aread(READ_SIZE) if aread else self.ctx.body.read(READ_SIZE)
            except OSError:                 # gone, or a body error (the MPM answers its status)
                self.close()
                return {"type": "http.disconnect"}
            self.body_done = not data
            if data or self.body_done:
                return {"type": "http.request", "body": data, "more_body": not self.body_done}
        if not self.closed:
            if self.gone is None:
                self.gone = self.loop.create_future()
            await self.gone
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        kind = message["type"]
        if kind == "http.response.start":
            if self.head is None:
                self.head = _head(message)
                due = self.mount.heads_due
                due.append(self)
                if len(due) == 1:                          # one callback for the iteration's heads
                    self.loop.call_soon(self.mount.send_due_heads)
        elif kind == "http.response.body" and self.head is not None:
            data = message.get("body", b"")
            if type(data) is not bytes:
                data = bytes(data)
            more = bool(message.get("more_body", False))
            if not self.delivered and not more:
                self.deliver(data)                         # whole: bytes, one write with the head
                self.closed = True                         # the body is over: later sends drop
                return
            while self.chunk is not None:
                self.taken = self.loop.create_future()
                await self.taken
                if self.closed:
                    return
            self.chunk = (data, more)
            if not self.delivered:
                self.deliver(self.body())
            _wake(self.ready)

    async def body(self) -> AsyncIterator[bytes]:
        while True:
            chunk = self.chunk
            if chunk is None:
                if self.done:
                    if self.error is not None:
                        self.mount._fail(self.ctx, "MPMD0803", self.error)
                        raise AppBodyError("ASGI application failed while sending its body")
                    return                  # app returned without finishing the body
                self.ready = self.loop.create_future()
                await self.ready
                continue
            self.chunk = None
            _wake(self.taken)
            data, more = chunk
            if data:
                yield data
            if not more:
                self.close()
                return

    def close(self) -> None:
        self.closed = True
        if self.gone is not None:
            _wake(self.gone)
        if self.taken is not None:
            _wake(self.taken)                # a send() waiting for room returns


# -- blocking MPMs: one loop thread per process -----------------------------------------------

class LoopThread:
    """The per-process "asgi-loop" thread of the blocking fallback."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="asgi-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5.0)


class BlockingCycle:
    """One request on the blocking MPMs: the app runs on the loop thread, I/O on the caller's.

    The loop thread tells the request's thread through ``inbox`` how the answer begins, as
    ``AsyncCycle`` decides it on the nginx MPM: ("whole", bytes) at a final first body
    message, ("start", None) at a first ``more_body`` message or one loop iteration after
    ``http.response.start`` with no body yet, ("done", exception or None) if the app ended
    first.  So an app that fails before any body gets a clean 500, and a small answer leaves
    in one write with its Content-Length.
    """

    def __init__(self, ctx: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.ctx = ctx
        self.loop = loop
        self.inbox: queue.SimpleQueue[tuple[str, Any, Any]] = queue.SimpleQueue()
        self.gone = False
        self.body_done = False
        self.gone_fut: asyncio.Future[Any] | None = None
        self.error: BaseException | None = None
        self.head: tuple[int, Any] | None = None   # set on the loop thread before "start"/"whole"
        self.head_out = False                      # loop thread only: the driver was told
        self.body_over = False                     # loop thread only: later sends are dropped

    async def receive(self) -> dict[str, Any]:
        if not self.body_done and not self.gone:
            fut = self.loop.create_future()
            self.inbox.put(("read", None, fut))
            data = await fut
            if data is None:
                return {"type": "http.disconnect"}
            self.body_done = not data
            return {"type": "http.request", "body": data, "more_body": not self.body_done}
        if self.gone_fut is None:
            self.gone_fut = self.loop.create_future()
        if self.gone:
            self.gone_fut.done() or self.gone_fut.set_result(None)
        await self.gone_fut
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if self.gone or self.body_over:
            return
        kind = message["type"]
        if kind == "http.response.start":
            if self.head is None:
                self.head = _head(message)
                self.loop.call_soon(self._head_due)
            return
        if kind != "http.response.body" or self.head is None:
            return                            # a body before its start: dropped
        more = bool(message.get("more_body", False))
        self.body_over = not more
        if not self.head_out:
            self.head_out = True
            if not more:
                self.inbox.put(("whole", bytes(message.get("body", b"")), None))
                return
            self.inbox.put(("start", None, None))
        fut = self.loop.create_future()
        self.inbox.put(("send", message, fut))
        await fut                             # resolved once the driver took the chunk

    def _head_due(self) -> None:
        if not self.head_out and not self.gone:
            self.head_out = True
            self.inbox.put(("start", None, None))

    def _resolve(self, fut: Any, value: Any) -> None:
        def done() -> None:
            if not fut.done():
                fut.set_result(value)
        self.loop.call_soon_threadsafe(done)

    def serve_read(self, fut: Any) -> None:
        try:
            data = self.ctx.body.read(READ_SIZE)
        except Exception as exc:            # LimitRequestBody etc.: the app sees a disconnect
            self.error = exc
            data = None
        self._resolve(fut, data)

    def wait_start(self) -> tuple[str, Any]:
        """Serve reads until the answer begins: ("whole", bytes), ("start", None) or
        ("done", exception or None)."""
        while True:
            kind, message, fut = self.inbox.get()
            if kind != "read":
                return kind, message
            self.serve_read(fut)

    def body(self, on_error: Callable[[BaseException], None]) -> Iterator[bytes]:
        pending = None
        try:
            while True:
                kind, message, fut = self.inbox.get()
                if kind == "read":
                    self.serve_read(fut)
                    continue
                if kind == "done":
                    if message is not None:
                        on_error(message)
                        raise AppBodyError("ASGI application failed while sending its body")
                    return
                data = bytes(message.get("body", b""))
                pending = fut
                if data:
                    yield data
                pending = None
                self._resolve(fut, None)
                if not message.get("more_body", False):
                    return
        finally:
            if pending is not None:
                self._resolve(pending, None)
            self.close()

    def close(self) -> None:
        if self.gone:
            return
        self.gone = True
        while not self.inbox.empty():         # unblock an app waiting on a read or a send
            _, _, fut = self.inbox.get_nowait()
            if fut is not None:
                self._resolve(fut, None)

        def wake() -> None:
            if self.gone_fut is not None and not self.gone_fut.done():
                self.gone_fut.set_result(None)
        self.loop.call_soon_threadsafe(wake)


class ASGIHandler:
    """The "asgi-app" handler: async on nginx, blocking (loop thread) elsewhere."""

    answers_itself = True          # async: run_async answers every request through ctx.respond

    def __init__(self, module: "ASGIModule") -> None:
        self.module = module
        self.kind = "blocking"

    def __call__(self, ctx: Any) -> Any:
        app: ASGIApplication = ctx.notes["asgi.app"]
        if self.kind == "async":
            return app.run_async(ctx)
        return self.module.run_blocking(app, ctx)


class ASGIModule(Module):
    name: ClassVar[str] = "asgi_module"
    route_pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("mod_asgi.c", "mod_asgi")
    DIRECTIVES: ClassVar[list[Directive]] = DIRECTIVES
    builtin: ClassVar[bool] = True

    def __init__(self) -> None:
        self.handler = ASGIHandler(self)
        self.handlers = {HANDLER_NAME: self.handler}
        self.table: MountTable[ASGIApplication] = MountTable(
            lambda server: [(url, spec, lambda u=url, s=spec: ASGIApplication(u, s))
                            for url, spec in flatten(getattr(server, "asgi_app", []))])
        self.mounts = self.table.of
        self.loop_thread: LoopThread | None = None
        self.log: Any = None

    def check_config(self, cfg: Any) -> list[Any]:
        """Every mount's application imported in a throwaway process (Rule 5)."""
        mounts = [MountLine("ASGIApp", spec, lambda s=spec: load_object(s), file, line)
                  for (_, spec), file, line in lines_of(cfg, "asgi_app")]
        return check_mounts(mounts, python_path(cfg), "asgi", "MPMD0806", (
            "warn", "is not a coroutine function, nor is its __call__: if it is a WSGI "
                    "application, serve it with WSGIApp"))

    def translate_name(self, ctx: Any) -> bool | None:
        m = find_mount(self.mounts(ctx.server), ctx.uri_path)
        if m is None:
            return None
        ctx.handler = HANDLER_NAME
        ctx.notes["asgi.app"] = m
        return True

    def child_init(self, server: Any, mpm: Any) -> None:
        """Import the apps; on a blocking MPM start the loop thread and run lifespan startup."""
        mounts = self.table.all(server)
        if not mounts:
            return
        self.log = getattr(mpm, "log", None)
        add_python_path(server)
        for m in mounts:
            m.log = self.log
            try:
                m.load()
            except Exception:
                _log(self.log, "error", "MPMD0801", f"failed to load ASGI application {m.spec}:\n{traceback.format_exc().rstrip()}")
        self.handler.kind = "async" if awaits_handlers(mpm) else "blocking"
        if self.handler.kind == "blocking":
            self.loop_thread = LoopThread()
            for m in mounts:
                if m.app is not None:
                    self.loop_thread.call(self._start(m), STARTUP_TIMEOUT_S + 1)

    async def _start(self, m: ASGIApplication) -> None:
        try:
            await m.ensure_started()
        except Exception:
            _log(self.log, "error", "MPMD0804", f"lifespan startup of {m.spec} raised:\n{traceback.format_exc().rstrip()}")

    def child_exit(self, server: Any, mpm: Any) -> None:
        """Lifespan shutdown, once per process, on the loop the startup ran on.  On the blocking
        MPMs the loop thread first lets apps' work after their answers end (up to
        TASK_GRACE_S), as the nginx MPM does at a graceful stop: a child ends gracefully (the
        SIGTERM of a hard stop ends it before any hook runs)."""
        if self.loop_thread is not None:
            try:
                self.loop_thread.call(work_after_answers(), TASK_GRACE_S + 1)
            except Exception:  # noqa: BLE001 - exiting anyway
                pass
        for m in self.table.apps.values():
            if m.lifespan is None:
                continue
            coro = m.lifespan.shutdown()
            if self.loop_thread is not None:
                try:
                    self.loop_thread.call(coro, SHUTDOWN_TIMEOUT_S + 1)
                except Exception:
                    pass
            else:
                _run_on_owner_loop(m, coro)
        if self.loop_thread is not None:
            self.loop_thread.stop()
            self.loop_thread = None

    def run_blocking(self, m: ASGIApplication, ctx: Any) -> Response:
        if self.loop_thread is None:
            self.loop_thread = LoopThread()
        loop = self.loop_thread.loop
        if ctx.request.method == "GET" and is_upgrade(ctx.request):
            return self.websocket_blocking(m, ctx, loop)
        cycle = BlockingCycle(ctx, loop)

        async def run() -> None:
            exc: BaseException | None = None
            try:
                await m.ensure_started()
                if m.lifespan is not None and m.lifespan.failed:
                    raise RuntimeError(f"lifespan startup of {m.spec} failed")
                state = m.lifespan.state if m.lifespan and m.lifespan.supported else None
                await m.app(build_scope(ctx, m.mount, state), cycle.receive, cycle.send)
            except Exception as e:
                exc = e
            cycle.inbox.put(("done", exc, None))

        asyncio.run_coroutine_threadsafe(run(), loop)
        kind, value = cycle.wait_start()
        if cycle.error is not None:
            cycle.close()
            if isinstance(cycle.error, RequestBodyError):
                # the client's body failed and the app was told http.disconnect: no traceback;
                # the driver answers the body's status (it has the error too)
                from mpmd.core.errors import error_response
                return error_response(cycle.error.error.status, close=True)
            raise cycle.error
        if kind == "done" and (value is not None or cycle.head is None):
            cycle.close()
            return m._finished_early(ctx, value)   # nothing was sent: a 500
        status, headers = cycle.head  # type: ignore[misc]
        if kind == "whole":
            return Response(status, headers, value, on_close=cycle.close)
        if kind == "done":                         # a head without a body: it ends empty
            return Response(status, headers, b"", on_close=cycle.close)
        return Response(status, headers, cycle.body(lambda e: m._fail(ctx, "MPMD0803", e)),
                        on_close=cycle.close)


    def websocket_blocking(self, m: ASGIApplication, ctx: Any, loop: Any) -> Response:
        """The websocket scope on a blocking MPM: the app on the loop thread; this thread
        waits for its answer (the 101, whose body the driver hands the socket to, or a
        refusal)."""
        answered: queue.SimpleQueue[Response] = queue.SimpleQueue()
        ws = websocket_cycle(ctx, loop, answered.put)

        async def run() -> None:
            try:
                await m.ensure_started()
                if m.lifespan is not None and m.lifespan.failed:
                    raise RuntimeError(f"lifespan startup of {m.spec} failed")
            except Exception as exc:  # noqa: BLE001 - answered 500
                answered.put(m._finished_early(ctx, exc))
                return
            state = m.lifespan.state if m.lifespan and m.lifespan.supported else None
            await asgi_websocket.serve(m, ctx, ws, state, lambda e: m._finished_early(ctx, e))

        asyncio.run_coroutine_threadsafe(run(), loop)
        return answered.get()


def _run_on_owner_loop(m: ASGIApplication, coro: Any) -> None:
    loop = m._started.get_loop() if m._started is not None else None
    if loop is None or loop.is_closed():
        coro.close()
    elif loop.is_running():
        loop.create_task(coro)
    else:
        loop.run_until_complete(coro)


__all__ = ["ASGIModule", "ASGIApplication", "build_scope", "HANDLER_NAME"]
