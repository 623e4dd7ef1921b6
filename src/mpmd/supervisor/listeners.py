"""Listening sockets, bound by the master before it forks (httpd ap_setup_listeners).

Rule 1: every ``Listen`` address is bound once; children inherit the sockets, and a graceful
        restart keeps them (so no connection is refused during a restart).
Rule 2: port 0 asks the kernel for a port; ``Listener.port`` is the real one, which the master
        reports in the ready file.
Rule 3: ``AcceptFilter http data`` (httpd's default on Linux) sets TCP_DEFER_ACCEPT: the kernel
        completes accept() only once the client has sent data, so connections that never send a
        byte cost no child or thread of prefork/worker/event.
Rule 4: listening sockets are non-blocking: an MPM waits with select/poll, then accept() may
        lose the race to another child and get EAGAIN, which just means "wait again".
Rule 5: a listener keeps the Listen address it was bound for (``addr``, as written: port 0
        stays 0); each generation the master sets ``tls``, the ``ListenerTls`` its connections
        start their handshake with, or None for plain HTTP (``assign_tls``).
Rule 6: ``ListenRemap PORT ADDR`` binds ADDR for each Listen on PORT; the listener's ``addr``
        stays the Listen as written, and ``SEEN_PORTS`` (bound port -> PORT, set in the master
        before any child is forked; mpm/conn.py) makes ``seen_as`` give its connections PORT as their local
        port, so virtual hosts, TLS and SERVER_PORT see the configuration's ports.  Without a
        remap the per-connection cost is one test of an empty dict.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any, Iterable


@dataclass
class Listener:
    sock: socket.socket
    host: str
    port: int
    addr: Any = None                  # the Listen address (config.model.ListenAddr), Rule 5
    tls: Any = None                   # tls.ListenerTls of the current generation, or None

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()


def _host_port(addr: Any) -> tuple[str, int]:
    if isinstance(addr, tuple):
        host, port = addr[0], addr[1]
    else:
        host, port = addr.host, addr.port
    host = (host or "").strip("[]")
    return ("" if host in ("*", "") else host), int(port)


DEFER_ACCEPT_S = 30    # as httpd: how long the kernel holds a silent connection back


def bind_one(host: str, port: int, backlog: int, defer_accept: bool = False) -> Listener:
    """Bind and listen on one address; IPv6 literals are bound IPv6-only."""
    infos = socket.getaddrinfo(host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                               socket.AI_PASSIVE)
    family, stype, proto, _, sockaddr = infos[0]
    if not host:        # "Listen 80": all IPv4 addresses, as most Apache setups expect
        family, sockaddr = socket.AF_INET, ("0.0.0.0", port)
    sock = socket.socket(family, stype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        if defer_accept and hasattr(socket, "TCP_DEFER_ACCEPT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, DEFER_ACCEPT_S)
        sock.listen(backlog)
        sock.setblocking(False)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    real = sock.getsockname()
    return Listener(sock, real[0], real[1])


class BindError(OSError):
    """A Listen address that could not be bound: ``address`` as httpd prints it, ``error`` why."""

    def __init__(self, address: str, error: OSError) -> None:
        super().__init__(error.errno, error.strerror)
        self.address = address
        self.error = error


def show_address(host: str, port: int) -> str:
    """``127.0.0.1:80``, ``[::1]:80``, ``0.0.0.0:80`` for "Listen 80" (httpd make_sock)."""
    host = host or "0.0.0.0"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_all(addrs: Iterable[Any], backlog: int = 511, defer_accept: bool = False,
             remap: Iterable[tuple[int, Any]] = ()) -> list[Listener]:
    """Bind each Listen address (or its ``remap``ped one, Rule 6); on any failure close what
    was bound and raise BindError."""
    instead = dict(remap)
    bound: list[Listener] = []
    for addr in addrs:
        written_port = _host_port(addr)[1]
        host, port = _host_port(instead.get(written_port, addr))
        try:
            bound.append(bind_one(host, port, backlog, defer_accept))
            bound[-1].addr = addr
        except OSError as exc:
            close_all(bound)
            raise BindError(show_address(host, port), exc) from None
        if written_port in instead:
            from mpmd.mpm.conn import SEEN_PORTS       # the MPMs' side of Rule 6
            SEEN_PORTS[bound[-1].port] = written_port
    return bound


def assign_tls(listeners: Iterable[Listener], sites: Any) -> None:
    """Rule 5: each listener's ListenerTls from this generation's ``tls.TlsSites`` (or None)."""
    for lst in listeners:
        addr = lst.addr
        lst.tls = sites.for_listen(addr.host, addr.port) if sites and hasattr(addr, "host") else None


def close_all(listeners: Iterable[Listener]) -> None:
    for lst in listeners:
        try:
            lst.close()
        except OSError:
            pass
