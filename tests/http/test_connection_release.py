"""A Connection that ends with its request is freed: nothing the core keeps between requests
(a shared exception's traceback, for one) holds it, its parser or their frames."""

from __future__ import annotations

import gc

from mpmd.http.connection import Connection
from mpmd.http.events import NEED_DATA, PAUSED
from mpmd.http.limits import Limits


def _serve_one(data: bytes) -> None:
    conn = Connection(Limits())
    conn.receive_data(data)
    for _ in range(5):                     # the Request, its EndOfMessage, then a pause
        if conn.next_event() in (NEED_DATA, PAUSED):
            break


def _live_connections() -> int:
    gc.collect()
    return sum(type(o) is Connection for o in gc.get_objects())


def test_connections_that_close_are_freed():
    before = _live_connections()
    for _ in range(50):
        _serve_one(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert _live_connections() == before


def test_kept_alive_connections_are_freed_too():
    before = _live_connections()
    for _ in range(50):
        _serve_one(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _live_connections() == before
