"""A body read before its handler runs (event listener.py Rule 7, nginx protocol.py Rule 7).

On the event MPM the listener reads the body of a request whose cached route's handler reads
it (a WSGI app), on the nginx MPM the loop reads a blocking handler's body, before a thread
runs the handler; so a body that is slow to come holds no thread.  Checked from the client:
the body reaches the app intact (Content-Length and chunked, in pieces, and past the 1 MiB
bound the thread reads the rest itself), a thread stays free while bodies are pending, a body
that stalls is answered 408 with its access-log line, a static 405 is still answered without
waiting for its body, and ``Expect: 100-continue`` still gets its "100 Continue" and the body.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.integration.wsgi_support import APPS
from tests.support.rawclient import RawConn

# One thread for the handlers: a body read on it would leave none for anyone else.
ONE_THREAD = {
    "event": {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 1, "ThreadLimit": 1,
              "MinSpareThreads": 1, "MaxSpareThreads": 1, "MaxRequestWorkers": 1},
    "nginx": {"WorkerProcesses": 1, "WorkerThreads": 1},
}
SMALL_POST = b"POST /echo/body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
ECHO_POST = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"


@pytest.fixture
def pconf(conf):
    if conf.mpm not in ONE_THREAD:
        pytest.skip("only the event listener and the nginx loop read bodies before the handler")
    for name, value in ONE_THREAD[conf.mpm].items():
        conf.set(name, value)
    conf.set("Timeout", 10)
    conf.add(f'WSGIScriptAlias /echo "{APPS / "echo_app.py"}"')
    conf.add(f'CustomLog "{conf.root / "access_log"}" "\\"%r\\" %>s"')
    return conf


def _warm(server, data: bytes = SMALL_POST, status: int = 200) -> None:
    """One whole request first: its route is then in the child's route cache (the event
    listener reads a body first only for a route it knows)."""
    with RawConn(server.port) as c:
        c.send(data)
        assert c.read_response().status == status, server.diagnostics()


def _chunked(body: bytes, size: int) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                   for i in range(0, len(body), size))
    return out + b"0\r\n\r\n"


def _head(length: int | None) -> bytes:
    framing = b"Transfer-Encoding: chunked" if length is None else b"Content-Length: %d" % length
    return b"POST /echo/body HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n\r\n"


BODIES = {"small": 3000, "large": 300_000, "past-the-bound": (1 << 20) + 300_000}


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("size", sorted(BODIES))
def test_a_body_read_first_reaches_the_app_intact(pconf, make_server, framing, size):
    """Bodies sent in pieces with pauses, while the one thread stays free: another client's
    whole request is answered meanwhile; then each body comes back as sent."""
    server = make_server(pconf)
    _warm(server)
    body = bytes(range(256)) * (BODIES[size] // 256) + b"end"
    wire = body if framing == "content-length" else _chunked(body, 70_000)
    head = _head(len(body) if framing == "content-length" else None)
    slow = [RawConn(server.port, timeout=30) for _ in range(2)]
    try:
        for c in slow:
            c.send(head + wire[:1000])
        time.sleep(0.3)
        start = time.monotonic()
        with RawConn(server.port, timeout=5) as other:
            other.send(SMALL_POST)
            resp = other.read_response()
        took = time.monotonic() - start
        assert resp.status == 200 and resp.body == b"hello" and took < 1.0, \
            (took, server.diagnostics())
        for c in slow:
            for i in range(1000, len(wire), 200_000):
                c.send(wire[i:i + 200_000])
                time.sleep(0.05)
        for c in slow:
            resp = c.read_response()
            assert resp.status == 200, server.diagnostics()
            assert resp.body == body, (len(resp.body), len(body))
    finally:
        for c in slow:
            c.close()


def _access_lines(conf) -> list[str]:
    try:
        return (conf.root / "access_log").read_text().splitlines()
    except OSError:
        return []


def test_a_stalled_body_read_first_is_408_with_its_access_log_line(pconf, make_server):
    server = make_server(pconf.add("RequestReadTimeout header=5 body=1"))
    _warm(server, ECHO_POST)
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        start = time.monotonic()
        _warm(server)                     # the stalled body holds no thread
        assert time.monotonic() - start < 0.8, server.diagnostics()
        s.settimeout(10)
        data = s.recv(4096)
        took = time.monotonic() - start
    assert data.startswith(b"HTTP/1.1 408 "), server.diagnostics()
    assert 0.8 <= took <= 2.5, (took, server.diagnostics())
    deadline = time.monotonic() + 3
    while '"POST /echo HTTP/1.1" 408' not in _access_lines(pconf) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert '"POST /echo HTTP/1.1" 408' in _access_lines(pconf), _access_lines(pconf)
    _warm(server)


def test_a_client_leaving_in_a_body_read_first_frees_everything(pconf, make_server):
    server = make_server(pconf)
    _warm(server, ECHO_POST)
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            time.sleep(0.1)
    _warm(server)
    time.sleep(0.3)
    assert "Traceback" not in server.error_log_text(), server.diagnostics()


def test_a_static_405_still_does_not_wait_for_its_body(pconf, make_server):
    """The route of POST /index.html is known (cached) and its handler is a static file's:
    the 405 goes out before the body has come."""
    server = make_server(pconf)
    whole = b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    _warm(server, whole, 405)
    _warm(server, whole, 405)
    with RawConn(server.port, timeout=5) as c:
        start = time.monotonic()
        c.send(b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        resp = c.read_response(skip_interim=False)
        assert resp.status == 405 and time.monotonic() - start < 1.0, server.diagnostics()


def test_expect_100_continue_on_a_body_read_first(pconf, make_server):
    server = make_server(pconf)
    _warm(server)
    with RawConn(server.port) as c:
        c.send(b"POST /echo/body HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n"
               b"Expect: 100-continue\r\n\r\n")
        interim = c._read_head()
        assert interim.status == 100, server.diagnostics()
        c.send(b"hello world")
        resp = c.read_response(skip_interim=False)
        assert resp.status == 200 and resp.body == b"hello world", server.diagnostics()
        c.send(SMALL_POST)                                # the connection is still usable
        resp = c.read_response(skip_interim=False)
        assert resp.status == 200 and resp.body == b"hello"
    # a static 405 asks for no body: no "100 Continue" before its answer
    whole = b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    _warm(server, whole, 405)
    with RawConn(server.port) as c:
        c.send(b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
               b"Expect: 100-continue\r\n\r\n")
        assert c.read_response(skip_interim=False).status == 405


def test_a_pipelined_body_behind_a_request_is_read_first_too(pconf, make_server):
    """A POST whose body is still coming, pipelined behind a whole request, leaves the thread
    once the first is answered (the worker gives it back to the listener)."""
    server = make_server(pconf)
    _warm(server)
    with RawConn(server.port, timeout=10) as c:
        c.send(SMALL_POST + b"POST /echo/body HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        assert c.read_response().body == b"hello"
        time.sleep(0.2)
        start = time.monotonic()
        with RawConn(server.port, timeout=5) as other:
            other.send(SMALL_POST)
            assert other.read_response().status == 200
        assert time.monotonic() - start < 1.0, server.diagnostics()
        c.send(b"defghij")
        resp = c.read_response()
        assert resp.status == 200 and resp.body == b"abcdefghij"


def test_over_tls_a_body_read_first_and_its_100_continue(pconf, make_server, tmp_path):
    """The listener reads a TLS connection's body (its decrypted bytes included) and writes
    the "100 Continue" through the TLS socket."""
    pytest.importorskip("trustme")
    from tests.support.rawclient import TlsConn
    from tests.support.tlscerts import make_pki, ssl_lines
    pki = make_pki(tmp_path / "pki")
    server = make_server(pconf.add(ssl_lines(pki)))
    context = pki.client_context()
    with TlsConn(server.port, context) as c:
        c.send(SMALL_POST)
        assert c.read_response().body == b"hello", server.diagnostics()
    body = b"0123456789" * 5000
    with TlsConn(server.port, context, timeout=10) as c:
        c.send(b"POST /echo/body HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n"
               b"Expect: 100-continue\r\n\r\n" % len(body))
        assert c._read_head().status == 100, server.diagnostics()
        c.send(body[:20_000])
        time.sleep(0.3)
        start = time.monotonic()
        with TlsConn(server.port, context, timeout=5) as other:   # the thread is free
            other.send(SMALL_POST)
            assert other.read_response().body == b"hello"
        assert time.monotonic() - start < 1.0, server.diagnostics()
        c.send(body[20_000:])
        resp = c.read_response(skip_interim=False)
        assert resp.status == 200 and resp.body == body, server.diagnostics()
