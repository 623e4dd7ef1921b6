"""RequestReadTimeout (mod_reqtimeout, core/reqtimeout.py) on every MPM, with a real server.

Each stage is checked from the client's side: how long until the 408.  The slow-client test runs
slowhttptest (bounded: 100 connections, 10 s, loopback; slow heads, or slow bodies for the WSGI
echo app) while a probe client measures its answers' latency, on the MPMs that read heads, and
the bodies of handlers that read them, off the worker threads (event, nginx), with fewer
threads than slow connections.
"""

from __future__ import annotations

import resource
import shutil
import socket
import subprocess
import time

import pytest

from mpmd.config.loader import load_config
from mpmd.core.reqtimeout import DEFAULT, Stage
from tests.integration.wsgi_support import APPS, REPO
from tests.support.apache import config, free_port, needs_apache, running
from tests.support.rawclient import RawConn, get

HEAD = b"GET /index.html HTTP/1.1\r\nHost: x\r\n"


def _until_answer(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """Seconds until the first bytes of an answer (or EOF), and those bytes."""
    start = time.monotonic()
    sock.settimeout(limit)
    data = sock.recv(4096)
    return time.monotonic() - start, data


def _server(conf, make_server, line: str):
    conf.set("Timeout", 30).add(line)
    conf.add(f'WSGIScriptAlias /echo "{APPS / "echo_app.py"}"')
    return make_server(conf)


def test_default_and_configured_values(tmp_path):
    assert load_config(text="").request_read_timeout == DEFAULT
    assert DEFAULT.render() == "header=20-40,MinRate=500 body=20,MinRate=500"
    cfg = load_config(text="RequestReadTimeout header=10-30,MinRate=100\n"
                           "RequestReadTimeout body=0\n")
    assert cfg.request_read_timeout.header == Stage(10, 30, 100)
    assert not cfg.request_read_timeout.body.on
    for bad, words in (("handshake=5", "handshake= is not supported"),
                       ("header=10-20", "Must set MinRate"),
                       ("header=20-10,MinRate=5", "larger than initial"),
                       ("bogus=1", "Unknown RequestReadTimeout parameter")):
        path = tmp_path / "bad.conf"
        path.write_text(f"Listen 127.0.0.1:0\nRequestReadTimeout {bad}\n")
        run = subprocess.run(["python3", "-m", "mpmd", "-t", "-f", str(path)], cwd=REPO,
                             env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
                             capture_output=True, text=True, timeout=30)
        assert run.returncode != 0 and f"line 2 of {path}" in run.stderr and words in run.stderr, \
            run.stderr


def test_header_stage_408_after_initial_timeout(conf, make_server):
    server = _server(conf, make_server, "RequestReadTimeout header=1 body=0")
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(HEAD)
        took, data = _until_answer(s, 10)
    assert data.startswith(b"HTTP/1.1 408 "), server.diagnostics()
    assert 0.8 <= took <= 2.5, (took, server.diagnostics())   # not Timeout (30 s)


def test_minrate_extends_a_steady_client_up_to_the_max(conf, make_server):
    server = _server(conf, make_server, "RequestReadTimeout header=1-3,MinRate=40")
    # 40 bytes every 0.4 s: each read adds 1 s, so the head outlives its initial 1 s ...
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(HEAD)
        for _ in range(4):
            time.sleep(0.4)
            s.sendall(b"X-Pad: " + b"a" * 31 + b"\r\n")
        s.sendall(b"\r\n")
        _, data = _until_answer(s, 10)
    assert data.startswith(b"HTTP/1.1 200 "), server.diagnostics()
    # ... but not past the maximum, however steady.
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        start = time.monotonic()
        s.sendall(HEAD)
        s.settimeout(0.05)
        data = b""
        while not data and time.monotonic() - start < 10:
            try:
                s.sendall(b"X-Pad: " + b"a" * 31 + b"\r\n")
                data = s.recv(4096)
            except socket.timeout:
                time.sleep(0.35)
            except OSError:
                break
        took = time.monotonic() - start
    assert data.startswith(b"HTTP/1.1 408 "), server.diagnostics()
    assert 2.5 <= took <= 4.8, (took, server.diagnostics())


def test_body_stage_408(conf, make_server):
    server = _server(conf, make_server, "RequestReadTimeout header=5 body=1")
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
        took, data = _until_answer(s, 10)
    assert data.startswith(b"HTTP/1.1 408 "), server.diagnostics()
    assert 0.8 <= took <= 2.5, (took, server.diagnostics())


def _raise_nofile(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


SLOW_MODES = {"slowloris": "-H", "slow body": "-B"}
SLOW = 100                      # slow connections: ten times the pool below
# A pool of 10 threads (event) or 4 (the nginx MPM's blocking handlers): the slow bodies
# outnumber them, so a body read on a thread would leave none for the probes.
SMALL_POOLS = {
    "event": {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 10, "ThreadLimit": 10,
              "MinSpareThreads": 1, "MaxSpareThreads": 10, "MaxRequestWorkers": 10},
    "nginx": {"WorkerProcesses": 1, "WorkerThreads": 4},
}
SMALL_POST = b"POST /echo/body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"


def _probe(port: int, data: bytes, body: bytes) -> bool:
    with RawConn(port, timeout=5) as c:
        c.send(data)
        resp = c.read_response()
        return resp.status == 200 and (not body or resp.body == body)


@pytest.mark.skipif(shutil.which("slowhttptest") is None, reason="slowhttptest is not installed")
@pytest.mark.parametrize("mode", sorted(SLOW_MODES))
def test_slow_clients_leave_a_normal_client_answered(conf, make_server, mode):
    """slowhttptest holds SLOW connections, each sending its head (slowloris) or the body of a
    POST to the WSGI echo app (slow body) a few bytes at a time, while probes for a static file
    and for the app with a whole small body are each answered within 1 s: the listener (event)
    or the loop (nginx MPM) reads the slow heads and bodies, not the pool's threads."""
    if conf.mpm not in ("event", "nginx"):
        pytest.skip("the blocking MPMs hold a worker per slow connection (cut at the timeout)")
    _raise_nofile(4096)
    for name, value in SMALL_POOLS[conf.mpm].items():
        conf.set(name, value)
    server = _server(conf, make_server, "RequestReadTimeout header=20-40,MinRate=500 body=20,MinRate=500")
    # the app's route is known (the route cache) before the slow bodies come (listener.py Rule 7)
    assert _probe(server.port, SMALL_POST, b"hello"), server.diagnostics()
    url = f"http://127.0.0.1:{server.port}" + ("/echo/body" if mode == "slow body" else "/index.html")
    cmd = ["slowhttptest", SLOW_MODES[mode], "-c", str(SLOW), "-r", str(SLOW), "-i", "5",
           "-l", "10", "-u", url, "-x", "24", "-p", "3", "-s", "8192"]
    attack = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probes = [(get("/index.html"), b""), (SMALL_POST, b"hello")]
    worst, answered, total = 0.0, 0, 0
    try:
        time.sleep(1.5)                                    # the slow connections are open
        deadline = time.monotonic() + 7
        while time.monotonic() < deadline:
            data, body = probes[total % 2]
            total += 1
            start = time.monotonic()
            try:
                answered += _probe(server.port, data, body)
            except OSError:
                pass
            worst = max(worst, time.monotonic() - start)
            time.sleep(0.1)
    finally:
        attack.terminate()
        attack.wait(10)
    assert answered == total and worst < 1.0, (answered, total, worst, server.diagnostics())


def _stalled_head_answer(port: int) -> tuple[float, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        return _until_answer(sock, 30)


@needs_apache("mod_reqtimeout.so")
def test_a_read_waits_at_most_timeout_within_a_stage_as_apache(conf, make_server, tmp_path):
    """httpd waits for each read MIN(the stage's time left, Timeout): with the default
    header=20-40 and Timeout 2, a head that stops is answered 408 after 2 s, by both."""
    port, root = free_port(), tmp_path / "apache"
    (root / "htdocs").mkdir(parents=True)
    (root / "httpd.conf").write_text(config(root, port, root / "htdocs", modules=("reqtimeout",),
                                            extra="Timeout 2"))
    with running(root / "httpd.conf", [("127.0.0.1", port)]):
        theirs = _stalled_head_answer(port)
    ours = _stalled_head_answer(make_server(conf.set("Timeout", 2)).port)
    for waited, answer in (theirs, ours):
        assert answer.startswith(b"HTTP/1.1 408") and 1.5 < waited < 5, (theirs, ours)
