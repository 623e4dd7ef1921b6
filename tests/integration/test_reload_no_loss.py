"""Graceful restarts lose nothing under keep-alive load, on every MPM.

Clients keep connections alive and send requests back to back, as wrk does: a request sent on a
kept-alive connection must get its answer.  An answer with "Connection: close" is fine (the
client opens a new connection); a connection closed under a request already sent is a failure.
Three graceful restarts (SIGUSR1) happen under that load.
"""

from __future__ import annotations

import signal
import socket
import threading
import time

from tests.support.harness import wait_for

CLIENTS = 8
REQUEST = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n"


class KeepAliveClient(threading.Thread):
    """Requests back to back on one connection at a time; counts answers and failures."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.answered = self.failed = self.closes = 0

    def run(self) -> None:
        sock = None
        while not self.stop.is_set():
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            try:
                sock.sendall(REQUEST)
                head = self._answer(sock)
            except OSError:
                head = None
            if head is None:                       # cut off under a request it had sent
                self.failed += 1
                sock.close()
                sock = None
                continue
            self.answered += 1
            if b"connection: close" in head.lower():
                self.closes += 1
                sock.close()
                sock = None
        if sock is not None:
            sock.close()

    @staticmethod
    def _answer(sock: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            body += chunk
        return head


def test_graceful_restarts_under_keep_alive_load_lose_nothing(conf, make_server):
    conf.set("KeepAlive", "On").set("KeepAliveTimeout", "30").set("MaxKeepAliveRequests", "0")
    conf.htdocs.mkdir(parents=True, exist_ok=True)
    (conf.htdocs / "index.html").write_bytes(b"x" * 1024)
    server = make_server(conf)
    stop = threading.Event()
    clients = [KeepAliveClient(server.port, stop) for _ in range(CLIENTS)]
    for client in clients:
        client.start()
    try:
        wait_for(lambda: all(c.answered > 10 for c in clients), 20, message="the load")
        for generation in (1, 2, 3):
            server.signal(signal.SIGUSR1)
            server.wait_ready(generation=generation)
            time.sleep(1.5)                        # the retiring children finish meanwhile
    finally:
        stop.set()
        for client in clients:
            client.join(15)
    answered = sum(c.answered for c in clients)
    closes = sum(c.closes for c in clients)
    failed = sum(c.failed for c in clients)
    assert closes >= CLIENTS, closes               # the restarts did reach the connections
    assert failed == 0, f"{failed} requests cut off, {answered} answered"
