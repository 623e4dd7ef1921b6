"""event's memory per idle keep-alive connection: PSS summed over the process tree.

The goal (issue 3) is <= 15 KiB per idle connection at 10,000 connections; this test holds 2,000
(bounded in time and file descriptors) and checks the same per-connection budget.  PSS, not RSS:
RSS counts the pages children share with the master once per process.
"""

from __future__ import annotations

import resource
import socket
from pathlib import Path

import pytest

from tests.support.confbuilder import ConfBuilder
from tests.support.harness import wait_for
from tests.support.rawclient import get, request_once

N = 2000
BUDGET_KIB = 15.0


def pss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    return total


@pytest.fixture
def fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * N + 500
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {want}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))   # the server inherits it
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_idle_connection_costs_less_than_15_kib_pss(tmp_path, make_server, fds):
    conf = ConfBuilder(tmp_path, mpm="event")
    conf.htdocs.mkdir(parents=True, exist_ok=True)
    (conf.htdocs / "1k.bin").write_bytes(b"x" * 1024)
    for name, value in {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 8,
                        "ThreadLimit": 8, "MaxRequestWorkers": 8, "MinSpareThreads": 1,
                        "MaxSpareThreads": 9, "AsyncRequestWorkerFactor": 400,
                        "KeepAliveTimeout": 300, "LogLevel": "warn"}.items():
        conf.set(name, value)
    server = make_server(conf)
    wait_for(lambda: len(server.children()) == 1, message="1 child")
    for _ in range(20):
        assert request_once(server.port, get("/1k.bin")).status == 200
    pids = [server.pid, *server.children()]
    before = pss_kib(pids)
    held: list[socket.socket] = []
    try:
        for _ in range(N):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=20)
            s.sendall(get("/1k.bin"))
            data = b""
            while len(data) < 1024 or b"\r\n\r\n" not in data:
                chunk = s.recv(8192)
                assert chunk, "an idle connection was closed"
                data += chunk
            held.append(s)
        assert request_once(server.port, get("/1k.bin")).status == 200
        per_conn = (pss_kib(pids) - before) / N
        assert per_conn <= BUDGET_KIB, f"{per_conn:.2f} KiB PSS per idle connection"
    finally:
        for s in held:
            s.close()
