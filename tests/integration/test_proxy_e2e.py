"""mod_proxy, mod_proxy_http and mod_proxy_balancer on every MPM, against real backends (a
small threaded HTTP/1.1 server in this file): forwarding and its fields, ProxyPassReverse,
exclusions and order, streaming both ways (Content-Length and chunked uploads, a long
download), pooled backend connections (counted at the backend), 502/503/504 and the retry of
a worker in error state, balancer distribution, stickiness and hot standby, the
balancer-manager page, and ProxyRequests On refused at -t."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncio

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from tests.integration.wsgi_support import REPO


class Backend(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.name = name
        self.connections = 0
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def get_request(self):
        self.connections += 1
        return super().get_request()

    def handle_error(self, request, client_address) -> None:
        pass                                             # the proxy gave up on /slow: fine

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes, headers=()) -> None:
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path
        if "/stream" in path:
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(200):
                piece = bytes([i % 256]) * 8192
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        if "/slow" in path:
            time.sleep(3)
        if "/empty" in path:                             # no answer at all
            self.close_connection = True
            return
        if "/bad" in path:
            self.wfile.write(b"HTTP/1.1 abc Broken\r\nX: y\r\n\r\n")
            self.close_connection = True
            return
        if "/redirect" in path:
            self._send(302, b"", [("Location", f"http://127.0.0.1:{self.server.port}/sub/x"),
                                  ("Content-Location", f"http://127.0.0.1:{self.server.port}/sub/y")])
            return
        body = self._body()
        info = {"name": self.server.name, "method": self.command, "path": path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "length": len(body), "sum": sum(body) % 65521}
        self._send(200, json.dumps(info).encode(), [("Content-Type", "application/json"),
                                                      ("X-Backend", self.server.name),
                                                      ("Keep-Alive", "timeout=5")])

    do_POST = do_PUT = do_HEAD = do_GET


@pytest.fixture
def backends():
    made = [Backend(n) for n in ("one", "two", "three")]
    yield made
    for b in made:
        b.stop()


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WsBackend:
    """A websockets echo server on a loop thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def echo(ws):
            async for message in ws:
                await ws.send(message)

        async def start():
            return await serve(echo, "127.0.0.1", 0, compression=None)
        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def shut():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def ws_backend():
    b = WsBackend()
    yield b
    b.stop()


@pytest.fixture
def proxy(conf, make_server, backends, ws_backend):
    one, two, three = backends
    conf.add(f"ProxyPass /ws ws://127.0.0.1:{ws_backend.port}/echo")
    conf.set("ServerName", "front.example")
    conf.add("ProxyPass /app/local !")
    conf.add("ProxyPass /balancer-manager !")           # as httpd: /bal would match it
    conf.add(f"ProxyPass /app/ http://127.0.0.1:{one.port}/sub/ timeout=1 retry=1")
    conf.add(f"ProxyPassReverse /app/ http://127.0.0.1:{one.port}/sub/")
    conf.add(f"ProxyPass /stream http://127.0.0.1:{one.port}/stream")
    conf.add(f"ProxyPass /down http://127.0.0.1:{dead_port()}/ retry=1")
    conf.add(f"ProxyPass /bal balancer://c/")
    conf.add(f"BalancerMember balancer://c http://127.0.0.1:{one.port} route=r1")
    conf.add(f"BalancerMember balancer://c http://127.0.0.1:{two.port} route=r2")
    conf.add(f"BalancerMember balancer://c http://127.0.0.1:{three.port} route=r3 status=+H")
    conf.add("ProxySet balancer://c stickysession=ROUTEID lbmethod=byrequests")
    conf.add(f"ProxyPass /busy balancer://b/")
    conf.add(f'<Proxy "balancer://b">\n BalancerMember http://127.0.0.1:{one.port}\n'
             f' BalancerMember http://127.0.0.1:{two.port} loadfactor=2\n'
             ' ProxySet lbmethod=bybusyness\n</Proxy>')
    conf.add(f"ProxyPass /traffic balancer://t/ lbmethod=bytraffic")
    conf.add(f"BalancerMember balancer://t http://127.0.0.1:{one.port}")
    conf.add(f"BalancerMember balancer://t http://127.0.0.1:{two.port}")
    conf.add(f"ProxyPass /standby balancer://s/")
    conf.add(f"BalancerMember balancer://s http://127.0.0.1:{dead_port()} retry=30")
    conf.add(f"BalancerMember balancer://s http://127.0.0.1:{three.port} status=+H")
    conf.add("<Location /balancer-manager>\n SetHandler balancer-manager\n"
             " Require ip 127.0.0.1\n</Location>")
    conf.add("ProxyRequests Off")
    return make_server(conf)


def url(server, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def test_forward_fields_reverse_and_exclusion(proxy, backends):
    with httpx.Client(timeout=10) as c:
        r = c.get(url(proxy, "/app/a%20b?x=1"), headers={"X-Forwarded-For": "10.0.0.9",
                                                       "Connection": "keep-alive, X-Drop",
                                                       "X-Drop": "1", "TE": "trailers"})
        assert r.status_code == 200
        info = r.json()
        assert info["path"] == "/sub/a%20b?x=1"
        h = info["headers"]
        assert h["host"] == f"127.0.0.1:{backends[0].port}"
        assert h["x-forwarded-for"] == "10.0.0.9, 127.0.0.1"
        assert h["x-forwarded-host"] == f"127.0.0.1:{proxy.port}"
        assert h["x-forwarded-server"] == "front.example"
        assert h["x-forwarded-proto"] == "http"
        assert "x-drop" not in h and "te" not in h and "via" not in h
        assert r.headers["x-backend"] == "one"
        assert "keep-alive" not in r.headers            # hop-by-hop from the backend
        r = c.get(url(proxy, "/app/redirect"), follow_redirects=False)
        assert r.status_code == 302
        assert r.headers["location"] == f"http://127.0.0.1:{proxy.port}/app/x"
        assert r.headers["content-location"] == f"http://127.0.0.1:{proxy.port}/app/y"
        r = c.get(url(proxy, "/app/local/index.html"))
        assert r.status_code == 404                      # ProxyPass ! : served locally
        r = c.head(url(proxy, "/app/h"))
        assert r.status_code == 200 and r.content == b""
        assert c.get(url(proxy, "/app/after-head")).json()["method"] == "GET"


def test_bodies_stream_both_ways(proxy):
    data = bytes(range(256)) * 4096                      # 1 MiB
    with httpx.Client(timeout=20) as c:
        r = c.post(url(proxy, "/app/up"), content=data)
        assert r.json()["length"] == len(data)
        assert r.json()["headers"]["content-length"] == str(len(data))
        assert r.json()["sum"] == sum(data) % 65521

        def chunks():
            for i in range(0, len(data), 100_000):
                yield data[i:i + 100_000]
        r = c.post(url(proxy, "/app/chunked"), content=chunks())
        assert r.json()["length"] == len(data)
        assert r.json()["headers"]["transfer-encoding"] == "chunked"
        with c.stream("GET", url(proxy, "/stream")) as r:
            assert r.status_code == 200
            total = 0
            for piece in r.iter_bytes():
                total += len(piece)
        assert total == 200 * 8192


def test_backend_connections_are_pooled(proxy, backends):
    one = backends[0]
    before = one.connections
    with httpx.Client(timeout=10) as c:
        for _ in range(30):
            assert c.get(url(proxy, "/app/x")).status_code == 200
    # one client connection, one process: its pool reuses one backend connection
    assert one.connections - before <= 2, one.connections - before


def test_errors_502_503_504_and_retry(proxy, backends):
    with httpx.Client(timeout=20) as c:
        assert c.get(url(proxy, "/app/bad")).status_code == 502
        assert c.get(url(proxy, "/app/empty")).status_code == 502
        assert c.get(url(proxy, "/app/slow")).status_code == 504
        assert c.get(url(proxy, "/down/x")).status_code == 503
        assert c.get(url(proxy, "/down/x")).status_code == 503   # in error state: not tried
        assert c.get(url(proxy, "/app/x")).status_code == 200
    log = proxy.conf.error_log.read_text()
    assert "AH00957" in log and "AH00959" in log and "AH01102" in log


def test_balancer_distribution_stickiness_standby(proxy, backends):
    with httpx.Client(timeout=10) as c:
        names = [c.get(url(proxy, "/bal/x")).headers["x-backend"] for _ in range(40)]
        assert "three" not in names                      # hot standby unused
        assert names.count("one") >= 5 and names.count("two") >= 5
        for _ in range(5):
            r = c.get(url(proxy, "/bal/x"), headers={"Cookie": "ROUTEID=abc.r2"})
            assert r.headers["x-backend"] == "two"
        assert c.get(url(proxy, "/bal/x?ROUTEID=z.r1")).headers["x-backend"] == "one"
        # the only active member is down: the hot standby answers
        assert c.get(url(proxy, "/standby/x")).headers["x-backend"] == "three"
        assert c.get(url(proxy, "/standby/y")).headers["x-backend"] == "three"
        seen = {c.get(url(proxy, "/busy/x")).headers["x-backend"] for _ in range(10)}
        assert seen <= {"one", "two"}
        seen = {c.get(url(proxy, "/traffic/x")).headers["x-backend"] for _ in range(10)}
        assert seen <= {"one", "two"}
        page = c.get(url(proxy, "/balancer-manager"))
        assert page.status_code == 200
        assert "balancer://c" in page.text and "Stby" in page.text


def test_wstunnel(proxy):
    async def go():
        async with connect(f"ws://127.0.0.1:{proxy.port}/ws", compression=None) as ws:
            for i in range(50):
                await ws.send(f"hello {i}")
                assert await ws.recv() == f"hello {i}"
            big = bytes(range(256)) * 4096                 # 1 MiB through the tunnel
            await ws.send(big)
            assert await ws.recv() == big
    asyncio.run(asyncio.wait_for(go(), 30))
    with httpx.Client(timeout=10) as c:                  # no Upgrade: plain HTTP, same backend
        assert c.get(url(proxy, "/ws")).status_code in (400, 426)


def test_proxy_requests_on_is_refused(tmp_path):
    conf = tmp_path / "t.conf"
    conf.write_text("Listen 127.0.0.1:0\nServerName x\nProxyRequests On\n")
    out = subprocess.run([sys.executable, "-m", "mpmd", "-t", "-f", str(conf)],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode != 0
    assert "line 3" in out.stderr and "ProxyRequests" in out.stderr


def test_proxy_set_for_no_worker_is_refused(tmp_path):
    conf = tmp_path / "t.conf"
    conf.write_text("Listen 127.0.0.1:0\nServerName x\nProxyPass /a http://127.0.0.1:9/a\n"
                    "ProxySet http://127.0.0.1:9/a timeout=5\n"
                    "ProxySet http://127.0.0.1:10/nothing timeout=5\n")
    out = subprocess.run([sys.executable, "-m", "mpmd", "-t", "-f", str(conf)],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode != 0
    assert "line 5" in out.stderr and "127.0.0.1:10/nothing" in out.stderr
    assert "127.0.0.1:9/a" not in out.stderr
