"""The MPM interface: who waits on which socket, nothing else (httpd's MPM hooks).

An MPM is built per generation as ``MPM(cfg, listeners, scoreboard, runtime)`` by the master and
asked to ``run()``; it returns ``RunResult.STOP``, ``RESTART`` or ``GRACEFUL`` when a signal tells
it to.  Requests are ``mpm/conn.py``'s job; process bookkeeping shared by the forking MPMs is in
``mpm/common.py``.

Rule 1: ``check_config(cfg)`` never raises for out-of-range combinations: it clamps, as httpd's
        ``prefork_check_config`` does, and returns the warnings as problems.
Rule 2: ``query()`` is a table lookup (httpd ``ap_mpm_query``); modules ask it, never the class.
Rule 3: ``scoreboard_limits(cfg)`` sizes the scoreboard once per server lifetime.
"""

from __future__ import annotations

import abc
import signal
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any, Callable, ClassVar

from mpmd.config.directives import Directive

try:  # A's cross-directive checks own Problem; keep working before it lands.
    from mpmd.config.check import Problem  # type: ignore[attr-defined]
except Exception:  # pragma: no cover - fallback shape
    @dataclass(frozen=True)
    class Problem:  # type: ignore[no-redef]
        level: str
        id: str
        text: str


class Query(IntEnum):
    """What modules may ask an MPM (httpd AP_MPMQ_*)."""

    IS_THREADED = 1
    IS_FORKED = 2
    HARD_LIMIT_DAEMONS = 3
    HARD_LIMIT_THREADS = 4
    MAX_THREADS = 5
    MIN_SPARE_DAEMONS = 6
    MIN_SPARE_THREADS = 7
    MAX_SPARE_DAEMONS = 8
    MAX_SPARE_THREADS = 9
    MAX_REQUESTS_DAEMON = 10
    MAX_DAEMONS = 11
    MPM_STATE = 12
    GENERATION = 13
    IS_ASYNC = 14
    # mpmd's own: 1 when the MPM awaits handlers of kind "async" on its own event loop
    AWAITS_HANDLERS = 15
    # mpmd's own: 1 when each scoreboard worker record serves one request at a time, so a busy
    # record's last_used is when its request began (0: the nginx MPM's one record per loop)
    REQUEST_RECORDS = 16


def awaits_handlers(mpm: Any) -> bool:
    """Whether ``mpm`` awaits handlers of kind "async" on its own loop (``Query``); a module
    picks its handler's kind by it, never by the MPM's name."""
    query = getattr(mpm, "query", None)
    return bool(query is not None and query(Query.AWAITS_HANDLERS))


class MPMState(IntEnum):
    STARTING = 1
    RUNNING = 2
    STOPPING = 3


class RunResult(Enum):
    STOP = "stop"
    RESTART = "restart"
    GRACEFUL = "graceful"
    GRACEFUL_STOP = "graceful-stop"


# What each signal means to the master, and the ``-k ACTION`` that sends it (httpd's MPM
# signals).  The forking MPMs block these across fork(); the supervisor acts on them.
@dataclass(frozen=True)
class SignalSpec:
    signo: int
    action: str              # what the master does
    command: str | None      # the -k ACTION that sends it (None: not sendable)


SIGNALS: tuple[SignalSpec, ...] = (
    SignalSpec(signal.SIGTERM, "stop", "stop"),
    SignalSpec(signal.SIGINT, "stop", None),
    SignalSpec(signal.SIGHUP, "restart", "restart"),
    SignalSpec(signal.SIGUSR1, "graceful", "graceful"),
    SignalSpec(signal.SIGWINCH, "graceful-stop", "graceful-stop"),
    SignalSpec(signal.SIGCHLD, "reap", None),
)

ACTION_OF: dict[int, str] = {s.signo: s.action for s in SIGNALS}
SIGNAL_FOR_COMMAND: dict[str, int] = {s.command: s.signo for s in SIGNALS if s.command}


@dataclass
class Runtime:
    """What the master hands each generation besides config, listeners and scoreboard."""

    log: Any                                   # mpmd.core.log.ErrorLog
    signals: Any = None                        # mpmd.supervisor.signals.SignalQueue (None with -X)
    generation: int = 0
    single_process: bool = False               # -X: serve in this process, no fork
    on_ready: Callable[[], None] | None = None  # call once the first children are up
    retained: dict[str, Any] = field(default_factory=dict)   # survives restarts (httpd retained)
    on_stopping: Callable[[], None] | None = None  # a stop begins (sd_notify STOPPING=1)
    on_tick: Callable[[], None] | None = None      # each maintenance pass (sd_notify STATUS=)
    # a restart signal came: read the next generation's config now, before any child retires;
    # False (it does not load) keeps this generation and its children serving untouched
    load_next: Callable[[], bool] | None = None


class MPM(abc.ABC):
    name: ClassVar[str] = ""
    DIRECTIVES: ClassVar[list[Directive]] = []
    threaded: ClassVar[bool] = False
    forked: ClassVar[bool] = True
    is_async: ClassVar[bool] = False
    request_records: ClassVar[bool] = True      # Query.REQUEST_RECORDS

    def __init__(self, cfg: Any, listeners: list[Any], scoreboard: Any,
                 runtime: Runtime | None = None) -> None:
        self.cfg = cfg
        self.listeners = listeners
        self.scoreboard = scoreboard
        if runtime is None:
            from mpmd.core.log import ErrorLog
            runtime = Runtime(log=ErrorLog())
        self.runtime = runtime
        self.log = runtime.log
        self.state = MPMState.STARTING

    @classmethod
    def check_config(cls, cfg: Any) -> list[Any]:
        """Warnings about clamped values (Rule 1)."""
        return []

    @classmethod
    def one_request_per_process(cls) -> bool:
        """Whether each child serves one request at a time (prefork): only then does
        replacing a child for a stuck request cost no other request (StuckRequestAction)."""
        return cls.forked and not cls.threaded and not cls.is_async

    @classmethod
    def scoreboard_limits(cls, cfg: Any) -> tuple[int, int]:
        """(ServerLimit, ThreadLimit) that size the scoreboard (Rule 3)."""
        return 1, 1

    def query_table(self) -> dict[Query, int]:
        return {}

    def query(self, q: Query) -> int:
        base = {Query.IS_THREADED: int(self.threaded), Query.IS_FORKED: int(self.forked),
                Query.MAX_REQUESTS_DAEMON: int(self.cfg.max_connections_per_child),
                Query.IS_ASYNC: int(self.is_async), Query.MPM_STATE: int(self.state),
                Query.REQUEST_RECORDS: int(self.request_records),
                Query.GENERATION: self.runtime.generation}
        base.update(self.query_table())
        return base.get(q, 0)

    @abc.abstractmethod
    def run(self) -> RunResult:
        """Serve until a signal says stop/restart; return which."""


def _local_int_range(lo: int, hi: int) -> Any:
    def convert(args: list[str]) -> int:
        try:
            value = int(args[0])
        except (ValueError, IndexError):
            raise ValueError(f"must be an integer between {lo} and {hi}") from None
        if not lo <= value <= hi:
            raise ValueError(f"must be an integer between {lo} and {hi}")
        return value
    return convert


def int_arg(lo: int, hi: int) -> Any:
    """Directive converter for an integer in [lo, hi] (config.values.int_range when present).

    MPM limits are checked loosely here (0 .. a large bound) and clamped with warnings by
    ``check_config``, as httpd does, so an over-large value is a warning, not a syntax error.
    """
    try:
        from mpmd.config.values import int_range
        return int_range(lo, hi)
    except Exception:
        return _local_int_range(lo, hi)
