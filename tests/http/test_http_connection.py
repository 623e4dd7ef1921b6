"""Round-trip tables for mpmd.http.connection: bytes in, events (or a ProtocolError) out."""

from __future__ import annotations

import pytest

from mpmd.http.connection import Connection
from mpmd.http.errors import ProtocolError
from mpmd.http.events import (NEED_DATA, PAUSED, ConnectionClosed, Data, EndOfMessage,
                              Request)
from mpmd.http.limits import Limits

H = b"Host: h\r\n"


def drain(conn: Connection, cycles: bool = True) -> list[object]:
    """Every event until NEED_DATA / ConnectionClosed / an error, starting cycles as needed.

    Requests are summarised as ("REQ", method, path), bodies are joined, errors are
    ("ERR", status).
    """
    out: list[object] = []
    body = b""
    for _ in range(10_000):
        try:
            event = conn.next_event()
        except ProtocolError as exc:
            out.append(("ERR", exc.status))
            return out
        if event is PAUSED:
            if not cycles:
                out.append("PAUSED")
                return out
            conn.start_next_cycle()
        elif event is NEED_DATA:
            out.append("NEED_DATA")
            return out
        elif isinstance(event, ConnectionClosed):
            out.append("CLOSED")
            return out
        elif isinstance(event, Request):
            out.append(("REQ", event.method, event.path))
        elif isinstance(event, Data):
            body += event.data
        elif isinstance(event, EndOfMessage):
            if body:
                out.append(("BODY", body))
                body = b""
            out.append("EOM")
    raise AssertionError("no end")


def feed(data: bytes, eof: bool = True, limits: Limits | None = None) -> list[object]:
    conn = Connection(limits) if limits else Connection()
    conn.receive_data(data)
    if eof:
        conn.receive_data(b"")
    return drain(conn)


def first_request(data: bytes) -> Request:
    conn = Connection()
    conn.receive_data(data)
    event = conn.next_event()
    assert isinstance(event, Request), event
    return event


# -- valid requests -----------------------------------------------------------------------

SIMPLE = [
    (b"GET / HTTP/1.1\r\n" + H + b"\r\n", [("REQ", "GET", b"/"), "EOM", "CLOSED"]),
    (b"GET /a?b=1 HTTP/1.0\r\n\r\n", [("REQ", "GET", b"/a"), "EOM", "CLOSED"]),
    (b"HEAD /x HTTP/1.1\r\n" + H + b"\r\n", [("REQ", "HEAD", b"/x"), "EOM", "CLOSED"]),
    (b"POST /p HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello",
     [("REQ", "POST", b"/p"), ("BODY", b"hello"), "EOM", "CLOSED"]),
    (b"POST /p HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
     [("REQ", "POST", b"/p"), ("BODY", b"hello world"), "EOM", "CLOSED"]),
    (b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n", [("REQ", "OPTIONS", b"*"), "EOM", "CLOSED"]),
    (b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n", [("REQ", "GET", b"/"), "EOM", "CLOSED"]),
    (b"GET / HTTP/1.2\r\n" + H + b"\r\n", [("REQ", "GET", b"/"), "EOM", "CLOSED"]),
    (b"DELETE /d HTTP/1.1\r\n" + H + b"\r\n", [("REQ", "DELETE", b"/d"), "EOM", "CLOSED"]),
    (b"PROPFIND /d HTTP/1.1\r\n" + H + b"\r\n", [("REQ", "PROPFIND", b"/d"), "EOM", "CLOSED"]),
]


@pytest.mark.parametrize("data,expected", SIMPLE)
def test_simple(data: bytes, expected: list[object]) -> None:
    assert feed(data) == expected


def test_request_fields() -> None:
    req = first_request(b"GET /a%20b?x=1&y HTTP/1.1\r\nHost: Example.com:80\r\n"
                        b"X-Thing:  v a l  \t\r\nAccept: */*\r\n\r\n")
    assert req.method == "GET"
    assert req.target == b"/a%20b?x=1&y"
    assert (req.path, req.query) == (b"/a%20b", b"x=1&y")
    assert req.http_version == "1.1"
    assert req.headers == ((b"host", b"Example.com:80"), (b"x-thing", b"v a l"),
                           (b"accept", b"*/*"))
    assert req.header(b"x-thing") == b"v a l"
    assert (req.keep_alive, req.expect_continue, req.content_length, req.chunked) == \
        (True, False, None, False)
    assert not req.has_body


@pytest.mark.parametrize("target", [b"/a?q#frag", b"/hello.txt#frag", b"http://h/a#frag"])
def test_fragment_in_target_is_400(target: bytes) -> None:
    # RFC 9112 3.2: neither origin-form nor absolute-form has a fragment (httpd: 400)
    assert feed(b"GET " + target + b" HTTP/1.1\r\n" + H + b"\r\n", eof=False)[-1] == ("ERR", 400)


def test_content_length_and_chunked_flags() -> None:
    req = first_request(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 007\r\n\r\n")
    assert (req.content_length, req.chunked, req.has_body) == (7, False, True)
    req = first_request(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: Chunked\r\n\r\n")
    assert (req.content_length, req.chunked, req.has_body) == (None, True, True)


@pytest.mark.parametrize("target,path,query,host", [
    (b"http://example.com/index.html", b"/index.html", b"", b"example.com"),
    (b"http://example.com:8080/a?b", b"/a", b"b", b"example.com:8080"),
    (b"HTTPS://h", b"/", b"", b"h"),
    (b"http://h?q=1", b"/", b"q=1", b"h"),
])
def test_absolute_form(target: bytes, path: bytes, query: bytes, host: bytes) -> None:
    req = first_request(b"GET " + target + b" HTTP/1.1\r\nHost: other\r\n\r\n")
    assert (req.path, req.query) == (path, query)
    assert req.header_values(b"host") == [host]      # RFC 9112 3.2.2: the target wins


def test_absolute_form_without_host_header() -> None:
    # RFC 9112 3.2: an HTTP/1.1 request without Host is a 400 whatever its target (httpd too);
    # HTTP/1.0 needs no Host, and the target's authority becomes it
    assert feed(b"GET http://h/x HTTP/1.1\r\n\r\n", eof=False)[-1] == ("ERR", 400)
    req = first_request(b"GET http://h/x HTTP/1.0\r\n\r\n")
    assert req.header(b"host") == b"h"


@pytest.mark.parametrize("host", [b"x:abc", b"x:8a", b"x:1:2", b"[::1", b"[::1]x", b"x]"])
def test_host_with_a_bad_port_or_literal_is_400(host: bytes) -> None:
    data = b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
    assert feed(data, eof=False)[-1] == ("ERR", 400)
    absolute = b"GET http://" + host + b"/ HTTP/1.1\r\nHost: x\r\n\r\n"
    assert feed(absolute, eof=False)[-1] == ("ERR", 400)


@pytest.mark.parametrize("host", [b"x", b"x:80", b"x.", b"[::1]", b"[::1]:8080", b"1.2.3.4:1"])
def test_host_forms_accepted(host: bytes) -> None:
    assert first_request(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n").header(b"host") == host


@pytest.mark.parametrize("data", [
    b"HEAD /hello.txt HTTP/1.1\r\n\r\n",
    b"HEAD / HTTP/1.1\r\n" + H + b"Expect: foo\r\n\r\n",
    b"HEAD / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n",
    b"HEAD / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
    b"HEAD / HTTP/2.0\r\n" + H + b"\r\n",
    b"HEAD / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
])
def test_refused_head_carries_its_method(data: bytes) -> None:
    conn = Connection()
    conn.receive_data(data)
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    assert info.value.method == "HEAD"


def test_refused_unknown_method_after_a_head_has_no_method() -> None:
    # llhttp's method field still holds the previous request's HEAD: not taken for this one
    conn = Connection()
    conn.receive_data(b"HEAD / HTTP/1.1\r\n" + H + b"\r\nFOO / HTTP/1.1\r\n" + H + b"\r\n")
    assert conn.next_event().method == "HEAD"
    conn.next_event()
    conn.start_next_cycle()
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    assert (info.value.status, info.value.method) == (501, None)


def test_websocket_upgrade_is_a_plain_request_and_parsing_goes_on() -> None:
    data = (b"GET /ws HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
            b"GET /next HTTP/1.1\r\n" + H + b"\r\n")
    assert feed(data) == [("REQ", "GET", b"/ws"), "EOM", ("REQ", "GET", b"/next"), "EOM",
                          "CLOSED"]


def test_trailers_are_consumed_not_kept() -> None:
    conn = Connection()
    conn.receive_data(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                      b"1\r\na\r\n0\r\nX-Trailer: 1\r\n\r\nGET /2 HTTP/1.1\r\n" + H + b"\r\n")
    req = conn.next_event()
    assert isinstance(req, Request) and req.header(b"x-trailer") is None
    assert drain(conn) == [("BODY", b"a"), "EOM", ("REQ", "GET", b"/2"), "EOM", "NEED_DATA"]


# -- keep-alive (RFC 9112 9.3) and Expect -----------------------------------------------------

KEEP_ALIVE = [
    (b"GET / HTTP/1.1\r\n" + H + b"\r\n", True),
    (b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\n" + H + b"Connection: Keep-Alive, CLOSE\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\n" + H + b"Connection: keep-alive\r\n\r\n", True),
    (b"GET / HTTP/1.0\r\n\r\n", False),
    (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
    (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", True),
    (b"GET / HTTP/1.2\r\n" + H + b"\r\n", True),
    # RFC 9112 6.1: TE on HTTP/1.0 means faulty framing; close afterwards.
    (b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n", False),
]


@pytest.mark.parametrize("data,keep_alive", KEEP_ALIVE)
def test_keep_alive(data: bytes, keep_alive: bool) -> None:
    assert first_request(data).keep_alive is keep_alive


@pytest.mark.parametrize("data,flag", [
    (b"POST / HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 1\r\n\r\n", True),
    (b"POST / HTTP/1.1\r\n" + H + b"Expect: 100-Continue\r\nContent-Length: 1\r\n\r\n", True),
    (b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", False),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1\r\n\r\n", False),
])
def test_expect_continue(data: bytes, flag: bool) -> None:
    assert first_request(data).expect_continue is flag


# -- pipelining and cycles ----------------------------------------------------------------------

def test_pipelined_requests_in_order_with_pause() -> None:
    conn = Connection()
    conn.receive_data(b"".join(b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n" % i for i in range(3)))
    seen = []
    for i in range(3):
        req = conn.next_event()
        assert isinstance(req, Request)
        seen.append(req.path)
        assert isinstance(conn.next_event(), EndOfMessage)
        assert conn.next_event() is PAUSED
        assert conn.next_event() is PAUSED
        assert conn.has_buffered_request() is (i < 2)
        conn.start_next_cycle()
    assert seen == [b"/0", b"/1", b"/2"]
    assert conn.next_event() is NEED_DATA


def test_pipelined_with_bodies_split_everywhere() -> None:
    data = (b"POST /a HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n\r\nabc"
            b"POST /b HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n"
            b"GET /c HTTP/1.1\r\n" + H + b"\r\n")
    expected = [("REQ", "POST", b"/a"), ("BODY", b"abc"), "EOM", ("REQ", "POST", b"/b"),
                ("BODY", b"de"), "EOM", ("REQ", "GET", b"/c"), "EOM", "CLOSED"]
    for cut in range(len(data) + 1):
        conn = Connection()
        conn.receive_data(data[:cut])
        conn.receive_data(data[cut:])
        conn.receive_data(b"")
        assert drain(conn) == expected, cut


def test_close_request_stops_the_pipeline() -> None:
    data = (b"GET /a HTTP/1.1\r\n" + H + b"\r\nGET /b HTTP/1.1\r\n" + H
            + b"Connection: close\r\n\r\nGET /c HTTP/1.1\r\n" + H + b"\r\n")
    assert feed(data, eof=False) == [("REQ", "GET", b"/a"), "EOM", ("REQ", "GET", b"/b"), "EOM",
                                     "CLOSED"]


def test_http10_without_keep_alive_ignores_what_follows() -> None:
    assert feed(b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n", eof=False) == \
        [("REQ", "GET", b"/a"), "EOM", "CLOSED"]


def test_error_after_good_pipelined_request_comes_in_order() -> None:
    data = b"GET /a HTTP/1.1\r\n" + H + b"\r\nGET /b HTTP/1.1\r\nBad Line\r\n\r\n"
    conn = Connection()
    conn.receive_data(data)
    assert drain(conn, cycles=False) == [("REQ", "GET", b"/a"), "EOM", "PAUSED"]
    assert conn.has_buffered_request()
    conn.start_next_cycle()
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    assert info.value.status == 400
    with pytest.raises(ProtocolError):      # raised again, and nothing more is parsed
        conn.next_event()
    conn.receive_data(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
    with pytest.raises(ProtocolError):
        conn.next_event()


def test_start_next_cycle_before_end_of_message_is_a_bug() -> None:
    conn = Connection()
    conn.receive_data(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 4\r\n\r\nab")
    assert isinstance(conn.next_event(), Request)
    with pytest.raises(RuntimeError):
        conn.start_next_cycle()


# -- split at every byte boundary --------------------------------------------------------------

CHUNKED = (b"POST /up HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
           b"4\r\nWiki\r\n5;name=val\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n")
CHUNKED_BODY = b"Wikipedia in\r\n\r\nchunks."


@pytest.mark.parametrize("cut", range(len(CHUNKED) + 1))
def test_chunked_split_at_every_boundary(cut: int) -> None:
    conn = Connection()
    conn.receive_data(CHUNKED[:cut])
    conn.receive_data(CHUNKED[cut:])
    assert drain(conn, cycles=False) == [("REQ", "POST", b"/up"), ("BODY", CHUNKED_BODY), "EOM",
                                         "PAUSED"]


def test_chunked_one_byte_at_a_time() -> None:
    conn = Connection()
    for i in range(len(CHUNKED)):
        conn.receive_data(CHUNKED[i:i + 1])
    assert drain(conn, cycles=False) == [("REQ", "POST", b"/up"), ("BODY", CHUNKED_BODY), "EOM",
                                         "PAUSED"]


def test_need_data_until_head_complete() -> None:
    conn = Connection()
    head = b"GET / HTTP/1.1\r\n" + H + b"\r\n"
    for i in range(len(head) - 1):
        conn.receive_data(head[i:i + 1])
        assert conn.next_event() is NEED_DATA
        assert conn.partial_request
    conn.receive_data(head[-1:])
    assert isinstance(conn.next_event(), Request)
    assert not conn.partial_request


# -- end of stream ---------------------------------------------------------------------------

@pytest.mark.parametrize("data,expected", [
    (b"", ["CLOSED"]),
    (b"\r\n", ["CLOSED"]),
    (b"GET / HT", [("ERR", 400)]),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 9\r\n\r\nabc", [("REQ", "POST", b"/"),
                                                                    ("ERR", 400)]),
])
def test_eof(data: bytes, expected: list[object]) -> None:
    assert feed(data) == expected


def test_eof_while_paused_then_closed() -> None:
    conn = Connection()
    conn.receive_data(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
    conn.receive_data(b"")
    assert drain(conn, cycles=False) == [("REQ", "GET", b"/"), "EOM", "PAUSED"]
    assert conn.closing
    conn.start_next_cycle()
    assert isinstance(conn.next_event(), ConnectionClosed)


# -- errors --------------------------------------------------------------------------------

ERRORS = [
    # 400: malformed request line / fields (RFC 9112 3, 5)
    (b"GET /index.html HTTP/1.1 extra\r\n" + H + b"\r\n", 400),
    (b"GET index.html HTTP/1.1\r\n" + H + b"\r\n", 400),
    (b"GET\t/ HTTP/1.1\r\n" + H + b"\r\n", 400),
    (b"GET / HTTP/1.1\n" + H + b"\r\n", 400),
    (b"GET / HTTP/\r\r1.1\r\n" + H + b"\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + H + b"Bad Header Line\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + H + b"X : v\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + H + b": v\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + H + b"X-Test: a\x00b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + H + b"X-Pad: a\rContent-Length: 4\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n folded\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n Range: bytes=0-4\r\n" + H + b"\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + H + b"\xefoo: bar\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + H + b"Transfer-Encoding\x85: chunked\r\n\r\n", 400),
    # 400: Host rules (RFC 9112 3.2)
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n", 400),
    (b"GET http://u@h/ HTTP/1.1\r\n" + H + b"\r\n", 400),
    (b"GET ftp://h/x HTTP/1.1\r\n" + H + b"\r\n", 400),
    (b"GET * HTTP/1.1\r\n" + H + b"\r\n", 400),
    # 400: framing (RFC 9112 6)
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 47Z\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +3\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: \r\nContent-Length: 4\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 18446744073709551617\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999999\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
     b"Transfer-Encoding: x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + H + b"Connection: upgrade\r\nUpgrade: h2c\r\n"
     b"Content-Length: 3\r\n\r\nabc", 400),
    # 501: unknown method / transfer coding
    (b"FOO / HTTP/1.1\r\n" + H + b"\r\n", 501),
    (b"get / HTTP/1.1\r\n" + H + b"\r\n", 501),
    (b"G@T / HTTP/1.1\r\n" + H + b"\r\n", 400),   # "@" is not a token char: no request line (httpd: 400)
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 80\r\n", 400),
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n", 400),
    # RFC 9112 6.3 item 4: a final coding other than chunked is 400 (httpd too)
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", 400),
    # 505: versions other than 1.x
    (b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    (b"GET / HTTP/0.9\r\n" + H + b"\r\n", 505),
    (b"GET / HTTP/3.1\r\n" + H + b"\r\n", 505),
    (b"PRI * HTTP/2.0\r\n\r\n", 505),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    # 405: CONNECT to an origin server; 417: unknown expectation
    (b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n", 405),
    (b"POST / HTTP/1.1\r\n" + H + b"Expect: the-unexpected\r\n\r\n", 417),
]


@pytest.mark.parametrize("data,status", ERRORS)
def test_errors(data: bytes, status: int) -> None:
    assert feed(data, eof=False)[-1] == ("ERR", status)


@pytest.mark.parametrize("data", [
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nZ\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n",
    b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nGET / HTTP/1.1\r\n",
])
def test_bad_chunking_after_the_request(data: bytes) -> None:
    events = feed(data, eof=False)
    assert events[0] == ("REQ", "POST", b"/")
    assert events[-1] == ("ERR", 400)


# -- limits ------------------------------------------------------------------------------------

SMALL = Limits(request_line=100, field_size=64, fields=5, body=10)


@pytest.mark.parametrize("data,status", [
    (b"GET /" + b"a" * 200 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    (b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 100 + b"\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: v\r\n" % i for i in range(5)) + b"\r\n", 400),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 11\r\n\r\n", 413),
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n", 413),
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n"
     + b"".join(b"T-%d: v\r\n" % i for i in range(6)) + b"\r\n", 400),
])
def test_limits(data: bytes, status: int) -> None:
    assert feed(data, eof=False, limits=SMALL)[-1] == ("ERR", status)


def test_within_limits_is_fine() -> None:
    data = (b"POST /" + b"a" * 80 + b" HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 50 + b"\r\n"
            + b"".join(b"X-%d: v\r\n" % i for i in range(2)) + b"Content-Length: 10\r\n\r\n"
            + b"0123456789")
    assert feed(data, limits=SMALL) == [("REQ", "POST", b"/" + b"a" * 80),
                                        ("BODY", b"0123456789"), "EOM", "CLOSED"]


def test_long_uri_streamed_gets_414_early() -> None:
    conn = Connection(SMALL)
    conn.receive_data(b"GET /")
    for _ in range(20):
        conn.receive_data(b"a" * 10)
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    assert info.value.status == 414


def test_long_field_streamed_is_cut_off_without_buffering_it_all() -> None:
    conn = Connection(SMALL)
    conn.receive_data(b"GET / HTTP/1.1\r\n" + H + b"X-Big: ")
    for _ in range(50):
        conn.receive_data(b"b" * 10)
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    assert info.value.status == 400


def _line(method: bytes, n: int) -> bytes:
    """A request line of exactly ``n`` bytes (without CRLF), then a Host field."""
    fixed = len(method) + len(b" / HTTP/1.1")
    line = method + b" /" + b"a" * (n - fixed) + b" HTTP/1.1"
    assert len(line) == n
    return line + b"\r\n" + H + b"\r\n"


# Apache 2.4.68, LimitRequestLine 100: request lines of 100 and 101 bytes (without CRLF) are
# served, 102 gets 414; the method counts (http/limits.py Rule 3).
@pytest.mark.parametrize("method", [b"GET", b"OPTIONS", b"PROPPATCH"])
@pytest.mark.parametrize("n,refused", [(100, False), (101, False), (102, True), (150, True)])
def test_request_line_limit_counts_the_whole_line(method: bytes, n: int, refused: bool) -> None:
    events = feed(_line(method, n), eof=False, limits=Limits(request_line=100))
    assert (events[-1] == ("ERR", 414)) is refused, events
    if not refused:
        assert events[0][:2] == ("REQ", method.decode())


def test_request_line_limit_streamed_counts_the_method() -> None:
    conn = Connection(Limits(request_line=100))
    data = _line(b"PROPPATCH", 102)
    for i in range(len(data)):
        conn.receive_data(data[i:i + 1])
    assert drain(conn)[-1] == ("ERR", 414)


def _field(n: int) -> bytes:
    """A field line of exactly ``n`` bytes (without CRLF): "X-F: vvv..."."""
    line = b"X-F: " + b"v" * (n - 5)
    assert len(line) == n
    return line + b"\r\n"


# Apache 2.4.68, LimitRequestFieldSize 50: a field line of 51 bytes ("Name: value" without
# CRLF) is served, 52 gets 400.
@pytest.mark.parametrize("n,refused", [(50, False), (51, False), (52, True)])
def test_field_size_limit_boundary(n: int, refused: bool) -> None:
    data = b"GET / HTTP/1.1\r\n" + H + _field(n) + b"\r\n"
    events = feed(data, eof=False, limits=Limits(field_size=50))
    assert (events[-1] == ("ERR", 400)) is refused, events


def test_limit_zero_refuses_every_line_and_field() -> None:
    """As httpd: LimitRequestLine 0 -> 414 for any request; LimitRequestFieldSize 0 -> 400."""
    assert feed(b"GET / HTTP/1.1\r\n" + H + b"\r\n", eof=False,
                limits=Limits(request_line=0))[-1] == ("ERR", 414)
    assert feed(b"GET / HTTP/1.1\r\n" + H + b"\r\n", eof=False,
                limits=Limits(field_size=0))[-1] == ("ERR", 400)
    assert feed(b"GET / HTTP/1.0\r\n\r\n", limits=Limits(field_size=0))[0] == ("REQ", "GET", b"/")


def test_fields_zero_means_unlimited() -> None:
    data = b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: v\r\n" % i for i in range(500)) + b"\r\n"
    assert feed(data, limits=Limits(fields=0))[0] == ("REQ", "GET", b"/")
    assert feed(data, eof=False, limits=Limits(fields=500))[-1] == ("ERR", 400)
    assert feed(data, limits=Limits(fields=501))[0] == ("REQ", "GET", b"/")


def test_large_limits_are_honoured() -> None:
    """No cap below the configured values: llhttp takes a 200 kB target and field."""
    big = Limits(request_line=300_000, field_size=300_000)
    data = (b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 200_000
            + b"\r\n\r\n")
    assert feed(data, limits=big)[0] == ("REQ", "GET", b"/" + b"a" * 200_000)
    conn = Connection(big)
    for i in range(0, len(data), 1000):
        conn.receive_data(data[i:i + 1000])
    assert drain(conn)[0] == ("REQ", "GET", b"/" + b"a" * 200_000)


def test_header_section_limit_is_431() -> None:
    limits = Limits(header_section=40)
    data = b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: vvvvv\r\n" % i for i in range(5)) + b"\r\n"
    assert feed(data, eof=False, limits=limits)[-1] == ("ERR", 431)


def test_body_limit_zero_means_unlimited() -> None:
    data = b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 20\r\n\r\n" + b"x" * 20
    assert feed(data, limits=Limits(body=0))[-2:] == ["EOM", "CLOSED"]


def test_bytes_buffered_counts_queued_body_and_partial_head() -> None:
    conn = Connection()
    conn.receive_data(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nabc")
    assert conn.bytes_buffered == 3
    assert isinstance(conn.next_event(), Request)
    assert isinstance(conn.next_event(), Data)
    assert conn.bytes_buffered == 0
    conn2 = Connection()
    conn2.receive_data(b"GET / HTTP/1.1\r\nHo")
    assert conn2.bytes_buffered > 0 and conn2.partial_request


@pytest.mark.parametrize("as_view", [False, True], ids=["bytes", "view"])
@pytest.mark.parametrize("data,status", [
    (b"FROBNICATE /x HTTP/1.1\r\nHost: a\r\n\r\n", 501),    # a method we do not know
    (b"THIS IS NOT HTTP\r\n\r\n", 400),                     # no request line at all
    (b"\x01\x02\x03\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\nJUNK JUNK\r\n\r\n", 400),   # pipelined after a good one
])
def test_unknown_method_501_but_garbage_400(data, status, as_view):
    from mpmd.http.connection import Connection
    from mpmd.http.errors import ProtocolError
    from mpmd.http.limits import Limits
    conn = Connection(Limits())
    # the blocking drivers feed a view of their receive buffer: the error path reads it too
    conn.receive_data(memoryview(bytearray(data)) if as_view else data)
    with pytest.raises(ProtocolError) as info:
        for _ in range(10):
            event = conn.next_event()
            if type(event).__name__ == "EndOfMessage":
                conn.start_next_cycle()
    assert info.value.status == status


def test_a_bad_host_after_a_good_one_on_the_same_connection_is_refused() -> None:
    # the last good Host is remembered per connection; a different value is checked again
    conn = Connection()
    conn.receive_data(b"GET /a HTTP/1.1\r\nHost: good.example\r\n\r\n"
                      b"GET /b HTTP/1.1\r\nHost: good.example\r\n\r\n"
                      b"GET /c HTTP/1.1\r\nHost: bad host\r\n\r\n")
    assert drain(conn) == [("REQ", "GET", b"/a"), "EOM", ("REQ", "GET", b"/b"), "EOM",
                           ("ERR", 400)]


def test_transfer_codings_from_several_fields_are_joined() -> None:
    # two fields are one list of codings (gzip, chunked): gzip is not supported, a 501;
    # keeping only the last field would take it for a plain chunked body
    conn = Connection()
    conn.receive_data(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert drain(conn) == [("ERR", 501)]


def test_a_view_of_a_reused_buffer_leaves_nothing_behind():
    """The drivers feed ``memoryview(buffer)[:n]`` and read into the same buffer again: what
    the core handed out (the Request) and what it keeps (a head not yet complete) must be
    copies, not views of that buffer."""
    buf = bytearray(256)
    view = memoryview(buf)
    conn = Connection()

    def feed(data: bytes) -> None:
        buf[:len(data)] = data
        conn.receive_data(view[:len(data)])
        buf[:] = b"x" * len(buf)                 # the next recv_into overwrites it

    feed(b"GET /first?q=1 HTTP/1.1\r\nHost: a.example\r\nX-One: 1\r\n\r\nGET /sec")
    first = conn.next_event()
    assert isinstance(first, Request)
    assert isinstance(conn.next_event(), EndOfMessage)
    conn.start_next_cycle()
    feed(b"ond HTTP/1.1\r\nHost: b.example\r\n\r\n")
    second = conn.next_event()
    assert (first.target, first.query, first.headers) == (
        b"/first?q=1", b"q=1", ((b"host", b"a.example"), (b"x-one", b"1")))
    assert (second.path, second.header(b"host")) == (b"/second", b"b.example")


@pytest.mark.parametrize("host", [b"x:", b"", b"a..b", b".a", b"a.test.."])
def test_host_header_refused_as_httpd_fix_hostname(host: bytes) -> None:
    data = b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
    assert feed(data, eof=False)[-1] == ("ERR", 400)


def test_absolute_target_may_have_an_empty_port() -> None:
    data = b"GET http://x:/ HTTP/1.1\r\nHost: y\r\n\r\n"
    assert feed(data, eof=False)[-1] != ("ERR", 400)


@pytest.mark.parametrize("cut", [1, 2, 4, 6, 10, 15])
def test_an_unknown_method_is_judged_on_its_whole_line_however_cut(cut: int) -> None:
    """Found by tests/fuzz: "BL" then "AH / HTTP/1.1" was 400, the whole line 501."""
    data = b"BLAH / HTTP/1.1\r\nHost: h\r\n\r\n"
    conn = Connection()
    conn.receive_data(data[:cut])
    conn.receive_data(data[cut:])
    assert drain(conn) == [("ERR", 501)]
    junk = b"\x00\x01 not http at all\r\n\r\n"
    conn = Connection()
    conn.receive_data(junk[:cut])
    conn.receive_data(junk[cut:])
    assert drain(conn) == [("ERR", 400)]


def test_an_unknown_method_cut_and_then_closed_is_judged_on_what_came() -> None:
    conn = Connection()
    conn.receive_data(b"BLAH / HT")
    conn.receive_data(b"")
    assert drain(conn) == [("ERR", 400)]


# -- message_buffered: what a transport that reads a body before its handler waits for ------

@pytest.mark.parametrize("head, pieces", [
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 6\r\n\r\n", [b"abc", b"def"]),
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n",
     [b"3\r\nabc\r\n", b"0\r\n\r\n"]),
])
def test_message_buffered_once_the_body_has_all_come(head, pieces):
    conn = Connection()
    conn.receive_data(head)
    assert isinstance(conn.next_event(), Request)
    assert not conn.message_buffered()
    conn.receive_data(pieces[0])
    assert not conn.message_buffered()            # the body's bytes stay queued for its reader
    conn.receive_data(pieces[1])
    assert conn.message_buffered()
    body = b"".join(pieces) if b"Content-Length" in head else b"abc"
    assert drain(conn, cycles=False) == [("BODY", body), "EOM", "PAUSED"]


def test_message_buffered_on_an_error_or_the_peer_closing():
    conn = Connection()
    conn.receive_data(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert isinstance(conn.next_event(), Request)
    assert conn.message_buffered()                # the error is queued: nothing more comes
    conn = Connection()
    conn.receive_data(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 6\r\n\r\nab")
    assert isinstance(conn.next_event(), Request)
    conn.receive_data(b"")
    assert conn.message_buffered()
