"""SetHandler server-health on every MPM: 200 while serving, through a graceful restart; 503
as soon as a stop begins (graceful-stop, TERM), in every child, while GracefulStopDelay keeps
the server serving; then the server stops."""

from __future__ import annotations

import signal
import socket
import time

import pytest

from tests.support.harness import wait_for


def _get(port, path="/health", method="GET"):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head, body


def _health_conf(conf, delay):
    if conf.mpm != "nginx":
        conf.set("StartServers", 2)
    conf.set("GracefulStopDelay", delay).set("GracefulShutdownTimeout", 5)
    conf.add('<Location "/health">\n    SetHandler server-health\n</Location>')
    return conf


@pytest.mark.parametrize("mpm", ["prefork", "worker", "event", "nginx"])
@pytest.mark.parametrize("how", [signal.SIGWINCH, signal.SIGTERM], ids=["graceful-stop", "term"])
def test_health_turns_503_when_a_stop_begins(conf, make_server, mpm, how):
    server = make_server(_health_conf(conf, 2))
    port = server.port
    status, head, body = _get(port)
    assert (status, body) == (200, b"OK\n") and b"no-store" in head.lower()
    assert _get(port, method="POST")[0] == 405
    begun = time.monotonic()
    server.signal(how)
    # every child learns it at once (several connections: prefork's several children)
    wait_for(lambda: _get(port)[0] == 503, timeout=1.5, message="503 after the stop began")
    for _ in range(6):
        status, head, body = _get(port)
        assert status == 503 and body == b"Stopping\n" and b"connection: close" in head.lower()
        assert _get(port, "/index.html")[0] == 200      # still serving during the delay
    assert time.monotonic() - begun < 2
    server.proc.wait(15)
    with pytest.raises(OSError):
        _get(port)


@pytest.mark.parametrize("mpm", ["event", "nginx"])
def test_a_graceful_restart_keeps_health_200(conf, make_server, mpm):
    server = make_server(_health_conf(conf, 0))
    server.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        assert _get(server.port)[0] == 200
        time.sleep(0.05)
