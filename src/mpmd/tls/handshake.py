"""What every transport does alike around a TLS handshake: the peek, the log lines, the close.

Rule 1: a handshake that fails or times out costs its connection only, and is logged at info
        (httpd logs AH02008 / AH02006 at info): a scanner or a client that gives up is no
        error of the server's.
Rule 2: a TLS connection that the server closes gets a close_notify first, without waiting
        for the client's (httpd's "unclean" shutdown is not needed: the answer is complete).
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from mpmd.tls.plain import PEEK_BYTES

M_HANDSHAKE = "MPMD1003"
M_PLAIN_HTTP = "MPMD1004"
MODULE = "ssl"


def peek(sock: socket.socket, flags: int = 0) -> bytes:
    """The first bytes the client sent, left in the socket (raises as recv does)."""
    return sock.recv(PEEK_BYTES, socket.MSG_PEEK | flags)


def handshake_failed(log: Any, client: Any, exc: BaseException | str) -> None:
    """Rule 1; ``client``: the peer's (host, port)."""
    if log is None or not log.enabled("info", MODULE):
        return
    reason = exc if isinstance(exc, str) else _reason(exc)
    log.info(M_HANDSHAKE, f"[client {_show(client)}] SSL handshake failed: {reason}", MODULE)


def plain_http(log: Any, client: Any) -> None:
    if log is not None and log.enabled("info", MODULE):
        log.info(M_PLAIN_HTTP, f"[client {_show(client)}] SSL handshake failed: HTTP spoken on "
                 "HTTPS port; trying to send HTML error page", MODULE)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, socket.timeout)) or "taking longer than" in str(exc):
        return "timed out"               # uvloop says so with a ConnectionAbortedError
    if isinstance(exc, ssl.SSLError):
        return f"{exc.reason or exc.library or 'SSL error'} ({exc.args[1] if len(exc.args) > 1 else exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"({exc.errno}){exc.strerror}"
    return str(exc) or type(exc).__name__


def _show(client: Any) -> str:
    if isinstance(client, tuple) and len(client) >= 2:
        return f"{client[0]}:{client[1]}"
    return str(client)


def close_notify(sock: Any) -> None:
    """Rule 2: send close_notify on a TLS socket without waiting for the peer's."""
    if not isinstance(sock, ssl.SSLSocket):
        return
    try:
        sock.setblocking(False)
        sock.unwrap()
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
        pass                     # sent; the peer's own close_notify is not awaited
    except (OSError, ValueError):    # ValueError: no TLS left on it (already unwrapped)
        pass
