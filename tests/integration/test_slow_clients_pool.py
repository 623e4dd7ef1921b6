"""Slow clients on the blocking MPMs: each holds a process (prefork) or a thread (worker) until
RequestReadTimeout cuts it, so the pool recovers within a bound the config sets.

slowhttptest (bounded: 12 connections, 15 s, loopback) opens three times more slowloris
connections than the pool has workers.  Each worker spends at most the header timeout on one,
so the last queued slow connection is cut after ceil(12 / 4) rounds of it, and a probe client
queued behind them is answered by then.  Every cut connection leaves a 408 line in the access
log, as Apache writes one.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time

import pytest

from tests.support.harness import wait_for
from tests.support.rawclient import RawConn, get

POOL = 4
SLOW = 12
HEADER_S = 2
POOLS = {
    "prefork": {"StartServers": POOL, "MinSpareServers": 1, "MaxSpareServers": POOL,
                "MaxRequestWorkers": POOL},
    "worker": {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": POOL,
               "ThreadLimit": POOL, "MinSpareThreads": 1, "MaxSpareThreads": POOL,
               "MaxRequestWorkers": POOL},
}


def _probe(port: int) -> tuple[int, float]:
    start = time.monotonic()
    with RawConn(port, timeout=30) as c:
        c.send(get("/index.html", extra="Connection: close\r\n"))
        return c.read_response().status, time.monotonic() - start


def _cut(access_log) -> int:
    """The access log's 408 lines: the slow connections the server cut."""
    return sum(line.endswith(" 408") for line in access_log.read_text().splitlines())


@pytest.mark.skipif(shutil.which("slowhttptest") is None, reason="slowhttptest is not installed")
def test_the_pool_recovers_from_slowloris_within_the_header_timeout(conf, make_server):
    if conf.mpm not in POOLS:
        pytest.skip("event and nginx read heads off the workers (test_reqtimeout_e2e)")
    for name, value in POOLS[conf.mpm].items():
        conf.set(name, value)
    access = conf.root / "access_log"
    conf.set("Timeout", 30).set("RequestReadTimeout", f"header={HEADER_S} body={HEADER_S}")
    conf.add(f'CustomLog "{access}" "%h \\"%r\\" %>s"')
    server = make_server(conf)
    attack = subprocess.Popen(
        ["slowhttptest", "-H", "-c", str(SLOW), "-r", str(SLOW), "-i", "10", "-l", "15",
         "-u", f"http://127.0.0.1:{server.port}/index.html", "-x", "24", "-p", "3"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)                                  # every slow connection is queued
        status, waited = _probe(server.port)             # behind all of them
        rounds = math.ceil((SLOW + 1) / POOL)
        assert status == 200
        assert waited <= rounds * HEADER_S + 2, (waited, server.diagnostics())
        # each slow connection was cut at the timeout and logged as Apache logs it
        wait_for(lambda: _cut(access) >= SLOW, timeout=rounds * HEADER_S + 5)
        status, waited = _probe(server.port)             # the pool is whole again
        assert status == 200 and waited < 1.0, (waited, server.diagnostics())
    finally:
        attack.terminate()
        attack.wait(10)
    assert _cut(access) == SLOW, access.read_text()
