"""mod_remoteip: the client behind trusted proxies, from a header such as X-Forwarded-For.

Configuration (server and <VirtualHost>; a vhost that names any proxy has only its own list,
as httpd merges it):
  RemoteIPHeader X-Forwarded-For             the header the proxies append the client to
  RemoteIPTrustedProxy 203.0.113.5 198.51.100.0/24    proxies trusted to present a client
  RemoteIPInternalProxy 10.0.0.0/8           trusted, and may present private addresses
  RemoteIPTrustedProxyList / RemoteIPInternalProxyList file    the same, one or more per line
  RemoteIPProxiesHeader X-Forwarded-By       record the trusted proxies passed through

Rule 1: httpd's remoteip_modify_request, step for step: starting from the connection's peer,
        while the address in hand is a listed proxy (any address when no proxy is listed), take
        the header's rightmost entry as the new address.  The walk stops at an entry that is
        empty or not an IP address, at the first address not listed as a proxy, and at a private
        address (10/8, 127/8, 169.254/16, 172.16/12, 192.168/16; IPv6 outside 2000::/3)
        presented by a proxy that is not internal; an internal proxy presenting an external one
        makes the rest external.  The request's useragent address (``ctx.useragent``, httpd's
        r->useragent_addr) is the last address taken, with the connection's port.
Rule 2: the header keeps what the walk did not take (``1.2.3.4, 5.6.7.8`` after taking
        5.6.7.8 is ``1.2.3.4``) and is removed when everything was taken; RemoteIPProxiesHeader
        then lists the trusted (not internal) proxies the walk passed, nearest first.  Nothing
        changes when no entry was taken.
Rule 3: who reads the useragent address: the access log's %a and %h (%{c}a, %{c}h: the peer),
        Require ip and Require local, WSGI's REMOTE_ADDR (REMOTE_PORT stays the peer's, as in
        httpd), ASGI's ``client``, ErrorLogFormat's %a and the ExtendedStatus client column.
Rule 4: the walk runs in post_read_request, before the route's access check, and again from
        header_parser for a request whose route came from the route cache (that skips the
        phases): the useragent address is never cached with a route.  Without RemoteIPHeader
        the module has no hook at all (``unused_hooks``): no cost per request.
Rule 5: proxies are IP addresses or networks as httpd's apr_ipsubnet_create reads them
        (``10.0.0.0/8``, ``10.0.0.0/255.0.0.0``, ``10.1`` for 10.1.0.0/16, ``2001:db8::/32``).
        A host name is refused: it would be a DNS lookup at every start (httpd resolves it).
Rule 6: RemoteIPProxyProtocol On (server, <VirtualHost>): every connection to the server's
        addresses begins with a PROXY protocol header, v1 or v2 (http/proxy_protocol.py, read
        by the transports: mpm/proxy_header.py), except those from a peer in
        RemoteIPProxyProtocolExceptions.  The header's source address is every request's
        useragent address (Rule 3's readers, REMOTE_PORT included), and the header walk of
        Rule 1 starts from it; the connection's peer stays the balancer (%{c}a, %{c}h,
        CONN_REMOTE_ADDR), as httpd.  A connection without a
        valid header is closed, logged at error (MPMD1963, httpd's AH03507 family).
        RemoteIPProxyProtocolExceptions where no server has RemoteIPProxyProtocol On is
        refused at -t (MPMD1964): it would have no effect.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable

from mpmd.config.directives import Args, Ctx, Directive, Merge
from mpmd.config.model import Problem
from mpmd.config import values as config_values
from mpmd.core.exchange import RequestContext
from mpmd.core.modules import Module, PerServer
from mpmd.core.request import replace_headers

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_PRIVATE_V4 = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"))
_GLOBAL_V6 = ipaddress.ip_network("2000::/3")


@dataclass(frozen=True, slots=True)
class Proxy:
    network: Network
    internal: bool


def parse_proxy(word: str, internal: bool) -> Proxy:
    """One RemoteIP*Proxy argument (Rule 5); ValueError in httpd's words."""
    ip, slash, mask = word.partition("/")
    looks_like_ip = ":" in ip or all(c.isdigit() or c == "." for c in ip)
    if not looks_like_ip or not ip:
        raise config_values.Worded(f"RemoteIP: Error parsing IP {word} (host names are not "
                                   "resolved: give the proxy's address)")
    if ":" not in ip and not slash and ip.count(".") < 3:     # "10.1": 10.1.0.0/16
        parts = [p for p in ip.split(".") if p]
        ip, mask, slash = ".".join(parts + ["0"] * (4 - len(parts))), str(8 * len(parts)), "/"
    try:
        return Proxy(ipaddress.ip_network(ip + slash + mask, strict=False), internal)
    except ValueError:
        raise config_values.Worded(f"RemoteIP: Error parsing IP {word}") from None


class ProxiesArg(config_values.Converter):
    """RemoteIPTrustedProxy / RemoteIPInternalProxy: one or more addresses or networks."""

    describe = "IP address or network"

    def __init__(self, internal: bool) -> None:
        self.internal = internal

    def __call__(self, args: list[str]) -> tuple[Proxy, ...]:
        return tuple(parse_proxy(word, self.internal) for word in args)


def read_proxy_list(path: str, internal: bool) -> tuple[Proxy, ...]:
    """A RemoteIP*ProxyList file: words on each line, ``#`` starts a comment.  OSError or
    ValueError (with the file's line) when it cannot be read."""
    out: list[Proxy] = []
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for number, line in enumerate(fh, 1):
            for word in line.split():
                if word.startswith("#"):
                    break
                try:
                    out.append(parse_proxy(word, internal))
                except ValueError as exc:
                    raise ValueError(f"{exc} at line {number} of {path}") from None
    return tuple(out)


def _combine(old: Any, new: Any) -> tuple[Any, ...]:
    return (*(old or ()), *new)


DIRECTIVES = [
    Directive("RemoteIPHeader", Args.TAKE1, Ctx.SERVER | Ctx.VHOST, config_values.String(), None,
              "remote_ip_header", "The request header whose addresses, appended by trusted "
              "proxies, name the client (X-Forwarded-For).", syntax="RemoteIPHeader header-field",
              owner="remoteip_module"),
    Directive("RemoteIPProxiesHeader", Args.TAKE1, Ctx.SERVER | Ctx.VHOST, config_values.String(),
              None, "remote_ip_proxies_header", "A request header set to the trusted proxies the "
              "client's address passed through.", syntax="RemoteIPProxiesHeader header-field",
              owner="remoteip_module"),
    Directive("RemoteIPTrustedProxy", Args.ITERATE, Ctx.SERVER | Ctx.VHOST, ProxiesArg(False), (),
              "remote_ip_proxies", "Proxies (addresses, networks) trusted to present the "
              "client's address; they may not present a private one.",
              syntax="RemoteIPTrustedProxy proxy-ip|proxy-ip/subnet ...",
              extra={"combine": _combine, "vhost_merge": "own"}, owner="remoteip_module"),
    Directive("RemoteIPInternalProxy", Args.ITERATE, Ctx.SERVER | Ctx.VHOST, ProxiesArg(True), (),
              "remote_ip_proxies", "Internal proxies trusted to present the client's address, "
              "private ones included.", syntax="RemoteIPInternalProxy proxy-ip|proxy-ip/subnet ...",
              extra={"combine": _combine, "vhost_merge": "own"}, owner="remoteip_module"),
    Directive("RemoteIPTrustedProxyList", Args.TAKE1, Ctx.SERVER | Ctx.VHOST,
              config_values.Path(), [], "remote_ip_trusted_list", "A file of trusted proxies "
              "(as RemoteIPTrustedProxy's arguments, '#' comments).",
              merge=Merge.APPEND, syntax="RemoteIPTrustedProxyList filename",
              extra={"vhost_merge": "own"}, owner="remoteip_module"),
    Directive("RemoteIPInternalProxyList", Args.TAKE1, Ctx.SERVER | Ctx.VHOST,
              config_values.Path(), [], "remote_ip_internal_list", "A file of internal proxies "
              "(as RemoteIPInternalProxy's arguments, '#' comments).",
              merge=Merge.APPEND, syntax="RemoteIPInternalProxyList filename",
              extra={"vhost_merge": "own"}, owner="remoteip_module"),
    Directive("RemoteIPProxyProtocol", Args.FLAG, Ctx.SERVER | Ctx.VHOST, config_values.flag,
              False, "remote_ip_proxy_protocol", "Connections to this server's addresses begin "
              "with a PROXY protocol header (v1 or v2), whose client address is the "
              "connection's.", syntax="RemoteIPProxyProtocol On|Off", owner="remoteip_module"),
    Directive("RemoteIPProxyProtocolExceptions", Args.ITERATE, Ctx.SERVER | Ctx.VHOST,
              ProxiesArg(False), (), "remote_ip_proxy_protocol_exceptions", "Peers (addresses, "
              "networks) that connect without a PROXY header where RemoteIPProxyProtocol is On.",
              syntax="RemoteIPProxyProtocolExceptions host|range [host|range] ...",
              extra={"combine": _combine}, owner="remoteip_module"),
]


def proxy_lists(server: Any) -> tuple[tuple[str, list[str], bool], ...]:
    """(field, files, internal) of the RemoteIP*ProxyList lines of ``server``."""
    return (("remote_ip_trusted_list", server.remote_ip_trusted_list or [], False),
            ("remote_ip_internal_list", server.remote_ip_internal_list or [], True))


def proxies_of(server: Any) -> tuple[Proxy, ...]:
    """The server's proxies: the directives' own, then the files'."""
    out = list(server.remote_ip_proxies or ())
    for _field, paths, internal in proxy_lists(server):
        for path in paths:
            try:
                out += read_proxy_list(path, internal)
            except (OSError, ValueError):
                pass                     # named by check_config (mpmd -t, and at start)
    return tuple(out)


def _unmapped(addr: Address) -> Address:
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped or addr


def _private(addr: Address) -> bool:
    """What an external proxy may not present (Rule 1)."""
    if addr.version == 4:
        return any(addr in net for net in _PRIVATE_V4)
    return addr not in _GLOBAL_V6


def _match(addr: Address, proxies: tuple[Proxy, ...]) -> Proxy | None:
    plain = _unmapped(addr)
    for proxy in proxies:
        if plain.version == proxy.network.version and plain in proxy.network:
            return proxy
    return None


def walk(peer: str, value: str, proxies: tuple[Proxy, ...]) -> tuple[str | None, str | None, list[str]]:
    """Rule 1 and 2: (the useragent address or None when nothing was taken, what is left of
    the header or None, the trusted proxies passed)."""
    try:
        addr: Address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return None, value, []
    remote: str | None = value
    internal = False
    found: str | None = None
    passed: list[str] = []
    presenter = peer
    while remote is not None:
        if proxies:
            match = _match(addr, proxies)
            if match is None:
                break
            internal = (internal and match.internal) if internal else match.internal
        head, comma, last = remote.rpartition(",")
        rest: str | None = head if comma else None
        item = last.strip(" ")
        try:
            if not item:
                raise ValueError(item)
            taken: Address = ipaddress.ip_address(item)
        except ValueError:
            remote = rest + "," + last.rstrip(" ") if rest is not None else item
            break
        if not internal and _private(taken):
            remote = rest + "," + last.rstrip(" ") if rest is not None else item
            break
        if not internal:
            passed.append(presenter)
        remote = rest
        addr = taken
        found = presenter = str(taken)
    return found, remote, passed


class RemoteIPModule(Module):
    name: ClassVar[str] = "remoteip_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_remoteip.c",)
    builtin: ClassVar[bool] = True
    route_pure: ClassVar[bool] = True        # decides no route: the address is set per request
    DIRECTIVES: ClassVar[list[Directive]] = DIRECTIVES

    def __init__(self) -> None:
        self.settings = PerServer(self._settings_of)

    @staticmethod
    def _settings_of(server: Any) -> tuple[bytes, tuple[Proxy, ...], bytes | None]:
        header = str(server.remote_ip_header).lower().encode("latin-1")
        proxies_header = getattr(server, "remote_ip_proxies_header", None)
        return (header, proxies_of(server),
                str(proxies_header).lower().encode("latin-1") if proxies_header else None)

    def unused_hooks(self, values: dict[str, Any]) -> tuple[str, ...]:
        """Rule 4: no RemoteIPHeader, no call per request."""
        return () if values.get("remote_ip_header") else ("post_read_request", "header_parser")

    def check_config(self, cfg: Any) -> Iterable[Problem]:
        from mpmd.core.modules import servers_of
        seen: set[str] = set()
        for server in servers_of(cfg):
            for field, paths, internal in proxy_lists(server):
                for index, path in enumerate(paths):
                    if path in seen:
                        continue
                    seen.add(path)
                    try:
                        read_proxy_list(path, internal)
                    except OSError as exc:
                        yield Problem("error", "MPMD1961", f"RemoteIP: could not open file {path}: "
                                      f"{exc.strerror or exc}", *_where(server, field, index))
                    except ValueError as exc:
                        yield Problem("error", "MPMD1962", str(exc), *_where(server, field, index))

        # Rule 6: exceptions to a PROXY header that no server expects would be ignored
        servers = list(servers_of(cfg))
        if not any(getattr(s, "remote_ip_proxy_protocol", False) for s in servers):
            for server in servers:
                if getattr(server, "remote_ip_proxy_protocol_exceptions", None):
                    file, line = _set_at(server, "remote_ip_proxy_protocol_exceptions")
                    yield Problem("error", "MPMD1964", "RemoteIPProxyProtocolExceptions has no "
                                  "effect: RemoteIPProxyProtocol is On in no server", file, line)
                    break

    def post_read_request(self, ctx: RequestContext) -> None:
        self.apply(ctx)

    def header_parser(self, ctx: RequestContext) -> None:
        if ctx.useragent is None:            # the route came from the cache (Rule 4)
            self.apply(ctx)

    def apply(self, ctx: RequestContext) -> None:
        client = ctx.conn.client_addr
        ctx.useragent = client               # walked: header_parser does not walk again
        header, proxies, proxies_header = self.settings(ctx.server)
        request = ctx.request
        value = request.header(header)
        if value is None:
            return
        found, rest, passed = walk(client[0], value.decode("latin-1"), proxies)
        if found is None:
            return
        ctx.useragent = (found, client[1])
        fields = [(k, v) for k, v in request.headers if k != header]
        if rest is not None:
            fields.append((header, rest.encode("latin-1")))
        if passed and proxies_header is not None:
            fields = [(k, v) for k, v in fields if k != proxies_header]
            fields.append((proxies_header, ", ".join(passed).encode("latin-1")))
        replace_headers(ctx, fields)


def _set_at(server: Any, field: str) -> tuple[str | None, int | None]:
    """The file and line that set ``field`` in ``server`` (None, None when unknown)."""
    where = server.where(field) if hasattr(server, "where") else "default"
    file, colon, line = where.rpartition(":")
    return (file, int(line)) if colon and line.isdigit() else (None, None)


def _where(server: Any, field: str, index: int) -> tuple[str | None, int | None]:
    """The file and line of the ``index``-th list directive of ``field`` (for the error)."""
    origins = server.origins(field) if hasattr(server, "origins") else []
    if index < len(origins):
        return origins[index]
    return None, None


__all__ = ["RemoteIPModule", "walk", "parse_proxy", "read_proxy_list", "Proxy"]
