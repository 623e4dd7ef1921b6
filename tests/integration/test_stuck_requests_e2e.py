"""StuckRequestTimeout end to end, every MPM: a WSGI request that sleeps past the limit is logged
once with its request line and client, and mod_status counts it; off by default; with
``StuckRequestAction replace`` on prefork its child is killed, its client's connection closes,
and the other children serve throughout (mpm/common.py Rule 8, nginx loop.py Rule 5)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import httpx
import pytest

from tests.integration.wsgi_support import REPO
from tests.support.harness import wait_for

LIMIT = "500ms"
STUCK_S = 3                       # the app's sleep: well past LIMIT


def stuck_conf(conf, *lines: str):
    conf.add(f'WSGIPythonPath "{REPO}"')
    conf.add("WSGIApp /sleepy tests.apps.wsgi_apps:sleepy")
    conf.add("WSGIApp /marked tests.apps.wsgi_apps:sleepy_marked")
    conf.add("WSGIApp /hello tests.apps.wsgi_apps:hello")
    conf.add("ASGIApp /asleep tests.apps.asgi_apps:sleepy")
    conf.add("LoadModule status_module modules/mod_status.so")
    conf.add("<Location /server-status>\n    SetHandler server-status\n</Location>")
    for line in lines:
        conf.add(line)
    return conf


def send(port: int, target: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    return sock


def read_all(sock: socket.socket) -> bytes:
    """What the server sends until it closes (b"" when it closed without an answer)."""
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    return out


def stuck_lines(server) -> list[str]:
    return [line for line in server.error_log_text().splitlines() if "MPMD0110" in line]


def auto(server) -> dict[str, str]:
    text = httpx.get(server.url + "/server-status?auto", timeout=20).text
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def test_a_stuck_request_is_logged_once_with_its_line_and_client(conf, make_server, mpm):
    server = make_server(stuck_conf(conf, f"StuckRequestTimeout {LIMIT}"))
    sock = send(server.port, f"/sleepy?s={STUCK_S}")
    try:
        wait_for(lambda: stuck_lines(server), STUCK_S, message="the stuck request's line")
        if mpm != "nginx":       # its loop publishes at its next sweep
            assert auto(server)["StuckRequests"] == "1", server.diagnostics()
        else:
            wait_for(lambda: auto(server)["StuckRequests"] == "1", STUCK_S,
                     message="the loop's count")
        answer = read_all(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"slept\n")   # log: no harm
    for _ in range(3):
        assert httpx.get(server.url + "/hello", timeout=20).status_code == 200
    [line] = stuck_lines(server)                                # once
    assert ":warn] " in line, line
    assert f'"GET /sleepy?s={STUCK_S} HTTP/1.1" from 127.0.0.1' in line, line
    assert "over StuckRequestTimeout" in line and " has run " in line, line
    wait_for(lambda: auto(server)["StuckRequests"] == "0", 5, message="no stuck request left")


def test_a_stuck_asgi_request_is_logged_too(conf, make_server, mpm):
    """An ASGI app: awaited on the loop (nginx), on a request thread elsewhere."""
    server = make_server(stuck_conf(conf, f"StuckRequestTimeout {LIMIT}"))
    with send(server.port, f"/asleep?s={STUCK_S}") as sock:
        wait_for(lambda: stuck_lines(server), STUCK_S, message="the stuck request's line")
        assert read_all(sock).endswith(b"slept\n")
    [line] = stuck_lines(server)
    assert f'"GET /asleep?s={STUCK_S} HTTP/1.1" from 127.0.0.1' in line, line


def test_off_by_default(conf, make_server, mpm):
    server = make_server(stuck_conf(conf))
    with send(server.port, "/sleepy?s=2") as sock:
        assert read_all(sock).startswith(b"HTTP/1.1 200 ")
    assert not stuck_lines(server), server.error_log_text()
    assert "StuckRequests" not in auto(server)


PREFORK_POOL = {"StartServers": 2, "MinSpareServers": 1, "MaxSpareServers": 3,
                "MaxRequestWorkers": 3, "ServerLimit": 3}


def test_replace_on_prefork_kills_the_stuck_child_and_others_serve(tmp_path, make_server):
    from tests.support.confbuilder import ConfBuilder
    conf = ConfBuilder(tmp_path, mpm="prefork")
    for name, value in PREFORK_POOL.items():
        conf.set(name, value)
    server = make_server(stuck_conf(conf, "StuckRequestTimeout 1", "StuckRequestAction replace"))
    wait_for(lambda: len(server.children()) >= 2, 10, message="two children")
    marks = tmp_path / "marks"
    marks.mkdir()
    sock = send(server.port, f"/marked?s=30&d={marks}")          # sleeps far past the limit
    answer: list[bytes] = []
    reader = threading.Thread(target=lambda: answer.append(read_all(sock)))
    reader.start()
    try:
        [mark] = wait_for(lambda: os.listdir(marks), 10, message="the request to begin")
        stuck_pid = int(mark.split("-")[0])
        assert stuck_pid in server.children()
        while reader.is_alive():                                 # served meanwhile
            assert httpx.get(server.url + "/hello", timeout=20).status_code == 200
            reader.join(0.1)
    finally:
        reader.join(40)
        sock.close()
    assert answer == [b""], answer              # its connection closed, with no answer
    wait_for(lambda: stuck_pid not in server.children(), 5, message="the stuck child gone")
    wait_for(lambda: len(server.children()) >= 2, 10, message="its replacement")
    for _ in range(5):                                           # and afterwards
        assert httpx.get(server.url + "/hello", timeout=20).status_code == 200
    log = server.error_log_text()
    [line] = stuck_lines(server)
    assert f'"GET /marked?s=30&d={marks} HTTP/1.1" from 127.0.0.1' in line, log
    assert f"(pid {stuck_pid}, " in line, log
    assert f"MPMD0111: child pid {stuck_pid} (slot " in log, log


@pytest.mark.parametrize("mpm_name", ["worker", "event", "nginx"])
def test_dash_t_refuses_replace_where_a_process_serves_many_requests(tmp_path, mpm_name):
    path = tmp_path / "httpd.conf"
    path.write_text(f"LoadModule mpm_{mpm_name}_module modules/mod_mpm_{mpm_name}.so\n"
                    "Listen 127.0.0.1:0\nStuckRequestTimeout 30\nStuckRequestAction replace\n")
    run = subprocess.run([sys.executable, "-m", "mpmd", "-t", "-f", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run
    assert f"Syntax error on line 4 of {path}:" in run.stderr, run.stderr
    assert f"StuckRequestAction replace is refused with the {mpm_name} MPM" in run.stderr


def test_dash_t_names_replace_without_a_timeout(tmp_path):
    path = tmp_path / "httpd.conf"
    path.write_text("LoadModule mpm_prefork_module modules/mod_mpm_prefork.so\n"
                    f"Listen 127.0.0.1:0\nDocumentRoot {tmp_path}\nStuckRequestAction replace\n")
    run = subprocess.run([sys.executable, "-m", "mpmd", "-t", "-f", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run
    assert (f"MPMD0509: StuckRequestAction replace has no effect: StuckRequestTimeout is 0 "
            f"(off) (line 4 of {path})") in run.stderr + run.stdout
