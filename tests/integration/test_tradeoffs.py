"""The trade-offs between prefork, worker and event, shown on the real server with small pools.

* N idle keep-alive clients (N = MaxRequestWorkers) starve a new client under prefork/worker
  until KeepAliveTimeout closes them; under event the new client is served at once.
* event holds 1,000 idle keep-alive connections with a bounded number of threads.
* A crashing process loses one request under prefork, every in-flight request of the process
  under worker/event; the master replaces it and the listeners keep accepting.
* Process/thread counts grow with slow clients and shrink back within the spare bounds.

No timed assertions: orderings and counts only, every wait polls with a deadline.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import threading
from pathlib import Path

import pytest

from tests.integration.wsgi_support import REPO
from tests.support.confbuilder import ConfBuilder
from tests.support.harness import wait_for
from tests.support.rawclient import RawConn, get, request_once

POOLS = {   # a pool of 4 request workers for each MPM
    "prefork": {"StartServers": 4, "MinSpareServers": 1, "MaxSpareServers": 4,
                "MaxRequestWorkers": 4, "ServerLimit": 4},
    "worker": {"StartServers": 1, "ServerLimit": 1, "ThreadLimit": 4, "ThreadsPerChild": 4,
               "MaxRequestWorkers": 4, "MinSpareThreads": 1, "MaxSpareThreads": 5},
}
POOLS["event"] = POOLS["worker"]
THREADED = ("worker", "event")


def make_conf(tmp_path: Path, mpm: str, **extra: object) -> ConfBuilder:
    conf = ConfBuilder(tmp_path, mpm=mpm)
    conf.htdocs.mkdir(parents=True, exist_ok=True)
    (conf.htdocs / "index.html").write_bytes(b"<h1>hello</h1>\n")
    for name, value in {**POOLS[mpm], **extra}.items():
        conf.set(name, value)
    return conf


def threads_of(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def status_auto(port: int) -> dict[str, str]:
    resp = request_once(port, get("/server-status?auto"))
    assert resp.status == 200
    return dict(line.split(": ", 1) for line in resp.body.decode().splitlines() if ": " in line)


def open_idle(port: int, n: int) -> list[RawConn]:
    """``n`` connections that made one request each and now wait in keep-alive."""
    conns = []
    for _ in range(n):
        c = RawConn(port, timeout=20)
        c.send(get("/index.html"))
        assert c.read_response().status == 200
        conns.append(c)
    return conns


# --- 1. idle keep-alive clients vs a new client ---------------------------------------------------

@pytest.mark.parametrize("mpm", ["prefork", "worker"])
def test_idle_keepalive_clients_starve_a_new_client(tmp_path, make_server, mpm):
    server = make_server(make_conf(tmp_path, mpm, KeepAliveTimeout=3))
    wait_for(lambda: len(server.children()) == POOLS[mpm]["StartServers"], message="the pool")
    idle = open_idle(server.port, 4)
    try:
        with RawConn(server.port, timeout=30) as newcomer:
            newcomer.send(get("/index.html"))
            assert newcomer.read_response().status == 200, server.diagnostics()
            # It was served only once the keep-alive timeout had freed the workers:
            assert all(c.is_closed(timeout=0.5) for c in idle), \
                "the new client was served while every worker held an idle connection"
    finally:
        for c in idle:
            c.close()


def test_event_serves_a_new_client_while_idle_clients_are_parked(tmp_path, make_server):
    server = make_server(make_conf(tmp_path, "event", KeepAliveTimeout=30))
    idle = open_idle(server.port, 4)
    try:
        with RawConn(server.port, timeout=30) as newcomer:
            newcomer.send(get("/index.html"))
            assert newcomer.read_response().status == 200, server.diagnostics()
        for c in idle:                  # every parked connection is still usable
            c.send(get("/index.html"))
            assert c.read_response().status == 200
    finally:
        for c in idle:
            c.close()


def test_event_evicts_the_oldest_idle_connection_when_full(tmp_path, make_server):
    """One child, limit 4 + 0.25 x 4 = 5 connections: a 6th client closes the oldest idle one."""
    server = make_server(make_conf(tmp_path, "event", KeepAliveTimeout=30,
                                   AsyncRequestWorkerFactor=0.25))
    idle = open_idle(server.port, 5)
    try:
        with RawConn(server.port, timeout=30) as newcomer:
            newcomer.send(get("/index.html"))
            assert newcomer.read_response().status == 200, server.diagnostics()
        assert idle[0].is_closed(timeout=10), "the oldest idle connection was not reused"
        idle[-1].send(get("/index.html"))
        assert idle[-1].read_response().status == 200
    finally:
        for c in idle:
            c.close()


# --- 2. 1,000 idle connections under event -----------------------------------------------------------

@pytest.fixture
def many_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if want < 2200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))   # the server inherits it
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_event_holds_1000_idle_connections_with_bounded_threads(tmp_path, make_server, many_fds):
    conf = make_conf(tmp_path, "event", StartServers=2, ServerLimit=2, ThreadsPerChild=4,
                     ThreadLimit=4, MaxRequestWorkers=8, MinSpareThreads=1, MaxSpareThreads=8,
                     KeepAliveTimeout=120, AsyncRequestWorkerFactor=200)
    conf.add("<Location /server-status>\n    SetHandler server-status\n</Location>")
    server = make_server(conf)
    wait_for(lambda: len(server.children()) == 2, message="2 children")
    idle: list[socket.socket] = []
    try:
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=20)
            s.sendall(get("/index.html"))
            idle.append(s)
        for s in idle:                          # every one answered, then parked
            data = b""
            while b"hello" not in data:
                chunk = s.recv(4096)
                assert chunk, "an idle connection was closed"
                data += chunk
        wait_for(lambda: int(status_auto(server.port).get("ConnsAsyncKeepAlive", 0)) >= 1000,
                 timeout=20, message="1000 connections in ConnsAsyncKeepAlive")
        assert request_once(server.port, get("/index.html")).status == 200
        kids = server.children()
        assert len(kids) == 2
        # each child: its listener thread + ThreadsPerChild workers, whatever the connections
        assert all(threads_of(pid) <= 1 + 4 for pid in kids), [threads_of(p) for p in kids]
        for s in idle[:5]:
            s.sendall(get("/index.html"))
            assert b"200 OK" in s.recv(4096)
    finally:
        for s in idle:
            s.close()


# --- 3. crash blast radius -------------------------------------------------------------------------

def wsgi(conf: ConfBuilder) -> ConfBuilder:
    conf.add(f'WSGIPythonPath "{REPO}"')
    conf.add("WSGIApp /sleepy tests.apps.wsgi_apps:sleepy")
    conf.add("WSGIApp /crash tests.apps.wsgi_apps:crasher")
    conf.add("WSGIApp /sleepy-marked tests.apps.wsgi_apps:sleepy_marked")
    return conf


def slow_requests(port: int, n: int, secs: float,
                  marker_dir: Path | None = None) -> tuple[list[threading.Thread], list[object]]:
    """n requests to a sleeping app; with ``marker_dir`` each serving process leaves its pid there."""
    results: list[object] = [None] * n
    path = f"/sleepy-marked?s={secs}&d={marker_dir}" if marker_dir else f"/sleepy?s={secs}"

    def one(i: int) -> None:
        try:
            results[i] = request_once(port, get(path)).status
        except (OSError, ConnectionError) as exc:
            results[i] = exc
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads, results


def busy_workers(port: int) -> int:
    return int(status_auto(port).get("BusyWorkers", 0))


@pytest.mark.parametrize("mpm", ["prefork", "worker", "event"])
@pytest.mark.parametrize("how", ["os._exit", "SIGKILL"])
def test_crash_blast_radius(tmp_path, make_server, mpm, how):
    spare = {"MinSpareServers": 4, "MaxSpareServers": 5} if mpm == "prefork" else {}
    conf = wsgi(make_conf(tmp_path, mpm, Timeout=30, **spare))
    conf.add("<Location /server-status>\n    SetHandler server-status\n</Location>")
    server = make_server(conf)
    start = len(server.children())
    markers = tmp_path / "serving"
    markers.mkdir()
    threads, results = slow_requests(server.port, 3, 4.0, markers)
    wait_for(lambda: busy_workers(server.port) >= 4, timeout=15, message="3 slow requests running")
    wait_for(lambda: len(list(markers.iterdir())) >= 3, timeout=15, message="3 requests in the app")
    if how == "SIGKILL":
        victim = int(sorted(markers.iterdir())[0].name.split("-")[0])   # a process in the app
        os.kill(victim, signal.SIGKILL)
    else:
        with pytest.raises((ConnectionError, OSError)):
            request_once(server.port, get("/crash"))
    for t in threads:
        t.join(30)
    lost = sum(1 for r in results if r != 200)
    if mpm == "prefork":       # only the crashing request (os._exit) or the killed child's one
        assert lost == (0 if how == "os._exit" else 1), results
    else:                      # the whole process: every request it was serving
        assert lost == 3, results
    assert request_once(server.port, get("/index.html")).status == 200   # listeners still accept
    wait_for(lambda: len(server.children()) >= start, timeout=15, message="the process replaced")
    assert "MPMD0103" in server.error_log_text()




# --- 4. growth and shrink within the spare bounds ----------------------------------------------------

@pytest.mark.parametrize("mpm", THREADED)
def test_threaded_pool_grows_with_slow_clients_and_shrinks_back(tmp_path, make_server, mpm):
    conf = make_conf(tmp_path, mpm, StartServers=1, ServerLimit=6, ThreadLimit=2,
                     ThreadsPerChild=2, MaxRequestWorkers=12, MinSpareThreads=1,
                     MaxSpareThreads=3, Timeout=60)
    conf.add("<Location /server-status>\n    SetHandler server-status\n</Location>")
    server = make_server(conf)
    wait_for(lambda: len(server.children()) == 1, message="1 child")
    held = []

    def settled() -> bool:         # every slow client holds a thread (+1: this status request)
        return int(status_auto(server.port)["BusyWorkers"]) == len(held) + 1
    try:
        for _ in range(6):     # a head, then a body that never comes: a worker waits on it
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
            held.append(s)
            wait_for(settled, timeout=20, message="a free worker thread for the next slow client")
        wait_for(lambda: len(server.children()) >= 4, timeout=20, message="growth to 4 children")
    finally:
        for s in held:
            s.close()
    # 2 threads per child, at most 3 idle threads: back to one child
    wait_for(lambda: len(server.children()) == 1, timeout=30, message="shrink to 1 child")
    assert request_once(server.port, get("/index.html")).status == 200
