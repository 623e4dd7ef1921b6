#!/usr/bin/env python3
"""Servers that do less than mpmd must: the floors its speed goals are measured against.

Each answers every GET of a keep-alive client with 1 KiB; none is a web server (no
config, no modules, no error handling).  They show what Python itself costs on this host:

  uvloop-fixed    one uvloop Protocol, a fixed answer to every read (no parsing)
  uvloop-core     the same loop with mpmd's sans-I/O ``Connection`` (httptools) parsing
  prefork-fixed   N forked single-threaded processes, blocking accept/recv/send, fixed answer
  prefork-lean    N forked processes doing the static essentials with mpmd's ``Connection``:
                  parse, stat the file, check a cached copy, join head and body, send, count
                  the request in shared memory

    python3 benchmarks/floor_servers.py KIND PORT DOCROOT [PROCESSES]

Used by ``benchmarks/floors.py``; run alone to poke at one.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import socket
import struct
import sys
import time
from email.utils import formatdate
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from mpmd.http.connection import Connection  # noqa: E402
from mpmd.http.events import NEED_DATA, Request  # noqa: E402

BODY = b"x" * 1024
FIXED = (b"HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Type: text/plain\r\n"
         b"Content-Length: 1024\r\n\r\n" + BODY)


def serve_loop(port: int, protocol: type[asyncio.Protocol]) -> None:
    import uvloop

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", port,
                                                                backlog=1024)
        await server.serve_forever()
    uvloop.run(main())


class FixedProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(FIXED)             # type: ignore[attr-defined]


class CoreProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.conn = Connection()

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        conn.receive_data(data)
        while type(conn.next_event()) is Request:
            conn.next_event()                   # EndOfMessage
            self.transport.write(FIXED)         # type: ignore[attr-defined]
            conn.start_next_cycle()


class LeanStatic:
    """The static essentials on a blocking socket, one connection at a time."""

    def __init__(self, docroot: str, slot: int, board: mmap.mmap) -> None:
        self.docroot, self.slot, self.board = docroot, slot, board
        self.cache: dict[str, tuple[tuple[int, int, int], bytes]] = {}
        self.counter = struct.Struct("QQd")
        self.second, self.stamp = -1, b""
        self.served = 0

    def date(self, now: float) -> bytes:
        if int(now) != self.second:
            self.second = int(now)
            self.stamp = b"Date: %s\r\nServer: floor\r\n" % formatdate(self.second,
                                                                        usegmt=True).encode()
        return self.stamp

    def answer(self, request: Request) -> bytes:
        now = time.time()
        path = self.docroot + request.path.decode("ascii")
        st = os.stat(path)
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        hit = self.cache.get(path)
        if hit is None or hit[0] != key:
            with open(path, "rb") as f:
                data = f.read()
            head = (b"Content-Type: text/plain\r\nETag: \"%x\"\r\nContent-Length: %d\r\n\r\n"
                    % (st.st_mtime_ns, len(data)))
            hit = self.cache[path] = (key, head + data)
        for name, _ in request.headers:         # what a real server checks: conditionals
            if name in (b"if-none-match", b"range"):
                break
        self.served += 1
        self.counter.pack_into(self.board, self.slot * 32, self.served, len(hit[1]), now)
        return b"".join((b"HTTP/1.1 200 OK\r\n", self.date(now), hit[1]))

    def serve(self, sock: socket.socket) -> None:
        conn, buf = Connection(), bytearray(65536)
        view = memoryview(buf)
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                n = sock.recv_into(buf)
                if not n:
                    return
                conn.receive_data(bytes(view[:n]))
                continue
            if type(event) is not Request:
                return
            conn.next_event()                   # EndOfMessage
            sock.sendall(self.answer(event))
            conn.start_next_cycle()


def serve_forked(port: int, processes: int, docroot: str, lean: bool) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1024)
    board = mmap.mmap(-1, 32 * processes)
    for slot in range(processes):
        if os.fork() == 0:
            child(listener, LeanStatic(docroot, slot, board) if lean else None)
    os.wait()


def child(listener: socket.socket, lean: LeanStatic | None) -> None:
    buf = bytearray(65536)
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if lean is not None:
                lean.serve(sock)
            else:
                while sock.recv_into(buf):
                    sock.sendall(FIXED)
        except OSError:
            pass                                # wrk resets its connections when it stops
        sock.close()


def main(argv: list[str]) -> int:
    kind, port, docroot = argv[0], int(argv[1]), argv[2].rstrip("/")
    processes = int(argv[3]) if len(argv) > 3 else 64
    if kind == "uvloop-fixed":
        serve_loop(port, FixedProtocol)
    elif kind == "uvloop-core":
        serve_loop(port, CoreProtocol)
    elif kind in ("prefork-fixed", "prefork-lean"):
        serve_forked(port, processes, docroot, kind == "prefork-lean")
    else:
        print(f"unknown kind {kind!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
