"""mod_proxy_wstunnel: ``ProxyPass /ws ws://backend/ws`` tunnels WebSocket upgrades.

Theory: a request with ``Upgrade: websocket`` to a ws:// rule is sent to the backend with its
Upgrade and Connection fields, on a connection of its own (never pooled), from an event loop
(the nginx MPM's, or on a blocking MPM the process's "proxy-loop" thread, whose request
thread waits for the answer).  A backend that answers 101 gets the connection: the 101 goes to
the client with the backend's fields, and from then on ``Tunnel`` moves raw bytes both ways,
frames untouched (the MPM's driver hands it the client connection, as for an ASGI
websocket: core/exchange.py UPGRADED).  Any other answer is relayed as an HTTP answer.

Rule 1: backpressure both ways: a side whose peer's write buffer is over its high-water mark
        stops being read until it drains.
Rule 2: either side closing (or failing) ends the tunnel: the other side is closed after what
        was already received is written; the access log gets the 101 with %b the bytes
        written to the client after it.
Rule 3: a request without Upgrade to a ws:// rule is proxied as plain HTTP to the same backend.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

import httptools

from mpmd.core.exchange import UPGRADED, Response
from mpmd.modules.proxy_client import READ_SIZE, BackendError, Worker, _Parse


class Tunnel(asyncio.Protocol):
    """The client side's Protocol after the 101; the backend side is a stream pair."""

    def __init__(self, loop: asyncio.AbstractEventLoop, reader: Any, writer: Any,
                 early: bytes) -> None:
        self.loop = loop
        self.reader = reader
        self.writer = writer
        self.early = early                  # backend bytes that came with its 101
        self.transport: Any = None
        self.on_end: Callable[[int], None] | None = None
        self.tail = b""
        self.sent = 0
        self.ended = False
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.pump: Any = None

    def attach(self, transport: Any, tail: bytes) -> None:
        self.transport = transport
        UPGRADED[self] = None
        if tail:
            self.data_received(tail)
        if self.early:
            self.sent += len(self.early)
            transport.write(self.early)
        self.pump = self.loop.create_task(self._from_backend())

    def connection_made(self, transport: Any) -> None:
        self.attach(transport, self.tail)

    async def _from_backend(self) -> None:
        try:
            while True:
                data = await self.reader.read(READ_SIZE)
                if not data or self.ended:
                    break
                self.sent += len(data)
                self.transport.write(data)
                await self.can_write.wait()          # Rule 1
        except Exception:  # noqa: BLE001 - Rule 2: the tunnel ends
            pass
        if not self.ended and self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.writer.write(data)
        transport = self.writer.transport
        if transport.get_write_buffer_size() > READ_SIZE * 4 and self.transport is not None:
            self.transport.pause_reading()            # Rule 1
            self.loop.create_task(self._drained())

    async def _drained(self) -> None:
        try:
            await self.writer.drain()
        except Exception:  # noqa: BLE001
            return
        if not self.ended:
            self.transport.resume_reading()

    def eof_received(self) -> bool:
        if self.writer.can_write_eof():
            self.writer.write_eof()
        return True                                  # half-close: the backend may still talk

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.ended:
            return
        self.ended = True
        UPGRADED.pop(self, None)
        self.can_write.set()
        self.writer.close()
        if self.pump is not None:
            self.pump.cancel()
        on_end, self.on_end = self.on_end, None
        if on_end is not None:
            on_end(self.sent)

    def close(self) -> None:
        """The 101 was not sent (the client left first)."""
        self.writer.close()
        self.connection_lost(None)

    def going_away(self) -> None:
        if self.transport is not None and not self.ended:
            self.transport.close()


async def open_tunnel(worker: Worker, head: bytes, timeout: float,
                      loop: asyncio.AbstractEventLoop) -> tuple[int, list[tuple[bytes, bytes]], Any]:
    """(status, the backend's fields, a Tunnel for a 101 or the whole body for another)."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(worker.host, worker.port), timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        raise BackendError(503, "AH00957", f"WS: attempt to connect to {worker.hostport} "
                           f"({worker.host}) failed: {exc}") from None
    state = _Parse()
    parser = httptools.HttpResponseParser(state)
    buf = b""
    try:
        writer.write(head)
        await asyncio.wait_for(writer.drain(), timeout)
        while not state.head_done:
            data = await asyncio.wait_for(reader.read(READ_SIZE), timeout)
            if not data:
                raise BackendError(502, "AH01102", "error reading status line from remote "
                                   f"server {worker.hostport}")
            buf += data
            try:
                parser.feed_data(data)
            except httptools.HttpParserUpgrade as up:
                state.head_done = True
                early = buf[len(buf) - len(data) + up.args[0]:] if up.args else b""
                return 101, state.headers, Tunnel(loop, reader, writer, early)
        status = parser.get_status_code()
        if status == 101:
            return 101, state.headers, Tunnel(loop, reader, writer, b"".join(state.chunks))
        while not state.done:
            data = await asyncio.wait_for(reader.read(READ_SIZE), timeout)
            parser.feed_data(data)
            if not data:
                break
        writer.close()
        return status, state.headers, b"".join(state.chunks)
    except asyncio.TimeoutError:
        writer.close()
        raise BackendError(504, "AH01102", "error reading status line from remote server "
                           f"{worker.hostport}: timed out") from None
    except httptools.HttpParserError as exc:
        writer.close()
        raise BackendError(502, "AH01102", "error reading status line from remote server "
                           f"{worker.hostport}: {exc}") from None
    except OSError as exc:
        writer.close()
        raise BackendError(502, "AH01102", f"error reading from remote server "
                           f"{worker.hostport}: {exc}") from None


class ProxyLoop:
    """The per-process "proxy-loop" thread a blocking MPM's tunnels run on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="proxy-loop",
                                       daemon=True)
        self.thread.start()

    def call(self, coro: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5.0)


def answer_of(status: int, headers: list[tuple[str, str]], body: Any,
              upgrade: bytes | None) -> Response:
    if status == 101:
        return Response(101, [("Upgrade", (upgrade or b"websocket").decode("latin-1"))]
                        + headers, body)
    return Response(status, headers, body)
