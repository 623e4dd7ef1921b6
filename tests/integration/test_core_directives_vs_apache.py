"""TraceEnable, ErrorLogFormat and ServerSignature as Apache httpd 2.4 applies them, checked
against apache2 itself (Debian's package, standalone on a loopback port) and mpmd on every MPM.

- TraceEnable On (httpd's default): 200, message/http, the request echoed (same bytes);
  a TRACE with a body: 413 from both.  TraceEnable Off: 405 with the same (empty) Allow field.
- ErrorLogFormat: the server's start line has the same shape (the fields with an empty item
  left out); mpmd's line about a request has the client's field and the optional Referer.
- ServerSignature per vhost (On, Off, EMail): the same <address> line but for the product
  name, with httpd's host and port (the Host field's, else the scheme's default port), on
  error pages and directory listings.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests.support.apache import config, free_port, needs_apache, running
from tests.support.harness import wait_for
from tests.support.rawclient import request_once

pytestmark = needs_apache()

FORMAT = r'"[%{cu}t] [%-m:%l] [pid %P:tid %T] %7F: %E: [client\ %a] %M% ,\ referer\ %{Referer}i"'
SECTIONS = textwrap.dedent(f'''
    ServerTokens Prod
    ServerSignature On
    ServerAdmin admin@example.com
    ErrorLogFormat {FORMAT}
    <Location "/nohandler">
        SetHandler no-such-handler
    </Location>
    <Location "/listing">
        Options +Indexes
    </Location>
    <VirtualHost *>
        ServerName localhost
    </VirtualHost>
    <VirtualHost *>
        ServerName quiet.test
        ServerSignature Off
    </VirtualHost>
    <VirtualHost *>
        ServerName mail.test
        ServerSignature EMail
    </VirtualHost>
''')


def _site(root: Path) -> Path:
    htdocs = root / "htdocs"
    (htdocs / "nohandler").mkdir(parents=True, exist_ok=True)
    (htdocs / "index.html").write_bytes(b"<p>hi</p>\n")
    (htdocs / "nohandler" / "index.html").write_bytes(b"<p>hi</p>\n")
    (htdocs / "listing").mkdir(exist_ok=True)
    (htdocs / "listing" / "a.txt").write_bytes(b"a\n")
    return htdocs


@pytest.fixture(scope="module")
def apache(tmp_path_factory):
    root = tmp_path_factory.mktemp("apache")
    htdocs = _site(root)
    ports = {}
    for name, extra in (("on", SECTIONS), ("off", "TraceEnable Off\n")):
        port = free_port()
        sub = root / name
        sub.mkdir()
        conf = sub / "httpd.conf"
        conf.write_text(config(sub, port, htdocs, modules=("autoindex",), extra=extra + "LogLevel warn\n"))
        ports[name] = (port, sub / "error.log")
    with running(root / "on" / "httpd.conf", [("127.0.0.1", ports["on"][0])]):
        with running(root / "off" / "httpd.conf", [("127.0.0.1", ports["off"][0])]):
            yield ports


@pytest.fixture
def mpmd_on(conf, make_server, tmp_path):
    htdocs = _site(tmp_path / "mpmd")
    conf.set("DocumentRoot", f'"{htdocs}"').set("LogLevel", "warn")
    conf.add(SECTIONS)
    return make_server(conf)


def _trace(port: int, extra: str = "", body: bytes = b"") -> object:
    head = f"TRACE /index.html HTTP/1.1\r\nHost: localhost\r\nX-Probe: one two\r\n{extra}Connection: close\r\n\r\n"
    return request_once(port, head.encode() + body)


def test_trace_enable_on_echoes_the_same_request(apache, mpmd_on):
    theirs, ours = _trace(apache["on"][0]), _trace(mpmd_on.port)
    assert (ours.status, ours.header("Content-Type")) == (theirs.status, theirs.header("Content-Type")) \
        == (200, "message/http")
    assert ours.body == theirs.body
    assert ours.body.startswith(b"TRACE /index.html HTTP/1.1\r\nHost: localhost\r\nX-Probe: one two\r\n")


def test_trace_with_a_body_is_413_in_both(apache, mpmd_on):
    theirs = _trace(apache["on"][0], "Content-Length: 3\r\n", b"abc")
    ours = _trace(mpmd_on.port, "Content-Length: 3\r\n", b"abc")
    assert ours.status == theirs.status == 413


def test_trace_enable_off_is_405_with_the_same_allow(apache, conf, make_server, tmp_path):
    conf.set("DocumentRoot", f'"{_site(tmp_path / "mpmd")}"').add("TraceEnable Off")
    server = make_server(conf)
    theirs, ours = _trace(apache["off"][0]), _trace(server.port)
    assert ours.status == theirs.status == 405
    assert ours.header("Allow") == theirs.header("Allow") == ""
    get = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    assert request_once(server.port, get).status == request_once(apache["off"][0], get).status == 200


STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\] "
STARTED = re.compile(STAMP + r"\[mpm_\w+:notice\] \[pid \d+:tid \d+\] (?:AH00489: Apache/\S+ \(Debian\)|"
                     r"MPMD0002: mpmd \(\w+\)) configured -- resuming normal operations")
ABOUT_A_REQUEST = re.compile(STAMP + r'\[core:error\] \[pid \d+:tid \d+\] \[client 127\.0\.0\.1:\d+\] '
                             r'MPMD0302: handler "no-such-handler" not found for: \S+/nohandler/index\.html, '
                             r'referer http://r\.example/')


def _line_about(path: Path, marker: str) -> str:
    wait_for(lambda: path.exists() and marker in path.read_text(), timeout=10,
             message=f"{marker} in {path}")
    return next(line for line in path.read_text().splitlines() if marker in line)


def test_error_log_format_gives_the_same_line_shape(apache, mpmd_on):
    # the same server line: the %7F, %E and client fields are left out, as they are empty
    their_line = _line_about(apache["on"][1], "resuming normal operations")
    our_line = _line_about(Path(mpmd_on.conf.error_log), "resuming normal operations")
    assert STARTED.fullmatch(their_line), their_line
    assert STARTED.fullmatch(our_line), our_line
    # a line about a request: the client's field and the optional Referer field are there
    # (httpd serves such a file with its default handler, so only mpmd logs one here)
    ask = (b"GET /nohandler/index.html HTTP/1.1\r\nHost: localhost\r\nReferer: http://r.example/\r\n"
           b"Connection: close\r\n\r\n")
    assert request_once(mpmd_on.port, ask).status == 500
    line = _line_about(Path(mpmd_on.conf.error_log), "not found for")
    assert ABOUT_A_REQUEST.fullmatch(line), line


def _address(port: int, host: str, path: str = "/missing", status: int = 404) -> str | None:
    ask = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    answer = request_once(port, ask)
    assert answer.status == status
    found = re.search(rb"<address>(.*?)</address>", answer.body)
    return found.group(1).decode() if found else None


@pytest.mark.parametrize("host", ["localhost", "localhost:8123", "quiet.test", "mail.test", "mail.test:81"])
def test_server_signature_per_vhost_as_apache(apache, mpmd_on, host):
    theirs, ours = _address(apache["on"][0], host), _address(mpmd_on.port, host)
    assert (theirs is None) == host.startswith("quiet")      # the comparison means something
    if theirs is None:
        assert ours is None
        return
    assert ours is not None and ours.replace("mpmd", "Apache", 1) == theirs


@pytest.mark.parametrize("host", ["localhost", "quiet.test", "mail.test:81"])
def test_server_signature_ends_directory_listings_as_apache(apache, mpmd_on, host):
    theirs = _address(apache["on"][0], host, "/listing/", 200)
    ours = _address(mpmd_on.port, host, "/listing/", 200)
    assert (theirs is None) == host.startswith("quiet")      # the comparison means something
    if theirs is None:
        assert ours is None
        return
    assert ours is not None and ours.replace("mpmd", "Apache", 1) == theirs
