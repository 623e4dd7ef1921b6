"""RemoteIPProxyProtocol on every MPM: the PROXY header's client is the connection's client
(access log %a/%h, REMOTE_ADDR, ASGI client, Require ip; %{c}a stays the balancer), over plain TCP and before TLS;
a connection without a valid header is closed and logged; RemoteIPProxyProtocolExceptions."""

from __future__ import annotations

import socket
import ssl
import textwrap
import time
from pathlib import Path

import pytest

from mpmd.http.proxy_protocol import v1_header, v2_header
from tests.support.harness import wait_for
from tests.support.tlscerts import make_pki, ssl_lines

APPS = Path(__file__).resolve().parents[1] / "apps"
CLIENT = ("203.0.113.7", 40001)


def _setup(conf, tmp_path, *extra):
    log = tmp_path / "access.log"
    conf.set("LogLevel", "info")
    if conf.mpm != "nginx":
        conf.set("StartServers", 1)
    conf.add(textwrap.dedent(f'''
        RemoteIPProxyProtocol On
        LogFormat "%a %h %{{c}}a %>s %U" pp
        CustomLog "{log}" pp
        WSGIPythonPath "{APPS}"
        WSGIApp /who client_apps:wsgi
        ASGIApp /awho client_apps:asgi
        <Location /only-doc>
            Require ip 203.0.113.0/24
        </Location>
    '''))
    for line in extra:
        conf.add(line)
    (conf.htdocs / "only-doc").write_bytes(b"doc\n")
    return log


def _ask(port, preamble, path, pieces=1, wrap=None):
    """Send ``preamble`` (in ``pieces`` writes), then a GET; the answer's status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        step = max(1, -(-len(preamble) // pieces))
        for i in range(0, len(preamble), step):
            raw.sendall(preamble[i:i + step])
            if pieces > 1:
                time.sleep(0.02)
        sock = wrap(raw) if wrap else raw
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize("mpm", ["prefork", "worker", "event", "nginx"])
def test_the_header_names_the_client_everywhere(conf, make_server, tmp_path, mpm):
    log = _setup(conf, tmp_path)
    server = make_server(conf)
    port = server.port
    dst = ("127.0.0.1", port)
    assert _ask(port, v1_header(CLIENT, dst), "/who") == (200, b"203.0.113.7 40001 - -")
    assert _ask(port, v2_header(CLIENT, dst), "/awho", pieces=7)[1] == b"203.0.113.7 40001 - -"
    assert _ask(port, v2_header(("2001:db8::5", 7), ("::1", port)), "/who")[1] == b"2001:db8::5 7 - -"
    assert _ask(port, v1_header(CLIENT, dst), "/only-doc", pieces=5) == (200, b"doc\n")
    assert _ask(port, v1_header(("198.51.100.1", 9), dst), "/only-doc")[0] == 403
    status, body = _ask(port, v2_header(None, None), "/who")          # LOCAL: the peer
    assert status == 200 and body.startswith(b"127.0.0.1 ")
    wait_for(lambda: len(log.read_text().splitlines()) >= 6 if log.exists() else False,
             timeout=10, message="six log lines")
    lines = log.read_text().splitlines()
    # %{c}a: the connection's peer, the balancer (as httpd)
    assert lines[0] == "203.0.113.7 203.0.113.7 127.0.0.1 200 /who", lines
    assert lines[3] == "203.0.113.7 203.0.113.7 127.0.0.1 200 /only-doc", lines
    assert lines[5].startswith("127.0.0.1 127.0.0.1 127.0.0.1 200"), lines


@pytest.mark.parametrize("mpm", ["prefork", "event", "nginx"])
def test_a_connection_without_a_valid_header_is_closed(conf, make_server, tmp_path, mpm):
    _setup(conf, tmp_path)
    server = make_server(conf)
    for first in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(first)
            try:
                assert sock.recv(100) == b""            # closed, no answer
            except ConnectionResetError:                # closed with the request unread
                pass
    wait_for(lambda: server.error_log_text().count("RemoteIPProxyProtocol:") >= 2, timeout=10,
             message="two error lines")
    # the server still serves
    assert _ask(server.port, v1_header(CLIENT, ("127.0.0.1", server.port)), "/who")[0] == 200


@pytest.mark.parametrize("mpm", ["worker", "nginx"])
def test_exceptions_connect_without_a_header(conf, make_server, tmp_path, mpm):
    _setup(conf, tmp_path, "RemoteIPProxyProtocolExceptions 127.0.0.0/8")
    server = make_server(conf)
    status, body = _ask(server.port, b"", "/who")
    assert status == 200 and body.startswith(b"127.0.0.1 ")


@pytest.mark.parametrize("mpm", ["prefork", "event", "nginx"])
def test_the_header_comes_before_the_tls_handshake(conf, make_server, tmp_path, mpm):
    pki = make_pki(tmp_path / "pki")
    _setup(conf, tmp_path, ssl_lines(pki))
    server = make_server(conf)
    ctx = pki.client_context()
    wrap = lambda raw: ctx.wrap_socket(raw, server_hostname="localhost")  # noqa: E731
    port = server.port
    assert _ask(port, v2_header(CLIENT, ("127.0.0.1", port)), "/who", wrap=wrap) == \
        (200, b"203.0.113.7 40001 - -")
    assert _ask(port, v1_header(CLIENT, ("127.0.0.1", port)), "/awho", pieces=4, wrap=wrap)[0] == 200


def test_exceptions_without_the_protocol_are_refused_at_dash_t(tmp_path):
    import subprocess
    import sys
    conf = tmp_path / "a.conf"
    conf.write_text(f"Listen 127.0.0.1:0\nServerName x\nDocumentRoot {tmp_path}\n"
                    "RemoteIPProxyProtocolExceptions 10.0.0.0/8\n")
    res = subprocess.run([sys.executable, "-m", "mpmd", "-t", "-f", str(conf)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert f"line 4 of {conf}" in res.stderr + res.stdout
    assert "RemoteIPProxyProtocolExceptions has no effect" in res.stderr + res.stdout


@pytest.mark.parametrize("mpm", ["prefork", "event", "nginx"])
def test_a_stalled_header_is_closed_after_timeout(conf, make_server, tmp_path, mpm):
    _setup(conf, tmp_path)
    conf.set("Timeout", 1)
    server = make_server(conf)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"PROXY TCP4 192.0.2.1 ")
        begun = time.monotonic()
        try:
            assert sock.recv(100) == b""
        except ConnectionResetError:
            pass
        assert 0.5 < time.monotonic() - begun < 5
    assert _ask(server.port, v1_header(CLIENT, ("127.0.0.1", server.port)), "/who")[0] == 200
