"""Keep-alive, pipelining, timeouts and error answers end to end, on raw sockets, for every MPM."""

from __future__ import annotations

from tests.support.rawclient import RawConn, get, pipeline, request_once


def test_keep_alive_serves_sequential_requests_on_one_connection(conf, make_server):
    server = make_server(conf)
    with RawConn(server.port) as c:
        for _ in range(3):
            c.send(get("/index.html"))
            resp = c.read_response()
            assert resp.status == 200, server.diagnostics()
            assert resp.body == b"<h1>hello</h1>\n"
            assert (resp.header("connection") or "").lower() != "close"


def test_pipelined_requests_answered_in_order(conf, make_server):
    server = make_server(conf)
    reqs = [get("/index.html"), get("/1k.bin"), get("/missing"), get("/index.html")]
    resps = pipeline(server.port, reqs)
    assert [r.status for r in resps] == [200, 200, 404, 200], server.diagnostics()
    assert resps[1].body == bytes(range(256)) * 4


def test_head_has_no_body_and_connection_stays_usable(conf, make_server):
    server = make_server(conf)
    with RawConn(server.port) as c:
        c.send(b"HEAD /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        head = c.read_response(head_only=True)
        assert head.status == 200 and head.header("content-length") == "1024"
        c.send(get("/index.html"))
        assert c.read_response().body == b"<h1>hello</h1>\n"


def test_keep_alive_off_closes_after_each_response(conf, make_server):
    server = make_server(conf.set("KeepAlive", "Off"))
    with RawConn(server.port) as c:
        c.send(get("/index.html"))
        resp = c.read_response()
        assert resp.status == 200
        assert (resp.header("connection") or "").lower() == "close"
        assert c.is_closed()


def test_http10_without_keep_alive_closes(conf, make_server):
    server = make_server(conf)
    with RawConn(server.port) as c:
        c.send(b"GET /index.html HTTP/1.0\r\n\r\n")
        assert c.read_response().status == 200
        assert c.is_closed()


def test_keep_alive_timeout_closes_idle_connection_silently(conf, make_server):
    server = make_server(conf.set("KeepAliveTimeout", 1))
    with RawConn(server.port) as c:
        c.send(get("/index.html"))
        assert c.read_response().status == 200
        assert c.is_closed(timeout=10)
        assert c.buf == b""          # no 408 for an idle keep-alive connection


def test_max_keep_alive_requests(conf, make_server):
    server = make_server(conf.set("MaxKeepAliveRequests", 2))
    with RawConn(server.port) as c:
        c.send(get("/index.html"))
        first = c.read_response()
        assert (first.header("connection") or "").lower() != "close"
        c.send(get("/index.html"))
        second = c.read_response()
        assert second.status == 200
        assert (second.header("connection") or "").lower() == "close"
        assert c.is_closed()


def test_stalled_request_gets_408(conf, make_server):
    # RequestReadTimeout's header stage would govern the head: off, so Timeout does
    server = make_server(conf.set("Timeout", 1).add("RequestReadTimeout header=0"))
    with RawConn(server.port) as c:
        c.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n")
        resp = c.read_response()
        assert resp.status == 408, server.diagnostics()
        assert c.is_closed()


def test_connection_without_bytes_closed_silently(conf, make_server):
    # AcceptFilter none: the server accepts at once (no TCP_DEFER_ACCEPT), so Timeout applies.
    server = make_server(conf.set("Timeout", 1).add("AcceptFilter http none")
                         .add("RequestReadTimeout header=0"))
    with RawConn(server.port) as c:
        assert c.is_closed(timeout=10)
        assert c.buf == b""


def test_malformed_request_is_400_then_close(conf, make_server):
    server = make_server(conf)
    with RawConn(server.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n")
        resp = c.read_response()
        assert resp.status == 400, server.diagnostics()
        assert c.is_closed()


def test_long_request_line_is_414(conf, make_server):
    server = make_server(conf.set("LimitRequestLine", 200))
    resp = request_once(server.port, get("/" + "a" * 500))
    assert resp.status == 414


def test_missing_file_404_keeps_connection(conf, make_server):
    server = make_server(conf)
    with RawConn(server.port) as c:
        c.send(get("/nope.html"))
        assert c.read_response().status == 404
        c.send(get("/index.html"))
        assert c.read_response().status == 200


def test_body_with_content_length_is_consumed_before_next_request(conf, make_server):
    server = make_server(conf)
    with RawConn(server.port) as c:
        c.send(b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + get("/1k.bin"))
        first = c.read_response()
        assert first.status in (200, 405), server.diagnostics()
        if (first.header("connection") or "").lower() != "close":
            assert c.read_response().status == 200


def test_each_client_gets_its_own_keep_alive_answer_for_the_same_cached_file(conf, make_server):
    """One file, answered in the same second to a client that asks to close and to one that
    keeps the connection (the static cache's shared answer keeps its head per second,
    core/respond.py Rule 5): each gets its own Connection field and connection fate."""
    server = make_server(conf)
    for _ in range(5):                  # some pair falls within one second
        with RawConn(server.port) as closing:
            closing.send(get("/1k.bin", extra="Connection: close\r\n"))
            resp = closing.read_response()
            assert resp.status == 200 and resp.body == bytes(range(256)) * 4
            assert (resp.header("connection") or "").lower() == "close", server.diagnostics()
            assert closing.is_closed()
        with RawConn(server.port) as keeping:
            for _ in range(2):
                keeping.send(get("/1k.bin"))
                resp = keeping.read_response()
                assert resp.status == 200, server.diagnostics()
                assert (resp.header("connection") or "").lower() != "close", server.diagnostics()
