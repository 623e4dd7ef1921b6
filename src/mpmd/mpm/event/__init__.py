"""event: worker's processes x threads, with idle connections parked in the listener (httpd mpm_event).

Theory: the child's main thread is the *listener*.  It owns an epoll set holding the listening
sockets and every connection that waits between requests (``listener.py``: reading heads,
parking, lingering).  Only when a whole ``Request`` is parsed does a worker thread get the
connection; the worker serves it (blocking, with Timeout) plus any pipelined request already
buffered, and hands it back.  The listener then parks it (keep-alive) or does the lingering
close.  This file is the scheduling: accepting, the connection limit, the workers.

Rule 1: the child stops polling its listeners while its connections exceed
        ThreadsPerChild + AsyncRequestWorkerFactor x idle workers (httpd connections_above_limit),
        so another child takes new clients.  When every live child is over its limit, it accepts
        anyway, and once it holds more than ThreadsPerChild x (1 + factor) connections (the limit
        with every worker idle, so a momentary burst evicts nothing) it closes its oldest idle
        keep-alive connection for each one it takes (as nginx reuses idle connections), so a
        new client is always answered.
Rule 2: ConnsTotal / ConnsAsyncKeepAlive / ConnsAsyncWriting / ConnsAsyncClosing are written to
        the scoreboard's ProcessConns record by the listener only.  Responses are written by the
        workers (no write completion in the listener), so ConnsAsyncWriting stays 0.
Rule 3: graceful: stop accepting; for RETIRE_S answer the next request of every parked
        connection with "Connection: close" (a client that sends meanwhile is not cut off),
        then close the idle ones, wait for the busy ones to come back, and exit.
"""

from __future__ import annotations

import collections
import os
import queue
import select
import socket
import struct
import threading
import time
from typing import Any

from mpmd.config.directives import Args, Ctx, Directive
from mpmd.core.cycle import LINGER_S, RETIRE_S, Policy
from mpmd.mpm.event.listener import (BUSY, KEEPALIVE, READ_HEAD, ConnectionStates,
                                     EventConn)
from mpmd.mpm.threaded import DIRECTIVES as THREADED_DIRECTIVES
from mpmd.mpm.threaded import ThreadedMPM
from mpmd.mpm.threaded import settings as threaded_settings
from mpmd.mpm import proxy_header
from mpmd.mpm.conn import inet_address, seen_as
from mpmd.mpm.timeouts import TimeoutQueue
from mpmd.scoreboard.layout import Status

RECV_BYTES = 65536
MAX_EVENTS = 512
MAX_THREAD_LIMIT = 100000         # httpd 2.4 event MAX_THREAD_LIMIT (worker's is 20000)

# How often an over-limit child looks at the other children.  A client that connects while
# every child is over its limit waits in the backlog until one looks: at 0.25 s those waits
# were the p99 (~100 ms) of a busy client beside 10,000 idle connections; at 0.05 s, 9 ms.
LIMIT_CHECK_S = 0.05


def _factor(args: list[str]) -> float:
    try:
        value = float(args[0])
    except (ValueError, IndexError):
        raise ValueError("must be a number greater than 0") from None
    if value <= 0:
        raise ValueError("must be a number greater than 0")
    return value


DIRECTIVES = [*THREADED_DIRECTIVES, Directive(
    "AsyncRequestWorkerFactor", Args.TAKE1, Ctx.SERVER, _factor, 2.0,
    "async_request_worker_factor", "Limits the connections per child to ThreadsPerChild + "
    "factor x idle workers.", syntax="AsyncRequestWorkerFactor factor")]


def _timeval(seconds: float) -> bytes:
    return struct.pack("ll", int(seconds), int((seconds - int(seconds)) * 1_000_000))


class Event(ConnectionStates, ThreadedMPM):
    name = "event"
    DIRECTIVES = DIRECTIVES
    is_async = True
    settings_fn = staticmethod(lambda cfg: settings(cfg))   # event's ThreadLimit cap (below)

    # -- child setup ----------------------------------------------------------------------------
    def serve_child(self, slot: int) -> None:
        self.factor = float(self.cfg.async_request_worker_factor)
        self.policy = policy = Policy.from_config(self.cfg)
        self.timeout_s = policy.timeout_s
        self.snd_timeo = _timeval(self.timeout_s)
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.done: collections.deque[tuple[EventConn, bool]] = collections.deque()
        self.idle_lock = threading.Lock()
        self.idle_workers = 0
        self.nudged = False         # a worker's wake-up byte is on its way (nudge)
        self.pending: collections.deque[EventConn] = collections.deque()   # ready, no idle worker
        self.conns: dict[int, EventConn] = {}
        self.head_q: TimeoutQueue[EventConn] = TimeoutQueue(self.timeout_s)
        self.ka_q: TimeoutQueue[EventConn] = TimeoutQueue(policy.keep_alive_timeout_s)
        self.linger_q: TimeoutQueue[EventConn] = TimeoutQueue(LINGER_S)
        self.stage_q: list[Any] = []               # RequestReadTimeout (listener.py Rule 7)
        self.buf = bytearray(RECV_BYTES)
        self.view = memoryview(self.buf)
        self.ep = select.epoll()
        self.accepted = 0
        self.accepting = False
        self.retire_at: float | None = None        # graceful: when idle connections close
        self.published: tuple[int, ...] = ()
        self.next_limit_check = 0.0
        self._setup_poll()
        self._publish()             # "accepting" is visible before any worker looks idle
        try:
            self.with_workers(self._worker_main, self._loop, join_timeout=self.timeout_s)
        finally:
            self.scoreboard.set_conns(slot, 0, 0, 0, 0, False)

    def _setup_poll(self) -> None:
        self.listen_fds = {lst.sock.fileno(): lst.sock for lst in self.listeners}
        # each listener's TLS (listener.py Rule 6), by listening socket
        self.tls_of = {lst.sock: lst.tls for lst in self.listeners if getattr(lst, "tls", None)}
        self.ep.register(self.wake_r, select.EPOLLIN)
        self.pod_fd = -1
        if not self.runtime.single_process:
            self.pod_fd = self.pod.r
            self.ep.register(self.pod_fd, select.EPOLLIN)
        self._set_accepting(True)

    def _set_accepting(self, on: bool) -> None:
        if on == self.accepting:
            return
        self.accepting = on
        for fd in self.listen_fds:
            if on:
                self.ep.register(fd, select.EPOLLIN)
            else:
                self.ep.unregister(fd)

    # -- the listener loop ----------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            if self.graceful:
                self._begin_graceful()
                if not self.conns:
                    return
            now = time.monotonic()
            try:
                events = self.ep.poll(self._poll_timeout(now), MAX_EVENTS)
            except InterruptedError:
                events = []
            for fd, mask in events:
                self._dispatch_fd(fd, mask)
            self._take_back()
            now = time.monotonic()
            self._expire(now)
            self._feed_workers()
            self._check_limit(now)
            self._publish()

    def _poll_timeout(self, now: float) -> float:
        deadlines = [d for d in (self.head_q.next_deadline(), self.ka_q.next_deadline(),
                                 self.linger_q.next_deadline(),
                                 self.stage_q[0][0] if self.stage_q else None) if d is not None]
        wait = min(deadlines) - now if deadlines else 1.0
        if not self.accepting and not self.graceful:
            wait = min(wait, LIMIT_CHECK_S)
        if self.retire_at is not None and self.retire_at > now:
            wait = min(wait, self.retire_at - now)
        return max(0.0, min(wait, 1.0))

    def _dispatch_fd(self, fd: int, mask: int) -> None:
        if fd in self.listen_fds:
            self._accept(self.listen_fds[fd])
        elif fd == self.wake_r:
            try:
                while os.read(self.wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
            # After the pipe is empty (a byte read here may be a nudge made just now): news
            # from now on writes a new byte; news from before is taken after this poll.
            self.nudged = False
        elif fd == self.pod_fd:
            if self.pod.check():
                self.graceful = True
        else:
            ec = self.conns.get(fd)
            if ec is not None and ec.state != BUSY:      # a worker owns a BUSY socket
                self._readable(ec)

    # -- accepting (Rule 1) ---------------------------------------------------------------------
    def _accept(self, lsock: socket.socket) -> None:
        for _ in range(64):
            if self.graceful:
                return
            if self._should_pause():
                self._set_accepting(False)      # leave it in the backlog for another child
                return
            try:
                sock, addr = lsock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError:
                return
            try:
                policy = self.policy if self.policy.hosts is None else \
                    self.policy.for_address(seen_as(sock.getsockname()))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, self.snd_timeo
                                if policy is self.policy else _timeval(policy.timeout_s))
            except OSError:
                sock.close()
                continue
            ec = EventConn(sock, addr, policy)
            if policy.proxy_anywhere and proxy_header.expected(
                    proxy_header.rule_for(policy, None, sock), addr):   # listener.py Rule 8
                ec.proxy = proxy_header.ProxyHeaderReader()
            if self.tls_of:
                self._tls_accepted(ec, lsock)
            self.conns[ec.fd] = ec
            if ec.context is None:
                self._start_head(ec, time.monotonic())          # listener.py Rule 7
            else:
                self.head_q.append(ec, time.monotonic(), policy.timeout_s)   # the handshake
            self.ep.register(ec.fd, select.EPOLLONESHOT)   # disarmed until _readable decides
            self.accepted += 1
            limit = self.max_conns_per_child
            if limit and self.accepted >= limit:
                self.graceful = True
            if self._over_cap() and self._others_full():
                self._evict_oldest()
            self._readable(ec)      # AcceptFilter: the head is usually there already

    def _tls_accepted(self, ec: EventConn, lsock: socket.socket) -> None:
        """A connection on a TLS listener: the context its handshake starts with, if any."""
        tls = self.tls_of.get(lsock)
        if tls is not None:
            ec.tls = tls
            ec.context = tls.context_for(ec.sock)

    def _free_workers(self) -> int:
        """Idle workers not yet promised to a connection whose request is parsed."""
        return self.idle_workers - len(self.pending)

    def _should_pause(self) -> bool:
        """No idle worker (httpd waits for an idler too), or over the connection limit while
        another child still accepts: leave new connections to the others (Rule 1)."""
        if self._free_workers() <= 0:
            return True
        return self._over_limit() and not self._all_over_limit()

    def _over_limit(self) -> bool:
        """httpd connections_above_limit: lingering connections do not count."""
        active = len(self.conns) - len(self.linger_q)
        return active > self.settings.threads_per_child + self.factor * self.idle_workers

    def _all_over_limit(self) -> bool:
        """True when no other live child of this generation is accepting (Rule 1)."""
        return not any(self.scoreboard.conns(slot)[4] for slot in self._live_slots())

    def _others_full(self) -> bool:
        """Every other live child of this generation holds more than the cap (published counts)."""
        cap = self.settings.threads_per_child * (1 + self.factor)
        for slot in self._live_slots():
            total, _, _, closing, _ = self.scoreboard.conns(slot)
            if total - closing <= cap:
                return False
        return True

    def _live_slots(self) -> list[int]:
        gen, out = self.runtime.generation, []
        for slot in range(self.settings.max_daemons):
            proc = self.scoreboard.process(slot)
            if slot != self.slot and proc.pid and not proc.quiescing and proc.generation == gen:
                out.append(slot)
        return out

    def _over_cap(self) -> bool:
        """Over the limit even with every worker idle: the bound eviction restores (Rule 1)."""
        active = len(self.conns) - len(self.linger_q)
        return active > self.settings.threads_per_child * (1 + self.factor)

    def _evict_oldest(self) -> None:
        """Close idle keep-alive connections, oldest first, until within the cap again."""
        while self._over_cap():
            victim = self.ka_q.pop_oldest()
            if victim is None:
                return
            self._close(victim)

    def _check_limit(self, now: float) -> None:
        """Start accepting again once under the limit, or once every child is over it."""
        if self.accepting or self.graceful:
            return
        if self._free_workers() <= 0:
            return
        if not self._over_limit():
            self._set_accepting(True)
        elif now >= self.next_limit_check:
            self.next_limit_check = now + LIMIT_CHECK_S
            self._set_accepting(self._all_over_limit())

    def _feed_workers(self) -> None:
        """Hand ready connections to idle workers, oldest first."""
        while self.pending:
            with self.idle_lock:
                if self.idle_workers <= 0:
                    return
                self.idle_workers -= 1
            ec = self.pending.popleft()
            self.jobs.put(ec)

    # -- connections coming back from workers -----------------------------------------------
    def give_back(self, ec: EventConn, keep: bool) -> None:
        """Called by a worker thread: the connection returns to the listener."""
        self.done.append((ec, keep))
        self.nudge()

    def nudge(self) -> None:
        """A worker's news for the listener (a connection back, a worker idle): one wake-up
        byte until the listener reads the pipe, so a busy listener takes a whole batch of
        news per poll instead of one write and one read per request.  The listener looks at
        ``done`` and the idle count after every poll, whatever woke it."""
        if not self.nudged:
            self.nudged = True
            self.wake()

    def _take_back(self) -> None:
        now = time.monotonic()
        while self.done:
            ec, keep = self.done.popleft()
            if ec.secure:
                ec.sock.setblocking(False)         # the worker had the ssl module's time-outs
            if keep:                   # answered kept-alive, even just as graceful began: the
                self._park(ec, now)    # client may send again at once (Rule 3 serves it)
            else:
                self._start_linger(ec, now)

    # -- graceful (Rule 3) and counters (Rule 2) ------------------------------------------------
    def _begin_graceful(self) -> None:
        """Rule 3: for RETIRE_S a parked connection's next request is still served (with
        Connection: close, the workers' drivers are stopping); then the idle ones close."""
        now = time.monotonic()
        if self.retire_at is None:
            self._set_accepting(False)
            self.retire_at = now + RETIRE_S
        if now < self.retire_at:
            return
        for ec in list(self.conns.values()):
            if ec.state == KEEPALIVE or (ec.state == READ_HEAD and
                                         (ec.conn is None or not ec.conn.partial_request)):
                self._close(ec)

    def _publish(self) -> None:
        counts = (len(self.conns), len(self.ka_q), 0, len(self.linger_q), int(self.accepting))
        if counts != self.published:
            self.published = counts
            self.scoreboard.set_conns(self.slot, *counts[:4], bool(counts[4]))

    # -- workers ----------------------------------------------------------------------------------
    def _worker_main(self, thread: int) -> None:
        driver = self.make_driver(thread)
        slot = driver.slot
        while True:
            slot.set_status(Status.READY)
            with self.idle_lock:
                self.idle_workers += 1
            self.nudge()
            job = self.jobs.get()
            if job is None:
                return
            ec, keep = job, False
            try:
                keep = driver.serve_ready(ec.sock, ec.conn, ec.request, ec.info, ec.error,
                                          ec.body_clock, ec.interim)
            finally:
                ec.error = ec.request = ec.body_clock = ec.interim = None
                self.give_back(ec, keep)


def settings(cfg: Any) -> tuple[Any, list[Any]]:
    """The threaded clamps with event's ThreadLimit cap (event has no other clamps beyond
    AsyncRequestWorkerFactor > 0)."""
    return threaded_settings(cfg, MAX_THREAD_LIMIT)
