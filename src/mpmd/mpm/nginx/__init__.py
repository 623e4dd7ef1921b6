"""nginx: a few single-threaded event loops, each owning all of its connections.

Theory: the master (``ForkingMPM``'s supervision loop, shared with prefork/worker/event) forks
``WorkerProcesses`` children.  Each child runs one asyncio loop (uvloop when installed) with the
callback-level Protocol/Transport API: it accepts, reads, parses (the shared sans-I/O core),
answers, keeps alive, times out and closes every connection itself (``loop.py``,
``protocol.py``).  Blocking handlers (WSGI) run in a bounded thread pool beside the loop; async
handlers (ASGI) are awaited on it (core/exchange.py ``Handler.kind``).

Rule 1: the number of processes is fixed (``WorkerProcesses N|auto``, auto = CPU count); the
        master replaces a child that dies as soon as SIGCHLD tells it (``common`` Rule 5, with
        its backoff for a child that dies right after start); there is no spare-server
        arithmetic.
Rule 2: ``WorkerConnections`` caps the connections of ONE process.  At the cap the oldest idle
        keep-alive connection is closed to make room (nginx ``ngx_drain_connections``); only when
        none is idle does the process stop accepting until one closes.
Rule 3: ``ReusePort On`` gives every child its own SO_REUSEPORT socket (nginx ``reuseport``);
        the child still polls the master's shared listener, so no connection the kernel steers
        there is stranded.  Off: all children share the master's listeners.
Rule 4: the scoreboard has ONE slot per worker process (thread 0): its status letter says what
        the process is doing as a whole ("W" at least one request in flight, "_" none: its
        connections, if any, are idle -- see ConnsAsyncKeepAlive; "G" finishing after a
        graceful stop; a request answered within one loop iteration leaves "W" until the
        iteration ends), its counters add up every request and byte of the process (written
        once per loop iteration, ``LoopWorker.tally``), and the per-process connection counters
        (``Scoreboard.set_conns``: total, keep-alive, writing, closing, accepting) are
        refreshed once a second by the loop's timer sweep.  mod_status therefore shows one
        row per process, not one per connection.
Rule 5: graceful (SIGUSR1/SIGWINCH to a child): stop accepting; for RETIRE_S answer each
        kept-alive connection's next request with "Connection: close" (not cut off under its
        client), then close the idle ones; finish the requests in flight without further
        keep-alive, exit.  SIGTERM: exit now.
Rule 6: StuckRequestTimeout is watched by each loop, not the master (the one record per loop
        holds no request's start): the timer sweep logs each request past it once and
        publishes how many are stuck (loop.py Rule 5).  A coroutine that blocks the loop itself
        (a synchronous sleep in an async handler) stops the sweep with everything else on that
        loop: its request is logged when the loop runs again, if it is still running then.
        ``StuckRequestAction replace`` is refused (config/check.py): the process is every
        connection of the loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from mpmd.config.directives import Args, Ctx, Directive
from mpmd.mpm.base import Problem, Query
from mpmd.mpm.common import ForkingMPM
from mpmd.config import values as config_values

MAX_PROCESSES = 1024
DEFAULT_CONNECTIONS = 16384
DEFAULT_THREADS = 32

M_PROCESSES = "MPMD0601"
M_CONNECTIONS = "MPMD0602"


def _processes(args: list[str]) -> int:
    """WorkerProcesses N|auto -> a count (auto = the CPUs this process may run on)."""
    word = args[0].strip().lower()
    if word == "auto":
        return 0                       # resolved in settings(), per machine
    try:
        value = int(word)
    except ValueError:
        raise ValueError("must be a positive integer or 'auto'") from None
    if not 1 <= value <= MAX_PROCESSES:
        raise ValueError(f"must be 'auto' or an integer between 1 and {MAX_PROCESSES}")
    return value


def _positive(lo: int, hi: int) -> Any:
    def convert(args: list[str]) -> int:
        try:
            value = int(args[0])
        except ValueError:
            raise ValueError(f"must be an integer between {lo} and {hi}") from None
        if not lo <= value <= hi:
            raise ValueError(f"must be an integer between {lo} and {hi}")
        return value
    return convert


DIRECTIVES = [
    Directive("WorkerProcesses", Args.TAKE1, Ctx.SERVER, _processes, 1, "worker_processes",
              "Number of event-loop processes; 'auto' = one per CPU (nginx worker_processes).",
              syntax="WorkerProcesses number|auto"),
    Directive("WorkerConnections", Args.TAKE1, Ctx.SERVER, _positive(1, 1_000_000),
              DEFAULT_CONNECTIONS, "worker_connections",
              "Maximum open connections per process; at the cap idle keep-alive connections are "
              "closed oldest first, then accepting pauses (nginx worker_connections).",
              syntax="WorkerConnections number"),
    Directive("ReusePort", Args.FLAG, Ctx.SERVER, config_values.flag, False, "reuse_port",
              "Give each worker process its own SO_REUSEPORT listening socket (nginx reuseport).",
              syntax="ReusePort On|Off"),
    Directive("WorkerThreads", Args.TAKE1, Ctx.SERVER, _positive(1, 1024), DEFAULT_THREADS,
              "worker_threads",
              "Size of each process's thread pool for blocking handlers (WSGI applications).",
              syntax="WorkerThreads number"),
]


@dataclass(frozen=True)
class NginxSettings:
    processes: int
    connections: int
    threads: int
    reuse_port: bool


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def settings(cfg: Any) -> NginxSettings:
    """Effective values (Rule 1): ``auto`` resolved, unset fields defaulted."""
    processes = int(cfg.worker_processes or 0) or cpu_count()
    return NginxSettings(min(processes, MAX_PROCESSES),
                         int(cfg.worker_connections),
                         int(cfg.worker_threads),
                         bool(cfg.reuse_port))


def check(cfg: Any) -> list[Any]:
    """Warnings for values that work but are probably not what was meant."""
    s = settings(cfg)
    problems: list[Any] = []
    if s.processes > 4 * cpu_count():
        problems.append(Problem("warn", M_PROCESSES, f"WorkerProcesses {s.processes} is more than "
                                f"four times the {cpu_count()} CPUs; the loops will contend"))
    if s.connections < 16:
        problems.append(Problem("warn", M_CONNECTIONS, f"WorkerConnections {s.connections} is "
                                "very low: the listener pauses when it is reached"))
    return problems


class Nginx(ForkingMPM):
    name = "nginx"
    DIRECTIVES = DIRECTIVES
    threaded = False
    forked = True
    is_async = True
    child_role = "worker"                 # ps: "mpmd: worker (nginx) generation 3", as nginx's
    replaces_clean_exits = True           # Rule 1: a fixed count, every exit is replaced
    request_records = False               # Rule 4: one record per loop; the loop watches for
                                          # stuck requests itself (Rule 6)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings(self.cfg)

    @classmethod
    def check_config(cls, cfg: Any) -> list[Any]:
        return check(cfg)

    @classmethod
    def scoreboard_limits(cls, cfg: Any) -> tuple[int, int]:
        # Twice the processes: room for a retiring generation during a graceful restart.
        return 2 * settings(cfg).processes, 1

    def query_table(self) -> dict[Query, int]:
        s = self.settings
        return {Query.AWAITS_HANDLERS: 1,
                Query.HARD_LIMIT_DAEMONS: 2 * s.processes, Query.HARD_LIMIT_THREADS: 1,
                Query.MAX_THREADS: 1, Query.MAX_DAEMONS: s.processes}

    def start_children(self) -> int:
        return self.settings.processes

    def maintenance_bounds(self) -> tuple[int, int, int]:
        return 0, 0, 2 * self.settings.processes

    def run(self) -> Any:
        if self.settings.reuse_port:
            from mpmd.mpm.nginx.loop import share_port
            share_port(self.listeners)
        return super().run()

    def perform_maintenance(self) -> None:
        """Keep exactly ``processes`` current children (Rule 1): respawn into free slots."""
        if self.state.name != "RUNNING":
            return
        gen = self.runtime.generation
        pool = self.pool
        current = sum(1 for c in pool.children.values()
                      if c.generation == gen and not c.retiring)
        used = set(pool.slot_pids())
        free = [s for s in range(2 * self.settings.processes) if s not in used]
        for slot in free[: max(0, self.settings.processes - current)]:
            self.spawn(slot)

    def preload(self) -> None:
        """The event loop's modules too (ForkingMPM.preload)."""
        super().preload()
        from mpmd.mpm.nginx import loop, protocol, writer  # noqa: F401
        try:
            import uvloop  # noqa: F401 - loop.new_loop's, imported there lazily
        except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
            pass

    def child_main(self, slot: int) -> int:
        from mpmd.mpm.nginx.loop import LoopWorker
        LoopWorker(self, slot).serve()
        return 0
