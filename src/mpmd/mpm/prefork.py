"""prefork: one single-threaded process per connection (httpd mpm_prefork).

Theory: the master forks StartServers children into scoreboard slots; each child waits on the
listeners and the pipe of death, accepts one connection, serves it to the end with the blocking
``ConnectionDriver`` and waits again.  Once a second the master keeps between MinSpareServers and
MaxSpareServers children idle, never more than MaxRequestWorkers in total (``common.maintain``).

Rule 1: a child serves at most MaxConnectionsPerChild connections (0 = unlimited), then exits;
        maintenance replaces it.
Rule 2: SIGUSR1/SIGWINCH to a child = finish the current connection, then exit (graceful);
        SIGTERM = exit now.
Rule 3: the directive limits and clamps are httpd's (prefork_check_config).
Rule 4: a new connection wakes one idle child, not all of them (``common.AcceptWaiter``:
        EPOLLEXCLUSIVE, where httpd has its accept mutex).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from mpmd.config.directives import Args, Ctx, Directive
from mpmd.mpm.base import Problem, Query, int_arg
from mpmd.mpm.common import AcceptWaiter, ForkingMPM
from mpmd.scoreboard.layout import Status

# httpd 2.4 prefork MAX_SERVER_LIMIT (2.2 had 20000).  The scoreboard is sized from ServerLimit,
# as httpd's is (ap_calc_scoreboard_size; here layout.segment_size: 300 bytes a slot, 60 MB at
# 200000).  httpd memsets its whole segment at start; ours is an anonymous shared mapping of
# which only the slots in use (below MaxRequestWorkers) are ever written, so a large ServerLimit
# with a small MaxRequestWorkers costs address space, not memory.  Only a mod_status page reads
# every slot (as httpd's does), which makes the kernel back the whole segment.
MAX_SERVER_LIMIT = 200000
DEFAULT_SERVER_LIMIT = 256
INT_ARG = int_arg(-2 ** 31, 2 ** 31 - 1)     # httpd atoi(): any int; settings() clamps (Rule 3)

DIRECTIVES = [
    Directive("StartServers", Args.TAKE1, Ctx.SERVER, INT_ARG, 5, "start_servers",
              "Number of child processes created at start-up.", syntax="StartServers number"),
    Directive("MinSpareServers", Args.TAKE1, Ctx.SERVER, INT_ARG, 5,
              "min_spare_servers", "Minimum number of idle child processes.",
              syntax="MinSpareServers number"),
    Directive("MaxSpareServers", Args.TAKE1, Ctx.SERVER, INT_ARG, 10,
              "max_spare_servers", "Maximum number of idle child processes.",
              syntax="MaxSpareServers number"),
    Directive("MaxRequestWorkers", Args.TAKE1, Ctx.SERVER, INT_ARG, 256,
              "max_request_workers", "Maximum number of connections served at the same time.",
              aliases=("MaxClients",), syntax="MaxRequestWorkers number"),
    Directive("ServerLimit", Args.TAKE1, Ctx.SERVER, INT_ARG, DEFAULT_SERVER_LIMIT,
              "server_limit", "Upper limit on MaxRequestWorkers for the server's lifetime "
              "(at most 200000).",
              syntax="ServerLimit number"),
]

M_SERVER_LIMIT = "MPMD0201"
M_MAX_WORKERS = "MPMD0202"
M_MIN_SPARE = "MPMD0203"
M_MAX_SPARE = "MPMD0204"
M_START = "MPMD0205"


@dataclass(frozen=True)
class PreforkSettings:
    start_servers: int
    min_spare: int
    max_spare: int
    max_workers: int
    server_limit: int

    @property
    def max_daemons(self) -> int:
        return self.max_workers          # a process per worker


def settings(cfg: Any) -> tuple[PreforkSettings, list[Any]]:
    """Effective values after httpd's clamps, and the warnings they produced (Rule 3)."""
    problems: list[Any] = []
    warn = lambda mid, text: problems.append(Problem("warn", mid, text))  # noqa: E731
    limit = int(cfg.server_limit)
    if limit > MAX_SERVER_LIMIT:
        warn(M_SERVER_LIMIT, f"WARNING: ServerLimit of {limit} exceeds compile-time limit of "
             f"{MAX_SERVER_LIMIT} servers, decreasing to {MAX_SERVER_LIMIT}.")
        limit = MAX_SERVER_LIMIT
    elif limit < 1:
        warn(M_SERVER_LIMIT, f"WARNING: ServerLimit of {limit} not allowed, increasing to 1.")
        limit = 1
    workers = int(cfg.max_request_workers)
    if workers > limit:
        warn(M_MAX_WORKERS, f"WARNING: MaxRequestWorkers of {workers} exceeds ServerLimit value of "
             f"{limit} servers, decreasing MaxRequestWorkers to {limit}. To increase, please see "
             "the ServerLimit directive.")
        workers = limit
    elif workers < 1:
        warn(M_MAX_WORKERS, f"WARNING: MaxRequestWorkers of {workers} not allowed, increasing to 1.")
        workers = 1
    start = int(cfg.start_servers)
    if start < 1:
        warn(M_START, f"WARNING: StartServers of {start} not allowed, increasing to 1.")
        start = 1
    start = min(start, workers)              # httpd prefork_run does this one silently
    min_spare = int(cfg.min_spare_servers)
    if min_spare < 1:
        warn(M_MIN_SPARE, f"WARNING: MinSpareServers of {min_spare} not allowed, increasing to 1 "
             "to avoid almost certain server failure. Please read the documentation.")
        min_spare = 1
    max_spare = int(cfg.max_spare_servers)
    if max_spare <= min_spare:
        warn(M_MAX_SPARE, f"WARNING: MaxSpareServers of {max_spare} is not greater than "
             f"MinSpareServers of {min_spare}, increasing it to {min_spare + 1}.")
        max_spare = min_spare + 1
    return PreforkSettings(start, min_spare, max_spare, workers, limit), problems


class Prefork(ForkingMPM):
    name = "prefork"
    DIRECTIVES = DIRECTIVES
    threaded = False
    forked = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings, _ = settings(self.cfg)
        self._wake_r = self._wake_w = -1

    @classmethod
    def check_config(cls, cfg: Any) -> list[Any]:
        return settings(cfg)[1]

    @classmethod
    def scoreboard_limits(cls, cfg: Any) -> tuple[int, int]:
        return settings(cfg)[0].server_limit, 1

    def query_table(self) -> dict[Query, int]:
        s = self.settings
        return {Query.HARD_LIMIT_DAEMONS: s.server_limit, Query.HARD_LIMIT_THREADS: 1,
                Query.MAX_THREADS: 1, Query.MAX_DAEMONS: s.max_workers,
                Query.MIN_SPARE_DAEMONS: s.min_spare, Query.MAX_SPARE_DAEMONS: s.max_spare}

    # -- the child ------------------------------------------------------------------------
    def _on_graceful(self, signo: int, frame: Any) -> None:
        self.graceful = True                 # the connection being served ends after this answer
        try:
            os.write(self._wake_w, b"g")
        except OSError:
            pass

    def child_main(self, slot: int) -> int:
        """Accept and serve connections until retired (Rule 1, Rule 2)."""
        from mpmd.mpm.common import child_setup

        # SIGUSR1/SIGWINCH reach _on_graceful from fork on (ForkingMPM.child_signals).
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        ws = self.scoreboard.worker(slot, 0)
        ws.reset(os.getpid(), Status.STARTING)
        child_setup(self)
        driver = self.new_driver(ws)
        try:
            self._accept_loop(ws, driver)
        finally:
            ws.set_status(Status.GRACEFUL if self.graceful else Status.DEAD)
            hooks = getattr(self.cfg, "hooks", None)
            if hooks is not None:
                hooks.run("child_exit", self.cfg, self)
        return 0

    def _accept_loop(self, ws: Any, driver: Any) -> None:
        limit = int(self.cfg.max_connections_per_child)
        pod = None if self.runtime.single_process else self.pod
        control: list[Any] = [self._wake_r] + ([pod.r] if pod is not None else [])
        waiter = AcceptWaiter([lst.sock for lst in self.listeners], control)
        self._adopted = {lst.sock: driver.adopt_listener(lst.sock) for lst in self.listeners}
        self._tls = {lst.sock: lst.tls for lst in self.listeners if getattr(lst, "tls", None)}
        try:
            self._wait_and_serve(ws, driver, waiter, pod, limit)
        finally:
            waiter.close()

    def _wait_and_serve(self, ws: Any, driver: Any, waiter: AcceptWaiter, pod: Any,
                        limit: int) -> None:
        served = 0
        while not self.graceful:
            ws.set_status(Status.READY)
            # 1 s, not longer: with an exclusive wake-up, a connection whose waiter left
            # without accepting it waits for the next child to look again.
            for ready in waiter.wait(1.0):
                if ready == self._wake_r:
                    return
                if pod is not None and ready == pod.r:
                    if pod.check():
                        return
                    continue
                if self._accept_one(ready, driver):
                    served += 1
                    if limit and served >= limit:
                        return
                    break

    def _accept_one(self, lsock: socket.socket, driver: Any) -> bool:
        try:
            sock, addr = lsock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return False
        driver.serve_connection(sock, addr, adopted=self._adopted.get(lsock),
                                tls=self._tls.get(lsock))
        return True
