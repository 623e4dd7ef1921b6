"""Fixtures for the benchmark lab tests."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@contextmanager
def stub_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """A small HTTP server on 127.0.0.1 for the lab's clients to talk to; yields its port."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "bench_smoke: runs `mpmd bench --quick` restricted to a fast subset "
        "(real servers on 127.0.0.1; no speed assertions)")
