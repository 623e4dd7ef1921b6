"""One worker process's event loop: accept, the connection cap, the timer sweep, the scoreboard.

Theory: ``LoopWorker.serve()`` builds a loop (uvloop when importable, else asyncio's default),
watches the listening sockets with ``add_reader`` and accepts itself, so it can stop and
resume accepting (Rule 2 of the package).  Every accepted socket becomes an ``HttpProtocol``
through ``connect_accepted_socket``.  Connections sit in one of three ordered dicts:

  ``fresh``      accepted, no byte of a request yet (deadline: Timeout);
  ``keepalive``  between requests (deadline: KeepAliveTimeout);
  ``busy``       reading a request, running a handler, writing, or lingering.

Rule 1: deadlines are plain numbers on the loop's clock (``loop.time()``, the loop's cached
        time under uvloop); one sweep a second expires them, so no request arms a timer of its
        own and a timeout fires at most a second late, never early.
Rule 2: ``fresh`` and ``keepalive`` are FIFO: all of one dict share a timeout, so the sweep
        expires from the head and eviction at the cap takes the oldest first.
Rule 3: only ``busy`` connections are scanned in full, and only those in a timed phase.
Rule 4: TLS (a listener whose ``tls`` is set): the first bytes are peeked before uvloop gets
        the socket (plain HTTP gets httpd's 400 page over a plain transport); otherwise uvloop's
        TLS transport does the handshake (``connect_accepted_socket(ssl=...)``), within
        Timeout.  A failure costs that connection only and is logged at info.
Rule 5: StuckRequestTimeout (package Rule 6): with it set, each request is in ``running`` from
        its head to the end of its answer, and the sweep logs each one past the limit once
        (``MPMD0110``, as the master does for the other MPMs) and writes their count to the
        scoreboard (``Scoreboard.set_stuck``).  A request whose connection closed stays watched
        while its blocking handler still holds a pool thread; an async one's task was cancelled.
Rule 6: RemoteIPProxyProtocol (mpm/proxy_header.py): a connection that must begin with a PROXY
        header is read by a task, when readable, within Timeout, before TLS and before uvloop
        gets the socket; its source address is the connection's client (``proto.proxied``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from typing import Any

from mpmd.core.exchange import close_upgraded, upgraded_grace_s, work_after_answers
from mpmd.core.cycle import RETIRE_S, Policy, request_line
from mpmd.mpm import proxy_header
from mpmd.mpm.common import M_STUCK, StuckRequest, child_setup
from mpmd.mpm.conn import inet_address
from mpmd.mpm.nginx.pool import BlockingPool
from mpmd.scoreboard.layout import Status
from mpmd.tls import handshake
from mpmd.tls.plain import PlainHttpOnTls, is_plain_http

ACCEPT_BATCH = 64          # accept() calls per readable event (nginx multi_accept, bounded)
SWEEP_S = 1.0
GRACE_POLL_S = 0.05

M_LOOP = "MPMD0610"
M_REUSEPORT = "MPMD0611"
M_ACCEPT = "MPMD0612"


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop on Linux; plain asyncio elsewhere or when it is missing."""
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()


def share_port(listeners: list[Any]) -> None:
    """Master, before fork: let children bind SO_REUSEPORT twins of the listeners."""
    for lst in listeners:
        try:
            lst.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        except (OSError, AttributeError):
            pass


def reuseport_twin(lst: Any, backlog: int) -> socket.socket | None:
    """A child's own socket on the listener's address (package Rule 3); None if refused."""
    sock = socket.socket(lst.sock.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if lst.sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(lst.sock.getsockname()[:2])
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        return None
    return sock


class LoopWorker:
    """Everything one worker process owns (one instance per child)."""

    def __init__(self, mpm: Any, slot: int) -> None:
        self.mpm = mpm
        self.cfg = mpm.cfg
        self.log = mpm.log
        self.slot_no = slot
        self.settings = mpm.settings
        self.policy = policy = Policy.from_config(self.cfg)
        self.timeout_s = policy.timeout_s
        self.keep_alive_timeout_s = policy.keep_alive_timeout_s
        self.max_conns = int(self.cfg.max_connections_per_child)
        self.fresh: dict[Any, None] = {}
        self.keepalive: dict[Any, None] = {}
        self.busy: dict[Any, None] = {}
        self.nconns = 0
        self.inflight = 0                 # requests between start and finish (scoreboard)
        # Answered requests not yet on the scoreboard; ``tally`` adds them once per loop
        # iteration (Rule 4), instead of two shared-memory writes per request.
        self.done_requests = 0
        self.done_bytes = 0
        self.done_time = 0.0
        self.done_duration = 0.0          # seconds the tallied requests took (Total Duration)
        self.tally_due = False
        self.accepted = 0
        self.stopping = False
        self.accepting = False
        self.now = 0.0                    # loop.time() at the last sweep
        self.sockets: list[socket.socket] = []
        self.own: list[socket.socket] = []
        self.tls_of: dict[socket.socket, Any] = {}   # listening socket -> its ListenerTls
        self.pool: BlockingPool | None = None
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.ws: Any = None
        self.slot = LoopSlot(self)        # the scoreboard record as request cycles see it
        self.loop_thread = 0              # threading.get_ident() of the loop's thread
        # Rule 5: StuckRequestTimeout; the connections with a request in flight -> logged yet
        self.stuck_s = float(self.cfg.stuck_request_timeout or 0)
        self.running: dict[Any, bool] = {}

    # -- life cycle ---------------------------------------------------------------------------
    def serve(self) -> None:
        self.loop = loop = new_loop()
        self.loop_thread = threading.get_ident()
        asyncio.set_event_loop(loop)
        self.ws = self.mpm.scoreboard.worker(self.slot_no, 0)
        self.ws.reset(os.getpid(), Status.STARTING)
        child_setup(self.mpm)
        self._open_sockets()
        if not self.mpm.runtime.single_process:
            for signo in (signal.SIGUSR1, signal.SIGWINCH):
                loop.add_signal_handler(signo, self.graceful)
        self.ws.set_status(Status.READY)
        self.resume_accept()
        loop.call_later(SWEEP_S, self._sweep)
        self.done = loop.create_future()
        if self.mpm.graceful:            # told before the loop took the signals over
            self.graceful()
        try:
            loop.run_until_complete(self.done)
            if self.stopping:
                self._let_tasks_finish()
        finally:
            self._shutdown()

    def _let_tasks_finish(self) -> None:
        """Graceful stop: work that outlived its answer (an ASGI app's background tasks) gets
        up to exchange.TASK_GRACE_S to end, as uvicorn waits for it; process-long tasks (named with
        PROCESS_TASK, ASGI lifespan) end later, in child_exit."""
        self.loop.run_until_complete(work_after_answers())

    def _open_sockets(self) -> None:
        self.sockets = [lst.sock for lst in self.mpm.listeners]
        self.tls_of = {lst.sock: lst.tls for lst in self.mpm.listeners if getattr(lst, "tls", None)}
        if not self.settings.reuse_port:
            return
        backlog = int(self.cfg.listen_backlog)
        for lst in self.mpm.listeners:
            twin = reuseport_twin(lst, backlog)
            if twin is None:
                self.log.warn(M_REUSEPORT, f"ReusePort: could not bind a twin of "
                              f"{lst.host}:{lst.port}; sharing the master's socket", "nginx")
                continue
            self.own.append(twin)
            if lst.sock in self.tls_of:
                self.tls_of[twin] = self.tls_of[lst.sock]
        self.sockets = self.own + self.sockets

    def tally(self) -> None:
        """Scoreboard: this iteration's answered requests, and "_" when none is in flight."""
        self.tally_due = False
        if self.done_requests:
            self.ws.add_requests(self.done_requests, self.done_bytes, self.done_time,
                                 self.done_duration)
            self.done_requests = self.done_bytes = 0
            self.done_duration = 0.0
        if not self.inflight:
            self.ws.set_status(Status.GRACEFUL if self.stopping else Status.READY)

    def _shutdown(self) -> None:
        self.tally()
        self.ws.set_status(Status.GRACEFUL if self.stopping else Status.DEAD)
        hooks = getattr(self.cfg, "hooks", None)
        if hooks is not None:
            try:
                hooks.run("child_exit", self.cfg, self.mpm)
            except Exception:  # noqa: BLE001 - exiting anyway
                pass
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        for sock in self.own:
            sock.close()

    def graceful(self) -> None:
        """Package Rule 5: no new connections, idle ones closed, busy ones finish."""
        if self.stopping:
            return
        self.stopping = True
        self.ws.set_status(Status.GRACEFUL)
        if not self.mpm.runtime.single_process:
            self.mpm.show_retiring()
        self.pause_accept()
        for sock in self.own:
            sock.close()
        self.own = []
        # Kept-alive connections are not closed under their clients: for RETIRE_S each one's
        # next request is answered with "Connection: close" (``stopping``), then the idle ones
        # close.  Fresh ones were accepted because their request had arrived
        # (TCP_DEFER_ACCEPT): they are served (then closed) or time out.
        self.loop.call_later(RETIRE_S, self._close_idle)
        # websockets live on to the end of the grace, then close with 1001 (their count keeps
        # the worker running until they are gone)
        self.loop.call_later(upgraded_grace_s(self.cfg), close_upgraded)
        self._maybe_done()

    def _close_idle(self) -> None:
        for proto in list(self.keepalive):
            proto.close()
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self.stopping and self.nconns == 0 and not self.done.done():
            self.done.set_result(None)

    # -- the thread pool for blocking handlers ---------------------------------------------------
    def executor(self) -> BlockingPool:
        if self.pool is None:
            self.pool = BlockingPool(self.loop, self.settings.threads)
        return self.pool

    # -- accepting ----------------------------------------------------------------------------
    def resume_accept(self) -> None:
        if self.accepting or self.stopping:
            return
        self.accepting = True
        for sock in self.sockets:
            self.loop.add_reader(sock.fileno(), self._on_acceptable, sock)

    def pause_accept(self) -> None:
        if not self.accepting:
            return
        self.accepting = False
        for sock in self.sockets:
            try:
                self.loop.remove_reader(sock.fileno())
            except (ValueError, OSError):
                pass

    def _on_acceptable(self, lsock: socket.socket) -> None:
        cap = self.settings.connections
        for _ in range(ACCEPT_BATCH):
            if self.nconns >= cap and not (self.keepalive or self.fresh):
                self.pause_accept()              # nothing to give up: wait for a close
                return
            try:
                sock, addr = lsock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:           # EMFILE and friends: back off until a close
                self.log.error(M_ACCEPT, f"accept failed: {exc}", "nginx")
                self.pause_accept()
                return
            if self.nconns >= cap:
                self.evict_one()
            self._adopt(sock, self.tls_of.get(lsock) if self.tls_of else None, addr)
            if self.max_conns and self.accepted >= self.max_conns:
                self.graceful()
                return

    def _adopt(self, sock: socket.socket, tls: Any = None, addr: Any = None) -> None:
        from mpmd.mpm.nginx.protocol import HttpProtocol
        self.accepted += 1
        self.nconns += 1
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        proto = HttpProtocol(self)
        if self.policy.proxy_anywhere and proxy_header.expected(
                proxy_header.rule_for(self.policy, None, sock), addr):     # Rule 6
            self.loop.create_task(self._proxy_first(sock, proto, tls, addr))
            return
        self._connect_now(sock, proto, tls, addr)

    def _connect_now(self, sock: socket.socket, proto: Any, tls: Any, addr: Any) -> None:
        context = tls.context_for(sock) if tls is not None else None
        if context is not None:
            self.loop.create_task(self._connect_tls(sock, proto, tls, context, addr))
            return
        self.loop.create_task(self._connect(sock, proto))

    async def _proxy_first(self, sock: socket.socket, proto: Any, tls: Any, peer: Any) -> None:
        """Rule 6: the PROXY header, read as it comes (within Timeout), then the connection."""
        reader = proxy_header.ProxyHeaderReader()
        fd = sock.fileno()
        deadline = self.loop.time() + self.timeout_s
        try:
            while True:
                try:
                    if proxy_header.step(sock, reader, socket.MSG_DONTWAIT):
                        break
                except BlockingIOError:
                    pass
                await self._readable(fd, deadline)
        except (OSError, asyncio.TimeoutError, proxy_header.ProxyProtocolError) as exc:
            self._proxy_failed(sock, proto, peer, exc)
            return
        self._proxied(sock, proto, tls, peer, reader)

    def _proxied(self, sock: socket.socket, proto: Any, tls: Any, peer: Any, reader: Any) -> None:
        if proto.closed:                     # evicted meanwhile
            sock.close()
            self.forget(proto)
            return
        proto.proxied = proxy_header.client_of(reader, inet_address(peer))
        self._connect_now(sock, proto, tls, proto.proxied)

    def _proxy_failed(self, sock: socket.socket, proto: Any, peer: Any, exc: BaseException) -> None:
        if isinstance(exc, proxy_header.ProxyProtocolError):
            proxy_header.refused(self.log, inet_address(peer), exc)
        sock.close()
        self.forget(proto)

    async def _readable(self, fd: int, deadline: float) -> None:
        ready = self.loop.create_future()
        self.loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await asyncio.wait_for(ready, max(0.0, deadline - self.loop.time()))
        finally:
            self.loop.remove_reader(fd)

    async def _connect_tls(self, sock: socket.socket, proto: Any, tls: Any, context: Any,
                           peer: Any) -> None:
        """Rule 4: plain HTTP or a handshake, by the first bytes."""
        try:
            first = await self._first_bytes(sock)
        except (OSError, asyncio.TimeoutError) as exc:
            self._tls_failed(sock, proto, exc, peer)
            return
        if not first:
            sock.close()
            self.forget(proto)
            return
        if is_plain_http(first):
            handshake.plain_http(self.log, peer)
            proto.refuse = PlainHttpOnTls()           # answered once the transport exists
            await self._connect(sock, proto)
            return
        proto.tls = tls
        try:
            await self.loop.connect_accepted_socket(lambda: proto, sock, ssl=context,
                                                    ssl_handshake_timeout=self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - any handshake failure ends this connection only
            self._tls_failed(sock, proto, exc, peer)

    async def _first_bytes(self, sock: socket.socket) -> bytes:
        """The client's first bytes, peeked, waiting up to Timeout for them."""
        try:
            return handshake.peek(sock)
        except BlockingIOError:
            pass
        ready = self.loop.create_future()
        fd = sock.fileno()
        self.loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await asyncio.wait_for(ready, self.timeout_s)
        finally:
            self.loop.remove_reader(fd)
        return handshake.peek(sock)

    def _tls_failed(self, sock: socket.socket, proto: Any, exc: BaseException, peer: Any) -> None:
        handshake.handshake_failed(self.log, peer, "timed out" if isinstance(
            exc, asyncio.TimeoutError) else exc)
        sock.close()
        self.forget(proto)

    async def _connect(self, sock: socket.socket, proto: Any) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: proto, sock)
        except Exception:  # noqa: BLE001 - the peer vanished before the transport existed
            sock.close()
            self.forget(proto)

    def evict_one(self) -> bool:
        """Close the oldest idle connection to make room (package Rule 2)."""
        for idle in (self.keepalive, self.fresh):
            if idle:
                proto = next(iter(idle))
                proto.close()
                return True
        return False

    # -- connection bookkeeping (called by HttpProtocol) ------------------------------------------
    def forget(self, proto: Any) -> None:
        """A connection is gone or going (idempotent): drop it everywhere, maybe accept again."""
        if proto.released:
            return
        proto.released = True
        home = proto.home
        if home is not None:
            home.pop(proto, None)
            proto.home = None
        self.nconns -= 1
        if not self.accepting and not self.stopping and self.nconns < self.settings.connections:
            self.resume_accept()
        self._maybe_done()

    # -- the timer sweep (Rule 1..3) -------------------------------------------------------------
    def _sweep(self) -> None:
        self.now = now = self.loop.time()
        for idle in (self.fresh, self.keepalive):
            while idle:
                proto = next(iter(idle))
                if proto.deadline > now:
                    break
                del idle[proto]
                proto.home = None
                proto.close()
        for proto in [p for p in self.busy if p.timed and p.deadline <= now]:
            proto.on_timeout()
        if self.stuck_s:
            self.watch_stuck(time.time())
        self._publish()
        self.loop.call_later(SWEEP_S, self._sweep)

    def watch_stuck(self, wall: float) -> int:
        """Rule 5: log each request newly past StuckRequestTimeout, publish how many are;
        ``wall`` is time.time() (a cycle's start is)."""
        running = self.running
        stuck = 0
        for proto in list(running):
            cycle = proto.cycle
            if cycle is None or (proto.closed and proto.kind != "blocking"):
                del running[proto]           # ended, or its task was cancelled with its client
                continue
            if wall - cycle.start <= self.stuck_s:
                continue
            stuck += 1
            if not running[proto]:
                running[proto] = True
                info = proto.info
                found = StuckRequest(os.getpid(), self.slot_no, 0, cycle.start,
                                     info.client_addr[0] if info is not None else "",
                                     request_line(cycle.ctx.request).decode("latin-1"),
                                     cycle.policy.vhost.decode("latin-1"))
                self.log.warn(M_STUCK, found.describe(wall), "nginx")
        self.mpm.scoreboard.set_stuck(self.slot_no, stuck)
        return stuck

    def _publish(self) -> None:
        """Scoreboard: the process's status letter and connection counters (package Rule 4)."""
        writing = sum(1 for p in self.busy if p.phase_writing)
        closing = sum(1 for p in self.busy if p.lingering)
        if self.stopping:
            status = Status.GRACEFUL
        elif self.inflight:
            status = Status.BUSY_WRITE
        else:
            status = Status.READY
        self.ws.set_status(status)
        set_conns = getattr(self.mpm.scoreboard, "set_conns", None)
        if set_conns is not None:
            set_conns(self.slot_no, self.nconns, len(self.keepalive), writing, closing,
                      self.accepting)


class LoopSlot:
    """A worker's scoreboard record as the request cycle sees it (core/cycle.py Rule 1): one
    record for the whole loop, so W counts a request in flight, the finished ones are added
    once per loop iteration (``tally``) and L is not shown."""

    __slots__ = ("w",)
    _WRITE = int(Status.BUSY_WRITE)

    def __init__(self, worker: LoopWorker) -> None:
        self.w = worker

    def set_status(self, status: int) -> None:
        if status == self._WRITE:
            w = self.w
            w.inflight += 1
            w.ws.set_status(status)

    def begin(self, status: int, now: float) -> None:
        """A request starts: the loop's one record has no start time of its own (the loop
        watches its requests itself: ``LoopWorker.watch_stuck``)."""
        self.set_status(status)

    def start_request(self, client: bytes, request_line: bytes, vhost: bytes = b"") -> None:
        self.w.ws.start_request(client, request_line, vhost)

    def finish(self, nbytes: int, last: float, status: int) -> None:
        w = self.w
        w.inflight -= 1
        w.done_requests += 1
        w.done_bytes += nbytes
        w.done_time = last
        w.done_duration += time.time() - last        # ``last``: when the request began
        if not w.tally_due:
            w.tally_due = True
            w.loop.call_soon(w.tally)
