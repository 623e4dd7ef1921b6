"""A request the core refuses gets an access-log line, as Apache httpd writes one, every MPM.

The same malformed bytes go to a standalone apache2 and to mpmd, each with the access log
``"%r" %>s %b``: the request line Apache logs (%r: what it read of the line, escaped) and the
status must be the same; %b is the length of the error page mpmd sent.
"""

from __future__ import annotations

import socket

import pytest

from tests.support.apache import config, free_port, needs_apache, running
from tests.support.harness import wait_for

LIMIT = 100                                         # LimitRequestLine on both servers
FORMAT = '"%r" %>s %b'
CASES = [
    b"BLAH\r\n\r\n",                                                   # no request line at all
    b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n",           # 414: first LIMIT + 1 bytes
    b"GET /h HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",               # a field without ":"
    b"GET /nohost HTTP/1.1\r\n\r\n",                                   # HTTP/1.1 without Host
    b'\x01BL"A\\H\r\n\r\n',                                            # escaped as mod_log_config
    b"GET /slow HTTP/1.1\r\nHost: x",                                  # 408: a half-sent head
]

pytestmark = needs_apache()


def _send(port: int, data: bytes) -> bytes:
    """``data`` on a new connection; everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def _lines(path, count: int) -> list[str]:
    wait_for(lambda: path.exists() and len(path.read_text().splitlines()) >= count,
             timeout=10, message=f"{count} access-log lines in {path}")
    return path.read_text().splitlines()


@pytest.fixture(scope="module")
def apache(tmp_path_factory):
    root = tmp_path_factory.mktemp("apache")
    (root / "htdocs").mkdir()
    port = free_port()
    conf = root / "httpd.conf"
    log_format = FORMAT.replace('"', chr(92) + '"')
    conf.write_text(config(root, port, root / "htdocs", extra=(
        f'CustomLog "{root}/access.log" "{log_format}"\nTimeout 2\nLimitRequestLine {LIMIT}')))
    with running(conf, [("127.0.0.1", port)]):
        for data in CASES:
            _send(port, data)
        yield _lines(root / "access.log", len(CASES))


def _status_and_length(lines: list[str]) -> list[tuple[str, str]]:
    return [tuple(line.rsplit(" ", 2)[:2]) for line in lines]     # ("%r", %>s)


def test_refused_requests_are_logged_as_apache_logs_them(apache, conf, make_server, tmp_path):
    log = tmp_path / "access.log"
    conf.set("Timeout", 2).set("LimitRequestLine", LIMIT)
    server = make_server(conf.add(f"CustomLog \"{log}\" \"{FORMAT.replace(chr(34), chr(92) + chr(34))}\""))
    answers = [_send(server.port, data) for data in CASES]
    ours = _lines(log, len(CASES))
    assert _status_and_length(ours) == _status_and_length(apache), (ours, apache)
    assert [line.rsplit(" ", 1)[1] for line in ours] == [
        str(len(a) - a.index(b"\r\n\r\n") - 4) for a in answers], ours   # %b: the page sent
    assert ours[0].startswith('"BLAH" 400 ') and ours[-1].startswith('"GET /slow HTTP/1.1" 408 ')
    assert ours[4].startswith(r'"\x01BL\"A\\H" 400 '), ours[4]
    assert len(ours[1].split('"')[1]) == LIMIT + 1, ours[1]


def test_a_refused_head_request_logs_no_bytes(conf, make_server, tmp_path):
    log = tmp_path / "access.log"
    server = make_server(conf.add(f'CustomLog "{log}" "%h \\"%r\\" %>s %b"'))
    answer = _send(server.port, b"HEAD / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.endswith(b"\r\n\r\n")
    assert _lines(log, 1) == ['127.0.0.1 "HEAD / HTTP/1.1" 400 -']
