"""WebSockets for ASGI apps (mod_asgi, asgi_websocket.py) on every MPM, with the real
``websockets`` client against a Starlette app (tests/apps/ws_apps.py): echo, subprotocols,
refusal (403) and denial responses, close codes both ways, permessage-deflate, ping/pong, a
1 MiB message, the size limit (1009), many connections at once, the access log's 101, the
1001 of a graceful stop, and an Upgrade to a non-websocket handler served as plain HTTP.
Where uvicorn's behaviour is the reference (the refusal's status), it is asked too."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.integration.wsgi_support import REPO
from tests.support.harness import wait_for


@pytest.fixture
def srv(conf, make_server, tmp_path):
    conf.add(f'WSGIPythonPath "{REPO}"')
    conf.add("ASGIApp /ws tests.apps.ws_apps:app")
    conf.add("ASGIApp /raw tests.apps.ws_apps:raw_echo")
    conf.add("WebSocketMaxMessageSize 2097152")
    conf.add(f'CustomLog "{tmp_path / "access_log"}" "%>s \\"%r\\" %b"')
    conf.set("GracefulShutdownTimeout", "3")
    server = make_server(conf)
    server.access_log = tmp_path / "access_log"
    return server


def ws_url(server, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_echo_text_binary_and_subprotocol(srv):
    async def go():
        async with connect(ws_url(srv, "/ws/echo"), compression=None) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\x01binary")
            assert await ws.recv() == b"\x00\x01binary"
            await ws.send(["frag", "mented ", "text"])        # one message in three frames
            assert await ws.recv() == "fragmented text"
        async with connect(ws_url(srv, "/ws/sub?x=1"), subprotocols=["chat.v1", "chat.v2"]) as ws:
            assert ws.subprotocol == "chat.v2"
            assert ws.response.headers["x-ws"] == "yes"
            info = json.loads(await ws.recv())
            assert info == {"offered": ["chat.v1", "chat.v2"], "path": "/ws/sub",
                            "root": "/ws", "scheme": "ws", "query": "x=1"}
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 1000
    run(go())


def test_refusal_denial_and_plain_http(srv):
    async def go():
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(srv, "/ws/refuse")):
                pass
        assert refused.value.response.status_code == 403
        with pytest.raises(InvalidStatus) as denied:
            async with connect(ws_url(srv, "/ws/deny")):
                pass
        assert denied.value.response.status_code == 418
        assert denied.value.response.body == b"no entry"
        with pytest.raises(InvalidStatus) as crashed:         # no route: Starlette closes -> 403
            async with connect(ws_url(srv, "/ws/nowhere")):
                pass
        assert crashed.value.response.status_code == 403
    run(go())
    # An Upgrade to a handler that is no websocket endpoint is served as plain HTTP, and the
    # connection goes on with the next request (the static file handler here).
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        data = _read_until(s, b"</h1>\n")
        assert data.startswith(b"HTTP/1.1 200 ")
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _read_until(s, b"</h1>\n").startswith(b"HTTP/1.1 200 ")


def _read_until(s: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_close_codes_both_ways(srv):
    async def go():
        async with connect(ws_url(srv, "/ws/close")) as ws:
            await ws.send("4001 custom reason")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "custom reason")
        async with connect(ws_url(srv, "/ws/record")) as ws:
            await ws.send("x")
            await ws.close(code=4002, reason="client says bye")
        async def recorded():
            async with connect(ws_url(srv, "/ws/closed")) as ws:
                return json.loads(await ws.recv())
        got = {}
        for _ in range(50):                                  # the app saw the disconnect
            got = await recorded()
            if got:
                break
            await asyncio.sleep(0.1)
        # each process has its own app: on several processes the record may be elsewhere
        if got:
            assert got == {"code": 4002, "reason": "client says bye"}
        async with connect(ws_url(srv, "/ws/crash")) as ws:  # the app raises: 1011
            await ws.send("x")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 1011
    run(go())
    wait_for(lambda: "websocket app failed" in srv.error_log_text(), timeout=10,
             message="the traceback in the ErrorLog")


def test_deflate_ping_and_large_messages(srv):
    async def go():
        async with connect(ws_url(srv, "/ws/echo"), max_size=None) as ws:
            assert "permessage-deflate" in ws.response.headers["sec-websocket-extensions"]
            big = "a" * (1 << 20)                            # 1 MiB, compressed on the wire
            await ws.send(big)
            assert await ws.recv() == big
            blob = bytes(range(256)) * 4096                  # 1 MiB binary
            await ws.send(blob)
            assert await ws.recv() == blob
            latency = await (await ws.ping(b"are you there"))
            assert latency >= 0
        async with connect(ws_url(srv, "/ws/echo"), compression=None) as ws:
            assert "sec-websocket-extensions" not in ws.response.headers
            with pytest.raises(ConnectionClosed) as closed:  # over WebSocketMaxMessageSize
                await ws.send(b"x" * (3 << 20))
                await ws.recv()
            assert closed.value.rcvd.code == 1009
    run(go())


def test_many_connections_at_once(srv, mpm):
    count = 200 if mpm == "nginx" else 8                    # blocking MPMs: a thread each

    async def one(i: int) -> None:
        async with connect(ws_url(srv, "/raw/"), compression=None) as ws:
            for j in range(20):
                await ws.send(f"{i}-{j}")
                assert await ws.recv() == f"{i}-{j}"

    async def go():
        await asyncio.gather(*(one(i) for i in range(count)))
    run(go())


def test_access_log_has_the_101_when_the_connection_ends(srv):
    async def go():
        async with connect(ws_url(srv, "/ws/echo?log=1"), compression=None) as ws:
            await ws.send("x" * 10)
            await ws.recv()
            await asyncio.sleep(0.3)
            assert "log=1" not in (srv.access_log.read_text() if srv.access_log.exists() else "")
    run(go())
    wait_for(lambda: srv.access_log.exists() and "log=1" in srv.access_log.read_text(), timeout=10,
             message="the access log line")
    line = [ln for ln in srv.access_log.read_text().splitlines() if "log=1" in ln][0]
    assert line.startswith('101 "GET /ws/echo?log=1 HTTP/1.1" ')
    assert int(line.split()[-1]) > 10                        # the frames written after the 101


def test_graceful_stop_closes_websockets_with_1001(srv):
    async def go():
        async with connect(ws_url(srv, "/ws/echo"), compression=None) as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            began = time.monotonic()
            srv.signal(signal.SIGWINCH)                      # graceful-stop
            await asyncio.sleep(0.5)
            await ws.send("during the grace")                # still served meanwhile
            assert await ws.recv() == "during the grace"
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 1001
            return time.monotonic() - began
    took = run(go())
    assert 1.5 <= took <= 6                                  # GracefulShutdownTimeout 3, less 1
    srv.proc.wait(15)


@pytest.mark.parametrize("mpm", ["nginx"])
def test_refusal_status_as_uvicorn(srv, tmp_path):
    """uvicorn answers a websocket the app closes before accepting with 403, and one whose
    app returns without answering with 500: mpmd too."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uv = subprocess.Popen([sys.executable, "-m", "uvicorn", "--port", str(port), "--log-level",
                           "warning", "tests.apps.ws_apps:app"], cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _connects(port), timeout=20, message="uvicorn listening")

        async def status(url: str) -> int:
            try:
                async with connect(url):
                    return 101
            except InvalidStatus as exc:
                return exc.response.status_code

        async def go():
            for path in ("/refuse", "/deny", "/nowhere", "/echo"):
                theirs = await status(f"ws://127.0.0.1:{port}{path}")
                ours = await status(ws_url(srv, "/ws" + path))
                assert ours == theirs, path
        run(go())
    finally:
        uv.terminate()
        uv.wait(10)


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_graceful_restart_keeps_websockets_for_the_grace(srv):
    """SIGUSR1: the retiring generation serves its websockets on, then closes them with 1001;
    a new websocket meanwhile is the new generation's."""
    async def go():
        async with connect(ws_url(srv, "/ws/echo"), compression=None) as old:
            await old.send("before")
            assert await old.recv() == "before"
            srv.signal(signal.SIGUSR1)
            await asyncio.sleep(0.8)
            await old.send("during")
            assert await old.recv() == "during"
            async with connect(ws_url(srv, "/ws/echo"), compression=None) as new:
                await new.send("new")
                assert await new.recv() == "new"
                with pytest.raises(ConnectionClosed) as closed:
                    await old.recv()
                assert closed.value.rcvd.code == 1001
                await new.send("still")                       # the new one is not closed
                assert await new.recv() == "still"
    run(go())


def test_frames_in_the_handshake_packet_and_a_bad_handshake(srv):
    """A client that sends its first frame in the same packet as the handshake gets it
    echoed (the core held it, connection.py Rule 10); a bad Sec-WebSocket-Version is a 400."""
    from wsproto.connection import Connection as WsClient, ConnectionType
    from wsproto.events import TextMessage
    client = WsClient(ConnectionType.CLIENT)
    head = (b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(head + client.send(TextMessage("early")))
        data = b""
        while b"\r\n\r\n" not in data:        # the echo may come in the same read
            data += s.recv(65536)
        answer, _, rest = data.partition(b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 101 ")
        assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in answer
        client.receive_data(rest)
        events = list(client.events())
        while not events:
            client.receive_data(s.recv(65536))
            events = list(client.events())
        assert events[0].data == "early"
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(head.replace(b"Version: 13", b"Version: 8"))
        assert _read_until(s, b"\r\n\r\n").startswith(b"HTTP/1.1 400 ")


def test_websockets_over_tls(conf, make_server, tmp_path):
    """wss:// on every MPM: the nginx MPM's TLS transport, the blocking MPMs' TlsPump
    (mpm/conn.py Rule 10); a 1 MiB message both ways and a close code."""
    from tests.support.tlscerts import make_pki, ssl_lines
    pki = make_pki(tmp_path / "pki")
    conf.add(f'WSGIPythonPath "{REPO}"')
    conf.add("ASGIApp /ws tests.apps.ws_apps:app")
    conf.add(ssl_lines(pki))
    server = make_server(conf)

    async def go():
        url = f"wss://localhost:{server.port}/ws/echo"
        async with connect(url, ssl=pki.client_context(), max_size=None) as ws:
            await ws.send("secure")
            assert await ws.recv() == "secure"
            blob = bytes(range(256)) * 4096
            await ws.send(blob)
            assert await ws.recv() == blob
        async with connect(f"wss://localhost:{server.port}/ws/sub", ssl=pki.client_context()) as ws:
            assert json.loads(await ws.recv())["scheme"] == "wss"
        async with connect(f"wss://localhost:{server.port}/ws/close", ssl=pki.client_context()) as ws:
            await ws.send("4003 over tls")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4003
    run(go())
