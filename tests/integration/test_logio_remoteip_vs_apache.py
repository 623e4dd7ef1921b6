"""The access log's client and byte fields, checked against apache2 itself (mod_remoteip,
mod_logio): the same config and raw requests go to a standalone apache2 and to mpmd on every
MPM.  The client fields (%a %{c}a %h %{c}h, after RemoteIPHeader), the cookie (%{name}C) and
the status must be Apache's; %I, %O and %S must be what each server really received and sent
(the raw bytes of each exchange, counted by the client: the heads differ a little, Server and
the error pages above all); %L is an 11-character id, the same one the request's error-log line
carries where both have one."""

from __future__ import annotations

import re
import socket
import textwrap
from pathlib import Path

import pytest

from tests.support.apache import config, free_port, needs_apache, running
from tests.support.harness import wait_for

pytestmark = needs_apache("mod_remoteip.so", "mod_authz_host.so")

FORMAT = '"%a %{c}a %h %{c}h %>s %I %O %S %L %{foo}C %{Bar}C"'
EXTRA = '''
RemoteIPHeader X-Forwarded-For
RemoteIPTrustedProxy 127.0.0.1
LogFormat {fmt} io
CustomLog "{log}" io
<Location /private>
    Require ip 203.0.113.0/24
</Location>
'''
COOKIE = "Cookie: foo=1; bar=x y ; baz=3\r\n"
REQUESTS = [
    # (request bytes, expected %a %{c}a %h %{c}h %>s, %{foo}C %{Bar}C)
    (f"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 198.51.100.7, 203.0.113.9\r\n"
     f"{COOKIE}Connection: close\r\n\r\n",
     "203.0.113.9 127.0.0.1 203.0.113.9 127.0.0.1 200", "1 x y"),
    ("GET /private/x.txt HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 203.0.113.9\r\n"
     "Connection: close\r\n\r\n", "203.0.113.9 127.0.0.1 203.0.113.9 127.0.0.1 200", "- -"),
    ("GET /private/x.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
     "127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 403", "- -"),
    ("GET /private/x.txt HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 10.0.0.1\r\n"
     "Connection: close\r\n\r\n", "127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 403", "- -"),
    ("GET /missing HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 198.51.100.7\r\n"
     "Connection: close\r\n\r\n", "198.51.100.7 127.0.0.1 198.51.100.7 127.0.0.1 404", "- -"),
    ("HEAD /a.txt HTTP/1.0\r\nCookie: Foo=up\r\n\r\n",
     "127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 200", "up -"),
]
LOG_ID = re.compile(r"[A-Za-z0-9+/]{11}")


def _site(htdocs: Path) -> Path:
    (htdocs / "private").mkdir(parents=True)
    (htdocs / "a.txt").write_text("hello world!\n")
    (htdocs / "private" / "x.txt").write_text("inside\n")
    return htdocs


def _exchange(port: int, data: str) -> tuple[int, int]:
    """(bytes sent, bytes received) of one request on its own connection, read to the close."""
    raw = data.encode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    return len(raw), len(got)


def _run(port: int, log: Path) -> list[tuple[list[str], tuple[int, int]]]:
    sizes = [_exchange(port, data) for data, _, _ in REQUESTS]
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= len(REQUESTS),
             timeout=10, message="every access-log line")
    lines = [line.split(" ") for line in log.read_text().splitlines()]
    return list(zip(lines, sizes))


def _check(results: list[tuple[list[str], tuple[int, int]]], who: str) -> list[str]:
    """Every line's fields against what was sent; the log ids."""
    ids = []
    for (fields, (sent, received)), (_, clients, cookies) in zip(results, REQUESTS):
        assert " ".join(fields[:5]) == clients, (who, fields)
        assert " ".join(fields[9:]) == cookies, (who, fields)
        i, o, s = (int(v) for v in fields[5:8])
        assert (i, o, s) == (sent, received, sent + received), (who, fields, sent, received)
        ids.append(fields[8])
    return ids


def test_client_and_byte_fields_as_apache(conf, make_server, tmp_path):
    port, root = free_port(), tmp_path / "apache"
    apache_log = root / "access.log"
    (root / "httpd.conf").write_text(config(
        root, port, _site(root / "htdocs"), modules=("remoteip", "authz_host"),
        extra=EXTRA.format(fmt=FORMAT, log=apache_log) + "LogLevel debug\n"
                                                        'ErrorLogFormat "[%l] [%L] %M"\n'))
    with running(root / "httpd.conf", [("127.0.0.1", port)]):
        apache_ids = _check(_run(port, apache_log), "apache2")
    log = tmp_path / "mpmd_access.log"
    _site(conf.htdocs)
    conf.add(EXTRA.format(fmt=FORMAT, log=log))
    server = make_server(conf)
    ids = _check(_run(server.port, log), "mpmd")
    assert all(LOG_ID.fullmatch(i) for i in ids) and len(set(ids)) == len(ids), ids
    # apache2 makes an id when a line about the request reaches its error log (LogLevel debug
    # logs one for each authorization here): the same shape
    assert all(LOG_ID.fullmatch(i) or i == "-" for i in apache_ids), apache_ids
    error_log = (root / "error.log").read_text()
    assert any(f"[{i}]" in error_log for i in apache_ids if i != "-")


def test_the_log_id_is_apaches_shape_and_unique(conf, make_server, tmp_path):
    log = tmp_path / "ids.log"
    server = make_server(conf.add(f'CustomLog "{log}" "%L %P"'))
    for _ in range(20):
        _exchange(server.port, "GET /index.html HTTP/1.0\r\n\r\n")
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == 20, timeout=10,
             message="20 lines")
    ids = [line.split(" ")[0] for line in log.read_text().splitlines()]
    assert len(set(ids)) == 20 and all(LOG_ID.fullmatch(i) for i in ids), ids


@pytest.mark.parametrize("mpm", ["event"])
def test_a_refused_request_counts_its_answer(conf, make_server, tmp_path, mpm):
    log = tmp_path / "refused.log"
    server = make_server(conf.add(f'CustomLog "{log}" "%>s %O %b"'))
    sent, received = _exchange(server.port, "BLAH\r\n\r\n")
    wait_for(lambda: log.exists() and log.read_text().strip(), timeout=10, message="a line")
    status, out, body = log.read_text().split()
    assert status == "400" and int(out) == received and int(body) < received, (out, received)


def test_the_access_logs_id_is_the_one_the_error_log_gave_the_request(conf, make_server,
                                                                        tmp_path):
    log = tmp_path / "ids.log"
    apps = Path(__file__).resolve().parents[1] / "apps"
    server = make_server(conf.add(textwrap.dedent(f'''
        ErrorLogFormat "[%L] %M"
        CustomLog "{log}" "%L %>s %U"
        WSGIPythonPath "{apps}"
        WSGIApp /boom client_apps:boom
    ''')))
    for path in ("/boom", "/index.html"):
        _exchange(server.port, f"GET {path} HTTP/1.0\r\n\r\n")
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == 2, timeout=10,
             message="two lines")
    (boom_id, status, _), (other_id, _, _) = (line.split() for line in log.read_text().splitlines())
    assert status == "500" and LOG_ID.fullmatch(boom_id) and LOG_ID.fullmatch(other_id)
    errors = conf.error_log.read_text()
    assert f"[{boom_id}]" in errors and "boom" in errors, errors
    assert f"[{other_id}]" not in errors


def test_streamed_answers_and_request_bodies_are_counted_as_sent(conf, make_server, tmp_path):
    """%O of a chunked answer counts its chunk lines, %I a request body: the raw bytes."""
    log = tmp_path / "io.log"
    apps = Path(__file__).resolve().parents[1] / "apps"
    server = make_server(conf.add(textwrap.dedent(f'''
        CustomLog "{log}" "%I %O %S %>s %U"
        WSGIPythonPath "{apps}"
        WSGIApp /stream client_apps:stream
        ASGIApp /astream client_apps:astream
    ''')))
    exchanges = []
    for path in ("/stream", "/astream"):
        for body in ("", "hello"):
            head = f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n"
            exchanges.append(_exchange(server.port, head + "Connection: close\r\n\r\n" + body))
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == 4, timeout=10,
             message="four lines")
    for line, (sent, received) in zip(log.read_text().splitlines(), exchanges):
        i, o, s, status, _ = line.split()
        assert status == "200" and received > 70305, line
        assert (int(i), int(o), int(s)) == (sent, received, sent + received), (line, sent, received)


WALK_EXTRA = '''
RemoteIPHeader X-Forwarded-For
RemoteIPInternalProxy 127.0.0.1 10.0.0.0/8
RemoteIPTrustedProxy 198.51.100.0/24
RemoteIPProxiesHeader X-Forwarded-By
LogFormat "%a|%{X-Forwarded-For}i|%{X-Forwarded-By}i" walk
CustomLog "{log}" walk
'''
WALKS = ["203.0.113.4, 10.1.2.3", "192.0.2.1, 198.51.100.9, 10.1.2.3", "10.9.9.9, 198.51.100.9",
         "192.0.2.1, 10.1.2.3, 198.51.100.9, 10.1.2.4", "2001:db8::1, 198.51.100.9",
         "junk, 10.1.2.3", "192.0.2.7,198.51.100.8 ,  10.1.2.3", "fd00::5, 10.1.2.3"]


def _walks(port: int, log: Path) -> list[str]:
    for value in WALKS:
        _exchange(port, f"GET /a.txt HTTP/1.0\r\nX-Forwarded-For: {value}\r\n\r\n")
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == len(WALKS),
             timeout=10, message="every line")
    return log.read_text().splitlines()


def test_internal_and_trusted_proxies_walk_as_apache(conf, make_server, tmp_path):
    port, root = free_port(), tmp_path / "apache"
    (root / "htdocs").mkdir(parents=True)
    (root / "htdocs" / "a.txt").write_text("a\n")
    (root / "httpd.conf").write_text(config(root, port, root / "htdocs", modules=("remoteip",),
                                            extra=WALK_EXTRA.replace("{log}", f"{root}/w.log")))
    with running(root / "httpd.conf", [("127.0.0.1", port)]):
        theirs = _walks(port, root / "w.log")
    (conf.htdocs / "a.txt").write_text("a\n")
    server = make_server(conf.add(WALK_EXTRA.replace("{log}", f"{tmp_path}/w.log")))
    assert _walks(server.port, tmp_path / "w.log") == theirs


def test_a_100_continue_is_counted_as_sent(conf, make_server, tmp_path):
    log = tmp_path / "io.log"
    apps = Path(__file__).resolve().parents[1] / "apps"
    server = make_server(conf.add(textwrap.dedent(f'''
        CustomLog "{log}" "%I %O %>s"
        WSGIPythonPath "{apps}"
        WSGIApp /stream client_apps:stream
    ''')))
    head = (b"POST /stream HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        got = sock.recv(65536)
        assert got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), got
        sock.sendall(b"hello")
        while chunk := sock.recv(65536):
            got += chunk
    wait_for(lambda: log.exists() and log.read_text().strip(), timeout=10, message="a line")
    i, o, status = log.read_text().split()
    assert (int(i), int(o), status) == (len(head) + 5, len(got), "200")
