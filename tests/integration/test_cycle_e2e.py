"""One request cycle, the same behaviour on every MPM (core/cycle.py), on raw sockets.

A module whose phase hook or handler raises gets a 500 and the process or thread that served
it lives on (the same keep-alive connection serves the next request, and the server's
children are the same processes); HEAD and 304 carry no body; a streamed answer is chunked
on HTTP/1.1 and close-delimited on HTTP/1.0; an answer that ends the connection is read
whole by a client that is still sending (lingering close).
"""

from __future__ import annotations

import socket
import textwrap
import time
from pathlib import Path

import pytest

from tests.integration.wsgi_support import REPO
from tests.support.harness import children_of
from tests.support.rawclient import RawConn, get

MODULE = textwrap.dedent('''
    from mpmd.core.exchange import Response
    from mpmd.core.modules import Module


    def cut_short():
        yield b"first part"
        raise ValueError("body failed on purpose")


    class Raising:
        kind = "inline"

        def __call__(self, ctx):
            if ctx.uri_path.endswith("/none"):
                return None
            if ctx.uri_path.endswith("/cut"):
                return Response(200, [("Content-Type", "text/plain")], cut_short())
            raise RuntimeError("handler failed on purpose")


    class Faulty(Module):
        name = "faulty_module"
        handlers = {"raising": Raising()}

        def post_read_request(self, ctx):
            if ctx.uri_path == "/fail/post-read":
                raise ValueError("post_read_request failed on purpose")

        def translate_name(self, ctx):
            if ctx.uri_path == "/fail/translate":
                raise KeyError("translate_name failed on purpose")
            return None

        def fixups(self, ctx):
            if ctx.uri_path == "/fail/fixups":
                raise TypeError("fixups failed on purpose")
''')

FAILURES = ["/fail/post-read", "/fail/translate", "/fail/fixups", "/handler/raise",
            "/handler/none"]


@pytest.fixture
def faulty(conf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "faulty_mod.py").write_text(MODULE)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    conf.add('LoadModule faulty_module faulty_mod:Faulty\n'
             '<Location "/handler">\n    SetHandler raising\n</Location>')
    conf.add(f'WSGIPythonPath "{REPO}"')
    conf.add("WSGIApp /big tests.apps.wsgi_apps:big")
    return conf


def test_a_raising_phase_or_handler_is_a_500_and_its_worker_lives(faulty, make_server):
    server = make_server(faulty)
    children = sorted(children_of(server.proc.pid))
    with RawConn(server.port) as c:
        for path in FAILURES:
            c.send(get(path))
            resp = c.read_response()
            assert resp.status == 500, (path, server.diagnostics())
            assert b"Internal Server Error" in resp.body
            c.send(get("/index.html"))                       # the same connection goes on
            assert c.read_response().status == 200, (path, server.diagnostics())
    assert sorted(children_of(server.proc.pid)) == children, "a child died"
    errors = server.error_log_text()
    for word in ("post_read_request failed", "translate_name failed", "fixups failed",
                 "handler failed on purpose", "returned no response"):
        assert word in errors, errors[-3000:]


def test_a_body_that_fails_midway_is_cut_and_its_worker_lives(faulty, make_server):
    server = make_server(faulty)
    children = sorted(children_of(server.proc.pid))
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(get("/handler/cut"))
            data = _read_all(s)                          # the server closes: no keep-alive
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head
        assert body.startswith(b"a\r\nfirst part\r\n") and not body.endswith(b"0\r\n\r\n")
    with RawConn(server.port) as c:
        c.send(get("/index.html"))
        assert c.read_response().status == 200
    assert sorted(children_of(server.proc.pid)) == children, "a child died"
    assert "body failed on purpose" in server.error_log_text()


def test_head_and_304_carry_no_body(conf, make_server):
    server = make_server(conf)
    with RawConn(server.port) as c:
        c.send(get("/1k.bin"))
        first = c.read_response()
        etag = first.header("etag")
        assert first.status == 200 and etag
        c.send(get("/1k.bin", extra=f"If-None-Match: {etag}\r\n"))
        resp = c.read_response(head_only=True)
        assert resp.status == 304 and resp.header("content-length") in (None, "1024")
        c.send(b"HEAD /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        head = c.read_response(head_only=True)
        assert head.status == 200 and head.header("content-length") == "1024"
        c.send(get("/index.html"))                           # no body bytes came in between
        assert c.read_response().body == b"<h1>hello</h1>\n"


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_streamed_answer_is_chunked_on_1_1_and_close_delimited_on_1_0(faulty, make_server):
    server = make_server(faulty)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /big?n=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, _, body = _read_all(s).partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
    assert body == (b"10000\r\n" + b"x" * 65536 + b"\r\n") * 3 + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /big?n=2 HTTP/1.0\r\nHost: x\r\n\r\n")
        head, _, body = _read_all(s).partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert body == b"x" * 65536 * 2


def test_an_answer_that_closes_is_read_whole_by_a_client_still_sending(conf, make_server):
    """Lingering close: a 413 sent while the client pushes its body is not destroyed by a
    reset (the server drains what the client still sends before closing)."""
    conf.set("LimitRequestBody", "1000")
    server = make_server(conf)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 400000\r\n\r\n")
        sent, answer = 0, b""
        s.settimeout(0.05)
        deadline = time.monotonic() + 5
        while sent < 400000 and time.monotonic() < deadline:
            try:
                sent += s.send(b"y" * 8192)
            except (socket.timeout, BlockingIOError):
                pass
            except OSError:
                break
            try:
                answer += s.recv(65536)
            except (socket.timeout, BlockingIOError):
                pass
        s.settimeout(10)
        try:
            answer += _read_all(s)
        except OSError:
            pass
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"Connection: close" in answer and answer.endswith(b"</html>\n")
