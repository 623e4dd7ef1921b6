"""Two leniencies that nginx and Apache httpd share, checked against both, every MPM.

- A request-target with raw bytes above 0x7F (a client that sends a UTF-8 path unescaped) is
  served when a file has that UTF-8 name, and is a 404 when none has; not a 400.
- A field that may not be a trailer (RFC 9110 6.5.1: Content-Length, Transfer-Encoding, Host,
  Connection ...) in a chunked request's trailer section is dropped: the request is answered
  as without it, and the connection carries the next request.

The same bytes go to a standalone nginx, a standalone apache2 and mpmd; the answers' statuses
(and the served file's bytes) must be the same.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.support.apache import config, answers, free_port, needs_apache, running
from tests.support.harness import wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CAFE = "café.html".encode()                           # a UTF-8 file name
BODY = b"<p>caf\xc3\xa9</p>\n"
TARGETS = [b"/" + CAFE, b"/caf%C3%A9.html", "/nowhere-é.html".encode(), "/ünïcödé/ü?q=é".encode()]
TRAILERS = [b"Content-Length: 5", b"Transfer-Encoding: chunked", b"Host: other.example",
            b"Connection: close", b"Content-Type: text/plain", b"Trailer: X-A", b"Expect: 100-continue",
            b"Content-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\nHost: a\r\nHost: b"]

pytestmark = [needs_apache(), pytest.mark.skipif(not Path(NGINX).exists(),
                                                 reason="nginx is not installed")]


def _site(root: Path) -> Path:
    htdocs = root / "htdocs"
    htdocs.mkdir(parents=True, exist_ok=True)
    (htdocs / CAFE.decode()).write_bytes(BODY)
    (htdocs / "index.html").write_bytes(b"<p>hi</p>\n")
    return htdocs


def _exchange(port: int, data: bytes, answers_wanted: int = 1) -> list[tuple[int, bytes]]:
    """Send ``data``; the (status, body) of each of the first ``answers_wanted`` answers
    (Content-Length framed, as all three servers frame static files and error pages)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        buf, out = b"", []
        while len(out) < answers_wanted:
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    return out
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            fields = {k.strip().lower(): v.strip() for k, _, v in
                      (line.partition(b":") for line in head.split(b"\r\n")[1:])}
            length = int(fields.get(b"content-length", b"0"))
            while len(buf) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
            out.append((int(head.split(b" ", 2)[1]), buf[:length]))
            buf = buf[length:]
    return out


@pytest.fixture(scope="module")
def apache(tmp_path_factory):
    root = tmp_path_factory.mktemp("apache")
    htdocs = _site(root)
    port = free_port()
    conf = root / "httpd.conf"
    conf.write_text(config(root, port, htdocs))
    with running(conf, [("127.0.0.1", port)]):
        yield port


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    root = tmp_path_factory.mktemp("nginx")
    htdocs = _site(root)
    port = free_port()
    conf = root / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""     # the test's directories are 0700
    conf.write_text(textwrap.dedent(f'''
        {user}
        worker_processes 1;
        pid {root}/nginx.pid;
        error_log {root}/error.log warn;
        events {{ worker_connections 64; }}
        http {{
            access_log off;
            client_body_temp_path {root}/body;
            proxy_temp_path {root}/proxy;
            fastcgi_temp_path {root}/fastcgi;
            uwsgi_temp_path {root}/uwsgi;
            scgi_temp_path {root}/scgi;
            server {{
                listen 127.0.0.1:{port};
                root {htdocs};
            }}
        }}
    '''))
    proc = subprocess.Popen([NGINX, "-p", str(root), "-c", str(conf), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: answers([("127.0.0.1", port)]), timeout=15, message="nginx to listen")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def mpmd(conf, make_server, tmp_path):
    conf.set("DocumentRoot", f'"{_site(tmp_path / "mpmd")}"')
    return make_server(conf).port


def _get(target: bytes) -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"


def _chunked_with(trailer: bytes) -> bytes:
    """A chunked GET of a file with ``trailer`` in its trailer section, then a plain GET on the
    same connection (it must be answered: the trailer neither framed nor closed anything)."""
    return (b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\n" + trailer + b"\r\n\r\n" + _get(b"/" + CAFE))


def test_raw_utf8_targets_are_served_or_not_found_as_nginx_and_apache(apache, nginx, mpmd):
    for target in TARGETS:
        theirs = [_exchange(port, _get(target)) for port in (nginx, apache)]
        ours = _exchange(mpmd, _get(target))
        assert [s for s, _ in ours] == [s for s, _ in theirs[0]] == [s for s, _ in theirs[1]], \
            (target, ours, theirs)
    assert _exchange(mpmd, _get(b"/" + CAFE)) == [(200, BODY)]
    assert _exchange(mpmd, _get(TARGETS[2]))[0][0] == 404


def test_a_forbidden_trailer_field_is_dropped_as_nginx_and_apache_do(apache, nginx, mpmd):
    for trailer in TRAILERS:
        request = _chunked_with(trailer)
        theirs = [[s for s, _ in _exchange(port, request, 2)] for port in (nginx, apache)]
        ours = _exchange(mpmd, request, 2)
        assert [s for s, _ in ours] == [200, 200], (trailer, ours, theirs)
        assert ours[1] == (200, BODY)
        assert theirs[0] == theirs[1] == [200, 200], (trailer, theirs)
