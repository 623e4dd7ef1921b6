"""The HTTP core's fuzzing oracle: bytes in, in any chunking, the same events out.

``events(chunks)`` feeds a fresh ``Connection`` each chunk and drains it after each one (as a
transport does), summarising what comes out; ``check(data, cuts)`` asserts the two properties
every fuzz target here holds the core to:
  1. nothing but ``ProtocolError`` ever escapes (no IndexError, no UnicodeError, no hang);
  2. how the bytes are cut into reads changes nothing: the events of the whole buffer are the
     events of the same bytes cut at ``cuts``.  One known leeway: an unknown method *behind*
     an earlier request on the connection may be judged 400 or 501 by where the read that
     brought it began (http/connection.py Rule 9 finds its line by scanning that read, and
     llhttp reports no offset); a first request's is always judged on its whole line.
"""

from __future__ import annotations

from typing import Iterable

from mpmd.http.connection import Connection
from mpmd.http.errors import ProtocolError
from mpmd.http.events import NEED_DATA, PAUSED, ConnectionClosed, Data, EndOfMessage, Request

MAX_EVENTS = 10_000


def events(chunks: Iterable[bytes]) -> list[object]:
    conn = Connection()
    out: list[object] = []
    body: list[bytes] = []
    for chunk in [*chunks, b""]:                     # b"": the peer closed
        conn.receive_data(chunk)
        for _ in range(MAX_EVENTS):
            try:
                event = conn.next_event()
            except ProtocolError as exc:
                out.append(("ERR", exc.status))
                return out
            if event is NEED_DATA:
                break
            if event is PAUSED:
                conn.start_next_cycle()
            elif isinstance(event, ConnectionClosed):
                out.append("CLOSED")
                return out
            elif isinstance(event, Request):
                out.append(("REQ", event.method, event.target, event.headers, event.http_version,
                            event.keep_alive, event.content_length, event.chunked))
            elif isinstance(event, Data):
                body.append(bytes(event.data))
            elif isinstance(event, EndOfMessage):
                out.append(("BODY", b"".join(body)))
                body.clear()
        else:
            raise AssertionError("the core did not stop producing events")
    return out


def cut(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``data`` split at the given offsets (sorted, deduplicated, within range)."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


def check(data: bytes, cuts: Iterable[int]) -> None:
    whole = events([data])
    pieces = events(cut(data, cuts))
    assert _leeway(whole) == _leeway(pieces), (data, list(cuts), whole, pieces)


def _leeway(out: list[object]) -> list[object]:
    """The one known leeway (module docstring): 400/501 after an earlier request."""
    if len(out) > 1 and out[-1] in (("ERR", 400), ("ERR", 501)):
        return [*out[:-1], ("ERR", "400|501")]
    return out
