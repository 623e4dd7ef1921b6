"""Which connections speak TLS, and with which context: one ``TlsSites`` per generation.

Theory (mod_ssl's, over httpd's virtual hosts): a connection arrives on a local address; the
servers that address may be served by are ``vhosts.candidates(ip, port)``, the first being its
default.  The connection speaks TLS when that default has ``SSLEngine on``, and the handshake
starts with the default's context.  The client's SNI name then picks a server among the same
candidates (``vhosts.select(ip, port, name)``): when that server has SSLEngine on, its context
(its certificate, protocols, ciphers, client verification) replaces the default's.

Rule 1: everything is built while the configuration loads (``TlsSites(cfg)``): every context,
        and for every Listen address its ``ListenerTls``.  Nothing here reads a file later.
Rule 2: a listener with a specific address has one answer.  A wildcard one (``Listen 443``)
        may get connections for vhosts that name specific IPs: ``ListenerTls.by_ip`` holds
        those, ``default`` every other local address; only then does a transport need the
        connection's local address (``context_for``).
Rule 3: each address has a context of its own for its default server, whose SNI callback
        knows that address; the contexts SNI switches to are the servers' own (a context's
        SNI callback runs on the context the handshake started with only).
Rule 4: Listen ports are matched as written: a ``Listen 127.0.0.1:0`` (a test's) matches the
        vhosts with a wildcard port, as a connection on the port the kernel chose would.
Without ``cfg.vhosts`` the main server is the only server.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from typing import Any, Callable

from mpmd.tls.contexts import TlsConfigError, build_context
from mpmd.tls.variables import SNI_ATTR, connection_vars, library_vars, server_vars

OTHER_IP = "0.0.0.0"        # stands for "an address no vhost names" on a wildcard listener
WILDCARDS = ("*", "", "0.0.0.0", "::")


class MainOnly:
    """The vhost table's interface when the configuration has none: the main server only."""

    def __init__(self, cfg: Any) -> None:
        self.main = cfg

    def servers(self) -> list[Any]:
        return [self.main]

    def candidates(self, ip: str, port: int) -> list[Any]:
        return [self.main]

    def select(self, ip: str, port: int, host: Any) -> Any:
        return self.main


def vhosts_of(cfg: Any) -> Any:
    hosts = getattr(cfg, "vhosts", None)
    return hosts if hosts else MainOnly(cfg)


@dataclass
class ServerTls:
    """One TLS server: its context and the variables that do not change per connection."""

    server: Any
    context: ssl.SSLContext
    fixed: dict[str, str]


@dataclass
class ListenerTls:
    """What a listener's transport needs: the context a new connection starts with (Rule 2).
    ``vars(sslobj)`` gives the connection's httpd SSL variables once its handshake is done."""

    default: ssl.SSLContext | None
    by_ip: dict[str, ssl.SSLContext | None] = field(default_factory=dict)
    fixed: dict[int, dict[str, str]] = field(default_factory=dict)   # id(context) -> vars

    @property
    def any_tls(self) -> bool:
        return self.default is not None or any(c is not None for c in self.by_ip.values())

    def context_for(self, sock: socket.socket) -> ssl.SSLContext | None:
        if not self.by_ip:
            return self.default
        try:
            local = sock.getsockname()[0]
        except OSError:
            return self.default
        return self.by_ip.get(_plain_ip(local), self.default)

    def vars(self, sslobj: Any) -> dict[str, str]:
        return connection_vars(sslobj, self.fixed.get(id(sslobj.context), {}))


class TlsSites:
    """The generation's TLS (see the module docstring); raises TlsConfigError, whose
    ``server`` attribute is the server whose values are to blame."""

    def __init__(self, cfg: Any) -> None:
        self.hosts = vhosts_of(cfg)
        self.library = library_vars()
        self.servers: dict[int, ServerTls] = {}
        for server in self.hosts.servers():
            if getattr(server, "ssl_engine", False):
                self.servers[id(server)] = self._server_tls(server)
        self.fixed = {id(s.context): s.fixed for s in self.servers.values()}
        self.listeners: dict[tuple[str, int], ListenerTls] = {}
        for addr in (cfg.listen if self.servers else ()):
            key = (addr.host, addr.port)
            if key not in self.listeners:
                self.listeners[key] = self._listener(addr.host, addr.port)

    def __bool__(self) -> bool:
        return bool(self.servers)

    def _server_tls(self, server: Any, sni: Callable[..., Any] | None = None) -> ServerTls:
        try:
            context = build_context(server)
        except TlsConfigError as exc:
            exc.server = server                  # type: ignore[attr-defined]
            raise
        context.sni_callback = sni
        fixed = {**self.library, **server_vars(_decoded(server.ssl_certificate_file))}
        return ServerTls(server, context, fixed)

    def for_listen(self, host: str, port: int) -> ListenerTls | None:
        """The ListenerTls of a Listen address as written; None when it is plain HTTP."""
        found = self.listeners.get((host, port))
        return found if found is not None and found.any_tls else None

    def _listener(self, host: str, port: int) -> ListenerTls:
        if host not in WILDCARDS:
            return ListenerTls(self._address_context(host, port), fixed=self.fixed)
        ips = {a.ip for s in self.hosts.servers() for a in getattr(s, "vhost_addrs", ()) or ()
               if a.ip != "*" and getattr(a, "port", 0) in (port, 0)}
        by_ip = {ip: self._address_context(ip, port) for ip in sorted(ips)}
        return ListenerTls(self._address_context(OTHER_IP, port), by_ip, self.fixed)

    def _address_context(self, ip: str, port: int) -> ssl.SSLContext | None:
        """A context for connections to (ip, port), or None when its default is plain (Rule 3)."""
        candidates = self.hosts.candidates(ip, port)
        default = self.servers.get(id(candidates[0]))
        if default is None:
            return None
        sni = self._sni_callback(ip, port) if len(candidates) > 1 else _record_sni
        if default.context.sni_callback is None:
            default.context.sni_callback = sni          # its first address: its own context
            return default.context
        own = self._server_tls(default.server, sni)     # another address: a context of its own
        self.fixed[id(own.context)] = own.fixed
        return own.context

    def _sni_callback(self, ip: str, port: int) -> Callable[..., Any]:
        hosts, servers = self.hosts, self.servers

        def sni_callback(sslobj: Any, name: str | None, context: ssl.SSLContext) -> None:
            """Rule 3: the server SNI names, when it speaks TLS, lends its context."""
            setattr(sslobj, SNI_ATTR, name)
            if name is None:
                return
            chosen = servers.get(id(hosts.select(ip, port, name)))
            if chosen is not None and chosen.context is not context:
                sslobj.context = chosen.context
        return sni_callback


def _record_sni(sslobj: Any, name: str | None, context: ssl.SSLContext) -> None:
    """The SNI callback of an address with one server: remember the name (SSL_TLS_SNI)."""
    setattr(sslobj, SNI_ATTR, name)


def _plain_ip(addr: str) -> str:
    return addr[7:] if addr.startswith("::ffff:") and "." in addr else addr


def _decoded(path: str) -> dict[str, Any] | None:
    """The server certificate as getpeercert() shows one (for SSL_SERVER_*), if readable."""
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is None:
        return None
    try:
        return dict(decode(path))
    except (ssl.SSLError, OSError, ValueError):
        return None
