"""HAProxy (the Debian package) on loopback in front of three mpmd servers, with health checks
on ``SetHandler server-health`` and ``send-proxy-v2``: the configurations are the ones in
docs/deploy/ (haproxy.cfg, mpmd.conf), with their ports and paths replaced.

Under wrk load, each server in turn is restarted gracefully (SIGUSR1, a new generation), then
one is stopped gracefully (graceful-stop: /health answers 503 during GracefulStopDelay and
HAProxy drains it) and started again: no request is lost (no socket error, no non-2xx), and
the access logs show the client's address as %a (127.0.0.1, carried by the PROXY header),
and HAProxy's (it connects from 127.0.0.2) as the connection's peer, %{c}a."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.deploy import free_ports, haproxy_conf, mpmd_conf
from tests.support.harness import Server, wait_for

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
WRK = shutil.which("wrk")

pytestmark = pytest.mark.skipif(not (Path(HAPROXY).exists() and WRK), reason="needs haproxy and wrk")


def _status(port: int) -> int:
    """The status of a GET through HAProxy (0: no answer yet)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            sock.sendall(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            return int(sock.recv(100).split(b" ", 2)[1])
    except (OSError, IndexError, ValueError):
        return 0


@pytest.mark.parametrize("mpm", ["event", "nginx"])
def test_rolling_restart_behind_haproxy_loses_nothing(tmp_path, mpm):
    front, *ports = free_ports(7)
    backs, probes = ports[:3], ports[3:]
    servers: dict[int, Server] = {}
    proc = None
    try:
        for i, port in enumerate(backs):
            servers[i] = Server(mpmd_conf(tmp_path / f"web{i + 1}", port, probes[i], mpm)).start()
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(haproxy_conf(front, backs))
        hlog = tmp_path / "haproxy.out"
        with open(hlog, "wb") as out:                # its alerts: servers going DOWN and UP
            proc = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for(lambda: _status(front) == 200, timeout=10, message="haproxy up")
        except AssertionError:
            proc.kill()
            proc.wait(5)
            raise AssertionError(hlog.read_text(errors="replace")) from None
        time.sleep(1.2)                              # every server seen up (rise 2)
        wrk = subprocess.Popen([WRK, "-t1", "-c6", "-d11s", "--timeout", "5s",
                                f"http://127.0.0.1:{front}/index.html"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1.0)
        for i, server in servers.items():            # a rolling graceful restart
            generation = int(server.ready.get("generation", 0))
            server.signal(signal.SIGUSR1)
            server.ready = server.wait_ready(15, generation=generation + 1)
            time.sleep(0.8)
        stopped = servers[1]                         # graceful-stop, then start again
        stopped.signal(signal.SIGWINCH)
        assert stopped.proc.wait(15) == 0
        servers[1] = Server(stopped.conf).start()
        out, _ = wrk.communicate(timeout=30)
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(5)
        for server in servers.values():
            if server.proc is not None and server.proc.poll() is None:
                server.stop()
    said = hlog.read_text(errors="replace")
    # the stop was seen by its health check (503), before the listener went; the graceful
    # restarts were never seen as a server down
    downs = [line for line in said.splitlines() if " is DOWN" in line]
    assert len(downs) == 1 and "web2 is DOWN, reason: Layer7 wrong status, code: 503" in downs[0], said
    print(out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    assert total > 200, out
    assert "Socket errors" not in out and "Non-2xx" not in out, out
    logged = 0
    for i in range(3):
        for line in (tmp_path / f"web{i + 1}" / "access_log").read_text().splitlines():
            ua, peer, rest = line.split(" ", 2)
            if "GET /index.html" in rest:
                assert (ua, peer) == ("127.0.0.1", "127.0.0.2"), line
                logged += 1
            else:
                assert "GET /health" in rest and (ua, peer) == ("127.0.0.2", "127.0.0.2"), line
    assert logged >= total + 1, (logged, total)      # + haproxy-up probe
