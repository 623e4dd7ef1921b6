"""The reliability workloads (issue 18): what a server loses to graceful reloads and to killed
children under load, whether a normal client is still answered beside slow clients, and
whether mpmd's memory and file descriptors stay flat over a long soak.

Rule 1: a ``Plan`` is data (how long, how many, how often); the pure parts -- the event
timeline, the slowhttptest command line and the parsing of its report, what counts as a
failed request -- are functions tested without a server.
Rule 2: every load is bounded twice and stops by itself: wrk by its ``-d`` (and a kill after
30 s more), slowhttptest by its ``-l`` (and a kill after 15 s more), the probes by their
count and per-probe deadline, the soak by a request count and a time limit.
Rule 3: ``reload`` and ``kill`` run ``wrk -t1 -c32 -d20s`` on the 1 KiB file and, from the
third second on, five events 3 s apart: the target's graceful-reload signal to the master
(``Target.reload_signal``), or SIGKILL to a child of the master picked at random (seeded).
A failed request is what wrk counts as a connect, read or write error or a non-2xx answer;
an answer slower than wrk's 2 s timeout is counted apart.  After a kill the lab polls the
master's children until a new one appears (the time to a replacement), within the gap
before the next event.
Rule 4: ``slowloris`` and ``slowbody`` run ``slowhttptest -H`` / ``-B`` with 500
connections while a normal client probes once a second (``clients.probe_steadily``):
a probe counts when its 2xx answer arrived within 1 s.
Rule 5: ``soak`` sends about 200,000 requests to one mpmd instance in 2 s wrk slices that
rotate between the file and the WSGI app, keep-alive and ``Connection: close``; after each
slice it records the tree's PSS, processes, threads and open file descriptors.  The first
pass over the four variants is the warm-up; its last point is compared with the end.
"""

from __future__ import annotations

import math
import os
import random
import re
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from mpmd.bench import clients, procs, wrk

Tick = Callable[..., None]

SLOWHTTPTEST_HINT = "slowhttptest not found on PATH (apt-get install slowhttptest)"
SLOW_MODES = {"slowloris": "-H", "slowbody": "-B"}


@dataclass(frozen=True)
class Plan:
    """The reliability workloads' sizes (issue 18's harness by default)."""

    connections: int = 32            # wrk -c of the reload and kill loads, and of the soak
    load_s: float = 20.0             # wrk -d of the reload and kill loads
    events: int = 5                  # reloads or kills per run
    first_event_s: float = 3.0
    event_interval_s: float = 3.0
    slow_connections: int = 500      # slowhttptest -c
    slow_rate: int = 200             # slowhttptest -r: connections opened per second
    slow_interval_s: int = 10        # slowhttptest -i: seconds between follow-up data
    probes: int = 25                 # probes, one a second, each answered within 1 s or not
    probe_timeout_s: float = 1.0
    soak_requests: int = 200_000
    soak_slice_s: float = 2.0
    soak_max_s: float = 900.0        # the soak stops here even short of soak_requests
    soak_settle_s: float = 0.3       # after a slice, before PSS and descriptors are read
    seed: int = 18                   # which child each kill picks (random.Random(seed + round))

    @classmethod
    def quick(cls) -> "Plan":
        """Short runs for --quick (still every scenario)."""
        return cls(load_s=8.0, events=2, first_event_s=2.0, event_interval_s=2.0,
                   slow_connections=200, probes=5, soak_requests=40_000, soak_slice_s=1.0,
                   soak_max_s=60.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def event_times(plan: Plan) -> list[float]:
    """Seconds after the load's start at which the events happen (all inside the load)."""
    times = [plan.first_event_s + i * plan.event_interval_s for i in range(plan.events)]
    if times and times[-1] >= plan.load_s:
        raise ValueError(f"the last event ({times[-1]:.0f} s) is not inside the "
                         f"{plan.load_s:.0f} s load")
    return times


def failed_requests(sample: dict[str, Any]) -> int:
    """Requests a client lost in a wrk sample: connect, read and write errors and non-2xx
    answers (wrk's timeouts, answers slower than 2 s, are counted apart)."""
    return (sample.get("errors_connect", 0) + sample.get("errors_read", 0)
            + sample.get("errors_write", 0) + sample.get("non_2xx_3xx", 0))


def _sleep_until(when: float) -> None:
    delay = when - time.monotonic()
    if delay > 0:
        time.sleep(delay)       # the harness's timeline: events at fixed offsets


def kill_child(master: int, rng: random.Random, wait_s: float) -> dict[str, Any]:
    """SIGKILL one child of master, picked by rng; then wait up to wait_s for a child that
    was not there before (its replacement, or a child the pool grew by meanwhile)."""
    kids = procs.children(master)
    if not kids:
        return {"victim": None, "replaced_s": None}
    victim = rng.choice(kids)
    before = set(kids)
    start = time.monotonic()
    try:
        os.kill(victim, signal.SIGKILL)
    except ProcessLookupError:
        return {"victim": victim, "replaced_s": None, "note": "gone before the kill"}
    while time.monotonic() - start < wait_s:
        if set(procs.children(master)) - before:
            return {"victim": victim, "replaced_s": time.monotonic() - start}
        time.sleep(0.005)       # polling /proc for the new child; bounded by wait_s
    return {"victim": victim, "replaced_s": None}


def event_sample(server: Any, plan: Plan, kind: str, keep_alive: bool, rnd: int,
                 tick: Tick) -> dict[str, Any]:
    """wrk on server's URL for plan.load_s with ``kind`` ("reload" or "kill") events."""
    rng = random.Random(plan.seed + rnd)
    times = event_times(plan)
    run = wrk.start_wrk(server.url, threads=1, connections=plan.connections,
                        duration_s=plan.load_s, keep_alive=keep_alive)
    start = time.monotonic()
    events: list[dict[str, Any]] = []
    try:
        for i, at in enumerate(times):
            _sleep_until(start + at)
            if kind == "reload":
                os.kill(server.pid, server.target.reload_signal)
                event: dict[str, Any] = {"signal": signal.Signals(server.target.reload_signal).name}
            else:
                event = kill_child(server.pid, rng, max(0.1, plan.event_interval_s - 0.3))
            events.append({"at_s": round(time.monotonic() - start, 3), **event})
            tick(f"{kind}: {server.target.name} event {i + 1}/{len(times)}", 0)
    except BaseException:
        run.proc.kill()
        run.proc.communicate()
        raise
    result = run.finish().to_dict()
    return {**result, "event": kind, "events": events, "failed": failed_requests(result),
            "timeouts": result["errors_timeout"],
            "usage": procs.tree_usage(server.pid).to_dict(),
            "loadavg_1m": os.getloadavg()[0]}


# ---- slowhttptest -------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STATUS = re.compile(r"slow HTTP test status on (\d+)\w* second:")
_FIELD = re.compile(r"^(initializing|pending|connected|error|closed):\s+(\d+)\s*$")
_AVAILABLE = re.compile(r"^service available:\s+(YES|NO)\s*$")
_EXIT = re.compile(r"^Exit status:\s*(.+?)\s*$")


def parse_slowhttptest(text: str) -> dict[str, Any]:
    """slowhttptest's stdout (colour codes and all) -> its status blocks, the most
    connections it held at once, its last block and its exit status."""
    statuses: list[dict[str, Any]] = []
    exit_status = None
    for raw in _ANSI.sub("", text).splitlines():
        line = raw.strip()
        m = _STATUS.search(line)
        if m:
            statuses.append({"second": int(m.group(1))})
            continue
        m = _FIELD.match(line)
        if m and statuses:
            statuses[-1][m.group(1)] = int(m.group(2))
            continue
        m = _AVAILABLE.match(line)
        if m and statuses:
            statuses[-1]["service_available"] = m.group(1) == "YES"
            continue
        m = _EXIT.match(line)
        if m:
            exit_status = m.group(1)
    return {"statuses": statuses,
            "max_connected": max((s.get("connected", 0) for s in statuses), default=0),
            "last": statuses[-1] if statuses else {}, "exit_status": exit_status}


def slow_ramp_s(plan: Plan) -> float:
    """Seconds until slowhttptest has opened all its connections, plus one."""
    return plan.slow_connections / plan.slow_rate + 1.0


def slowhttptest_command(mode: str, url: str, plan: Plan) -> list[str]:
    """The slowhttptest argv of the ``mode`` workload ("slowloris" or "slowbody"): its
    connections opened during the ramp, then held while the probes run."""
    length = math.ceil(slow_ramp_s(plan) + plan.probes * 1.0 + plan.probe_timeout_s + 1)
    argv = ["slowhttptest", SLOW_MODES[mode], "-c", str(plan.slow_connections),
            "-r", str(plan.slow_rate), "-i", str(plan.slow_interval_s), "-l", str(length),
            "-p", "1", "-u", url]
    # the body: 8192 bytes announced, at most 10 random bytes every -i seconds (never done)
    return argv + (["-s", "8192", "-x", "10"] if mode == "slowbody" else ["-x", "24"])


def slow_sample(server: Any, plan: Plan, mode: str, tick: Tick) -> dict[str, Any]:
    """slowhttptest against server while a normal client probes it once a second."""
    if shutil.which("slowhttptest") is None:
        raise RuntimeError(SLOWHTTPTEST_HINT)
    argv = slowhttptest_command(mode, server.url, plan)
    limit = float(argv[argv.index("-l") + 1])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        time.sleep(slow_ramp_s(plan))   # slowhttptest opens its connections at -r a second
        tick(f"{mode}: {server.target.name} probing", 0)
        probes = clients.probe_steadily(server.port, server.path, plan.probes,
                                        timeout_s=plan.probe_timeout_s)
        usage = procs.tree_usage(server.pid).to_dict()
        out, _ = proc.communicate(timeout=limit + 15)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    report = parse_slowhttptest(out)
    return {"mode": SLOW_MODES[mode], "command": " ".join(argv),
            "probes": probes, "answered": sum(p is not None for p in probes),
            "probes_sent": len(probes), "max_connected": report["max_connected"],
            "last_status": report["last"], "exit_status": report["exit_status"],
            "usage": usage, "loadavg_1m": os.getloadavg()[0]}


# ---- soak ---------------------------------------------------------------------------------

SOAK_VARIANTS = (("static", "/1k.bin", True), ("static", "/1k.bin", False),
                 ("wsgi", "/app/", True), ("wsgi", "/app/", False))


def soak_summary(curve: list[dict[str, Any]], warm_index: int) -> dict[str, Any]:
    """Warm-up point against the last: PSS change in percent, descriptors then, at the end and
    at most afterwards."""
    if not curve:
        return {}
    warm = curve[min(warm_index, len(curve) - 1)]
    end = curve[-1]
    after = curve[min(warm_index, len(curve) - 1):]
    change = (100.0 * (end["pss_bytes"] - warm["pss_bytes"]) / warm["pss_bytes"]
              if warm.get("pss_bytes") else None)
    return {"pss_warm": warm["pss_bytes"], "pss_end": end["pss_bytes"],
            "pss_change_pct": change, "fds_warm": warm["fds"], "fds_end": end["fds"],
            "fds_max": max(p["fds"] for p in after),
            "processes_warm": warm["processes"], "processes_end": end["processes"],
            "threads_warm": warm["threads"], "threads_end": end["threads"]}


def soak_sample(server: Any, plan: Plan, tick: Tick) -> dict[str, Any]:
    """About plan.soak_requests requests in slices over SOAK_VARIANTS, two passes over them at
    least (the warm-up and one more), bounded by plan.soak_max_s; the tree's PSS and
    descriptors after each slice."""
    base = f"http://127.0.0.1:{server.port}"
    curve: list[dict[str, Any]] = []
    total = failed = timeouts = 0
    start = time.monotonic()
    i = 0
    passes = 2 * len(SOAK_VARIANTS)
    while ((total < plan.soak_requests or i < passes)
           and time.monotonic() - start < plan.soak_max_s):
        kind, path, keep_alive = SOAK_VARIANTS[i % len(SOAK_VARIANTS)]
        result = wrk.run_wrk(base + path, threads=1, connections=plan.connections,
                             duration_s=plan.soak_slice_s, keep_alive=keep_alive).to_dict()
        total += result["requests"]
        failed += failed_requests(result)
        timeouts += result["errors_timeout"]
        time.sleep(plan.soak_settle_s)  # let the closed connections' descriptors go
        curve.append({"requests": total,
                      "variant": f"{kind} {'keep-alive' if keep_alive else 'close'}",
                      **procs.tree_usage(server.pid).to_dict(),
                      "fds": procs.tree_fds(server.pid)})
        i += 1
        tick(f"soak: {server.target.name} {total:,}/{plan.soak_requests:,} requests", 0)
    warm_index = len(SOAK_VARIANTS) - 1
    return {"requests": total, "failed": failed, "timeouts": timeouts, "curve": curve,
            "warm_index": warm_index, "elapsed_s": time.monotonic() - start,
            **soak_summary(curve, warm_index), "loadavg_1m": os.getloadavg()[0]}
