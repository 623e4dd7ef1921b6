"""Process management shared by the forking MPMs (prefork, worker, event, nginx).

Theory: the master forks children into scoreboard *slots*, reaps them, and once a second runs
idle-server maintenance (httpd ``perform_idle_server_maintenance``), which is the pure function
``maintain()``: scoreboard view in, ``Decision`` out; the caller carries it out and logs.  The
master sleeps on its signal self-pipe (``supervisor/signals.py``), so SIGCHLD wakes it the moment
a child dies, not at the next maintenance pass.

Rule 1: children talk to the master only through the scoreboard, their exit status and the
        pipe of death.  Exit ``EXIT_CHILD_FATAL`` means "halt, do not respawn" (httpd APEXIT_CHILDFATAL).
Rule 2: when too few servers are idle the spawn rate doubles each second (1, 2, 4 ... 32,
        httpd MAX_SPAWN_RATE); it falls back to 1 once enough are idle.
Rule 3: a surplus idle server is retired gracefully through the pipe of death: a byte any idle
        child may read; a busy child never sees it until it is idle again.
Rule 4: the master never serves requests; ``ForkingMPM.run()`` is only the supervision loop.
Rule 5: a child of the current generation that dies unexpectedly (a signal, a non-zero exit) is
        replaced at once, into its own slot, when SIGCHLD is handled (nginx
        ``ngx_reap_children``, gunicorn): a 1-for-1 replacement within the MPM's limits, which
        does not grow the pool, so httpd's spawn rate (Rule 2) is not spent on it.  A clean
        exit (the pipe of death, MaxConnectionsPerChild) is left to maintenance, which knows
        whether the pool needs it.  The backoff: a child that died within
        ``RESPAWN_AT_ONCE_AFTER_S`` of its start (one that cannot start, or a crash loop) is
        replaced only by maintenance, once a second at the spawn rate, never in a tight loop.
Rule 6: every process says what it is in ``ps`` and ``top`` (``set_proctitle``, with the
        setproctitle package; without it the titles stay as they are): the master
        ``mpmd: master (event) -f /etc/mpmd/httpd.conf``, a child
        ``mpmd: child (event) generation 3`` (the nginx MPM's: ``mpmd: worker (nginx) ...``),
        with `` retiring`` once it was told to finish (a graceful restart or stop).
Rule 7: SIGTERM (``-k stop``, a container's stop) and SIGINT drain: the children stop accepting
        and finish the requests in flight (a graceful stop), within GracefulShutdownTimeout, or
        ``min(Timeout, DRAIN_DEFAULT_S)`` when it is 0; then what is left is TERMed.  A second
        TERM or INT while draining stops at once.  httpd's SIGTERM is that immediate stop; its
        draining stop is SIGWINCH (graceful-stop), which mpmd keeps.  SIGHUP stays immediate.
Rule 8: StuckRequestTimeout (0 = off): at each maintenance pass the master reads the busy (W, L)
        worker records of its children; one whose request began (``last_used``, written as it
        begins) longer ago than the limit is logged once (``MPMD0110``: request line, client,
        vhost, pid, how long), remembered by (pid, slot, thread, start).  With
        ``StuckRequestAction replace`` (prefork only: config/check.py refuses it where a
        process serves several requests) the master then kills that child with SIGKILL, and
        Rule 5 forks its replacement into the slot.  An MPM whose records do not hold one
        request each (the nginx MPM: ``request_records`` False) watches its requests itself.
Rule 9: a child shares the master's pages until it writes one; what it writes after fork is
        its own memory, what one more child costs (docs/benchmarks.md, "Memory of an idle
        prefork child").  So: ``fork_child`` freezes the master's objects (``gc.freeze()``)
        so that a collection in the child never walks them; what every child would build
        alike from the config is built once in the master before fork (``preload``: the
        drivers' Policy); nothing is allocated for a connection before there is one (the
        driver's read buffer); the master's signal handlers are not restored in a child that
        sets its own for each of them (``child_signals``).  No further tuning is applied: the collector never ran in an
        idle child, collecting or disabling it in the master measured no difference, a
        prefork child has no thread (thread stacks) and one malloc arena.  What is left,
        about 2 MiB on CPython 3.11, is the interpreter's own writes (reference counts, the
        type attribute cache, the adaptive bytecode) as soon as the child runs any code.
Rule 10: a stop (graceful-stop, or TERM's drain) is announced before anything retires: the
        master sets the scoreboard's stopping state (board.py Rule 4), which the children's
        server-health handler (modules/mod_health.py) reads per request: 503 from then on.
        With GracefulStopDelay the children go on serving that long first (the pool is
        still reaped), so a balancer's health checks take the server out of rotation
        before it stops accepting; a second stop signal meanwhile stops at once.  A
        graceful restart announces nothing: the server keeps serving.
"""

from __future__ import annotations

import errno
import gc
import os
import select
import signal
import time
import traceback          # at import: a child without privileges may not read the stdlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from mpmd.core import piped
from mpmd.mpm.base import SIGNALS, MPM, MPMState, RunResult
from mpmd.scoreboard.layout import Status

try:                       # Rule 6: titles are a nicety; the server runs without the package
    import setproctitle as _setproctitle
except ImportError:        # pragma: no cover - a dependency; absent only in odd installs
    _setproctitle = None   # type: ignore[assignment]

MAX_SPAWN_RATE = 32
# Rule 5's backoff: a child that lived less than this is replaced by maintenance, not at once.
RESPAWN_AT_ONCE_AFTER_S = 1.0
EXIT_OK = 0
EXIT_CHILD_FATAL = 15          # halt the server (httpd APEXIT_CHILDFATAL)
EXIT_APP_LOAD_FAILED = 4       # the application could not be imported: halt, don't respawn
HALT_CODES = frozenset({EXIT_CHILD_FATAL, EXIT_APP_LOAD_FAILED})
IDLE_STATES = frozenset({Status.STARTING, Status.READY})

M_REACHED_MAX = "MPMD0101"
M_SEEMS_BUSY = "MPMD0102"
M_CHILD_DIED = "MPMD0103"
M_CHILD_FATAL = "MPMD0104"
M_STOP_KILL = "MPMD0105"
M_CHILD_START = "MPMD0106"
M_CHILD_CRASH = "MPMD0108"
M_DRAINING = "MPMD0109"
M_STUCK = "MPMD0110"
M_STUCK_REPLACED = "MPMD0111"
M_STUCK_UNWATCHED = "MPMD0112"
M_STOP_DELAY = "MPMD0113"
DRAIN_DEFAULT_S = 10.0         # Rule 7: a container runtime's usual grace period before KILL


# --- exit status ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ExitInfo:
    code: int | None           # exit code, or None when killed by a signal
    signo: int | None
    core: bool = False

    @property
    def clean(self) -> bool:
        return self.code == 0

    def describe(self) -> str:
        if self.signo is not None:
            name = signal.Signals(self.signo).name if self.signo in signal.Signals._value2member_map_ \
                else str(self.signo)
            return f"exit signal {name} ({self.signo})" + (", possible coredump" if self.core else "")
        return f"exit status {self.code}"


def decode_exit(status: int) -> ExitInfo:
    """A waitpid() status as code or signal (httpd ap_process_child_status)."""
    if os.WIFSIGNALED(status):
        return ExitInfo(None, os.WTERMSIG(status), os.WCOREDUMP(status))
    return ExitInfo(os.WEXITSTATUS(status) if os.WIFEXITED(status) else None, None)


def reap() -> list[tuple[int, ExitInfo]]:
    """Every child that has exited, without blocking."""
    dead: list[tuple[int, ExitInfo]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        if piped.reaped(pid, status):
            continue             # a piped log program: core/piped.py starts it again
        dead.append((pid, decode_exit(status)))
    return dead


# The signals the master acts on (mpm/base.py SIGNALS).  They are blocked across fork(): a new
# child starts with the master's handler installed and the master's self-pipe open, so a signal
# sent to it then (a restart's TERM or USR1 to every child) would be written into the master's
# pipe and read by the master as its own -- a second graceful, or a stop instead of a restart.
# Blocked, such a signal waits until the child has its own handlers, then reaches the child.
FORK_BLOCKED_SIGNALS = frozenset(spec.signo for spec in SIGNALS)
# The signals ForkingMPM.child_signals gives a disposition of the child's own.
CHILD_HANDLED_SIGNALS = frozenset({signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGCHLD,
                                   signal.SIGUSR1, signal.SIGWINCH})
# Tests only: seconds a new child pauses right after fork, before its own signal handling is in
# place, to widen the window above so that a test can send a signal into it reliably.
TEST_PAUSE_AFTER_FORK_ENV = "MPMD_TEST_PAUSE_AFTER_FORK_S"


def fork_child(child_main: Callable[[], int],
               child_signals: Callable[[], None] | None = None) -> int:
    """Fork; the child runs ``child_main`` and ``os._exit``s with its result (never returns).

    ``gc.freeze()`` first moves every object the master made into the permanent generation, so
    the collector in the children never touches (and copies) those shared pages.  The master's
    signals stay blocked in the child until ``child_signals`` has installed the child's own
    handlers (FORK_BLOCKED_SIGNALS).
    """
    gc.freeze()
    saved = signal.pthread_sigmask(signal.SIG_BLOCK, FORK_BLOCKED_SIGNALS)
    try:
        pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, saved)
        raise
    if pid:
        signal.pthread_sigmask(signal.SIG_SETMASK, saved)
        return pid
    code = EXIT_CHILD_FATAL
    try:
        _test_pause_after_fork()
        if child_signals is not None:
            child_signals()
        signal.pthread_sigmask(signal.SIG_SETMASK, saved)
        code = child_main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:  # noqa: BLE001 - report and exit; never return into the master's stack
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def _test_pause_after_fork() -> None:
    pause = os.environ.get(TEST_PAUSE_AFTER_FORK_ENV)
    if pause:
        time.sleep(float(pause))


# --- process titles (Rule 6) ------------------------------------------------------------------

def set_proctitle(title: str) -> bool:
    """Show ``title`` for this process in ``ps``/``top`` (``/proc/PID/cmdline``); False when
    the setproctitle package is not installed (the title stays the interpreter's command)."""
    if _setproctitle is None:
        return False
    _setproctitle.setproctitle(title)
    return True


def master_title(mpm: str, args: Sequence[str]) -> str:
    """``mpmd: master (event) -f /etc/mpmd/httpd.conf``: the MPM and the command's arguments,
    as nginx's ``nginx: master process /usr/sbin/nginx -c ...``."""
    return " ".join([f"mpmd: master ({mpm})", *args])


def child_title(role: str, mpm: str, generation: int) -> str:
    """``mpmd: child (event) generation 3``: which generation a child serves tells a graceful
    restart's retiring children from the new ones."""
    return f"mpmd: {role} ({mpm}) generation {generation}"


# --- pipe of death -----------------------------------------------------------------------------

class PipeOfDeath:
    """Master writes one byte per child it wants gone; an idle child reads one and exits (Rule 3)."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe2(os.O_NONBLOCK)

    def fileno(self) -> int:
        return self.r

    def signal(self, n: int = 1) -> None:
        try:
            os.write(self.w, b"!" * n)
        except BlockingIOError:
            pass

    def check(self) -> bool:
        """In a child: True when this child took a death byte."""
        try:
            return os.read(self.r, 1) == b"!"
        except BlockingIOError:
            return False

    def drain(self) -> None:
        """Master, after a restart: forget unread bytes of the old generation."""
        while self.check():
            pass

    def close_write_end(self) -> None:
        os.close(self.w)


# --- idle-server maintenance (pure) ------------------------------------------------------------

@dataclass(frozen=True)
class SlotView:
    """One process slot as maintenance sees it."""

    slot: int
    pid: int                     # 0: free slot
    idle: int                    # idle worker threads (prefork: 0 or 1)
    quiescing: bool = False      # retiring/old generation: its idle workers do not count


@dataclass(frozen=True)
class Decision:
    spawn: tuple[int, ...] = ()          # slots to fork into now
    kill_one: bool = False               # retire one idle process (pipe of death)
    next_rate: int = 1
    reached_max: bool = False            # log "server reached MaxRequestWorkers ..."
    seems_busy: bool = False             # log "server seems busy ..."
    idle: int = 0


def maintain(slots: Sequence[SlotView], *, min_idle: int, max_idle: int, max_daemons: int,
             spawn_rate: int) -> Decision:
    """httpd's perform_idle_server_maintenance as a pure function (Rule 2, Rule 3).

    ``slots`` are the first ``max_daemons`` scoreboard slots; ``min_idle``/``max_idle`` count
    idle workers (MinSpareServers/MaxSpareServers for prefork, *SpareThreads for worker).
    """
    idle = 0
    free: list[int] = []
    for view in slots[:max_daemons]:
        if view.pid == 0:
            if len(free) < spawn_rate:
                free.append(view.slot)
        elif not view.quiescing:
            idle += view.idle
    if idle > max_idle:
        return Decision(kill_one=True, next_rate=1, idle=idle)
    if idle >= min_idle:
        return Decision(next_rate=1, idle=idle)
    if not free:
        return Decision(next_rate=1, reached_max=True, idle=idle)
    return Decision(spawn=tuple(free), next_rate=min(spawn_rate * 2, MAX_SPAWN_RATE),
                    seems_busy=spawn_rate >= 8, idle=idle)


# --- stuck requests (Rule 8) ---------------------------------------------------------------------

BUSY_REQUEST_STATES = frozenset({Status.BUSY_WRITE, Status.BUSY_LOG})


def is_stuck(status: int, started: float, now: float, limit_s: float) -> bool:
    """Whether a worker record shows a request that began at ``started`` and still runs past
    ``limit_s`` at ``now`` (all time.time()); never when the limit is 0 (off)."""
    return limit_s > 0 and status in BUSY_REQUEST_STATES and started > 0 and now - started > limit_s


def log_text(text: str) -> str:
    """Client text for the error log: bytes outside printable ASCII as ``\\xNN``, a quote or
    backslash escaped, as httpd's ap_escape_logitem."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= code < 127:
            out.append(ch)
        else:
            out.append(f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}")
    return "".join(out)


@dataclass(frozen=True)
class StuckRequest:
    """A request running past StuckRequestTimeout, as the error log names it."""

    pid: int
    slot: int
    thread: int
    started: float               # time.time() it began
    client: str
    request: str
    vhost: str

    @property
    def key(self) -> tuple[int, int, int, float]:
        return self.pid, self.slot, self.thread, self.started

    def describe(self, now: float) -> str:
        request = f'"{log_text(self.request)}"' if self.request else "(request line not recorded)"
        vhost = f" to {log_text(self.vhost)}" if self.vhost else ""
        return (f"stuck request: {request} from {log_text(self.client) or '-'}{vhost} has run "
                f"{now - self.started:.1f} s, over StuckRequestTimeout (pid {self.pid}, "
                f"scoreboard slot {self.slot}-{self.thread})")


class StuckWatch:
    """What the master has logged: the requests stuck at its last pass (Rule 8)."""

    def __init__(self) -> None:
        self.reported: set[tuple[int, int, int, float]] = set()

    def scan(self, scoreboard: Any, children: Iterable["Child"], now: float,
             limit_s: float) -> list[tuple["Child", StuckRequest]]:
        """The stuck requests of ``children`` not reported before; the ones that ended are
        forgotten.  Only busy records are read in full."""
        seen: set[tuple[int, int, int, float]] = set()
        new: list[tuple[Child, StuckRequest]] = []
        for child in children:
            for thread, status in enumerate(scoreboard.statuses(child.slot)):
                if status not in BUSY_REQUEST_STATES:
                    continue
                rec = scoreboard.record(child.slot, thread)
                if not is_stuck(rec.status, rec.last_used, now, limit_s):
                    continue
                stuck = StuckRequest(child.pid, child.slot, thread, rec.last_used, rec.client,
                                     rec.request, rec.vhost)
                seen.add(stuck.key)
                if stuck.key not in self.reported:
                    new.append((child, stuck))
        self.reported = seen
        return new


# --- the children a master knows ---------------------------------------------------------------

@dataclass
class Child:
    pid: int
    slot: int
    generation: int
    started_s: float
    retiring: bool = False


@dataclass
class ProcessPool:
    """pid <-> slot bookkeeping; retained across restarts so old children are still reaped."""

    children: dict[int, Child] = field(default_factory=dict)

    def slot_pids(self) -> dict[int, int]:
        return {c.slot: c.pid for c in self.children.values()}

    def add(self, child: Child) -> None:
        self.children[child.pid] = child

    def pop(self, pid: int) -> Child | None:
        return self.children.pop(pid, None)

    def signal_all(self, signo: int, only: Callable[[Child], bool] = lambda c: True) -> None:
        for child in list(self.children.values()):
            if only(child):
                try:
                    os.kill(child.pid, signo)
                except ProcessLookupError:
                    pass

    def __len__(self) -> int:
        return len(self.children)


def wait_all(pool: ProcessPool, on_dead: Callable[[Child, ExitInfo], None], deadline_s: float) -> bool:
    """Reap until every child is gone or ``deadline_s`` (monotonic) passes; True when all gone."""
    while pool.children:
        for pid, info in reap():
            child = pool.pop(pid)
            if child is not None:
                on_dead(child, info)
        if not pool.children:
            return True
        if time.monotonic() >= deadline_s:
            return False
        time.sleep(0.02)
    return True


# --- the supervision loop ---------------------------------------------------------------------

class ForkingMPM(MPM):
    """A master loop for MPMs made of forked children in scoreboard slots (Rule 4).

    Subclasses give ``child_main(slot)``, ``start_children()`` (how many at boot), the
    maintenance bounds and ``slot_view(slot, pid)``.
    """

    maintenance_interval_s = 1.0
    stop_timeout_s = 5.0
    child_role = "child"                  # its word in the children's titles (Rule 6)
    replaces_clean_exits = False          # Rule 5: True where no spare arithmetic decides

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._graceful = False
        self._drivers: list[Any] = []       # this child's ConnectionDrivers (new_driver)
        self._preloaded_policy: Any = None  # the master's Policy for them (preload)

    # -- a child's graceful flag, which its blocking drivers read once per request -------------
    @property
    def graceful(self) -> bool:
        return self._graceful

    @graceful.setter
    def graceful(self, value: bool) -> None:
        """Graceful from here on: every driver of this child stops keeping connections alive."""
        self._graceful = value
        for driver in self._drivers:
            driver.stopping = value

    def new_driver(self, worker_slot: Any) -> Any:
        """A ConnectionDriver for one of this child's workers, told of a graceful stop."""
        from mpmd.mpm.conn import ConnectionDriver
        driver = ConnectionDriver(self.cfg, worker_slot, mpm=self, policy=self._preloaded_policy)
        self._drivers.append(driver)            # first: a graceful from now on reaches it
        driver.stopping = self._graceful
        return driver

    # -- to override --------------------------------------------------------------------
    def child_main(self, slot: int) -> int:          # pragma: no cover - abstract
        raise NotImplementedError

    def start_children(self) -> int:
        """StartServers, for MPMs whose settings have it (prefork, worker, event)."""
        return int(self.settings.start_servers)

    def maintenance_bounds(self) -> tuple[int, int, int]:
        """(min_idle, max_idle, max_daemons): the spare bounds of the MPM's settings."""
        s = self.settings
        return s.min_spare, s.max_spare, s.max_daemons

    def slot_view(self, slot: int, pid: int, quiescing: bool) -> SlotView:
        idle = sum(1 for s in self.scoreboard.statuses(slot) if s in IDLE_STATES)
        return SlotView(slot, pid, idle, quiescing)

    # -- shared state -------------------------------------------------------------------
    @property
    def pool(self) -> ProcessPool:
        return self.runtime.retained.setdefault("pool", ProcessPool())

    @property
    def pod(self) -> PipeOfDeath:
        retained = self.runtime.retained
        pod = retained.get("pod")
        if pod is None:                 # made once: each PipeOfDeath() opens a pipe
            pod = retained["pod"] = PipeOfDeath()
        return pod

    def run(self) -> RunResult:
        if self.runtime.single_process:
            return self.run_single()
        gen = self.runtime.generation
        self.scoreboard.set_generation(gen)
        self.pod.drain()
        self.preload()
        self._spawn_rate = 1
        used = set(self.pool.slot_pids())
        free = [s for s in range(self.maintenance_bounds()[2]) if s not in used]
        for slot in free[: self.start_children()]:
            self.spawn(slot)
        self._wait_started(time.monotonic() + 5.0)
        self.state = MPMState.RUNNING
        if self.runtime.on_ready:
            self.runtime.on_ready()
        return self.supervise()

    def run_single(self) -> RunResult:
        """-X: one child's work in this process, no fork; Ctrl-C/TERM stops it."""
        self.state = MPMState.RUNNING
        if self.request_records and self.stuck_limit_s():
            self.log.warn(M_STUCK_UNWATCHED, "StuckRequestTimeout is not watched with -X: "
                          "there is no master process to watch the requests", self.name)
        if self.runtime.on_ready:
            self.runtime.on_ready()
        try:
            self.child_main(0)
        except KeyboardInterrupt:
            pass
        return RunResult.STOP

    def _wait_started(self, deadline_s: float) -> None:
        while time.monotonic() < deadline_s:
            slots = self.pool.slot_pids()
            if all(Status.STARTING not in self.scoreboard.statuses(s) for s in slots):
                return
            time.sleep(0.01)

    def spawn(self, slot: int) -> int:
        gen = self.runtime.generation
        for t in range(self.scoreboard.thread_limit):
            self.scoreboard.set_status(slot, t, Status.STARTING)
        pid = fork_child(lambda: self._child_entry(slot), self.child_signals)
        self.scoreboard.set_process(slot, pid, gen)
        self.pool.add(Child(pid, slot, gen, time.monotonic()))
        return pid

    def preload(self) -> None:
        """In the master, before fork: import what serving a connection needs (the HTTP core
        and httptools, the request pipeline), as httpd loads everything in the parent.  With
        User/Group a child cannot import what its user cannot read (a Python tree under a
        root-only home), and would die on its first connection."""
        from mpmd.core import errors  # noqa: F401 - the error pages' module, imported lazily
        from mpmd.mpm.conn import ConnectionDriver
        policy = ConnectionDriver(self.cfg).policy
        policy.connection()                     # the cycle, the pipeline, httptools
        # The children's drivers take this Policy (read once per generation) rather than each
        # building its own after fork (Rule 9).
        self._preloaded_policy = policy

    def _child_entry(self, slot: int) -> int:
        set_proctitle(child_title(self.child_role, self.name, self.runtime.generation))
        try:
            return self.child_main(slot)
        except Exception as exc:
            # The traceback goes to stderr (fork_child); the error log gets what killed it.
            self.log.error(M_CHILD_CRASH, f"child pid {os.getpid()} died: "
                           f"{type(exc).__name__}: {exc}", self.name)
            raise

    def child_signals(self) -> None:
        """In a new child, while the master's signals are still blocked (``fork_child``): none
        of the master's plumbing, and the child's own handlers (httpd make_child).  Every
        signal of the master's table (FORK_BLOCKED_SIGNALS) gets the child's own disposition
        here, so the master's handlers are not restored first (Rule 9)."""
        if self.runtime.signals is not None:
            self.runtime.signals.close_in_child(restore=False)
        for signo in FORK_BLOCKED_SIGNALS - CHILD_HANDLED_SIGNALS:
            signal.signal(signo, signal.SIG_DFL)       # a signal added to the table later
        for signo in (signal.SIGINT, signal.SIGHUP):
            signal.signal(signo, signal.SIG_IGN)
        for signo in (signal.SIGTERM, signal.SIGCHLD):
            signal.signal(signo, signal.SIG_DFL)
        for signo in (signal.SIGUSR1, signal.SIGWINCH):
            signal.signal(signo, self._graceful_signal)
            signal.siginterrupt(signo, False)

    def _graceful_signal(self, signo: int, frame: Any) -> None:
        self._on_graceful(signo, frame)
        self.show_retiring()

    def show_retiring(self) -> None:
        """``ps`` tells a retiring child from the new generation's (Rule 6), as nginx's
        "worker process is shutting down"."""
        set_proctitle(child_title(self.child_role, self.name, self.runtime.generation)
                      + " retiring")

    def _on_graceful(self, signo: int, frame: Any) -> None:
        """A child's SIGUSR1/SIGWINCH: finish what is in hand, then exit.  MPMs that sleep in a
        wait of their own also wake it; the nginx MPM's loop takes the signals over later and
        reads this flag once it does."""
        self.graceful = True

    # -- the loop -----------------------------------------------------------------------
    def supervise(self) -> RunResult:
        next_maint = time.monotonic() + self.maintenance_interval_s
        while True:
            timeout = max(0.0, next_maint - time.monotonic())
            for action in self.runtime.signals.wait(timeout):
                result = self.dispatch(action)
                if result is not None:
                    return result
            self.handle_reap()
            if self.runtime.retained.get("halt"):
                self.stop_children(signal.SIGTERM)
                return RunResult.STOP
            if time.monotonic() >= next_maint:
                self.perform_maintenance()
                self.watch_stuck()
                if self.runtime.on_tick:
                    self.runtime.on_tick()
                next_maint = time.monotonic() + self.maintenance_interval_s

    def dispatch(self, action: str) -> RunResult | None:
        handler = getattr(self, "handle_" + action.replace("-", "_"))
        return handler()

    def child_died(self, child: Child, info: ExitInfo) -> None:
        self.scoreboard.clear_process(child.slot)
        if info.code in HALT_CODES:
            self.log.emerg(M_CHILD_FATAL, f"child pid {child.pid} exit signalled a fatal error "
                           f"({info.describe()}), shutting down", self.name)
            self.runtime.retained["halt"] = True
        elif not info.clean and not child.retiring and self.state == MPMState.RUNNING:
            self.log.notice(M_CHILD_DIED, f"child pid {child.pid} {info.describe()}", self.name)

    def replaces_at_once(self, child: Child, info: ExitInfo) -> bool:
        """Whether ``child``'s death is replaced now rather than by maintenance (Rule 5)."""
        if self.state != MPMState.RUNNING or self.runtime.retained.get("halt"):
            return False
        if child.retiring or child.generation != self.runtime.generation:
            return False            # a graceful restart's old child: the new generation serves
        if info.clean and not self.replaces_clean_exits:
            return False            # retired by the pipe of death, or done: maintenance decides
        return time.monotonic() - child.started_s >= RESPAWN_AT_ONCE_AFTER_S

    def respawn(self, slots: Iterable[int]) -> None:
        """Fork a replacement into each freed slot that is still within the MPM's limits."""
        max_daemons = self.maintenance_bounds()[2]
        for slot in slots:
            if slot < max_daemons and slot not in self.pool.slot_pids():
                self.spawn(slot)

    def perform_maintenance(self) -> None:
        min_idle, max_idle, max_daemons = self.maintenance_bounds()
        slots = self.pool.slot_pids()
        gen = self.runtime.generation
        views = [self.slot_view(s, slots.get(s, 0),
                                self._quiescing(slots.get(s, 0), gen)) for s in range(max_daemons)]
        d = maintain(views, min_idle=min_idle, max_idle=max_idle, max_daemons=max_daemons,
                     spawn_rate=self._spawn_rate)
        self._spawn_rate = d.next_rate
        self.apply(d)

    def stuck_limit_s(self) -> float:
        return float(getattr(self.cfg, "stuck_request_timeout", 0) or 0)

    def watch_stuck(self) -> None:
        """Rule 8: log each request newly past StuckRequestTimeout; with ``replace``, replace
        its child."""
        limit = self.stuck_limit_s()
        if not limit or not self.request_records:
            return
        watch = self.runtime.retained.setdefault("stuck_watch", StuckWatch())
        now = time.time()
        replace = getattr(self.cfg, "stuck_request_action", "log") == "replace" and \
            self.one_request_per_process()
        for child, stuck in watch.scan(self.scoreboard, list(self.pool.children.values()),
                                       now, limit):
            self.log.warn(M_STUCK, stuck.describe(now), self.name)
            if replace:
                self.replace_stuck(child, stuck)

    def replace_stuck(self, child: Child, stuck: StuckRequest) -> None:
        """Kill ``child`` for its stuck request, unless that request ended meanwhile; SIGCHLD
        then replaces it at once (Rule 5).  SIGKILL, gunicorn's last word to a worker past its
        timeout: a child stuck in a C call may never run a Python signal handler."""
        rec = self.scoreboard.record(stuck.slot, stuck.thread)
        if rec.status not in BUSY_REQUEST_STATES or rec.last_used != stuck.started:
            return
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.log.warn(M_STUCK_REPLACED, f"child pid {child.pid} (slot {child.slot}) killed for "
                      "its stuck request (StuckRequestAction replace)", self.name)

    def _quiescing(self, pid: int, gen: int) -> bool:
        child = self.pool.children.get(pid)
        return child is not None and (child.generation != gen or child.retiring)

    def apply(self, d: Decision) -> None:
        retained = self.runtime.retained
        if d.kill_one:
            self.pod.signal(1)
        if d.reached_max:
            if not retained.get("maxclients_reported"):
                self.log.error(M_REACHED_MAX, "server reached MaxRequestWorkers setting, "
                               "consider raising the MaxRequestWorkers setting", self.name)
                retained["maxclients_reported"] = True
        if d.seems_busy:
            self.log.info(M_SEEMS_BUSY, "server seems busy, (you may need to increase StartServers, "
                          f"or Min/MaxSpareServers), spawning {len(d.spawn)} children, there are "
                          f"{d.idle} idle, and {len(self.pool)} total children", self.name)
        for slot in d.spawn:
            self.spawn(slot)

    # -- signal actions -----------------------------------------------------------------
    def handle_reap(self) -> None:
        """SIGCHLD, and every loop pass: reap, clear slots, log unexpected deaths and replace
        them at once (Rule 5)."""
        freed: list[int] = []
        for pid, info in reap():
            child = self.pool.pop(pid)
            if child is not None:
                self.child_died(child, info)
                if self.replaces_at_once(child, info):
                    freed.append(child.slot)
        self.respawn(freed)

    def announce_stop(self) -> bool:
        """Rule 10: the children learn that a stop began (server-health answers 503), and
        with GracefulStopDelay they go on serving that long.  False: a second stop signal
        came meanwhile (stop at once)."""
        self.scoreboard.set_stopping()
        if self.runtime.on_stopping:          # systemd hears of the stop at once too
            self.runtime.on_stopping()
        delay = float(getattr(self.cfg, "graceful_stop_delay", 0) or 0)
        if delay <= 0:
            return True
        self.log.notice(M_STOP_DELAY, f"stopping in {delay:g} s (GracefulStopDelay): "
                        "server-health answers 503 meanwhile", self.name)
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            if "stop" in self.runtime.signals.wait(min(left, self.maintenance_interval_s)):
                return False
            self.handle_reap()
        return True

    def handle_stop(self) -> RunResult:
        """SIGTERM/SIGINT: drain, then stop (Rule 7)."""
        if not self.announce_stop():
            self.state = MPMState.STOPPING
            self.stop_children(signal.SIGTERM)
            return RunResult.STOP
        self.state = MPMState.STOPPING
        bound = self.drain_bound_s()
        self.log.notice(M_DRAINING, f"stopping: finishing the requests in flight (up to {bound:g} s)",
                        self.name)
        self.retire_generation()
        if not self.drain(time.monotonic() + bound):
            self.stop_children(signal.SIGTERM)
        return RunResult.STOP

    def drain_bound_s(self) -> float:
        graceful = float(getattr(self.cfg, "graceful_shutdown_timeout", 0) or 0)
        if graceful > 0:
            return graceful
        return min(float(getattr(self.cfg, "timeout", DRAIN_DEFAULT_S) or DRAIN_DEFAULT_S),
                   DRAIN_DEFAULT_S)

    def drain(self, deadline_s: float) -> bool:
        """Reap retiring children until none is left (True), the deadline passes or a second
        stop signal comes (False)."""
        while self.pool.children:
            for pid, info in reap():
                child = self.pool.pop(pid)
                if child is not None:
                    self._forget(child, info)
            if not self.pool.children:
                break
            wait = min(0.05, deadline_s - time.monotonic())
            if wait <= 0:
                return False
            if "stop" in self.runtime.signals.wait(wait):
                return False
        return True

    def handle_restart(self) -> RunResult | None:
        if not self.next_config_loads():
            return None
        self.state = MPMState.STOPPING
        self.stop_children(signal.SIGTERM)
        return RunResult.RESTART

    def handle_graceful(self) -> RunResult | None:
        if not self.next_config_loads():
            return None
        self.retire_generation()
        return RunResult.GRACEFUL

    def next_config_loads(self) -> bool:
        """A restart reads its config before anything is retired: a config or an application
        that no longer loads leaves the running children serving, not a new generation of
        children that answer 500."""
        load_next = self.runtime.load_next
        return load_next is None or load_next()

    def handle_graceful_stop(self) -> RunResult:
        if not self.announce_stop():
            self.state = MPMState.STOPPING
            self.stop_children(signal.SIGTERM)
            return RunResult.STOP
        self.state = MPMState.STOPPING
        self.retire_generation()
        timeout = float(getattr(self.cfg, "graceful_shutdown_timeout", 0) or 0)
        deadline = time.monotonic() + (timeout if timeout > 0 else 3600.0)
        if not wait_all(self.pool, self._forget, deadline):
            self.stop_children(signal.SIGTERM)
        return RunResult.STOP

    def retire_generation(self) -> None:
        """Ask every current child to finish its connection and exit (httpd graceful)."""
        for child in self.pool.children.values():
            child.retiring = True
            self.scoreboard.set_process(child.slot, child.pid, child.generation, True)
        self.pool.signal_all(signal.SIGUSR1)

    def _forget(self, child: Child, info: ExitInfo) -> None:
        self.scoreboard.clear_process(child.slot)

    def stop_children(self, signo: int) -> None:
        """TERM every child, then KILL what is left after ``stop_timeout_s``."""
        self.pool.signal_all(signo)
        if not wait_all(self.pool, self._forget, time.monotonic() + self.stop_timeout_s):
            self.log.warn(M_STOP_KILL, f"{len(self.pool)} children did not exit, sending SIGKILL",
                          self.name)
            self.pool.signal_all(signal.SIGKILL)
            wait_all(self.pool, self._forget, time.monotonic() + 5.0)


class AcceptWaiter:
    """Waits in one child for a new connection on the listeners or a control fd (wake pipe,
    pipe of death); ``wait`` returns the ready objects as they were given.

    Theory: every idle child waits on the same listening sockets.  With select() each new
    connection wakes all of them, and all but one find nothing to accept: with 64 idle
    prefork children that is 63 wasted wake-ups (cold processes, a few µs each) per
    connection.  httpd serialises the waiters with its accept mutex, nginx registers the
    listener with EPOLLEXCLUSIVE; mpmd does the latter (Linux 4.5+), so the kernel wakes one
    waiter.  The control fds stay non-exclusive: every child must see the graceful wake-up.
    Elsewhere it is select(), as before.  Create it after fork: an epoll set is shared with
    the processes that inherit it.
    """

    def __init__(self, listeners: Sequence[Any], control: Sequence[Any]) -> None:
        self._all = [*listeners, *control]
        self._epoll: Any = None
        exclusive = getattr(select, "EPOLLEXCLUSIVE", 0)
        if hasattr(select, "epoll") and exclusive:
            self._epoll = select.epoll()
            self._by_fd = {}
            for obj, flags in [(o, select.EPOLLIN | exclusive) for o in listeners] + \
                              [(o, select.EPOLLIN) for o in control]:
                fd = obj if isinstance(obj, int) else obj.fileno()
                self._epoll.register(fd, flags)
                self._by_fd[fd] = obj

    def wait(self, timeout: float) -> list[Any]:
        if self._epoll is None:
            return ignore_eintr_select(self._all, timeout)
        try:
            events = self._epoll.poll(timeout)
        except InterruptedError:
            return []
        return [self._by_fd[fd] for fd, _ in events]

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None


def ignore_eintr_select(fds: Iterable[Any], timeout: float) -> list[Any]:
    try:
        return select.select(list(fds), [], [], timeout)[0]
    except InterruptedError:
        return []
    except OSError as exc:
        if exc.errno == errno.EBADF:
            return []
        raise


# --- in a new child ----------------------------------------------------------------------------

M_SETUID = "MPMD0107"


def drop_privileges(cfg: Any) -> None:
    """User/Group: a child started as root switches to them right after fork (httpd unixd)."""
    if os.geteuid() != 0:
        return
    user = getattr(cfg, "user", None)
    if not isinstance(user, str) or not user:
        return
    import grp
    import pwd
    pw = pwd.getpwnam(user.lstrip("#")) if not user.startswith("#") else pwd.getpwuid(int(user[1:]))
    group = getattr(cfg, "group", None)
    gid = pw.pw_gid
    if isinstance(group, str) and group:
        gid = grp.getgrnam(group).gr_gid if not group.startswith("#") else int(group[1:])
    # httpd set_group_privs: setgid first (some systems zap the group list), then initgroups
    # with the user's name (also for "#uid"), so the user keeps its supplementary groups.
    os.setgid(gid)
    os.initgroups(pw.pw_name, gid)
    os.setuid(pw.pw_uid)


def child_setup(mpm: MPM) -> None:
    """Per-child start-up: drop privileges, run the modules' child_init hooks."""
    try:
        drop_privileges(mpm.cfg)
    except (KeyError, OSError) as exc:
        mpm.log.emerg(M_SETUID, f"unable to switch to User/Group: {exc}", mpm.name)
        raise SystemExit(EXIT_CHILD_FATAL) from None
    hooks = getattr(mpm.cfg, "hooks", None)
    if hooks is not None:
        hooks.run("child_init", mpm.cfg, mpm)
