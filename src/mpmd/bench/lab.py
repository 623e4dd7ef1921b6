"""The comparison lab: run the matrix target x workload x keep-alive, interleaved.

Rule 1: a plan is data (``Options`` -> list of workloads and targets); the runner walks it
and appends flat sample records, so the report and the charts are pure functions of the
JSON they are rebuilt from.
Rule 2: repetitions are interleaved -- every target runs once per round, in an order rotated
each round -- so a slow drift of the machine (thermal, noisy neighbours) spreads over all
targets instead of penalising whoever ran last.
Rule 3: anything that cannot run is recorded as ``unavailable[target][workload] = reason``
and skipped; the lab never fails because one server is missing or broken.
Rule 4: throughput workloads keep one instance per target running for all rounds; the idle
and fault workloads start a fresh instance per round, because they change the server's state
(open connections, killed children) and measure its resources.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mpmd.bench import clients, procs, wrk
from mpmd.bench.servers import TARGETS, Server, ServerPool, Target, Unavailable

THROUGHPUT = ("static-1k", "static-1m", "wsgi-hello", "asgi-hello", "tls-static-1k",
              "tls-asgi-hello")
ALL_WORKLOADS = THROUGHPUT + ("idle", "faults")
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


Progress = Callable[[str], None]


def plan_steps(opts: Options) -> int:
    """How many progress steps the run has (for the progress bar)."""
    steps = 0
    for w in opts.workloads:
        n = len(opts.targets_for(w))
        modes = 1 if w == "idle" else len(opts.keep_alive_modes)
        steps += n * opts.repeat * modes
    return steps


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


def run_fresh(pool: ServerPool, opts: Options, workload: str, res: Results,
              tick: Progress) -> None:
    """idle and faults: a fresh instance per target per round."""
    modes = (True,) if workload == "idle" else opts.keep_alive_modes
    targets = _targets_for(opts, workload)
    for rnd in range(opts.repeat):
        for target in rotated(targets, rnd):
            if workload in res.unavailable.get(target.name, {}):
                for _ in modes:
                    tick(f"{workload}: {target.name} unavailable")
                continue
            _run_one_fresh(pool, opts, workload, target, rnd, modes, res, tick)


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
            measure = ((lambda: _idle_sample(server, opts)) if workload == "idle" else
                       (lambda ka=keep_alive: _fault_sample(server, opts, ka)))
            _record(res, server, workload, rnd, keep_alive, measure)
            tick(f"{workload}: {target.name} round {rnd + 1}")
    finally:
        pool.stop(server)


RUNNERS: dict[str, Callable[[ServerPool, Options, str, Results, Progress], None]] = {
    **{w: run_throughput for w in THROUGHPUT},
    "idle": run_fresh,
    "faults": run_fresh,
}


def environment() -> dict[str, Any]:
    """Facts about the machine that a reader needs to interpret the numbers."""
    import os
    import platform
    import shutil
    import subprocess

    def version(argv: list[str]) -> str:
        if not shutil.which(argv[0]):
            return "not installed"
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr) else ""
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
    with ServerPool(root, docroot, appdir, sizing) as pool:
        for workload in opts.workloads:
            RUNNERS[workload](pool, opts, workload, res, tick)
    return res
