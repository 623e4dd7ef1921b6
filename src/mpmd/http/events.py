"""Events the core produces from received bytes (h11 style).

Rule 1: a request is ``Request`` [``Data``...] ``EndOfMessage``, always in that order.
Rule 2: after ``EndOfMessage`` the connection yields ``PAUSED`` until the server calls
        ``Connection.start_next_cycle()``, so pipelined requests are answered in order.
Rule 3: ``NEED_DATA`` means: call ``receive_data`` with more bytes (``b""`` for EOF).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Sentinel(Enum):
    NEED_DATA = "NEED_DATA"
    PAUSED = "PAUSED"


NEED_DATA = Sentinel.NEED_DATA
PAUSED = Sentinel.PAUSED


@dataclass(slots=True, eq=False)
class Request:
    """A parsed request head.  Treat it as immutable: it is not frozen only because a frozen
    dataclass costs twice as much to build, and one is built per request."""

    method: str                                   # "GET"
    target: bytes                                 # raw request-target, as sent
    path: bytes                                   # raw (still %-encoded) path part of target
    query: bytes                                  # raw query string without "?" (b"" if none)
    http_version: str                             # "1.0" or "1.1"
    headers: tuple[tuple[bytes, bytes], ...]      # names lower-cased, values stripped
    keep_alive: bool                              # what the client asked for (RFC 9112 9.3)
    expect_continue: bool                         # "Expect: 100-continue" was sent
    content_length: int | None                    # None when chunked or no body
    chunked: bool                                 # Transfer-Encoding: chunked

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def header(self, name: bytes) -> bytes | None:
        """First value of header ``name`` (lower-case bytes), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_values(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name]


@dataclass(frozen=True, slots=True)
class Data:
    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    pass


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed (EOF) between requests."""


Event = Request | Data | EndOfMessage | ConnectionClosed | Sentinel
