"""The comparison lab: run the matrix target x workload x keep-alive, interleaved.

Rule 1: a plan is data (``Options`` -> list of workloads and targets); the runner walks it
and appends flat sample records, so the report and the charts are pure functions of the
JSON they are rebuilt from.
Rule 2: repetitions are interleaved -- every target runs once per round, in an order rotated
each round -- so a slow drift of the machine (thermal, noisy neighbours) spreads over all
targets instead of penalising whoever ran last.
Rule 3: anything that cannot run is recorded as ``unavailable[target][workload] = reason``
and skipped; the lab never fails because one server is missing or broken.
Rule 4: throughput workloads keep one instance per target running for all rounds; the idle,
fault and reliability workloads start a fresh instance per round (``reload``: per keep-alive
mode too), because they change the server's state (open connections, killed children,
generations) and measure its resources.
Rule 5: the reliability workloads (``RELIABILITY``, reliability.py) run only when named
(``--workloads reliability`` names them all): one round of them takes about half an hour.
The progress callback takes an ``advance`` (0: a new description only), so their long runs
say where they are.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mpmd.bench import clients, procs, reliability, wrk
from mpmd.bench.servers import TARGETS, Server, ServerPool, Target, Unavailable

THROUGHPUT = ("static-1k", "static-1m", "wsgi-hello", "asgi-hello", "tls-static-1k",
              "tls-asgi-hello")
RELIABILITY = ("reload", "kill", "slowloris", "slowbody", "soak")
DEFAULT_WORKLOADS = THROUGHPUT + ("idle", "faults")
ALL_WORKLOADS = DEFAULT_WORKLOADS + RELIABILITY
# names that stand for several workloads on the command line
WORKLOAD_GROUPS = {"reliability": RELIABILITY}
QUICK_WORKLOADS = ("static-1k", "wsgi-hello", "idle", "faults")  # < 2 min on 2 busy CPUs


@dataclass
class Options:
    """Everything that shapes one lab run (filled from the command line)."""

    targets: list[str]
    workloads: list[str]
    connections: int = 64
    threads: int = 1
    duration_s: float = 5.0
    repeat: int = 3
    idle_connections: int = 2000
    idle_steps: int = 4
    fault_clients: int = 16
    keep_alive_modes: tuple[bool, ...] = (True, False)
    # before each wrk run, wait up to this many seconds for a second in which processes
    # outside the lab used less than QUIET_CPU_S of CPU (0: do not wait)
    wait_quiet_s: float = 0.0
    # workload -> the only targets that run it (of ``targets``); a workload not named here
    # runs on every target that serves it
    only: dict[str, list[str]] = field(default_factory=dict)
    reliability: reliability.Plan = field(default_factory=reliability.Plan)

    def targets_for(self, workload: str) -> list[str]:
        """The targets of this run that run ``workload``, in the order of ``targets``."""
        names = [t for t in self.targets if workload in TARGETS[t].workloads]
        keep = self.only.get(workload)
        return names if keep is None else [t for t in names if t in keep]


@dataclass
class Results:
    """Flat samples plus what could not run; serialised as results.json."""

    options: dict[str, Any]
    samples: list[dict[str, Any]] = field(default_factory=list)
    unavailable: dict[str, dict[str, str]] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    def mark_unavailable(self, target: str, workload: str, reason: str) -> None:
        self.unavailable.setdefault(target, {})[workload] = reason

    def to_dict(self) -> dict[str, Any]:
        return {"options": self.options, "environment": self.environment,
                "samples": self.samples, "unavailable": self.unavailable}


# tick(description, advance=1): one step done (advance 0: only a new description)
Progress = Callable[..., None]


def workload_modes(opts: Options, workload: str) -> tuple[bool, ...]:
    """The keep-alive modes a workload runs: both (as --keepalive says) for the throughput
    workloads, faults and reload; keep-alive only for the rest (the soak mixes both)."""
    if workload in ("idle", "kill", "slowloris", "slowbody", "soak"):
        return (True,)
    return opts.keep_alive_modes


def plan_steps(opts: Options) -> int:
    """How many progress steps the run has (for the progress bar)."""
    return sum(len(opts.targets_for(w)) * opts.repeat * len(workload_modes(opts, w))
               for w in opts.workloads)


def rotated(items: list[Any], k: int) -> list[Any]:
    """items rotated left by k (the interleaving order of round k)."""
    if not items:
        return []
    k %= len(items)
    return items[k:] + items[:k]


def _targets_for(opts: Options, workload: str) -> list[Target]:
    return [TARGETS[t] for t in opts.targets_for(workload)]


QUIET_CPU_S = 0.1    # CPU seconds, in one second, that processes outside the lab may use


def _cpu(servers: tuple[Server, ...]) -> float:
    return sum(procs.tree_cpu_seconds(s.pid) for s in servers)


def wait_quiet(servers: tuple[Server, ...], limit_s: float,
               quiet_cpu_s: float = QUIET_CPU_S) -> float:
    """Wait, up to limit_s, for a second in which the machine's CPU use outside ``servers``
    (and this process) stays under quiet_cpu_s; returns the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        busy0, ours0 = procs.machine_busy_seconds(), _cpu(servers)
        self0 = procs.cpu_seconds(os.getpid())
        time.sleep(1.0)
        foreign = (procs.machine_busy_seconds() - busy0 - (_cpu(servers) - ours0)
                   - (procs.cpu_seconds(os.getpid()) - self0))
        if foreign < quiet_cpu_s:
            break
    return time.monotonic() - start


def _wrk_sample(server: Server, opts: Options, keep_alive: bool,
                others: tuple[Server, ...] = ()) -> dict[str, Any]:
    """One wrk run plus what else used the machine meanwhile: the measured server's CPU
    time (user and system), wrk's own, the CPU time of the other (idle) servers of the pool,
    the CPU time of every other process on the machine (foreign), and the load average."""
    waited = wait_quiet((server,) + others, opts.wait_quiet_s) if opts.wait_quiet_s else 0.0
    (user0, sys0), others0 = procs.tree_cpu_split(server.pid), _cpu(others)
    busy0 = procs.machine_busy_seconds()
    result = wrk.run_wrk(server.url, threads=opts.threads, connections=opts.connections,
                         duration_s=opts.duration_s, keep_alive=keep_alive)
    busy = procs.machine_busy_seconds() - busy0
    user1, sys1 = procs.tree_cpu_split(server.pid)
    sample = result.to_dict()
    others_cpu = _cpu(others) - others0
    wrk_cpu = (result.cpu_user_s or 0.0) + (result.cpu_sys_s or 0.0)
    sample.update(usage=procs.tree_usage(server.pid).to_dict(),
                  server_cpu_s=(user1 - user0) + (sys1 - sys0), server_user_s=user1 - user0,
                  server_sys_s=sys1 - sys0, others_cpu_s=others_cpu,
                  foreign_cpu_s=max(0.0, busy - (user1 - user0) - (sys1 - sys0) - wrk_cpu
                                    - others_cpu),
                  waited_quiet_s=waited, loadavg_1m=os.getloadavg()[0])
    if server.tls is not None:
        sample["tls"] = server.tls
    return sample


def run_throughput(pool: ServerPool, opts: Options, workload: str, res: Results,
                   tick: Progress) -> None:
    """Start every target once, then interleave rounds of wrk runs against them."""
    running: list[Server] = []
    for target in _targets_for(opts, workload):
        try:
            running.append(pool.start(target, workload))
        except Unavailable as exc:
            res.mark_unavailable(target.name, workload, str(exc))
            for _ in range(opts.repeat * len(opts.keep_alive_modes)):
                tick(f"{workload}: {target.name} unavailable")
    try:
        for rnd in range(opts.repeat):
            for keep_alive in opts.keep_alive_modes:
                for server in rotated(running, rnd):
                    others = tuple(x for x in running if x is not server)
                    _record(res, server, workload, rnd, keep_alive,
                            lambda s=server, ka=keep_alive, o=others: _wrk_sample(s, opts, ka, o))
                    tick(f"{workload}: {server.target.name} ka={'on' if keep_alive else 'off'}"
                         f" round {rnd + 1}")
    finally:
        for server in running:
            pool.stop(server)


def _record(res: Results, server: Server, workload: str, rnd: int, keep_alive: bool,
            measure: Callable[[], dict[str, Any]]) -> None:
    base = {"target": server.target.name, "workload": workload, "round": rnd,
            "keep_alive": keep_alive}
    if not server.alive():
        res.samples.append({**base, "error": "server died before the run"})
        return
    try:
        res.samples.append({**base, **measure()})
    except (RuntimeError, ValueError, OSError) as exc:
        res.samples.append({**base, "error": str(exc)[:500]})


def _idle_sample(server: Server, opts: Options) -> dict[str, Any]:
    """Usage at 0..N idle connections, then wrk with all N held."""
    steps = [round(opts.idle_connections * (i + 1) / opts.idle_steps)
             for i in range(opts.idle_steps)]
    curve = [{"idle": 0, **procs.tree_usage(server.pid).to_dict()}]
    with clients.IdleHolder(server.port, "/1k.bin") as holder:
        before = 0
        for n in steps:
            held = holder.grow_to(n, deadline_s=3.0 + n / 500)
            curve.append({"idle": n, "held": held, **procs.tree_usage(server.pid).to_dict()})
            if held == before:
                break  # no progress: the server is full; further steps would only wait
            before = held
        sample = _wrk_sample(server, opts, keep_alive=True)
        sample.update(curve=curve, held=len(holder.held), idle_target=opts.idle_connections,
                      idle_failed=holder.failed)
    return sample


def _fault_sample(server: Server, opts: Options, keep_alive: bool) -> dict[str, Any]:
    counts = clients.run_fault_mix(server.port, "/app/", keep_alive=keep_alive,
                                   duration_s=opts.duration_s, clients=opts.fault_clients)
    return {**counts.to_dict(), "usage": procs.tree_usage(server.pid).to_dict()}


# workload -> measure(server, opts, keep_alive, round, tick) -> sample, for the workloads run
# on a fresh instance
Measure = Callable[[Server, Options, bool, int, Progress], dict[str, Any]]
FRESH: dict[str, Measure] = {
    "idle": lambda s, o, ka, rnd, tick: _idle_sample(s, o),
    "faults": lambda s, o, ka, rnd, tick: _fault_sample(s, o, ka),
    "reload": lambda s, o, ka, rnd, tick: reliability.event_sample(s, o.reliability, "reload",
                                                                   ka, rnd, tick),
    "kill": lambda s, o, ka, rnd, tick: reliability.event_sample(s, o.reliability, "kill", ka,
                                                                 rnd, tick),
    "slowloris": lambda s, o, ka, rnd, tick: reliability.slow_sample(s, o.reliability,
                                                                     "slowloris", tick),
    "slowbody": lambda s, o, ka, rnd, tick: reliability.slow_sample(s, o.reliability,
                                                                    "slowbody", tick),
    "soak": lambda s, o, ka, rnd, tick: reliability.soak_sample(s, o.reliability, tick),
}
# workloads whose every keep-alive mode gets an instance of its own (a reload run must not
# start from the generation the previous run's reloads left)
INSTANCE_PER_MODE = frozenset({"reload"})
# what a workload needs from the system besides the server: (program, why not)
NEEDS: dict[str, tuple[str, str]] = {w: ("slowhttptest", reliability.SLOWHTTPTEST_HINT)
                                     for w in ("slowloris", "slowbody")}


def run_fresh(pool: ServerPool, opts: Options, workload: str, res: Results,
              tick: Progress) -> None:
    """idle, faults and the reliability workloads: a fresh instance per target per round."""
    modes = workload_modes(opts, workload)
    targets = _targets_for(opts, workload)
    need = NEEDS.get(workload)
    if need and shutil.which(need[0]) is None:
        for target in targets:
            res.mark_unavailable(target.name, workload, need[1])
    groups = [(m,) for m in modes] if workload in INSTANCE_PER_MODE else [modes]
    for rnd in range(opts.repeat):
        for target in rotated(targets, rnd):
            for group in groups:
                if workload in res.unavailable.get(target.name, {}):
                    for _ in group:
                        tick(f"{workload}: {target.name} unavailable")
                    continue
                _run_one_fresh(pool, opts, workload, target, rnd, group, res, tick)


def _run_one_fresh(pool: ServerPool, opts: Options, workload: str, target: Target, rnd: int,
                   modes: tuple[bool, ...], res: Results, tick: Progress) -> None:
    try:
        server = pool.start(target, workload)
    except Unavailable as exc:
        res.mark_unavailable(target.name, workload, str(exc))
        for _ in modes:
            tick(f"{workload}: {target.name} unavailable")
        return
    try:
        for keep_alive in modes:
            measure = FRESH[workload]
            _record(res, server, workload, rnd, keep_alive,
                    lambda ka=keep_alive: measure(server, opts, ka, rnd, tick))
            tick(f"{workload}: {target.name} " + (f"ka={'on' if keep_alive else 'off'} "
                                                  if len(workload_modes(opts, workload)) > 1
                                                  else "") + f"round {rnd + 1}")
    finally:
        pool.stop(server)


RUNNERS: dict[str, Callable[[ServerPool, Options, str, Results, Progress], None]] = {
    **{w: run_throughput for w in THROUGHPUT},
    **{w: run_fresh for w in FRESH},
}


def environment_version(argv: list[str], containing: str = "") -> str:
    """The first line of a program's output (that contains ``containing``), or why not."""
    import subprocess
    if not shutil.which(argv[0]):
        return "not installed"
    out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    lines = [x for x in (out.stdout + out.stderr).strip().splitlines() if containing in x]
    return lines[0].strip() if lines else ""


def environment() -> dict[str, Any]:
    """Facts about the machine that a reader needs to interpret the numbers."""
    import platform
    version = environment_version
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "nginx": version(["nginx", "-v"]), "apache2": version(["apache2", "-v"]),
            "wrk": version(["wrk", "--version"])}


def run_lab(root: Path, docroot: Path, appdir: Path, opts: Options, sizing: Any,
            tick: Progress) -> Results:
    """Run every workload of opts; servers are always stopped on the way out."""
    res = Results(options={k: v for k, v in vars(opts).items()}, environment=environment())
    res.environment["nofile"] = list(procs.raise_nofile_limit())
    res.options["sizing"] = vars(sizing)
    res.options["reliability"] = opts.reliability.to_dict()
    if any(w in RELIABILITY for w in opts.workloads):
        from mpmd.bench.configs import Sizing
        res.options["reliability_sizing"] = vars(Sizing.debian())
        res.environment["slowhttptest"] = environment_version(["slowhttptest", "-h"], "version")
    with ServerPool(root, docroot, appdir, sizing) as pool:
        for workload in opts.workloads:
            RUNNERS[workload](pool, opts, workload, res, tick)
    return res
