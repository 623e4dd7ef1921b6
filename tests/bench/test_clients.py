"""Built-in clients against a real stdlib HTTP server on 127.0.0.1:0."""

from http.server import BaseHTTPRequestHandler

import pytest

from tests.bench.conftest import stub_server

from mpmd.bench.clients import IdleHolder, response_complete, run_fault_mix


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"ok\n"
        self.send_response(500 if self.path.endswith("/crash") else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    with stub_server(_Handler) as port:
        yield port


def test_response_complete_waits_for_the_body():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    assert not response_complete(head[:-2])
    assert not response_complete(head + b"abc")
    assert response_complete(head + b"abcde")


def test_idle_holder_holds_served_connections(server):
    with IdleHolder(server, "/x", batch=10) as holder:
        assert holder.grow_to(10, deadline_s=10) == 10
        assert holder.grow_to(25, deadline_s=10) == 25
        assert holder.failed == 0
    assert holder.held == []


def test_idle_holder_counts_refused_connections_as_not_held():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]   # bound, not listening: connections are refused
        with IdleHolder(port, "/x") as holder:
            assert holder.grow_to(5, deadline_s=2) == 0
            assert holder.failed >= 5


def test_fault_mix_counts_outcomes(server):
    counts = run_fault_mix(server, "/app/", keep_alive=True, duration_s=0.6, clients=2,
                           crash_interval_s=0.1)
    assert counts.ok > 0 and counts.failed == 0
    assert counts.crashes_sent >= 1
    assert counts.to_dict()["failed_per_crash"] == 0
