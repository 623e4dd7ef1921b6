"""mpmd.http.writers: status lines, header blocks, chunk framing."""

from __future__ import annotations

import pytest

from mpmd.http import writers


@pytest.mark.parametrize("status,line", [
    (200, "HTTP/1.1 200 OK\r\n"),
    (404, "HTTP/1.1 404 Not Found\r\n"),
    (413, "HTTP/1.1 413 Content Too Large\r\n"),
    (431, "HTTP/1.1 431 Request Header Fields Too Large\r\n"),
    (505, "HTTP/1.1 505 HTTP Version Not Supported\r\n"),
    (299, "HTTP/1.1 299 \r\n"),
])
def test_status_line(status: int, line: str) -> None:
    assert writers.status_line(status) == line


@pytest.mark.parametrize("status", [0, 99, 1000, -1])
def test_invalid_status(status: int) -> None:
    with pytest.raises(ValueError):
        writers.status_line(status)


def test_render_head() -> None:
    head = writers.render_head(200, [("Content-Type", "text/plain"), ("X-Caf", "caf\xe9")])
    assert head == (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Caf: caf\xe9\r\n\r\n")
    assert writers.render_head(204, []) == b"HTTP/1.1 204 No Content\r\n\r\n"


@pytest.mark.parametrize("name,value", [
    ("X-A", "v\r\nSet-Cookie: evil=1"),
    ("X-A", "v\nx"),
    ("X-A", "v\rx"),
    ("X-A\r\nEvil", "v"),
])
def test_render_head_refuses_injection(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        writers.render_head(200, [("Ok", "1"), (name, value)])


@pytest.mark.parametrize("data,framed", [
    (b"hello", b"5\r\nhello\r\n"),
    (b"x" * 26, b"1a\r\n" + b"x" * 26 + b"\r\n"),
    (b"", b""),
])
def test_chunk(data: bytes, framed: bytes) -> None:
    assert writers.chunk(data) == framed
    if data:
        assert b"".join(writers.chunk_parts(data)) == framed


def test_constants() -> None:
    assert writers.LAST_CHUNK == b"0\r\n\r\n"
    assert writers.CONTINUE == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert writers.reason_phrase(418) == "I'm a teapot"
    assert writers.reason_phrase(299) == ""


def test_chunked_round_trip_through_the_parser() -> None:
    from mpmd.http.connection import Connection
    from mpmd.http.events import Data
    parts = [b"a", b"bc" * 100, b"\r\n0\r\n"]
    wire = (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(writers.chunk(p) for p in parts) + writers.LAST_CHUNK)
    conn = Connection()
    conn.receive_data(wire)
    conn.next_event()
    body = b""
    while isinstance(event := conn.next_event(), Data):
        body += event.data
    assert body == b"".join(parts)
