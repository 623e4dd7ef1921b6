"""The server side of one WebSocket connection, sans I/O, on wsproto (RFC 6455, RFC 7692).

Theory of operation: the HTTP core parses the opening handshake (a GET with ``Upgrade:
websocket``) like any request; ``handshake_error`` says whether it is a valid one and
``accept_headers`` gives the 101's fields.  After the 101, ``Session`` owns the byte stream:
``receive_data`` turns frames into messages (``Message``/``Closed``), ``send_*`` turn
messages into frames; the bytes to write collect in ``outgoing`` (``take``).  wsproto does the
framing, masking, UTF-8 checks, control frames and permessage-deflate; nothing here touches
a socket.

Rule 1: a ping is answered with its pong at once (wsproto's ``Ping.response``); a pong is
        dropped.
Rule 2: a message is assembled from its frames (and fragments); one whose payload (after
        inflation) passes ``max_size`` closes the connection with 1009 (Message Too Big), as
        uvicorn's ``ws_max_size``; a protocol error closes it with wsproto's code (1002, 1007).
Rule 3: closing: a Close from the peer is answered with the same code (wsproto's
        ``response``) and reported once as ``Closed(code, reason)``; a close the server starts
        (``close``) is reported when the peer's Close comes back, or as 1006 when the stream
        ends first.  ``finished`` is True once no frame can move any more: the driver then
        closes the TCP connection (RFC 6455 7.1.1: the server closes first).
Rule 4: permessage-deflate is agreed when the client offers it and ``deflate`` is on
        (wsproto's ``PerMessageDeflate.accept`` picks the parameters).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Iterable

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message as WsMessage, Ping, TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason
from wsproto.handshake import server_extensions_handshake
from wsproto.utilities import LocalProtocolError, RemoteProtocolError, generate_accept_token

_OPEN = ConnectionState.OPEN
MAX_SIZE = 16 * 1024 * 1024          # uvicorn's ws_max_size default
GOING_AWAY = int(CloseReason.GOING_AWAY)
TOO_BIG = int(CloseReason.MESSAGE_TOO_BIG)
ABNORMAL = int(CloseReason.ABNORMAL_CLOSURE)
NORMAL = int(CloseReason.NORMAL_CLOSURE)


@dataclass(slots=True)
class Message:
    """A whole message: ``str`` for a text message, ``bytes`` for a binary one."""

    data: str | bytes


@dataclass(slots=True)
class Closed:
    """The connection is closed (Rule 3): the code the peer sent (or 1006, or ours)."""

    code: int
    reason: str = ""


def _tokens(values: Iterable[bytes]) -> list[str]:
    return [t.strip().decode("latin-1") for v in values for t in v.split(b",") if t.strip()]


def is_upgrade(request: Any) -> bool:
    """A websocket opening handshake by its fields: GET, ``Upgrade: websocket`` and ``upgrade``
    among Connection's tokens (RFC 6455 4.2.1); the rest is ``handshake_error``'s."""
    if request.method != "GET":
        return False
    upgrade = request.header(b"upgrade")
    if upgrade is None or b"websocket" not in upgrade.lower():
        return False
    return "upgrade" in (t.lower() for t in _tokens(request.header_values(b"connection")))


def handshake_error(request: Any) -> str | None:
    """Why an upgrade request is no valid opening handshake (answered 400), or None."""
    if request.http_version != "1.1":
        return "WebSocket handshake over HTTP/1.0"
    key = request.header(b"sec-websocket-key")
    try:
        if key is None or len(base64.b64decode(key, validate=True)) != 16:
            return "missing or malformed Sec-WebSocket-Key"
    except ValueError:
        return "malformed Sec-WebSocket-Key"
    if request.header(b"sec-websocket-version") != b"13":
        return "unsupported Sec-WebSocket-Version"   # RFC 6455 4.4: 426 would name 13
    return None


def subprotocols(request: Any) -> list[str]:
    return _tokens(request.header_values(b"sec-websocket-protocol"))


def accept_headers(request: Any, subprotocol: str | None, extra: Iterable[tuple[bytes, bytes]],
                   deflate: bool) -> tuple[list[tuple[str, str]], list[Any]]:
    """(the 101's fields, the extensions agreed) for ``request`` (Rule 4).  ``Connection:
    Upgrade`` is the HTTP core's (core/respond.py), as every Connection field is."""
    key = request.header(b"sec-websocket-key") or b""
    headers = [("Upgrade", "websocket"),
               ("Sec-WebSocket-Accept", generate_accept_token(key).decode("ascii"))]
    if subprotocol:
        headers.append(("Sec-WebSocket-Protocol", subprotocol))
    extensions: list[Any] = []
    offers = _tokens(request.header_values(b"sec-websocket-extensions"))
    if deflate and offers:
        # wsproto's split keeps each offer's parameters with it (";" is not split)
        deflater = PerMessageDeflate()
        agreed = server_extensions_handshake(offers, [deflater])
        if agreed is not None:
            headers.append(("Sec-WebSocket-Extensions", agreed.decode("ascii")))
            extensions.append(deflater)
    for name, value in extra:
        lname = bytes(name).lower()
        if lname not in (b"upgrade", b"connection", b"sec-websocket-accept",
                         b"sec-websocket-extensions", b"sec-websocket-protocol"):
            headers.append((bytes(name).decode("latin-1"), bytes(value).decode("latin-1")))
    return headers, extensions


class Session:
    """One upgraded connection's frames (see the module docstring)."""

    __slots__ = ("ws", "max_size", "outgoing", "parts", "size", "closed", "finished")

    def __init__(self, extensions: list[Any], max_size: int = MAX_SIZE) -> None:
        self.ws = Connection(ConnectionType.SERVER, extensions)
        self.max_size = max_size or MAX_SIZE
        self.outgoing = bytearray()
        self.parts: list[Any] = []     # the message being assembled
        self.size = 0
        self.closed: Closed | None = None   # reported to the app (once)
        self.finished = False

    def take(self) -> bytes:
        out = bytes(self.outgoing)
        self.outgoing.clear()
        return out

    @property
    def open(self) -> bool:
        return self.ws.state is ConnectionState.OPEN

    def receive_data(self, data: bytes | None) -> list[Message | Closed]:
        """Feed bytes (None: the stream ended); the messages and close they complete."""
        out: list[Message | Closed] = []
        if self.finished:
            return out
        ws = self.ws
        try:
            ws.receive_data(data)
            for event in ws.events():
                kind = type(event)           # exact types: isinstance on wsproto's ABCs costs
                if kind is TextMessage or kind is BytesMessage:
                    if self._assemble(event, out):
                        break
                elif kind is Ping:
                    self._send(event.response())                          # Rule 1
                elif isinstance(event, CloseConnection):
                    if ws.state is ConnectionState.REMOTE_CLOSING:
                        self._send(event.response())                      # Rule 3
                        self._end(out, event.code, event.reason or "")
                    elif ws.state is ConnectionState.OPEN:                # Rule 2: a bad frame
                        self._send(CloseConnection(event.code, event.reason[:120] or None))
                        self._end(out, event.code, "")
                        self.finished = True
                    else:                                                 # our close came back
                        self._end(out, event.code, event.reason or "")
                    break
        except RemoteProtocolError as exc:                                # Rule 2
            code = int(exc.event_hint.code) if isinstance(exc.event_hint, CloseConnection) \
                else int(CloseReason.PROTOCOL_ERROR)
            self.close(code, str(exc)[:120])
            self._end(out, code, "")
        except LocalProtocolError:
            self._end(out, ABNORMAL, "")
        if ws.state is ConnectionState.CLOSED:
            self.finished = True
        return out

    def _assemble(self, event: WsMessage, out: list[Message | Closed]) -> bool:
        data = event.data
        self.size += len(data)
        if self.size > self.max_size:                                     # Rule 2
            self.parts.clear()
            self.close(TOO_BIG, "message too big")
            self._end(out, TOO_BIG, "")
            return True
        if event.message_finished and not self.parts:
            out.append(Message(data if type(data) is not bytearray else bytes(data)))
            self.size = 0
            return False
        self.parts.append(data)
        if event.message_finished:
            text = isinstance(event, TextMessage)
            out.append(Message("".join(self.parts) if text else b"".join(self.parts)))
            self.parts.clear()
            self.size = 0
        return False

    def _end(self, out: list[Message | Closed], code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = Closed(code, reason)
            out.append(self.closed)
        if self.ws.state is not ConnectionState.LOCAL_CLOSING:
            self.finished = True

    def _send(self, event: Any) -> None:
        try:
            self.outgoing += self.ws.send(event)
        except LocalProtocolError:
            pass                       # the connection is closing: nothing more goes out

    def send_message(self, data: str | bytes) -> bool:
        """Queue one message; False when the connection no longer takes messages."""
        if self.ws.state is not _OPEN:
            return False
        self._send(TextMessage(data) if isinstance(data, str) else BytesMessage(bytes(data)))
        return True

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Start (or answer) the closing handshake (Rule 3)."""
        state = self.ws.state
        if state is ConnectionState.OPEN or state is ConnectionState.REMOTE_CLOSING:
            self._send(CloseConnection(code, reason or None))
        if self.ws.state is ConnectionState.CLOSED:
            self.finished = True

    def lost(self) -> list[Message | Closed]:
        """The stream ended without a Close (1006)."""
        out: list[Message | Closed] = []
        if self.closed is None:
            self.closed = Closed(ABNORMAL, "")
            out.append(self.closed)
        self.finished = True
        return out


__all__ = ["Session", "Message", "Closed", "is_upgrade", "handshake_error", "accept_headers",
           "subprotocols", "MAX_SIZE", "GOING_AWAY", "TOO_BIG", "NORMAL", "ABNORMAL"]
