"""The sans-I/O websocket pieces: the HTTP core's hold after an upgrade (connection.py Rule
10) and ``http/websocket.py``'s handshake checks and Session, against wsproto's client."""

from __future__ import annotations

from wsproto.connection import Connection as WsClient, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import PerMessageDeflate

from mpmd.http.connection import Connection
from mpmd.http.events import EndOfMessage, Request
from mpmd.http.websocket import (Closed, Message, Session, accept_headers, handshake_error,
                                 is_upgrade, subprotocols)

HEAD = (b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: chat, superchat\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")


def _request(conn: Connection) -> Request:
    request = conn.next_event()
    assert isinstance(request, Request)
    assert isinstance(conn.next_event(), EndOfMessage)
    return request


def test_bytes_after_an_upgrade_are_held_until_the_answer_is_known():
    conn = Connection()
    conn.receive_data(HEAD + b"\x81\x85frame")
    request = _request(conn)
    assert is_upgrade(request) and conn.upgrading
    conn.receive_data(b"more")
    assert conn.bytes_buffered == 11
    assert conn.take_over() == b"\x81\x85framemore"
    assert conn.closing


def test_a_plain_answer_parses_the_held_bytes_as_http():
    conn = Connection()
    conn.receive_data(HEAD + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    _request(conn)
    conn.start_next_cycle()
    assert not conn.upgrading
    assert conn.next_event().path == b"/next"


def test_other_upgrades_are_not_held():
    conn = Connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
                      b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    _request(conn)
    assert not conn.upgrading
    conn.start_next_cycle()
    assert conn.next_event().path == b"/next"


def test_handshake_checks_and_accept_headers():
    conn = Connection()
    conn.receive_data(HEAD)
    request = _request(conn)
    assert handshake_error(request) is None
    assert subprotocols(request) == ["chat", "superchat"]
    headers, extensions = accept_headers(request, "chat", [(b"x-a", b"1"), (b"upgrade", b"no")], True)
    fields = dict(headers)
    assert fields["Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="   # RFC 6455 1.3
    assert fields["Sec-WebSocket-Protocol"] == "chat" and fields["x-a"] == "1"
    assert fields["Upgrade"] == "websocket"
    assert fields["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
    assert len(extensions) == 1
    assert accept_headers(request, None, (), False)[1] == []
    bad = Connection()
    bad.receive_data(HEAD.replace(b"Version: 13", b"Version: 8"))
    assert "Version" in handshake_error(_request(bad))


def _pair(extensions=None, client_extensions=None, max_size=1 << 20):
    return WsClient(ConnectionType.CLIENT, client_extensions or []), Session(extensions or [], max_size)


def test_messages_fragments_and_pings():
    client, session = _pair()
    data = (client.send(TextMessage("héllo")) + client.send(BytesMessage(b"ab", message_finished=False))
            + client.send(Ping(b"p")) + client.send(BytesMessage(b"cd")))
    assert session.receive_data(data) == [Message("héllo"), Message(b"abcd")]
    client.receive_data(session.take())
    assert [type(e) for e in client.events()] == [Pong]
    assert session.send_message("back") and session.send_message(b"\x00")
    client.receive_data(session.take())
    assert [e.data for e in client.events()] == ["back", b"\x00"]


def test_permessage_deflate_both_ways():
    server_side, client_side = PerMessageDeflate(), PerMessageDeflate()
    client_side.finalize(server_side.accept("permessage-deflate"))   # as accept_headers agrees
    client, session = _pair([server_side], [client_side])
    text = "compress me " * 1000
    wire = client.send(TextMessage(text))
    assert len(wire) < len(text) // 10
    assert session.receive_data(wire) == [Message(text)]
    session.send_message(text)
    out = session.take()
    assert len(out) < len(text) // 10
    client.receive_data(out)
    assert [e.data for e in client.events()] == [text]


def test_a_message_over_the_limit_closes_with_1009():
    client, session = _pair(max_size=100)
    assert session.receive_data(client.send(BytesMessage(b"x" * 60, message_finished=False))) == []
    assert session.receive_data(client.send(BytesMessage(b"x" * 60))) == [Closed(1009, "")]
    client.receive_data(session.take())
    close = next(client.events())
    assert isinstance(close, CloseConnection) and close.code == 1009
    assert not session.finished                      # until the client's Close comes back
    session.receive_data(client.send(close.response()))
    assert session.finished


def test_closing_from_either_side():
    client, session = _pair()
    assert session.receive_data(client.send(CloseConnection(4002, "bye"))) == [Closed(4002, "bye")]
    assert session.finished
    client.receive_data(session.take())
    assert next(client.events()).code == 4002        # the echo of the client's code
    client, session = _pair()
    session.close(4001, "server")
    client.receive_data(session.take())
    close = next(client.events())
    assert (close.code, close.reason) == (4001, "server")
    assert session.receive_data(client.send(close.response())) == [Closed(4001, "server")]
    assert session.finished
    _, session = _pair()
    assert session.lost() == [Closed(1006, "")] and session.finished


def test_a_bad_frame_closes_with_a_protocol_error():
    _, session = _pair()
    out = session.receive_data(b"\x81\x05hello")      # unmasked client frame: RFC 6455 5.1
    assert out == [Closed(1002, "")] and session.finished
    close = session.take()
    assert close[:1] == b"\x88" and close[2:4] == (1002).to_bytes(2, "big")
