"""A child killed, and the time until its replacement serves: for the tests and the benchmark.

Theory: the server runs ONE child (``one_child``), so the only process that can answer after
the kill is the replacement.  The listening sockets belong to the master and stay open, so a
request sent the moment after the kill waits in the kernel's backlog until the replacement
accepts it: the time from ``kill`` to that answer is the time until the replacement serves.
The child is killed only once it has lived ``RESPAWN_AT_ONCE_AFTER_S`` (a younger child's
death is a crash loop's to the master, and waits for maintenance: mpm/common.py Rule 5).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

from mpmd.mpm.common import RESPAWN_AT_ONCE_AFTER_S
from tests.support.confbuilder import ConfBuilder
from tests.support.harness import Server, wait_for
from tests.support.rawclient import RawConn, get

# Each MPM with exactly one child process, whatever the load (no spare to answer instead).
ONE_CHILD: dict[str, dict[str, object]] = {
    "prefork": {"StartServers": 1, "MinSpareServers": 1, "MaxSpareServers": 2,
                "MaxRequestWorkers": 1, "ServerLimit": 1},
    "worker": {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 4, "ThreadLimit": 4,
               "MaxRequestWorkers": 4, "MinSpareThreads": 1, "MaxSpareThreads": 8},
    "event": {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 4, "ThreadLimit": 4,
              "MaxRequestWorkers": 4, "MinSpareThreads": 1, "MaxSpareThreads": 8},
    "nginx": {"WorkerProcesses": 1},
}


def one_child(conf: ConfBuilder) -> ConfBuilder:
    for name, value in ONE_CHILD[conf.mpm].items():
        conf.set(name, value)
    return conf


def process_age_s(pid: int) -> float:
    """Seconds since ``pid`` started (/proc/PID/stat starttime; clock-tick resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    start_ticks = int(stat[stat.rfind(")") + 2:].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Replacement:
    old: int
    new: int
    serving_s: float           # kill -> the first answer (only the replacement can give it)


def answer_status(port: int, timeout: float, path: str = "/index.html") -> int:
    """The status of one GET on a new connection, 0 when it fails."""
    try:
        with RawConn(port, timeout=timeout) as c:
            c.send(get(path, extra="Connection: close\r\n"))
            return c.read_response().status
    except (OSError, ValueError):
        return 0


def kill_and_time(server: Server, timeout: float = 10.0) -> Replacement:
    """SIGKILL the only child once it is old enough, and time its replacement."""
    old = wait_for(lambda: len(k := server.children()) == 1 and k[0], 10,
                   message="exactly one child")
    wait_for(lambda: process_age_s(old) > RESPAWN_AT_ONCE_AFTER_S + 0.05, 5,
             message="the child to outlive the respawn backoff")
    assert answer_status(server.port, 5.0) == 200, server.diagnostics()
    t0 = time.monotonic()
    os.kill(old, signal.SIGKILL)
    status = 0
    while not status:                   # the first answer after the kill: the replacement's
        status = answer_status(server.port, timeout)
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"no answer {timeout}s after the kill\n{server.diagnostics()}")
    serving = time.monotonic() - t0
    new = [pid for pid in server.children() if pid != old]
    assert status == 200 and len(new) == 1, (status, new, server.diagnostics())
    return Replacement(old, new[0], serving)

