"""The client's host name as httpd's ``Require host`` and ``Allow from name`` take it: double
reverse DNS (REMOTE_DOUBLE_REV).

Rule 1: the PTR name of the useragent address is kept only when a forward lookup of that name
        gives the address back; else there is no name (httpd's double_reverse = -1).
Rule 2: answers are remembered per process for ``TTL_S`` seconds (at most ``MAX_NAMES``
        addresses), so a client's requests cost one lookup, not one each (httpd keeps the
        name per connection).  The lookups block the thread that judges the request.
Rule 3: ``in_domain(domain, name)``: a case-insensitive suffix match on a name boundary, as
        httpd's in_domain: ``example.com`` and ``.example.com`` match ``www.example.com`` and
        ``example.com`` (the first), never ``badexample.com``.
"""

from __future__ import annotations

import socket
import time
from typing import Any

TTL_S = 60.0
MAX_NAMES = 1024
_names: dict[str, tuple[float, str | None]] = {}


def _lookup(ip: str) -> str | None:
    try:
        name = socket.gethostbyaddr(ip)[0]
    except (OSError, UnicodeError):
        return None
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return None
    found = {info[4][0].split("%", 1)[0] for info in infos}
    return name if ip in found else None


def remote_host(ctx: Any) -> str | None:
    """Rule 1 for ``ctx``'s useragent address (an IPv4-mapped address as IPv4)."""
    ip = (ctx.useragent or ctx.conn.client_addr)[0].split("%", 1)[0]
    if ip.startswith("::ffff:") and "." in ip:
        ip = ip[7:]
    now = time.monotonic()
    hit = _names.get(ip)
    if hit is not None and now - hit[0] < TTL_S:
        return hit[1]
    name = _lookup(ip)
    if len(_names) >= MAX_NAMES:
        _names.clear()
    _names[ip] = (now, name)
    return name


def in_domain(domain: str, name: str) -> bool:
    """Rule 3."""
    dl, wl = len(domain), len(name)
    if wl < dl or name[wl - dl:].lower() != domain.lower():
        return False
    return wl == dl or domain.startswith(".") or name[wl - dl - 1] == "."
