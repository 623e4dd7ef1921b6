"""The PROXY protocol header (HAProxy's spec, versions 1 and 2), read without I/O.

Theory: a balancer that speaks the PROXY protocol sends one header before anything else on the
connection (before a TLS handshake too), naming the client it accepted the connection from.
``ProxyHeaderReader`` is given bytes the transport has *peeked* at and says how many of them
belong to the header; the transport then consumes exactly those.  So no byte after the header
is ever taken from the socket: the HTTP parser, or OpenSSL, reads the rest from the socket
itself, and every transport (blocking, epoll, asyncio) reads the header the same way.

Rule 1: v1 is a text line ``PROXY TCP4|TCP6 src dst sport dport\\r\\n`` or ``PROXY UNKNOWN
        ...\\r\\n``, at most 107 bytes with its CRLF.  Addresses must be of the named family,
        ports decimal 0..65535.  UNKNOWN keeps the connection's own peer.
Rule 2: v2 is the 12-byte signature, a version/command byte (0x20 LOCAL, 0x21 PROXY), a
        family/transport byte and a 2-byte length, then that many bytes: the addresses
        (12 bytes for TCP over IPv4, 36 for IPv6) and TLVs, which are skipped.  LOCAL (a
        balancer's own health check) and the UNSPEC family keep the peer; a datagram or
        unix-socket family, another version or command, or a length the family's addresses
        do not fit is refused.  A v2 body over ``MAX_V2_BODY`` is refused (oversized).
Rule 3: the bytes are taken as they come: a header split over any number of reads gives the
        same result as one read.  Anything that cannot begin a header (the first bytes differ
        from both signatures) is refused at once, so a plain HTTP request on a PROXY
        connection fails without waiting for more.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

V1_PREFIX = b"PROXY "
V1_MAX = 107                                    # the spec's longest line, CRLF included
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16                                   # signature, ver/cmd, family, length
MAX_V2_BODY = 8192
PEEK_BYTES = V2_FIXED + MAX_V2_BODY             # the most a transport needs to peek at once

_V2_FAMILIES = {0x11: (4, 12), 0x21: (16, 36)}  # TCP over IPv4 / IPv6: address size, body


class ProxyProtocolError(Exception):
    """The connection did not start with a valid PROXY header (the reason, for the log)."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """What the header said: ``source`` (host, port) is the client, ``destination`` the
    address it connected to; both None when the peer is kept (LOCAL, UNKNOWN, UNSPEC)."""

    version: int
    source: tuple[str, int] | None = None
    destination: tuple[str, int] | None = None


class ProxyHeaderReader:
    """Feed peeked bytes to ``take``; ``header`` is set once the header is whole."""

    __slots__ = ("buf", "header")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.header: ProxyHeader | None = None

    @property
    def done(self) -> bool:
        return self.header is not None

    def take(self, data: bytes | memoryview) -> int:
        """How many leading bytes of ``data`` (the bytes after those already taken) belong to
        the header; the caller consumes exactly that many.  Raises ProxyProtocolError."""
        if self.header is not None:
            return 0
        buf = self.buf
        start = len(buf)
        if start == 0 and not data:
            return 0
        probe = bytes(buf) + bytes(data[:PEEK_BYTES])
        if probe[:1] == b"P":
            taken = self._v1(probe, start)
        elif probe[:1] == b"\r":
            taken = self._v2(probe, start)
        else:
            raise ProxyProtocolError("not a PROXY protocol header")
        buf += probe[start:start + taken]
        return taken

    # -- version 1 (Rule 1) ------------------------------------------------------------------
    def _v1(self, probe: bytes, start: int) -> int:
        head = probe[:len(V1_PREFIX)]
        if not V1_PREFIX.startswith(head):
            raise ProxyProtocolError("not a PROXY protocol header")
        end = probe.find(b"\r\n", 0, V1_MAX)
        if end < 0:
            if len(probe) >= V1_MAX or b"\n" in probe:
                raise ProxyProtocolError("PROXY v1 header too long or not ended by CRLF")
            return len(probe) - start                  # all of it is header so far (Rule 3)
        self.header = parse_v1(probe[:end])
        return end + 2 - start

    # -- version 2 (Rule 2) ------------------------------------------------------------------
    def _v2(self, probe: bytes, start: int) -> int:
        sig = probe[:len(V2_SIGNATURE)]
        if not V2_SIGNATURE.startswith(sig):
            raise ProxyProtocolError("not a PROXY protocol header")
        if len(probe) < V2_FIXED:
            return len(probe) - start
        ver_cmd, family, length = struct.unpack_from("!BBH", probe, 12)
        if ver_cmd >> 4 != 2:
            raise ProxyProtocolError(f"unsupported PROXY protocol version {ver_cmd >> 4}")
        if ver_cmd & 0x0F not in (0, 1):
            raise ProxyProtocolError(f"unsupported PROXY v2 command 0x{ver_cmd & 0x0F:x}")
        if length > MAX_V2_BODY:
            raise ProxyProtocolError(f"PROXY v2 header too large ({length} bytes)")
        total = V2_FIXED + length
        if len(probe) < total:
            return len(probe) - start
        self.header = parse_v2(ver_cmd & 0x0F, family, probe[V2_FIXED:total])
        return total - start


def _port(word: bytes) -> int:
    if not word.isdigit() or len(word) > 5 or (len(word) > 1 and word[:1] == b"0"):
        raise ProxyProtocolError(f"PROXY v1: bad port {word[:16]!r}")
    port = int(word)
    if port > 65535:
        raise ProxyProtocolError(f"PROXY v1: bad port {word[:16]!r}")
    return port


def parse_v1(line: bytes) -> ProxyHeader:
    """One v1 line without its CRLF (Rule 1)."""
    words = line.split(b" ")
    if len(words) < 2 or words[0] != b"PROXY":
        raise ProxyProtocolError("malformed PROXY v1 header")
    if words[1] == b"UNKNOWN":
        return ProxyHeader(1)
    if words[1] not in (b"TCP4", b"TCP6") or len(words) != 6:
        raise ProxyProtocolError(f"malformed PROXY v1 header ({words[1][:8]!r})")
    version = 4 if words[1] == b"TCP4" else 6
    addrs = []
    for word in words[2:4]:
        try:
            addr = ipaddress.ip_address(word.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise ProxyProtocolError(f"PROXY v1: bad address {word[:40]!r}") from None
        if addr.version != version:
            raise ProxyProtocolError(f"PROXY v1: {word[:40]!r} is not an IPv{version} address")
        addrs.append(str(addr))
    return ProxyHeader(1, (addrs[0], _port(words[4])), (addrs[1], _port(words[5])))


def parse_v2(command: int, family: int, body: bytes) -> ProxyHeader:
    """A v2 header's command, family byte and body (Rule 2)."""
    if command == 0:                                  # LOCAL: the balancer's own connection
        return ProxyHeader(2)
    if family == 0x00:                                # UNSPEC
        return ProxyHeader(2)
    shape = _V2_FAMILIES.get(family)
    if shape is None:
        raise ProxyProtocolError(f"unsupported PROXY v2 family/transport 0x{family:02x}")
    size, need = shape
    if len(body) < need:
        raise ProxyProtocolError(f"PROXY v2 addresses truncated ({len(body)} of {need} bytes)")
    make = ipaddress.IPv4Address if size == 4 else ipaddress.IPv6Address
    src, dst = make(body[:size]), make(body[size:2 * size])
    sport, dport = struct.unpack_from("!HH", body, 2 * size)
    return ProxyHeader(2, (str(src), sport), (str(dst), dport))


def v1_header(src: tuple[str, int], dst: tuple[str, int]) -> bytes:
    """The v1 line a balancer sends for a TCP connection (tests, clients)."""
    family = "TCP6" if ":" in src[0] else "TCP4"
    return f"PROXY {family} {src[0]} {dst[0]} {src[1]} {dst[1]}\r\n".encode("ascii")


def v2_header(src: tuple[str, int] | None, dst: tuple[str, int] | None,
              tlvs: bytes = b"") -> bytes:
    """A v2 header: PROXY over TCP, or LOCAL when ``src`` is None (tests, clients)."""
    if src is None or dst is None:
        return V2_SIGNATURE + struct.pack("!BBH", 0x20, 0x00, len(tlvs)) + tlvs
    a, b = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
    family = 0x11 if a.version == 4 else 0x21
    body = a.packed + b.packed + struct.pack("!HH", src[1], dst[1]) + tlvs
    return V2_SIGNATURE + struct.pack("!BBH", 0x21, family, len(body)) + body


__all__ = ["ProxyHeaderReader", "ProxyHeader", "ProxyProtocolError", "parse_v1", "parse_v2",
           "v1_header", "v2_header", "PEEK_BYTES"]
