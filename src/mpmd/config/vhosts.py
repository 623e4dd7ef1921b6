"""Virtual hosts: which server (the main one or a <VirtualHost>) answers a request.

Theory (httpd 2.4's vhost.c): each <VirtualHost addr[:port] ...> is a server of its own,
built by the loader as the main server's values with the vhost's lines over them
(config/loader.py).  A request finds its server in two steps:

Rule 1: by address.  The connection's local (ip, port) picks a *set*: the vhosts naming that
        exact ip and port, else that ip with a wildcard port, else those naming ``*`` or
        ``_default_`` and that port, else those with a wildcard port (``*:*``,
        ``<VirtualHost *>``).  No vhost matching it: the main server alone.
Rule 2: by name.  Within the set, the first vhost whose ServerName or a ServerAlias
        (``*`` and ``?`` wildcards) matches the request's host (Host header, or the absolute
        URI's authority, without port, case-insensitive, without a trailing dot) answers;
        no match, or no host: the set's first vhost, its default.
Rule 3: connection-level settings (Timeout, KeepAliveTimeout, the LimitRequestLine,
        LimitRequestFieldSize and LimitRequestFields that govern reading the head) are the
        address set's default server's, as in httpd, since they apply before a Host is
        known; ``mpmd -t`` names such lines in a vhost that is no address's default.
Rule 4: a VhostTable is read-only after loading; ``select`` keeps what it found per
        (set, host) in a bounded memo, so the per-request cost is one dict lookup.
"""

from __future__ import annotations

import fnmatch
import socket
from dataclasses import dataclass
from typing import Any, Iterable

from mpmd.core.memo import remember

ANY_PORT = 0          # "*:*" or no port written: every port
SELECT_MEMO_SIZE = 4096


@dataclass(frozen=True, slots=True)
class VhostAddr:
    """One address of a <VirtualHost> line: ``ip`` "*" for any (``*`` and ``_default_``)."""

    ip: str
    port: int           # ANY_PORT for a wildcard port
    written: str        # as in the config, for -S

    def __str__(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{host}:{'*' if self.port == ANY_PORT else self.port}"


class VhostAddrError(ValueError):
    """A <VirtualHost> argument that names no address (worded for -t)."""


def parse_addr(word: str) -> VhostAddr:
    """``*:80``, ``_default_:443``, ``127.0.0.1:8080``, ``[::1]:80``, ``*``, ``host:port``."""
    host, port_text = _split_host_port(word)
    if port_text in ("", "*"):
        port = ANY_PORT
    else:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise VhostAddrError(f"The address or port is invalid: {word}")
        port = int(port_text)
    if host in ("*", "_default_"):
        return VhostAddr("*", port, word)
    return VhostAddr(_resolve(host, word), port, word)


def _split_host_port(word: str) -> tuple[str, str]:
    if word.startswith("["):
        host, sep, rest = word[1:].partition("]")
        if not sep:
            raise VhostAddrError(f"The address or port is invalid: {word}")
        return host, rest[1:] if rest.startswith(":") else ""
    if word.count(":") > 1:                     # a bare IPv6 address: no port
        return word, ""
    host, _, port = word.partition(":")
    return host, port


def _resolve(host: str, word: str) -> str:
    """An IP address for a vhost's host part (httpd resolves names at start too)."""
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_UNSPEC, socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise VhostAddrError(f"Could not resolve host name {host} -- ignoring!: {word}") from None
    return str(infos[0][4][0])


def host_of(authority: bytes | str | None) -> str | None:
    """The host name of a Host header value: no port, no IPv6 brackets (``%V`` of
    ``[::1]:80`` is ``::1`` in httpd), lower case, no trailing dot."""
    if not authority:
        return None
    if isinstance(authority, bytes):
        authority = authority.decode("latin-1")
    host = authority.strip()
    if host.startswith("["):
        host = host[1: host.find("]")] if "]" in host else host
    elif ":" in host:
        host = host.rsplit(":", 1)[0]
    host = host.rstrip(".").lower()
    return host or None


def name_of(server_name: str | None) -> str | None:
    """ServerName's host part: ``https://www.example.com:443`` -> ``www.example.com``."""
    if not server_name:
        return None
    name = server_name.split("://", 1)[-1]
    return host_of(name)


def server_hostname(server: Any) -> str:
    """The name a server goes by (%v, -S): its ServerName's host, else this machine's name
    (httpd's ap_get_local_host)."""
    name = (getattr(server, "server_name", None) or "").split("://", 1)[-1]
    if name.startswith("["):                     # [::1]:443
        name = name[: name.find("]") + 1] if "]" in name else name
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    return name or _local_host()


_LOCAL: list[str] = []


def _local_host() -> str:
    if not _LOCAL:
        _LOCAL.append(socket.gethostname().lower() or "127.0.0.1")
    return _LOCAL[0]


def ip_of(addr: str) -> str:
    """A socket's address as VhostAddr spells it: no IPv4-mapped ``::ffff:`` prefix."""
    return addr[7:] if addr.startswith("::ffff:") and "." in addr else addr


class VhostTable:
    """The servers of one configuration and the way from a request to one of them."""

    def __init__(self, main: Any, vhosts: list[Any]) -> None:
        self.main = main
        self.vhosts = list(vhosts)        # each with .vhost_addrs: list[VhostAddr]
        self._sets: dict[tuple[str, int], list[Any]] = {}
        self._memo: dict[tuple[int, str | None], Any] = {}
        self._names = {id(s): _names(s) for s in self.vhosts}

    def __bool__(self) -> bool:
        return bool(self.vhosts)

    def servers(self) -> list[Any]:
        """The main server, then every <VirtualHost> in config order."""
        return [self.main, *self.vhosts]

    def candidates(self, ip: str, port: int) -> list[Any]:
        """Rule 1: the servers a connection to (ip, port) may be served by; first = default."""
        key = (ip_of(ip), int(port))
        found = self._sets.get(key)
        if found is None:
            found = self._sets[key] = self._match_address(*key)
        return found

    def _match_address(self, ip: str, port: int) -> list[Any]:
        # ip:port and ip:* are two sets, as in httpd: a name in one never reaches the other
        for wanted in (lambda a: a.ip == ip and a.port == port,
                       lambda a: a.ip == ip and a.port == ANY_PORT,
                       lambda a: a.ip == "*" and a.port == port,
                       lambda a: a.ip == "*" and a.port == ANY_PORT):
            found = [s for s in self.vhosts if any(wanted(a) for a in s.vhost_addrs)]
            if found:
                return found
        return [self.main]

    def select(self, ip: str, port: int, host: bytes | str | None) -> Any:
        """Rule 2: the server for a request with ``host`` on a connection to (ip, port)."""
        servers = self.candidates(ip, port)
        if len(servers) == 1:
            return servers[0]
        name = host_of(host)
        key = (id(servers), name)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._by_name(servers, name)
            remember(self._memo, key, hit, SELECT_MEMO_SIZE)
        return hit

    def _by_name(self, servers: list[Any], name: str | None) -> Any:
        if name is not None:
            for server in servers:
                exact, patterns = self._names.get(id(server), ((), ()))
                if name in exact or any(fnmatch.fnmatchcase(name, p) for p in patterns):
                    return server
        return servers[0]

    def is_default(self, server: Any) -> bool:
        """Whether ``server`` is the first vhost of one of its address sets (Rule 3)."""
        return any(servers[0] is server for _, servers in self.address_sets())

    def address_sets(self) -> list[tuple[VhostAddr, list[Any]]]:
        """Each distinct vhost address with the vhosts that name it, in config order (-S)."""
        seen: dict[VhostAddr, list[Any]] = {}
        for server in self.vhosts:
            for addr in server.vhost_addrs:
                key = VhostAddr(addr.ip, addr.port, "")
                seen.setdefault(key, []).append(server)
        return list(seen.items())


def _names(server: Any) -> tuple[frozenset[str], tuple[str, ...]]:
    """(exact names, wildcard patterns) of a vhost: ServerName, then ServerAlias."""
    words: list[str] = []
    main_name = name_of(getattr(server, "server_name", None))
    if main_name:
        words.append(main_name)
    for alias in _aliases(server):
        host = alias.rstrip(".").lower()
        if host:
            words.append(host)
    exact = frozenset(w for w in words if not any(c in w for c in "*?["))
    patterns = tuple(w for w in words if any(c in w for c in "*?["))
    return exact, patterns


def _aliases(server: Any) -> Iterable[str]:
    for value in getattr(server, "server_alias", None) or ():
        if isinstance(value, (list, tuple)):
            yield from value
        else:
            yield value


def vhost_report(cfg: Any) -> str:
    """``mpmd -S``: the vhost table and the main settings, laid out as ``apachectl -S``."""
    lines = ["VirtualHost configuration:"]
    hosts = cfg.vhosts
    sets = _report_order(hosts) if hosts else []
    for addr, servers in sets:
        if len(servers) == 1:
            lines.append(f"{str(addr):<22} {_named(servers[0])}")
            continue
        lines.append(f"{str(addr):<22} is a NameVirtualHost")
        lines.append(f"         default server {_named(servers[0])}")
        port = "*" if addr.port == ANY_PORT else addr.port
        for server in servers:
            lines.append(f"         port {port} namevhost {_named(server)}")
            aliases = list(_aliases(server))
            wild = [a for a in aliases if any(c in a for c in "*?[")]
            lines += [f"                 alias {a}" for a in aliases if a not in wild]
            lines += [f"                 wild alias {a}" for a in wild]
    lines.append(f'ServerRoot: "{cfg.server_root}"')
    lines.append(f'Main DocumentRoot: "{cfg.document_root}"')
    lines.append(f'Main ErrorLog: "{cfg.error_log}"')
    lines.append(f'PidFile: "{cfg.pid_file}"')
    lines += [f"Define: {name}" + (f"={value}" if value else "")
              for name, value in cfg.defines.items()]
    for what in ("User", "Group"):
        value = getattr(cfg, what.lower(), None)
        if value:
            lines.append(f'{what}: name="{value}"')
    return "\n".join(lines) + "\n"


def _report_order(hosts: VhostTable) -> list[tuple[VhostAddr, list[Any]]]:
    """The address sets in apachectl -S order: httpd builds its lists from the last vhost
    back, each new (address, port) in front of its list; exact IPs listed first, by hash
    bucket (the xor of the address's last four bytes), then the wildcard ones."""
    sets = dict(hosts.address_sets())
    exact: dict[int, list[VhostAddr]] = {}
    wild: list[VhostAddr] = []
    for server in reversed(hosts.vhosts):
        for addr in server.vhost_addrs:
            key = VhostAddr(addr.ip, addr.port, "")
            if addr.ip == "*":
                chain = wild
                found = next((c for c in chain if c.port in (ANY_PORT, addr.port)), None)
            else:
                chain = exact.setdefault(_bucket(addr.ip), [])
                found = next((c for c in chain if c.ip == addr.ip and (
                    ANY_PORT in (c.port, addr.port) or c.port == addr.port)), None)
            if found is None or found.port != addr.port:
                chain.insert(0, key)
    order = [key for bucket in sorted(exact) for key in exact[bucket]] + wild
    return [(key, sets[key]) for key in dict.fromkeys(order)]


def _bucket(ip: str) -> int:
    try:
        packed = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    except OSError:                      # a scoped IPv6 address: not hashed as httpd would
        return 0
    return packed[-4] ^ packed[-3] ^ packed[-2] ^ packed[-1]


def _named(server: Any) -> str:
    return f"{server_hostname(server)} ({server.defined_at()})"
