"""Small helpers shared by the end-to-end suites (test_*_e2e.py): one raw exchange, a health check."""

from __future__ import annotations

import socket

from tests.support.rawclient import RawConn, RawResponse, get


def exchange(port: int, data: bytes, head_only: bool = False, close_wait: float = 5.0
             ) -> tuple[RawResponse, bool, bytes]:
    """Send ``data``, read one response; returns (response, closed afterwards, extra bytes seen)."""
    with RawConn(port) as c:
        c.send(data)
        resp = c.read_response(head_only=head_only)
        closed = c.is_closed(timeout=close_wait)
        return resp, closed, c.buf


def all_bytes(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Everything the server sends for ``data`` until it closes (or ``timeout`` passes)."""
    with RawConn(port) as c:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        c.is_closed(timeout=timeout)
        return c.buf


def healthy(port: int) -> bool:
    """A fresh connection still gets ``GET /index.html`` answered with 200."""
    try:
        with RawConn(port) as c:
            c.send(get("/index.html", extra="Connection: close\r\n"))
            return c.read_response().status == 200
    except (OSError, ConnectionError, socket.timeout):
        return False


def is_html_error(resp: RawResponse) -> bool:
    return (resp.header("content-type") or "").startswith("text/html") and b"<" in resp.body
