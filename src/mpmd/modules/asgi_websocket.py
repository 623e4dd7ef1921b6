"""The ASGI ``websocket`` scope (ASGI spec 2.4) of mod_asgi, on any MPM.

Theory: a GET with ``Upgrade: websocket`` to an ASGI mount (``is_upgrade``) runs the app with
a websocket scope instead of an http one.  ``WebSocketCycle`` is the app's receive/send and,
once the app accepted, the connection's asyncio Protocol: the driver writes the 101 the cycle
handed it (a ``Response`` whose body is the cycle) and gives it the transport (``attach``);
from then on bytes go between the transport and the sans-I/O ``Session``
(mpmd/http/websocket.py).  The nginx MPM hands over its own transport (``set_protocol``);
the blocking MPMs hand the socket to the ASGI loop thread (``connect_accepted_socket``) and
their thread waits for the end.  Either way the app runs on an event loop and no thread reads
or writes a websocket.

Rule 1: before the app accepts, ``receive()`` gives ``websocket.connect``.  The app's
        ``websocket.accept`` (``subprotocol``, ``headers``) is answered 101;
        ``websocket.close`` before it is a 403, and the denial extension
        (``websocket.http.response.start``/``.body``) answers with the app's status, fields
        and body; an app that ends or raises before either is a 500 (logged), as uvicorn.
Rule 2: after the 101, ``receive()`` gives ``websocket.receive`` (``text`` or ``bytes``) per
        message and, once, ``websocket.disconnect`` (``code``, ``reason``): the peer's Close,
        1006 when the stream ended without one, 1009 for a message over
        WebSocketMaxMessageSize.  ``websocket.send`` after the connection is gone raises
        ``ClientDisconnected`` (an OSError, ASGI 2.4).
Rule 3: the app's ``websocket.close`` (code, reason) starts the closing handshake; the TCP
        connection closes when the peer's Close comes back or after ``CLOSE_TIMEOUT_S``.  An
        app that returns with the connection open closes it with 1000, one that raises with
        1011 (logged).
Rule 4: backpressure both ways: ``send()`` waits while the transport's buffer is over its
        high-water mark; received messages the app has not taken yet stop the reading past
        ``INBOX_BYTES``, until the app took them.
Rule 5: a graceful stop or restart closes every open websocket with 1001 (going away) once the
        process's grace is over (``core.exchange.close_upgraded``, which the MPMs call).
Rule 6: the access log's line is written when the connection ends: status 101, the request
        line, %b the bytes written after the 101.
"""

from __future__ import annotations

import asyncio
import traceback
from collections import deque
from typing import Any, Callable

from mpmd.core.exchange import UPGRADED, Response
from mpmd.modules.mod_wsgi import _log
from mpmd.http.websocket import (GOING_AWAY, NORMAL, Closed, Message, Session, accept_headers,
                                 handshake_error, subprotocols)
from mpmd.tls.variables import asgi_extension

CLOSE_TIMEOUT_S = 5.0
INBOX_BYTES = 1 << 20
CONNECTING, ACCEPTED, ENDED = 0, 1, 2


class ClientDisconnected(OSError):
    """``send()`` on a websocket that is gone (ASGI 2.4: an OSError subclass)."""


def build_ws_scope(ctx: Any, mount: str, state: dict[str, Any] | None) -> dict[str, Any]:
    req = ctx.request
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": req.http_version,
        "scheme": "wss" if ctx.conn.scheme == "https" else "ws",
        "path": ctx.uri_path,
        "raw_path": req.path,
        "query_string": req.query,
        "root_path": mount,
        "headers": list(req.headers),
        "client": tuple(ctx.useragent or ctx.conn.client_addr),
        "server": tuple(ctx.conn.server_addr),
        "subprotocols": subprotocols(req),
        "extensions": {"websocket.http.response": {}},
    }
    if state is not None:
        scope["state"] = dict(state)
    if ctx.conn.tls is not None:
        scope["extensions"]["tls"] = asgi_extension(ctx.conn.tls)   # type: ignore[index]
    return scope


class WebSocketCycle(asyncio.Protocol):
    """One websocket request: the app's receive/send, then the connection's Protocol."""

    def __init__(self, ctx: Any, loop: asyncio.AbstractEventLoop,
                 answer: Callable[[Response], None], max_size: int, deflate: bool) -> None:
        self.ctx = ctx
        self.loop = loop
        self.answer = answer                # hands the driver the 101 or the refusal (Rule 1)
        self.max_size = max_size
        self.deflate = deflate
        self.state = CONNECTING
        self.connected = False              # websocket.connect given
        self.session: Session | None = None
        self.transport: Any = None
        self.inbox: deque[dict[str, Any]] = deque()
        self.inbox_bytes = 0
        self.waiter: asyncio.Future[None] | None = None
        self.drain: asyncio.Future[None] | None = None
        self.paused_write = False
        self.read_paused = False
        self.lost = False                   # the transport is gone
        self.disconnect: dict[str, Any] | None = None
        self.close_sent = False
        self.timer: Any = None
        self.sent = 0                       # bytes written after the 101 (Rule 6)
        self.on_end: Callable[[int], None] | None = None   # the driver's, once it ended
        self.denial: tuple[int, list[Any], list[bytes]] | None = None
        self.tail = b""                     # bytes after the head, for connection_made

    # -- the app's side ----------------------------------------------------------------------
    async def receive(self) -> dict[str, Any]:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        while True:
            if self.inbox:
                message = self.inbox.popleft()
                self.inbox_bytes -= len(message.get("text") or message.get("bytes") or "")
                if self.read_paused and self.inbox_bytes < INBOX_BYTES // 4 and not self.lost:
                    self.read_paused = False
                    self.transport.resume_reading()
                return message
            if self.disconnect is not None:
                return self.disconnect
            if self.state == ENDED:
                return {"type": "websocket.disconnect", "code": 1006, "reason": ""}
            self.waiter = self.loop.create_future()
            await self.waiter

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        state = self.state
        if state == CONNECTING:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._refuse(Response(403, [], b"", close_connection=True))
            elif kind == "websocket.http.response.start" and self.denial is None:
                self.denial = (int(message["status"]), list(message.get("headers", ())), [])
            elif kind == "websocket.http.response.body" and self.denial is not None:
                self.denial[2].append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    status, raw, body = self.denial
                    headers = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in raw]
                    self._refuse(Response(status, headers, b"".join(body), close_connection=True))
            else:
                raise RuntimeError(f"unexpected ASGI message {kind!r} before websocket.accept")
            return
        if state == ENDED and self.session is None:
            raise RuntimeError(f"unexpected ASGI message {kind!r}: the websocket was refused")
        session = self.session
        assert session is not None
        if kind == "websocket.send":
            if self.close_sent:
                raise RuntimeError("websocket.send after websocket.close")
            if self.lost or not session.open:
                raise ClientDisconnected("the websocket is closed")
            text = message.get("text")
            session.send_message(text if text is not None else message.get("bytes") or b"")
            self.flush()
            if self.paused_write and not self.lost:          # Rule 4
                self.drain = self.loop.create_future()
                await self.drain
        elif kind == "websocket.close":
            if not self.close_sent:
                self.start_close(int(message.get("code") or NORMAL), message.get("reason") or "")
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} after websocket.accept")

    def _accept(self, message: dict[str, Any]) -> None:
        headers, extensions = accept_headers(self.ctx.request, message.get("subprotocol"),
                                             message.get("headers") or (), self.deflate)
        self.session = Session(extensions, self.max_size)
        self.state = ACCEPTED
        self.answer(Response(101, headers, self))

    def _refuse(self, resp: Response) -> None:
        self.state = ENDED
        self.disconnect = {"type": "websocket.disconnect", "code": 1000, "reason": ""}
        self.answer(resp)

    def app_done(self, failed: bool) -> None:
        """The app returned (or raised, ``failed``) after accepting (Rule 3)."""
        if self.session is not None and not self.close_sent and not self.lost:
            self.start_close(1011 if failed else NORMAL, "")

    def close(self) -> None:
        """The Response's body released unsent (the client left before the 101 went out)."""
        self.connection_lost(None)

    def start_close(self, code: int, reason: str) -> None:
        session = self.session
        if session is None:
            return
        self.close_sent = True
        session.close(code, reason)
        self.flush()
        if self.transport is not None and not self.lost and self.timer is None:
            self.timer = self.loop.call_later(CLOSE_TIMEOUT_S, self._give_up)

    def going_away(self) -> None:
        """Rule 5."""
        if self.session is not None and not self.close_sent and not self.lost:
            self.start_close(GOING_AWAY, "server shutting down")

    def _give_up(self) -> None:
        self.timer = None
        if self.transport is not None and not self.lost:
            self.transport.abort()

    # -- the connection's side (asyncio.Protocol) ---------------------------------------------
    def attach(self, transport: Any, tail: bytes) -> None:
        """The driver wrote the 101: from here on the connection is this cycle's."""
        self.transport = transport
        UPGRADED[self] = None
        self.flush()
        if self.close_sent and self.timer is None:
            self.timer = self.loop.call_later(CLOSE_TIMEOUT_S, self._give_up)
        if tail:
            self.data_received(tail)

    def connection_made(self, transport: Any) -> None:
        self.attach(transport, self.tail)

    def flush(self) -> None:
        session = self.session
        if session is None or self.transport is None or self.lost:
            return
        if session.outgoing:
            data = session.take()
            self.sent += len(data)
            self.transport.write(data)
        if session.finished:
            self.transport.close()           # RFC 6455 7.1.1: the server closes first

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None:
            return
        self._deliver(session.receive_data(data))
        self.flush()
        if self.inbox_bytes > INBOX_BYTES and not self.read_paused and not self.lost:
            self.read_paused = True          # Rule 4
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        if self.session is not None:
            self._deliver(self.session.lost())
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.lost:
            return
        self.lost = True
        self.state = ENDED
        UPGRADED.pop(self, None)
        if self.session is not None:
            self._deliver(self.session.lost())
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._wake()
        drain, self.drain = self.drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)
        on_end, self.on_end = self.on_end, None
        if on_end is not None:
            on_end(self.sent)

    def pause_writing(self) -> None:
        self.paused_write = True

    def resume_writing(self) -> None:
        self.paused_write = False
        drain, self.drain = self.drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def _deliver(self, events: list[Message | Closed]) -> None:
        for event in events:
            if type(event) is Message:
                data = event.data
                if type(data) is str:
                    self.inbox.append({"type": "websocket.receive", "text": data})
                else:
                    self.inbox.append({"type": "websocket.receive", "bytes": data})
                self.inbox_bytes += len(data)
            else:
                self.disconnect = {"type": "websocket.disconnect", "code": event.code,
                                   "reason": event.reason}
        if events:
            self._wake()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


async def serve(mount: Any, ctx: Any, ws: WebSocketCycle, state: dict[str, Any] | None,
                fail: Callable[[BaseException | None], Response]) -> None:
    """Run ``mount``'s app on the websocket scope (Rules 1 and 3); ``fail`` makes (and logs)
    the 500 for an app that ended before answering."""
    error = handshake_error(ctx.request)
    if error is not None:
        from mpmd.core.errors import error_response
        ws.state = ENDED
        ws.answer(error_response(400, close=True))
        return
    try:
        await mount.app(build_ws_scope(ctx, mount.mount, state), ws.receive, ws.send)
    except Exception as exc:  # noqa: BLE001 - Rules 1 and 3
        if ws.state == CONNECTING:
            ws.state = ENDED
            ws.answer(fail(exc))
            return
        if not isinstance(exc, ClientDisconnected):
            tb = "".join(traceback.format_exception(exc)).rstrip()
            _log(getattr(mount, "log", None), "error", "MPMD0807",
                 f"exception in ASGI websocket application {mount.spec}:\n{tb}", ctx)
        ws.app_done(True)
        return
    if ws.state == CONNECTING:
        ws.state = ENDED
        ws.answer(fail(None))
        return
    ws.app_done(False)


__all__ = ["WebSocketCycle", "ClientDisconnected", "build_ws_scope", "serve"]
