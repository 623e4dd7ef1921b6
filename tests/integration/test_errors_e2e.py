"""Every error answer of the HTTP engine, end to end on raw sockets, for every MPM.

Each error is a short HTML page; where the request's framing is in doubt (the server cannot know
where the next request would start) the answer says ``Connection: close`` and the connection is
closed.  A request smuggled behind a bad one is never answered.  Also: 100-continue, chunked
request bodies to a WSGI echo app, HEAD, ServerTokens.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.e2e_support import all_bytes, exchange, healthy, is_html_error
from tests.integration.wsgi_support import APPS, REPO
from tests.support.rawclient import RawConn, get, request_once


@pytest.fixture
def econf(conf):
    """The default test site plus the WSGI echo app at /echo."""
    (conf.htdocs / "smuggled.txt").write_bytes(b"SMUGGLED-MARKER\n")
    conf.add(f'WSGIPythonPath "{REPO}"')
    conf.add(f'WSGIScriptAlias /echo "{APPS / "echo_app.py"}"')
    return conf


def assert_error_then_close(server, data: bytes, statuses: tuple[int, ...]) -> None:
    """One error answer from ``statuses``, Connection: close, the socket closed, nothing smuggled."""
    resp, closed, extra = exchange(server.port, data)
    assert resp.status in statuses, f"{resp.status} {resp.reason}\n{server.diagnostics()}"
    assert is_html_error(resp), resp
    assert (resp.header("connection") or "").lower() == "close", resp.headers
    assert closed, "connection left open after an error where framing is in doubt"
    assert b"SMUGGLED-MARKER" not in resp.body + extra
    assert extra == b"", f"bytes after the error answer: {extra[:200]!r}"
    assert healthy(server.port)


SMUGGLE = b"GET /smuggled.txt HTTP/1.1\r\nHost: x\r\n\r\n"

# id -> (request bytes, acceptable statuses); every one must close the connection.
CLOSING_ERRORS = {
    "extra-token-request-line": (b"GET / HTTP/1.1 junk\r\nHost: x\r\n\r\n" + SMUGGLE, (400,)),
    "bad-protocol-name": (b"GET / HTTX/1.1\r\nHost: x\r\n\r\n" + SMUGGLE, (400,)),
    "obs-fold-header": (b"GET / HTTP/1.1\r\nHost: x\r\n folded: y\r\n\r\n" + SMUGGLE, (400,)),
    "no-colon-header": (b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n" + SMUGGLE, (400,)),
    "space-before-colon": (b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad : 1\r\n\r\n" + SMUGGLE, (400,)),
    "nul-in-header-value": (b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n" + SMUGGLE, (400,)),
    "ctl-in-header-name": (b"GET / HTTP/1.1\r\nHost: x\r\nX-B\x01d: 1\r\n\r\n" + SMUGGLE, (400,)),
    "cl-and-te": (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"0\r\n\r\n" + SMUGGLE, (400,)),
    "two-different-cl": (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 44\r\n\r\n"
                         b"abc" + SMUGGLE, (400,)),
    "bad-chunk-size": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"zz\r\nhello\r\n0\r\n\r\n" + SMUGGLE, (400,)),
    "chunk-missing-crlf": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"5\r\nhelloXX0\r\n\r\n" + SMUGGLE, (400,)),
    "negative-content-length": (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n" + SMUGGLE, (400,)),
    # RFC 9112 6.3 item 4: a final coding other than chunked is 400 (httpd too); unknown
    # codings before chunked are 501
    "unknown-te": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n" + SMUGGLE, (400,)),
    "unknown-te-before-chunked": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                                  + SMUGGLE, (501,)),
    # RFC 9112 3.2: Host is a MUST on HTTP/1.1 whatever the target's form, with a valid port
    "absolute-form-without-host": (b"GET http://x/index.html HTTP/1.1\r\n\r\n" + SMUGGLE, (400,)),
    "host-port-not-digits": (b"GET /index.html HTTP/1.1\r\nHost: x:abc\r\n\r\n" + SMUGGLE, (400,)),
    # origin-form has no fragment (httpd: 400)
    "fragment-in-target": (b"GET /index.html#frag HTTP/1.1\r\nHost: x\r\n\r\n" + SMUGGLE, (400,)),
    "te-chunked-not-last": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
                            + SMUGGLE, (501, 400)),
    "http-2.0-line": (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", (505,)),
    "http-3.1-line": (b"GET / HTTP/3.1\r\nHost: x\r\n\r\n", (505,)),
}


@pytest.mark.parametrize("case", sorted(CLOSING_ERRORS))
def test_error_answer_closes_when_framing_in_doubt(case, econf, make_server):
    data, statuses = CLOSING_ERRORS[case]
    server = make_server(econf)
    assert_error_then_close(server, data, statuses)


@pytest.mark.parametrize("line", [b"THIS IS NOT HTTP", b"\x01\x02\x03"], ids=["words", "control-bytes"])
def test_garbage_request_line_is_400(line, econf, make_server):
    server = make_server(econf)
    assert_error_then_close(server, line + b"\r\n\r\n", (400,))


def test_missing_host_on_http11_is_400(econf, make_server):
    server = make_server(econf)
    resp, _, extra = exchange(server.port, b"GET /index.html HTTP/1.1\r\n\r\n")
    assert resp.status == 400 and is_html_error(resp), server.diagnostics()
    assert extra == b""
    # HTTP/1.0 needs no Host.
    assert request_once(server.port, b"GET /index.html HTTP/1.0\r\n\r\n").status == 200


def test_unknown_method_is_501(econf, make_server):
    server = make_server(econf)
    resp, _, _ = exchange(server.port, b"FROBNICATE /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp.status in (501, 405), server.diagnostics()   # httpd: 501 for a method it does not know
    assert is_html_error(resp)
    assert healthy(server.port)


def test_stalled_request_head_gets_408_within_timeout(econf, make_server):
    server = make_server(econf.set("Timeout", 1))
    with RawConn(server.port) as c:
        c.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\nX-Partial: ")
        resp = c.read_response()
        assert resp.status == 408 and is_html_error(resp), server.diagnostics()
        assert (resp.header("connection") or "").lower() == "close"
        assert c.is_closed()
    assert healthy(server.port)


def test_stalled_request_body_closes_within_timeout(econf, make_server):
    server = make_server(econf.set("Timeout", 1))
    with RawConn(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-some")
        assert c.is_closed(timeout=15), "a stalled body must not hold the connection past Timeout"
        assert b"only-some" not in c.buf          # the app never answered with a partial body as complete
        if c.buf:
            assert c.buf.split(b" ", 2)[1] in (b"400", b"408", b"500"), c.buf[:200]
    assert healthy(server.port)


def test_body_over_limit_request_body_is_413(econf, make_server):
    server = make_server(econf.set("LimitRequestBody", 10))
    data = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 100
    assert_error_then_close(server, data, (413,))


def test_chunked_body_over_limit_request_body_is_413(econf, make_server):
    server = make_server(econf.set("LimitRequestBody", 10))
    data = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n")
    resp, closed, _ = exchange(server.port, data)
    assert resp.status == 413, server.diagnostics()
    assert closed
    # A body within the limit still passes.
    ok = request_once(server.port, b"POST /echo/body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    assert ok.status == 200 and ok.body == b"hello"


def test_long_request_line_is_414_and_closes(econf, make_server):
    server = make_server(econf.set("LimitRequestLine", 200))
    assert_error_then_close(server, get("/" + "a" * 500), (414,))
    assert request_once(server.port, get("/index.html")).status == 200


def test_long_header_field_is_refused(econf, make_server):
    server = make_server(econf.set("LimitRequestFieldSize", 100))
    data = get("/index.html", extra="X-Long: " + "v" * 300 + "\r\n")
    assert_error_then_close(server, data, (400, 431))
    assert request_once(server.port, get("/index.html", extra="X-Short: ok\r\n")).status == 200


def _line_of(n: int) -> str:
    """The target of a GET whose request line ("GET ... HTTP/1.1", no CRLF) is ``n`` bytes."""
    target = "/index.html?" + "q" * (n - len("GET /index.html? HTTP/1.1"))
    assert len(f"GET {target} HTTP/1.1") == n
    return target


def test_request_line_limit_boundary_as_apache(econf, make_server):
    """Apache 2.4.68, LimitRequestLine 100: lines of 100 and 101 bytes are served, 102 is 414."""
    server = make_server(econf.set("LimitRequestLine", 100))
    for n in (100, 101):
        resp = request_once(server.port, get(_line_of(n)))
        assert resp.status == 200, (n, resp.status, server.diagnostics())
    assert_error_then_close(server, get(_line_of(102)), (414,))


def test_field_size_limit_boundary_as_apache(econf, make_server):
    """Apache 2.4.68, LimitRequestFieldSize 50: a 51-byte "Name: value" line is served, 52 is 400."""
    server = make_server(econf.set("LimitRequestFieldSize", 50))
    for n, status in ((50, 200), (51, 200), (52, 400)):
        field = "X-F: " + "v" * (n - 5)
        resp, _, _ = exchange(server.port, get("/index.html", extra=field + "\r\n"))
        assert resp.status == status, (n, resp.status, server.diagnostics())
    assert healthy(server.port)


def test_limits_of_zero_as_apache(econf, make_server):
    """Apache: LimitRequestLine 0 answers every request 414, LimitRequestFieldSize 0 every field
    400 (a limit, not "unlimited"); LimitRequestFields 0 is no limit."""
    server = make_server(econf.set("LimitRequestLine", 0))
    assert request_once(server.port, get("/index.html")).status == 414
    server.stop()
    server = make_server(econf.set("LimitRequestLine", 8190).set("LimitRequestFieldSize", 0))
    assert request_once(server.port, get("/index.html")).status == 400
    assert request_once(server.port, b"GET /index.html HTTP/1.0\r\n\r\n").status == 200
    server.stop()
    server = make_server(econf.set("LimitRequestFieldSize", 8190).set("LimitRequestFields", 0))
    extra = "".join(f"X-H{i}: {i}\r\n" for i in range(300))
    assert request_once(server.port, get("/index.html", extra=extra)).status == 200


def test_large_limits_are_honoured(econf, make_server):
    """Values above the old made-up caps work at request time too (llhttp has no cap of its own)."""
    server = make_server(econf.set("LimitRequestLine", 100000).set("LimitRequestFieldSize", 100000)
                         .set("LimitRequestFields", 40000).set("ListenBacklog", 100000))
    resp = request_once(server.port, get(_line_of(90000), extra="X-Big: " + "b" * 90000 + "\r\n"))
    assert resp.status == 200, server.diagnostics()
    extra = "".join(f"X-H{i}: {i}\r\n" for i in range(35000))
    assert request_once(server.port, get("/index.html", extra=extra)).status == 200
    assert_error_then_close(server, get(_line_of(100002)), (414,))


def test_too_many_header_fields_is_refused(econf, make_server):
    server = make_server(econf.set("LimitRequestFields", 5))
    extra = "".join(f"X-H{i}: {i}\r\n" for i in range(20))
    assert_error_then_close(server, get("/index.html", extra=extra), (400, 431))


def test_expect_100_continue_then_body(econf, make_server):
    server = make_server(econf)
    with RawConn(server.port) as c:
        c.send(b"POST /echo/body HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        interim = c._read_head()
        assert interim.status == 100, server.diagnostics()
        c.send(b"hello world")
        resp = c.read_response()
        assert resp.status == 200 and resp.body == b"hello world"
        c.send(get("/index.html"))                      # the connection is still usable
        assert c.read_response().status == 200


def test_expect_100_continue_refused_by_body_limit(econf, make_server):
    server = make_server(econf.set("LimitRequestBody", 10))
    with RawConn(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n")
        resp = c.read_response(skip_interim=False)
        assert resp.status == 413, f"expected 413 without 100 Continue, got {resp.status}"


def test_chunked_request_body_reaches_wsgi_app(econf, make_server):
    server = make_server(econf)
    chunks = [b"alpha-", b"beta-" * 100, b"gamma"]
    body = b"".join(b"%x\r\n%s\r\n" % (len(ch), ch) for ch in chunks) + b"0\r\nX-Trailer: t\r\n\r\n"
    with RawConn(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        resp = c.read_response()
        assert resp.status == 200, server.diagnostics()
        env = json.loads(resp.body)
        assert env["body"] == b"".join(chunks).decode()
        assert env["REQUEST_METHOD"] == "POST"
        c.send(get("/index.html"))
        assert c.read_response().status == 200


def test_chunked_body_with_httpx_streaming(econf, make_server):
    import httpx
    server = make_server(econf)
    parts = [bytes([i]) * 1000 for i in range(50)]
    with httpx.Client(timeout=10) as client:
        r = client.post(server.url + "/echo/body", content=iter(parts))
    assert r.status_code == 200 and r.content == b"".join(parts)


def test_head_has_headers_and_no_body(econf, make_server):
    server = make_server(econf)
    with RawConn(server.port) as c:
        c.send(b"HEAD /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        head = c.read_response(head_only=True)
        assert head.status == 200 and head.header("content-length") == "1024"
        assert head.header("date") and head.header("last-modified") and head.header("etag")
        c.send(b"HEAD /missing HTTP/1.1\r\nHost: x\r\n\r\n")
        missing = c.read_response(head_only=True)
        assert missing.status == 404
        c.send(get("/index.html"))                      # any stray body byte would break this parse
        resp = c.read_response()
        assert resp.status == 200 and resp.body == b"<h1>hello</h1>\n"


def test_server_tokens_prod_and_full(econf, make_server):
    import mpmd
    server = make_server(econf.set("ServerTokens", "Prod"))
    resp = request_once(server.port, get("/index.html"))
    assert resp.header("server") == mpmd.SERVER_SOFTWARE
    err = request_once(server.port, get("/missing"))
    assert err.header("server") == mpmd.SERVER_SOFTWARE
    assert mpmd.__version__ not in err.body.decode("latin-1")
    server.stop()
    server = make_server(econf.set("ServerTokens", "Full"))
    full = request_once(server.port, get("/index.html")).header("server") or ""
    assert full.startswith(f"{mpmd.SERVER_SOFTWARE}/{mpmd.__version__}")


def test_bad_request_after_good_one_on_same_connection(econf, make_server):
    server = make_server(econf)
    data = all_bytes(server.port, get("/index.html") + b"GET / HTTP/1.1 junk\r\n\r\n" + SMUGGLE)
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b"HTTP/1.1 400 " in data
    assert b"SMUGGLED-MARKER" not in data


# RFC 9110 9.3.2: no content in an answer to HEAD, also when the core refused the request
REFUSED_HEADS = {
    "no-host": (b"HEAD /index.html HTTP/1.1\r\n\r\n", 400),
    "expect-unknown": (b"HEAD / HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n", 417),
    "te-gzip": (b"HEAD / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    "te-gzip-chunked": (b"HEAD / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    "http-2.0": (b"HEAD / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
}


@pytest.mark.parametrize("case", sorted(REFUSED_HEADS))
def test_refused_head_gets_no_content(case, econf, make_server):
    server = make_server(econf)
    data, status = REFUSED_HEADS[case]
    with RawConn(server.port) as c:
        c.send(data)
        resp = c.read_response(head_only=True)
        assert resp.status == status, f"{resp.status}\n{server.diagnostics()}"
        assert (resp.header("connection") or "").lower() == "close"
        assert c.is_closed(timeout=5.0)
        assert c.buf == b"", f"content after a HEAD answer: {c.buf[:200]!r}"


def test_absolute_form_authority_wins_over_host(econf, make_server):
    # RFC 9112 3.2.2: the target's authority replaces Host (httpd uses the URI's host)
    server = make_server(econf)
    resp = request_once(server.port, b"GET http://target.example:81/echo HTTP/1.1\r\n"
                                     b"Host: header.example\r\nConnection: close\r\n\r\n")
    assert resp.status == 200, server.diagnostics()
    environ = json.loads(resp.body)
    assert environ["HTTP_HOST"] == "target.example:81"
