"""RemoteIPProxyProtocol on the transports: the PROXY header read before anything else.

Theory: the header is parsed by the sans-I/O ``http.proxy_protocol.ProxyHeaderReader``; every
transport reads it the same way: peek at what has come, give it to the reader, consume exactly
the bytes the reader took (``step``).  So the first byte after the header is still in the
socket for the HTTP parser or for OpenSSL: the header comes before a TLS handshake.

Rule 1: the header is read on a connection whose local address has a server (its default
        server, or any <VirtualHost> on it, as httpd collects the addresses of the servers
        with RemoteIPProxyProtocol On) with RemoteIPProxyProtocol On, unless the peer is in
        that server's RemoteIPProxyProtocolExceptions.  ``rule_for`` answers that; without
        the directive anywhere it is one attribute test.
Rule 2: the header's source address is the connection's client address (``ConnInfo
        .client_addr``, what httpd's mod_remoteip makes every request's useragent address):
        the access log's %a and %h, REMOTE_ADDR and REMOTE_PORT, ASGI's client, Require ip;
        mod_remoteip's header walk starts from it.  The balancer stays the connection's
        ``peer``: %{c}a, %{c}h, CONN_REMOTE_ADDR, as httpd's c->client_addr.  LOCAL, UNKNOWN
        and UNSPEC keep the peer as the client.
Rule 3: a connection that does not start with a valid header is closed without an answer,
        the reason logged at error (httpd's AH03507 family); one that sends nothing within
        Timeout is closed silently.  The blocking drivers wait with the socket's receive
        time-out; the event listener and the nginx loop read it when the socket is readable,
        never blocking their loop.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from mpmd.http.proxy_protocol import PEEK_BYTES, ProxyHeaderReader, ProxyProtocolError

M_PROXY_BAD = "MPMD1963"
MODULE = "remoteip"


def rule_for(policy: Any, local: tuple[str, int] | None, sock: Any = None) -> tuple[Any, ...] | None:
    """Rule 1: the exception networks when a header is expected on this address, else None.
    ``local`` None: asked of ``sock`` when needed."""
    if not policy.proxy_anywhere:
        return None
    hosts = policy.hosts
    if hosts is None:
        return policy.proxy_protocol
    if local is None:
        from mpmd.mpm.conn import seen_as
        local = seen_as(sock.getsockname())
    for server in hosts.candidates(local[0], local[1]):
        rule = policy.by_server[id(server)].proxy_protocol
        if rule is not None:
            return rule
    return None


def expected(rule: tuple[Any, ...] | None, peer: Any) -> bool:
    """Rule 1: a header is read from ``peer`` under ``rule``."""
    if rule is None:
        return False
    if not rule:
        return True
    try:                                  # a unix socket's peer has no address: no exception
        addr = ipaddress.ip_address(str(peer[0] if isinstance(peer, tuple) else peer).split("%", 1)[0])
    except ValueError:
        return True
    plain = getattr(addr, "ipv4_mapped", None) or addr
    return not any(plain.version == p.network.version and plain in p.network for p in rule)


def step(sock: socket.socket, reader: ProxyHeaderReader, flags: int = 0) -> bool:
    """Peek, let the reader take, consume what it took; True once the header is whole.
    Raises ProxyProtocolError (EOF included), OSError, BlockingIOError (with MSG_DONTWAIT)."""
    data = sock.recv(PEEK_BYTES, socket.MSG_PEEK | flags)
    if not data:
        raise ProxyProtocolError("connection closed before the PROXY header")
    taken = reader.take(data)
    while taken > 0:                      # peeked, so there: recv returns at once
        got = len(sock.recv(taken, flags))
        if not got:
            raise ProxyProtocolError("connection closed in the PROXY header")
        taken -= got
    return reader.done


def client_of(reader: ProxyHeaderReader, peer: tuple[str, int]) -> tuple[str, int]:
    """Rule 2: the connection's client address after the header."""
    header = reader.header
    return header.source if header is not None and header.source is not None else peer


def refused(log: Any, peer: Any, reason: Any) -> None:
    """Rule 3: the log line of a connection closed for its header."""
    if log is None or not log.enabled("error", MODULE):
        return
    where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
    log.error(M_PROXY_BAD, f"[client {where}] RemoteIPProxyProtocol: {reason}; closing "
              "the connection", MODULE)


def read_blocking(sock: socket.socket, log: Any, peer: tuple[str, int]) -> tuple[str, int] | None:
    """The blocking drivers (prefork, worker, event's workers never need it): the client's
    address, or None when the connection must be closed (Rule 3).  The socket's receive
    time-out bounds each wait."""
    reader = ProxyHeaderReader()
    try:
        while not step(sock, reader):
            pass
    except ProxyProtocolError as exc:
        refused(log, peer, exc)
        return None
    except OSError:
        return None                       # timed out or gone: nothing to log (Rule 3)
    return client_of(reader, peer)


__all__ = ["rule_for", "expected", "step", "client_of", "refused", "read_blocking",
           "ProxyHeaderReader", "ProxyProtocolError"]
