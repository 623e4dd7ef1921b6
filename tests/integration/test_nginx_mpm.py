"""The nginx MPM's own guarantees, on the real server (the shared suite covers HTTP behaviour).

Idle connections by the ten thousand on one process, a slow reader of a big file beside quick
clients, the WorkerConnections cap (eviction, then paused accept), ReusePort, respawn after a
crash, graceful restart, and -V.
"""

from __future__ import annotations

import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.support.confbuilder import ConfBuilder
from tests.support.harness import SRC, wait_for

REQ = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n"
BODY = b"<h1>hello</h1>\n"


def nginx_conf(tmp_path, **directives) -> ConfBuilder:
    conf = ConfBuilder(tmp_path, mpm="nginx")
    conf.htdocs.mkdir(parents=True, exist_ok=True)
    (conf.htdocs / "index.html").write_bytes(BODY)
    conf.set("WorkerProcesses", 1).set("EnableSendfile", "On")
    for name, value in directives.items():
        conf.set(name, value)
    return conf


def pss_kib(pids) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += sum(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except OSError:
            pass
    return total


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def read_response(sock: socket.socket, body: bytes = BODY) -> bytes:
    data = b""
    while not data.endswith(body):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def one_worker(srv) -> int:
    return wait_for(lambda: (kids := srv.children()) and len(kids) == 1 and kids[0], 10,
                    message="one worker process")


def test_version_names_the_mpm(tmp_path):
    path = nginx_conf(tmp_path).write()
    out = subprocess.run([sys.executable, "-m", "mpmd", "-f", str(path), "-V"], capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=str(SRC)), timeout=60)
    assert "Server MPM:     nginx" in out.stdout or "Server MPM: nginx" in out.stdout, out.stdout


# -- 10,000 idle keep-alive connections ----------------------------------------------------------

IDLE = 10_000


def _raise_nofile(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need}")
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def _open_idle(port: int, count: int) -> list[socket.socket]:
    """``count`` connections, each served one request and left idle in keep-alive."""
    socks: list[socket.socket] = []
    sel = selectors.DefaultSelector()
    deadline = time.monotonic() + 120
    for start in range(0, count, 500):
        batch = []
        for _ in range(min(500, count - start)):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(REQ)
            s.setblocking(False)
            batch.append(s)
            sel.register(s, selectors.EVENT_READ, b"")
        pending = {s: b"" for s in batch}
        while pending:
            assert time.monotonic() < deadline, "idle connections took too long to set up"
            for key, _ in sel.select(5):
                s = key.fileobj
                pending[s] += s.recv(65536)
                if pending[s].endswith(BODY):
                    del pending[s]
                    sel.unregister(s)
        socks += batch
    sel.close()
    return socks


def test_ten_thousand_idle_keepalive_connections(tmp_path, make_server):
    _raise_nofile(IDLE + 1000)
    conf = nginx_conf(tmp_path, KeepAliveTimeout=300, Timeout=300, MaxKeepAliveRequests=0,
                      ListenBacklog=4096, WorkerConnections=IDLE + 100)
    srv = make_server(conf)
    worker = one_worker(srv)
    socks = _open_idle(srv.port, IDLE)
    try:
        started = time.monotonic()
        r = httpx.get(srv.url + "/index.html", timeout=30)
        answered_s = time.monotonic() - started
        assert r.status_code == 200 and r.content == BODY
        total = pss_kib([srv.pid, worker])
        print(f"\n{IDLE} idle keep-alive connections: second client answered in "
              f"{answered_s * 1000:.0f} ms; PSS master+worker {total / 1024:.1f} MiB")
        assert total < 120 * 1024, f"PSS {total} KiB for {IDLE} idle connections"
        # They are all still open and usable: the oldest one answers again.
        socks[0].setblocking(True)
        socks[0].sendall(REQ)
        assert b"200 OK" in read_response(socks[0])
    finally:
        for s in socks:
            s.close()


# -- a slow reader of a big file ----------------------------------------------------------------

def test_slow_reader_does_not_block_others_and_memory_stays_bounded(tmp_path, make_server):
    conf = nginx_conf(tmp_path)
    with open(conf.htdocs / "big.bin", "wb") as f:
        f.truncate(100 * 1024 * 1024)
    srv = make_server(conf)
    worker = one_worker(srv)
    before = rss_kib(worker)
    slow = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    slow.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
    got, peak = 0, before
    quick = httpx.Client(base_url=srv.url, timeout=30)
    try:
        for _ in range(3):                       # ~3 s at 1 MiB/s, a quick request each 100 ms
            second_end = time.monotonic() + 1.0
            while time.monotonic() < second_end:
                got += len(slow.recv(100 * 1024))
                r = quick.get("/index.html")
                assert r.status_code == 200 and r.content == BODY
                peak = max(peak, rss_kib(worker))
                time.sleep(max(0.0, 0.1 - (time.monotonic() % 0.1)))
        assert got < 100 * 1024 * 1024          # the slow transfer was still going on
        print(f"\nslow reader got {got / 1048576:.1f} MiB; worker RSS {before} -> peak {peak} KiB")
        assert peak - before < 32 * 1024, (before, peak)   # never the file in memory
    finally:
        quick.close()
        slow.close()
    assert httpx.get(srv.url + "/index.html", timeout=30).status_code == 200


# -- WorkerConnections ---------------------------------------------------------------------------

def _keepalive_conn(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(REQ)
    assert b"200 OK" in read_response(s)
    return s


def test_cap_closes_oldest_idle_then_pauses_accept(tmp_path, make_server):
    srv = make_server(nginx_conf(tmp_path, WorkerConnections=3, KeepAliveTimeout=60))
    worker = one_worker(srv)
    baseline = _sockets(worker)
    idle = [_keepalive_conn(srv.port) for _ in range(3)]
    newest = _keepalive_conn(srv.port)          # the cap is reached: the oldest idle one goes
    assert idle[0].recv(10) == b""               # closed by the server
    for s in idle[1:]:
        s.sendall(REQ)
        assert b"200 OK" in read_response(s)     # the younger ones still work
    for s in idle:
        s.close()
    newest.close()

    # No idle connection to give up: three connections in the middle of a request head.
    busy = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(3)]
    for s in busy:
        s.sendall(b"GET /index.html HTTP/1.1\r\n")
    wait_for(lambda: _sockets(worker) == baseline + 3, 10, message="three busy connections")
    waiting = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    waiting.sendall(REQ)
    waiting.settimeout(1.0)
    with pytest.raises(socket.timeout):          # not accepted while at the cap
        waiting.recv(100)
    busy[0].close()                              # one slot frees: accepting resumes
    waiting.settimeout(10)
    assert b"200 OK" in read_response(waiting)
    for s in busy[1:] + [waiting]:
        s.close()


def test_a_reused_keepalive_connection_is_young_again_at_the_cap(tmp_path, make_server):
    """A kept-alive connection that answers a request moves to the young end of the idle
    connections (protocol.py: each knows the dict that holds it), so at the cap the one idle
    longest goes, not the one opened first."""
    srv = make_server(nginx_conf(tmp_path, WorkerConnections=3, KeepAliveTimeout=60))
    idle = [_keepalive_conn(srv.port) for _ in range(3)]
    idle[0].sendall(REQ)                         # the first one is used again: now the youngest
    assert b"200 OK" in read_response(idle[0])
    newest = _keepalive_conn(srv.port)          # at the cap: idle[1] has waited longest
    assert idle[1].recv(10) == b""
    for s in (idle[0], idle[2], newest):
        s.sendall(REQ)
        assert b"200 OK" in read_response(s)
    for s in idle + [newest]:
        s.close()


def _sockets(pid: int) -> int:
    """Open sockets of a worker (its connections plus a constant few)."""
    fds = os.listdir(f"/proc/{pid}/fd")
    return sum(1 for fd in fds if _readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"))


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


# -- processes ----------------------------------------------------------------------------------

def test_reuseport_gives_each_worker_its_own_socket(tmp_path, make_server):
    srv = make_server(nginx_conf(tmp_path, WorkerProcesses=2, ReusePort="On"))
    kids = wait_for(lambda: len(k := srv.children()) == 2 and k, 10, message="two workers")
    with httpx.Client(base_url=srv.url, timeout=20) as c:
        for _ in range(20):
            assert c.get("/index.html").status_code == 200
    for _ in range(20):
        assert httpx.get(srv.url + "/index.html", timeout=20).status_code == 200
    listening = _listeners_on(srv.port)
    assert listening >= 3, listening              # the master's + one per worker
    assert "MPMD0611" not in srv.error_log_text()
    assert all(os.path.exists(f"/proc/{pid}") for pid in kids)


def _listeners_on(port: int) -> int:
    count = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                count += 1
    return count


def test_worker_crash_is_respawned(tmp_path, make_server):
    srv = make_server(nginx_conf(tmp_path, WorkerProcesses=2))
    kids = wait_for(lambda: len(k := srv.children()) == 2 and k, 10, message="two workers")
    os.kill(kids[0], signal.SIGKILL)
    wait_for(lambda: len(k := srv.children()) == 2 and kids[0] not in k, 15,
             message="a replacement worker")
    assert httpx.get(srv.url + "/index.html", timeout=20).status_code == 200


def test_graceful_restart_finishes_in_flight_download(tmp_path, make_server):
    conf = nginx_conf(tmp_path)
    with open(conf.htdocs / "big.bin", "wb") as f:
        f.truncate(8 * 1024 * 1024)
    srv = make_server(conf)
    old = one_worker(srv)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    srv.signal(signal.SIGUSR1)
    srv.wait_ready(20, generation=1)
    wait_for(lambda: any(p != old for p in srv.children()), 15, message="a new-generation worker")
    assert httpx.get(srv.url + "/index.html", timeout=20).status_code == 200
    total = len(first) - first.index(b"\r\n\r\n") - 4
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        total += len(chunk)
    s.close()
    assert total == 8 * 1024 * 1024              # the old worker finished before it left
    wait_for(lambda: old not in srv.children(), 15, message="the old worker to exit")
