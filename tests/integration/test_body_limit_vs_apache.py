"""LimitRequestBody per directory, as Apache httpd applies it, checked against apache2 itself.

Apache reads LimitRequestBody from the request's directory config: a <Location> may allow
less (or more) than the server.  The same requests go to a standalone apache2 (its own config,
a loopback port) and to mpmd on every MPM, and the statuses must match.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support.apache import config, free_port, needs_apache, running
from tests.support.rawclient import request_once

SECTIONS = textwrap.dedent('''
    LimitRequestBody 100
    <Location "/small">
        LimitRequestBody 10
    </Location>
    <Location "/large">
        LimitRequestBody 1000
    </Location>
''')
CASES = [
    ("/index.html", 50), ("/index.html", 150),              # the server's 100
    ("/small/index.html", 10), ("/small/index.html", 11),   # the Location's 10
    ("/large/index.html", 500), ("/large/index.html", 1001),
]

pytestmark = needs_apache()


def _site(root: Path) -> Path:
    htdocs = root / "htdocs"
    for sub in ("", "small", "large"):
        (htdocs / sub).mkdir(parents=True, exist_ok=True)
        (htdocs / sub / "index.html").write_bytes(b"<p>hi</p>\n")
    return htdocs



@pytest.fixture(scope="module")
def apache(tmp_path_factory):
    root = tmp_path_factory.mktemp("apache")
    htdocs = _site(root)
    port = free_port()
    conf = root / "httpd.conf"
    conf.write_text(config(root, port, htdocs, extra=SECTIONS))
    with running(conf, [("127.0.0.1", port)]):
        yield port


def _status(port: int, path: str, length: int) -> int:
    # GET: httpd serves a file to POST too, mpmd answers 405 there as nginx does
    request = (f"GET {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {length}\r\n"
               f"Connection: close\r\n\r\n").encode() + b"x" * length
    return request_once(port, request).status


def test_limit_request_body_per_location_as_apache(apache, conf, make_server, tmp_path):
    htdocs = _site(tmp_path / "mpmd")
    conf.set("DocumentRoot", f'"{htdocs}"')
    conf.add(SECTIONS)
    server = make_server(conf)
    theirs = [_status(apache, path, n) for path, n in CASES]
    ours = [_status(server.port, path, n) for path, n in CASES]
    assert ours == theirs, list(zip(CASES, theirs, ours))
    assert theirs.count(413) == 3, theirs           # the comparison means something
