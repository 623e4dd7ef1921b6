"""What the threaded MPMs (worker, event) share: directives, httpd's clamps, the child's skeleton.

Theory: a child is one listener thread (the process's main thread) and ThreadsPerChild worker
threads, each with its own scoreboard Worker record and ``ConnectionDriver``.  The master counts
idle *threads* across children (``slot_view``) and spawns or retires whole processes to stay
between MinSpareThreads and MaxSpareThreads (``common.maintain``, doubling spawn rate).

Rule 1: the clamps and their warnings are httpd's ``worker_check_config``/``event_check_config``:
        MaxRequestWorkers becomes a multiple of ThreadsPerChild, ThreadsPerChild <= ThreadLimit,
        MaxRequestWorkers <= ServerLimit x ThreadsPerChild, MaxSpareThreads >= MinSpareThreads +
        ThreadsPerChild.
Rule 2: SIGUSR1/SIGWINCH or a pipe-of-death byte = graceful: stop accepting, let the workers
        finish their connections, exit.  SIGTERM kills the child at once (default action).
Rule 3: only the first ThreadsPerChild Worker records of a slot are used; the rest of
        ThreadLimit are marked dead at child start so that the master sees no phantom starters.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Callable

from mpmd.config.directives import Args, Ctx, Directive
from mpmd.mpm.base import Problem, Query, int_arg
from mpmd.mpm.common import IDLE_STATES, ForkingMPM, SlotView, child_setup
from mpmd.scoreboard.layout import Status

MAX_SERVER_LIMIT = 20000          # httpd 2.4 worker and event MAX_SERVER_LIMIT
MAX_THREAD_LIMIT = 20000          # httpd 2.4 worker MAX_THREAD_LIMIT (event: 100000, event.py)

DEFAULTS = {"start_servers": 3, "server_limit": 16, "thread_limit": 64, "threads_per_child": 25,
            "min_spare_threads": 75, "max_spare_threads": 250, "max_request_workers": 400}


INT_ARG = int_arg(-2 ** 31, 2 ** 31 - 1)     # httpd atoi(): any int; settings() clamps (Rule 1)


def _d(name: str, field: str, doc: str, aliases: tuple[str, ...] = ()) -> Directive:
    return Directive(name, Args.TAKE1, Ctx.SERVER, INT_ARG, DEFAULTS[field], field,
                     doc, aliases=aliases, syntax=f"{name} number")


DIRECTIVES = [
    _d("StartServers", "start_servers", "Number of child processes created at start-up."),
    _d("ServerLimit", "server_limit", "Upper limit on the number of child processes for the "
       "server's lifetime (at most 20000)."),
    _d("ThreadLimit", "thread_limit", "Upper limit on ThreadsPerChild for the server's lifetime "
       "(at most 20000 under worker, 100000 under event)."),
    _d("ThreadsPerChild", "threads_per_child", "Number of worker threads in each child process."),
    _d("MinSpareThreads", "min_spare_threads", "Minimum number of idle worker threads (all "
       "children together)."),
    _d("MaxSpareThreads", "max_spare_threads", "Maximum number of idle worker threads (all "
       "children together)."),
    _d("MaxRequestWorkers", "max_request_workers", "Maximum number of requests served at the same "
       "time (worker threads over all children).", aliases=("MaxClients",)),
]

M_SERVER_LIMIT = "MPMD0401"
M_THREAD_LIMIT = "MPMD0402"
M_THREADS = "MPMD0403"
M_MAX_WORKERS = "MPMD0404"
M_MIN_SPARE = "MPMD0405"
M_MAX_SPARE = "MPMD0406"
M_START = "MPMD0407"


@dataclass(frozen=True)
class ThreadedSettings:
    start_servers: int
    server_limit: int
    thread_limit: int
    threads_per_child: int
    min_spare: int
    max_spare: int
    max_workers: int

    @property
    def max_daemons(self) -> int:
        """httpd active_daemons_limit: MaxRequestWorkers / ThreadsPerChild."""
        return self.max_workers // self.threads_per_child


def _clamp(value: int, lo: int, hi: int, warn: Callable[[int], None]) -> int:
    if value < lo or value > hi:
        warn(value)
        return lo if value < lo else hi
    return value


def settings(cfg: Any, max_thread_limit: int = MAX_THREAD_LIMIT) -> tuple[ThreadedSettings, list[Any]]:
    """Effective values after httpd's clamps (Rule 1), and the warnings they produced;
    ``max_thread_limit`` is the MPM's compile-time ThreadLimit cap."""
    problems: list[Any] = []

    def get(field: str) -> int:
        return int(getattr(cfg, field))

    def warn(mid: str, text: str) -> None:
        problems.append(Problem("warn", mid, "WARNING: " + text))

    limit = _clamp(get("server_limit"), 1, MAX_SERVER_LIMIT, lambda v: warn(
        M_SERVER_LIMIT, f"ServerLimit of {v} exceeds compile-time limit of {MAX_SERVER_LIMIT} "
        f"servers, decreasing to {MAX_SERVER_LIMIT}." if v > MAX_SERVER_LIMIT else
        f"ServerLimit of {v} not allowed, increasing to 1."))
    tlimit = _clamp(get("thread_limit"), 1, max_thread_limit, lambda v: warn(
        M_THREAD_LIMIT, f"ThreadLimit of {v} exceeds compile-time limit of {max_thread_limit} "
        f"threads, decreasing to {max_thread_limit}." if v > max_thread_limit else
        f"ThreadLimit of {v} not allowed, increasing to 1."))
    tpc = _clamp(get("threads_per_child"), 1, tlimit, lambda v: warn(
        M_THREADS, f"ThreadsPerChild of {v} exceeds ThreadLimit of {tlimit} threads, decreasing "
        f"to {tlimit}. To increase, please see the ThreadLimit directive." if v > tlimit else
        f"ThreadsPerChild of {v} not allowed, increasing to 1."))
    workers = _max_workers(get("max_request_workers"), tpc, limit, warn)
    start = get("start_servers")
    if start < 1:
        warn(M_START, f"StartServers of {start} not allowed, increasing to 1.")
        start = 1
    start = min(start, workers // tpc)
    min_spare = get("min_spare_threads")
    if min_spare < 1:
        warn(M_MIN_SPARE, f"MinSpareThreads of {min_spare} not allowed, increasing to 1 to avoid "
             "almost certain server failure. Please read the documentation.")
        min_spare = 1
    max_spare = get("max_spare_threads")
    if max_spare < min_spare + tpc:          # httpd raises it silently; we say so
        warn(M_MAX_SPARE, f"MaxSpareThreads of {max_spare} is less than MinSpareThreads + "
             f"ThreadsPerChild, increasing it to {min_spare + tpc}.")
        max_spare = min_spare + tpc
    return ThreadedSettings(start, limit, tlimit, tpc, min_spare, max_spare, workers), problems


def _max_workers(workers: int, tpc: int, limit: int, warn: Callable[[str, str], None]) -> int:
    if workers < tpc:
        warn(M_MAX_WORKERS, f"MaxRequestWorkers of {workers} is less than ThreadsPerChild of "
             f"{tpc}, increasing to {tpc}. MaxRequestWorkers must be at least as large as the "
             "number of threads in a single server.")
        workers = tpc
    if workers > limit * tpc:
        warn(M_MAX_WORKERS, f"MaxRequestWorkers of {workers} would require {-(-workers // tpc)} "
             f"servers and would exceed ServerLimit of {limit}, decreasing to {limit * tpc}. To "
             "increase, please see the ServerLimit directive.")
        workers = limit * tpc
    if workers % tpc:
        fixed = workers - workers % tpc
        warn(M_MAX_WORKERS, f"MaxRequestWorkers of {workers} is not an integer multiple of "
             f"ThreadsPerChild of {tpc}, decreasing to nearest multiple {fixed}, for a maximum "
             f"of {fixed // tpc} servers.")
        workers = fixed
    return workers


class ThreadedMPM(ForkingMPM):
    """Master side and child skeleton of worker and event; subclasses give ``serve_child``."""

    threaded = True
    forked = True
    settings_fn: Callable[[Any], tuple[Any, list[Any]]] = staticmethod(settings)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings, _ = type(self).settings_fn(self.cfg)
        self.wake_r = self.wake_w = -1

    @classmethod
    def check_config(cls, cfg: Any) -> list[Any]:
        return cls.settings_fn(cfg)[1]

    @classmethod
    def scoreboard_limits(cls, cfg: Any) -> tuple[int, int]:
        s = cls.settings_fn(cfg)[0]
        return s.server_limit, s.thread_limit

    def query_table(self) -> dict[Query, int]:
        s = self.settings
        return {Query.HARD_LIMIT_DAEMONS: s.server_limit, Query.HARD_LIMIT_THREADS: s.thread_limit,
                Query.MAX_THREADS: s.threads_per_child, Query.MAX_DAEMONS: s.max_daemons,
                Query.MIN_SPARE_THREADS: s.min_spare, Query.MAX_SPARE_THREADS: s.max_spare}

    def slot_view(self, slot: int, pid: int, quiescing: bool) -> SlotView:
        """Idle threads of one child: only its first ThreadsPerChild records count (Rule 3)."""
        statuses = self.scoreboard.statuses(slot, self.settings.threads_per_child)
        return SlotView(slot, pid, sum(1 for s in statuses if s in IDLE_STATES), quiescing)

    # -- the child ------------------------------------------------------------------------
    def wake(self) -> None:
        try:
            os.write(self.wake_w, b"w")
        except OSError:
            pass

    def _on_graceful(self, signo: int, frame: Any) -> None:
        self.graceful = True
        self.wake()

    def child_main(self, slot: int) -> int:
        """Set up signals and scoreboard records, then ``serve_child`` (Rule 2, Rule 3)."""
        self.slot = slot
        # SIGUSR1/SIGWINCH reach _on_graceful from fork on (ForkingMPM.child_signals).
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        pid = os.getpid()
        tpc = self.settings.threads_per_child
        for t in range(self.scoreboard.thread_limit):
            self.scoreboard.worker(slot, t).reset(pid if t < tpc else 0,
                                                  Status.STARTING if t < tpc else Status.DEAD)
        child_setup(self)
        try:
            self.serve_child(slot)
        finally:
            final = Status.GRACEFUL if self.graceful else Status.DEAD
            for t in range(tpc):
                self.scoreboard.set_status(slot, t, final)
            hooks = getattr(self.cfg, "hooks", None)
            if hooks is not None:
                hooks.run("child_exit", self.cfg, self)
        return 0

    def serve_child(self, slot: int) -> None:       # pragma: no cover - abstract
        raise NotImplementedError

    def make_driver(self, thread: int) -> Any:
        return self.new_driver(self.scoreboard.worker(self.slot, thread))

    def start_threads(self, target: Callable[[int], None]) -> list[threading.Thread]:
        threads = [threading.Thread(target=target, args=(t,), name=f"mpmd-worker-{t}", daemon=True)
                   for t in range(self.settings.threads_per_child)]
        for th in threads:
            th.start()
        return threads

    def with_workers(self, target: Callable[[int], None], listener: Callable[[], None],
                     join_timeout: float | None = None) -> None:
        """ThreadsPerChild threads run ``target`` (taking jobs from ``self.jobs``) while this
        thread runs ``listener``; then each worker gets a None job (stop) and is joined."""
        threads = self.start_threads(target)
        try:
            listener()
        finally:
            for _ in threads:
                self.jobs.put(None)
            for th in threads:
                th.join(timeout=join_timeout)

    @property
    def max_conns_per_child(self) -> int:
        return int(self.cfg.max_connections_per_child)
