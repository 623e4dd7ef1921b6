"""The fast path gives the same bytes as the plain one (core/cycle.py Rule 6).

Two servers of the same MPM and config serve the same document root, one with the route
cache, the remembered plans and the joined head + body, one with ``MPMD_PLAIN_PATH=1``.  A
corpus of requests, each sent twice so the second meets warm caches, is pipelined on one
connection to each; the byte streams must be equal once the Date values are set aside.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from tests.integration.wsgi_support import REPO
from tests.support.confbuilder import ConfBuilder
from tests.support.harness import Server, age_fresh_files

CORPUS = [
    b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /1k.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\n\r\n",
    b"GET /1k.bin HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n\r\n",
    b"GET /1k.bin HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /sub HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /sub/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a/%2e%2e/index.html HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /big?n=2 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"GET /aecho HTTP/1.1\r\nHost: x\r\n\r\n",
]
LAST = b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

CONFIGS = {
    "default": [],
    "keepalive-off-prod": ["KeepAlive Off", "ServerTokens Prod", "ServerSignature On"],
    "short-keepalive": ["MaxKeepAliveRequests 7", "FileETag None"],
}


def _site(top: Path) -> Path:
    docroot = top / "site"
    (docroot / "sub").mkdir(parents=True)
    (docroot / "index.html").write_bytes(b"<h1>hello</h1>\n")
    (docroot / "sub" / "index.html").write_bytes(b"<p>sub</p>\n")
    (docroot / "1k.bin").write_bytes(bytes(range(256)) * 4)
    age_fresh_files(docroot)
    return docroot


def _conf(root: Path, mpm: str, docroot: Path, extra: list[str]) -> ConfBuilder:
    conf = ConfBuilder(root, mpm=mpm)
    conf.htdocs.mkdir(parents=True)
    conf.set("DocumentRoot", f'"{docroot}"')
    conf.add(f'<Directory "{docroot}">\n    Require all granted\n</Directory>')
    conf.add(f'WSGIPythonPath "{REPO}"')
    conf.add("WSGIApp /hello tests.apps.wsgi_apps:hello")
    conf.add("WSGIApp /big tests.apps.wsgi_apps:big")
    conf.add(f'WSGIScriptAlias /echo "{REPO / "tests" / "apps" / "echo_app.py"}"')
    conf.add("ASGIApp /aecho tests.apps.asgi_apps:echo")
    for line in extra:
        conf.add(line)
    return conf


def _exchange(port: int, keep_alive: bool) -> bytes:
    """Every request twice, then a closing one, pipelined on one connection (or each on its
    own when the server does not keep connections); everything the server sent."""
    batches = [[r for request in CORPUS for r in (request, request)] + [LAST]]
    if not keep_alive:
        batches = [[r] for r in batches[0]]
    out = b""
    for batch in batches:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.sendall(b"".join(batch))
            while chunk := s.recv(65536):
                out += chunk
    return out


def _comparable(raw: bytes, port: int) -> bytes:
    """Date values and the two servers' ports (error page signatures, the echo app's
    environ, which also has the client's port) set aside."""
    raw = re.sub(rb"Date: [^\r]*\r\n", b"Date: -\r\n", raw)
    raw = raw.replace(b"%d" % port, b"PORT")
    return re.sub(rb'"REMOTE_PORT": "[0-9]*"', b'"REMOTE_PORT": "-"', raw)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_fast_and_plain_paths_send_the_same_bytes(mpm, config, tmp_path, make_server,
                                                  monkeypatch):
    docroot = _site(tmp_path)
    streams, ports = {}, {}
    for path in ("plain", "fast"):
        if path == "plain":
            monkeypatch.setenv("MPMD_PLAIN_PATH", "1")
        else:
            monkeypatch.delenv("MPMD_PLAIN_PATH", raising=False)
        server: Server = make_server(_conf(tmp_path / path, mpm, docroot, CONFIGS[config]))
        streams[path] = _exchange(server.port, "KeepAlive Off" not in CONFIGS[config])
        ports[path] = server.port
        assert streams[path].count(b"HTTP/1.") >= 2, server.diagnostics()
    plain, fast = (_comparable(streams[p], ports[p]) for p in ("plain", "fast"))
    assert fast == plain, _first_difference(plain, fast)
    assert plain.count(b"HTTP/1.1 200") + plain.count(b"HTTP/1.0 200") >= 4


def _first_difference(a: bytes, b: bytes) -> str:
    at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"first difference at byte {at}:\nplain: {a[max(0, at - 200):at + 200]!r}\n" \
           f"fast:  {b[max(0, at - 200):at + 200]!r}"
