#!/usr/bin/env python3
"""Python cost of one request, in process: no sockets, no kernel, no load generator.

Two drivers, each fed the same keep-alive GET over and over:
  * the nginx MPM's HttpProtocol on a fake transport, on a uvloop loop (static, ASGI);
  * the blocking ConnectionDriver of prefork/worker/event on a fake socket (static, WSGI).
Prints microseconds per request (best of --repeat runs).  End-to-end figures come from
`mpmd bench`; this isolates the part that Python code decides.  WSGI on the nginx MPM is
left out: its cost is the hand-off to the thread pool, which only a real run shows.

    PYTHONPATH=src python3 benchmarks/inprocess.py [--requests 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

HELLO_WSGI = '''
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "14")])
    return [b"Hello, world!\\n"]
'''
HELLO_ASGI = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"14")]})
    await send({"type": "http.response.body", "body": b"Hello, world!\\n"})
'''
CASES = (("nginx", "/1k.bin"), ("nginx", "/asgi/"),
         ("blocking", "/1k.bin"), ("blocking", "/app/"))


def config(root: Path, mpm: str):
    from mpmd.config.loader import load_config
    return load_config(text=f"""LoadModule mpm_{mpm}_module x.so
Listen 127.0.0.1:0
DocumentRoot {root}/htdocs
KeepAlive On
MaxKeepAliveRequests 0
WSGIScriptAlias /app {root}/hello_wsgi.py
WSGIPythonPath {root}
ASGIApp /asgi hello_asgi:app
""")


class FakeTransport:
    """What HttpProtocol uses of a transport; writes are counted, not kept."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str):
        return ("127.0.0.1", 50000)

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def can_write_eof(self) -> bool: return True
    def write_eof(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


class FakeSocket:
    """What ConnectionDriver uses of a socket: ``n`` requests, one per recv, then EOF."""

    def __init__(self, request: bytes, n: int) -> None:
        self.request, self.left, self.written = request, n, 0

    def recv_into(self, buf) -> int:
        if self.left <= 0:
            return 0
        self.left -= 1
        buf[:len(self.request)] = self.request
        return len(self.request)

    def sendall(self, data: bytes) -> None:
        self.written += len(data)

    def setsockopt(self, *args) -> None: ...
    def setblocking(self, flag: bool) -> None: ...
    def getsockname(self): return ("127.0.0.1", 80)
    def shutdown(self, how: int) -> None: ...
    def close(self) -> None: ...


def run_nginx(root: Path, path: str, n: int) -> float:
    import uvloop

    from mpmd.core.log import ErrorLog
    from mpmd.mpm.base import Runtime
    from mpmd.mpm.nginx import Nginx
    from mpmd.mpm.nginx.loop import LoopWorker
    from mpmd.mpm.nginx.protocol import HttpProtocol
    from mpmd.scoreboard.board import Scoreboard
    cfg = config(root, "nginx")
    mpm = Nginx(cfg, [], Scoreboard(2, 1), Runtime(log=ErrorLog(), single_process=True))
    worker = LoopWorker(mpm, 0)
    worker.loop = loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    worker.ws = mpm.scoreboard.worker(0, 0)
    cfg.hooks.run("child_init", cfg, mpm)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    proto = HttpProtocol(worker)
    worker.nconns += 1
    proto.connection_made(FakeTransport())

    async def serve(count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            proto.data_received(request)
            while proto.busy:                 # an async handler runs in a task
                await asyncio.sleep(0)
        return time.perf_counter() - start

    loop.run_until_complete(serve(200))       # warm: imports, caches, lifespan
    took = loop.run_until_complete(serve(n))
    loop.close()
    return took


def run_blocking(root: Path, path: str, n: int, scoreboard: bool = False) -> float:
    """The blocking driver; ``scoreboard``: with a real scoreboard slot, as a prefork child."""
    from mpmd.mpm.conn import ConnectionDriver
    from mpmd.scoreboard.board import Scoreboard
    cfg = config(root, "worker")
    mpm = SimpleNamespace(name="worker", log=None, cfg=cfg)
    cfg.hooks.run("child_init", cfg, mpm)
    slot = Scoreboard(4, 1).worker(1, 0) if scoreboard else None
    driver = ConnectionDriver(cfg, slot, mpm=mpm)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    driver.serve_connection(FakeSocket(request, 200), ("127.0.0.1", 1))      # warm
    start = time.perf_counter()
    driver.serve_connection(FakeSocket(request, n), ("127.0.0.1", 1))
    return time.perf_counter() - start


def make_root(root: Path) -> Path:
    """The file and apps the cases serve, under ``root`` (importable from there)."""
    (root / "htdocs").mkdir()
    (root / "htdocs" / "1k.bin").write_bytes(bytes(range(256)) * 4)
    (root / "hello_wsgi.py").write_text(HELLO_WSGI)
    (root / "hello_asgi.py").write_text(HELLO_ASGI)
    sys.path.insert(0, str(root))
    return root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_root(Path(tmp))
        print(f"{'driver':<10} {'path':<8} {'us/request':>10}   (best of {args.repeat} x "
              f"{args.requests} requests)")
        for kind, path in CASES:
            runner = run_nginx if kind == "nginx" else run_blocking
            best = min(runner(root, path, args.requests) for _ in range(args.repeat))
            print(f"{kind:<10} {path:<8} {best * 1e6 / args.requests:>10.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
