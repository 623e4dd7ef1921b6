"""A request body that fails, end to end on raw sockets, for every MPM.

Before the answer (the error is already in what arrived): the body's status (413, 400) with
``Connection: close``, never an answer that claims keep-alive on a connection about to close.
After the answer (the body was being discarded for the next request): the connection is
closed at once, never left open (CLOSE-WAIT) past the error or Timeout.  An application
reading the failed body gets an OSError; letting it propagate costs one ErrorLog line, no
traceback, and the client gets the body's status.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.integration.wsgi_support import APPS, REPO
from tests.support.rawclient import RawConn

GET_NEXT = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"
CHUNKED_POST = b"POST /index.html HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.fixture
def bconf(conf):
    conf.add("Timeout 3")
    conf.add("LimitRequestBody 10")
    conf.add("LimitRequestFields 5")
    conf.add(f'WSGIPythonPath "{REPO}"')
    conf.add(f'WSGIScriptAlias /echo "{APPS / "echo_app.py"}"')
    conf.add("ASGIApp /aecho tests.apps.asgi_apps:echo")
    return conf


def _closed_soon(c: RawConn, within: float) -> bool:
    return c.is_closed(timeout=within)


# -- the error is in what arrived: answered with its status and Connection: close ------------

BAD_BEFORE_ANSWER = {
    "chunk-over-limit": CHUNKED_POST + b"14\r\n" + b"x" * 20 + b"\r\n0\r\n\r\n",
    "trailers-over-limit": CHUNKED_POST + b"1\r\nx\r\n0\r\n"
    + b"".join(b"T%d: v\r\n" % i for i in range(6)) + b"\r\n",
    "bad-chunk-size": CHUNKED_POST + b"zz\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(BAD_BEFORE_ANSWER))
def test_body_error_known_before_the_answer_is_its_status_with_close(case, bconf, make_server):
    server = make_server(bconf)
    with RawConn(server.port) as c:
        c.send(BAD_BEFORE_ANSWER[case] + GET_NEXT)
        resp = c.read_response()
        want = 413 if case == "chunk-over-limit" else 400
        assert resp.status == want, f"{resp.status}\n{server.diagnostics()}"
        assert (resp.header("connection") or "").lower() == "close", resp.headers
        assert _closed_soon(c, 5.0)
        assert b"HTTP/1.1" not in c.buf, "the pipelined GET behind a broken body was answered"


# -- the error comes after the answer, while the body is discarded: closed at once -----------

def _answer_then(server, first: bytes, then: bytes | None, half_close: bool,
                 status: int = 405) -> RawConn:
    c = RawConn(server.port)
    c.send(first)
    resp = c.read_response()
    assert resp.status == status, f"{resp.status}\n{server.diagnostics()}"
    if then is not None:
        c.send(then)
    if half_close:
        c.sock.shutdown(socket.SHUT_WR)
    return c


AFTER_ANSWER = {
    # (first bytes, what follows the answer, half-close, the answer's status)
    "partial-cl-half-close": (b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
                              None, True, 405),
    "bad-chunk-after-answer": (CHUNKED_POST + b"2\r\nab\r\n", b"zz\r\n", False, 405),
    "chunk-over-limit-after-answer": (CHUNKED_POST + b"2\r\nab\r\n",
                                      b"14\r\n" + b"x" * 20 + b"\r\n", False, 405),
    "get-partial-body-half-close": (b"GET /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\nab",
                                    None, True, 200),
}


@pytest.mark.parametrize("case", sorted(AFTER_ANSWER))
def test_body_error_after_the_answer_closes_at_once(case, bconf, make_server):
    server = make_server(bconf)
    first, then, half, status = AFTER_ANSWER[case]
    started = time.monotonic()
    with _answer_then(server, first, then, half, status) as c:
        assert _closed_soon(c, 2.5), f"connection left open after the body failed\n{server.diagnostics()}"
    assert time.monotonic() - started < 2.9          # at once, not by Timeout (3 s)


def test_stalled_discarded_body_is_closed_by_timeout(bconf, make_server):
    server = make_server(bconf)
    first = b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"
    with _answer_then(server, first, None, False) as c:
        assert _closed_soon(c, 6.0), "a stalled body outlived Timeout"


# -- an application reading a failed body ----------------------------------------------------

APP_BODY_ERRORS = {
    "bad-chunk": (b"zz\r\nhello\r\n0\r\n\r\n", 400),
    "huge-chunk-size": (b"ffffffffffffffffffff\r\n", 400),
    "bare-lf-chunk": (b"5\nhello\n0\n\n", 400),
    "chunked-over-limit": (b"14\r\n" + b"x" * 20 + b"\r\n0\r\n\r\n", 413),
}


@pytest.mark.parametrize("mount", ["/echo", "/aecho"], ids=["wsgi", "asgi"])
@pytest.mark.parametrize("case", sorted(APP_BODY_ERRORS))
def test_app_reading_a_failed_body_gets_its_status_and_one_log_line(case, mount, bconf, make_server):
    server = make_server(bconf)
    body, status = APP_BODY_ERRORS[case]
    with RawConn(server.port) as c:
        c.send(b"POST " + mount.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + body)
        resp = c.read_response()
        assert resp.status == status, f"{resp.status}\n{server.diagnostics()}"
        assert (resp.header("connection") or "").lower() == "close"
    time.sleep(0.3)
    log = server.error_log_text()
    assert "Traceback" not in log, log
    assert "MPMD0702" not in log and "MPMD0802" not in log, log
    if mount == "/echo":
        assert "MPMD0705" in log and "request data read error" in log, log


def test_app_reading_a_stalled_body_gets_408(bconf, make_server):
    server = make_server(bconf)
    with RawConn(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        resp = c.read_response()
        assert resp.status == 408, f"{resp.status}\n{server.diagnostics()}"
    time.sleep(0.3)
    log = server.error_log_text()
    assert "Traceback" not in log and "MPMD0705" in log, log
