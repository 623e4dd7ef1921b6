"""mod_access_compat: Apache 2.2's host-based access control, Order, Allow, Deny and Satisfy.

Rule 1: ``Allow from`` / ``Deny from`` take ``all``, an IP address, a partial IPv4 address
        (``10.1`` is 10.1.0.0/16), ``a.b.c.d/nn``, ``a.b.c.d/m.m.m.m``, IPv6 (with /nn), a host
        or domain name (the client's double-reverse name matched on name boundaries,
        hostnames.py), ``env=VAR`` (set in ``ctx.env``) and ``env=!VAR`` (not set); each word
        after ``from`` is one entry, as httpd's ITERATE2.
Rule 2: httpd's check_dir_access for the request's method: ``Order Deny,Allow`` (the default):
        allowed unless a Deny entry matches and no Allow entry does; ``Allow,Deny``: refused
        unless an Allow entry matches and no Deny entry does; ``Mutual-failure``: allowed only
        when an Allow entry matches and no Deny entry does.  No lines at all allow.
Rule 3: the lines of one section are one config that replaces an outer section's whole
        (httpd's module has no merger): a <Location> with only ``Satisfy Any`` drops the Allow
        and Deny lines of the <Directory> around it.
Rule 4: inside <Limit>/<LimitExcept> an Allow/Deny entry counts for those methods only, and
        Order and Satisfy are set for those methods only (httpd keeps them per method).
Rule 5: Satisfy (judged in mod_authz_core.py): ``Any`` lets a request the Allow/Deny lines
        allow in without the Require lines; ``All`` (the default) needs both.
Rule 6: entries that depend on the client (addresses, names, env) make the route volatile;
        ``all`` does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mpmd.config.directives import Args, Ctx, Directive, Override
from mpmd.config.values import Worded
from mpmd.core.exchange import RequestContext
from mpmd.core.modules import Module
from mpmd.modules.mod_authz_core import ALL_METHODS, Mask, client_ip, ip_subnet

DENY_ALLOW, ALLOW_DENY, MUTUAL = "deny,allow", "allow,deny", "mutual-failure"


@dataclass(frozen=True)
class Entry:
    kind: str                 # "all", "ip", "host", "env", "nenv"
    value: Any                # networks, a name, a variable
    limited: Mask = ALL_METHODS

    def matches(self, ctx: RequestContext, ip: Any, host: list[Any]) -> bool:
        kind = self.kind
        if kind == "all":
            return True
        if kind == "ip":
            return ip is not None and ip.version == self.value.version and ip in self.value
        if kind == "env":
            return self.value in ctx.env
        if kind == "nenv":
            return self.value not in ctx.env
        if not host:                                   # looked up once per request
            from mpmd.modules.hostnames import remote_host
            host.append(remote_host(ctx))
        from mpmd.modules.hostnames import in_domain
        return host[0] is not None and in_domain(self.value, host[0])


def _entries(name: str) -> Any:
    def parse(args: list[str]) -> tuple[str, tuple[Entry, ...]]:
        if len(args) < 2:
            raise Worded(f"{name} requires at least two arguments, 'from' followed by hostnames "
                         "or IP-address wildcards")
        if args[0].lower() != "from":
            raise Worded("allow and deny must be followed by 'from'")
        out = []
        for word in args[1:]:
            low = word.lower()
            if low.startswith("env=!"):
                out.append(Entry("nenv", word[5:]))
            elif low.startswith("env="):
                out.append(Entry("env", word[4:]))
            elif low == "all":
                out.append(Entry("all", None))
            else:
                net = ip_subnet(word)
                out.append(Entry("host", word) if net is None else Entry("ip", net))
        return (name, tuple(out))
    return parse


def _order(args: list[str]) -> tuple[str, str]:
    if len(args) != 1:
        raise Worded("order takes one argument, 'allow,deny', 'deny,allow', or 'mutual-failure'")
    word = args[0].lower()
    if word not in (DENY_ALLOW, ALLOW_DENY, MUTUAL):
        raise Worded("unknown order")
    return ("order", word)


def _satisfy(args: list[str]) -> tuple[str, str]:
    word = args[0].lower()
    if word not in ("any", "all"):
        raise Worded("Satisfy either 'any' or 'all'.")
    return ("satisfy", word)


@dataclass(frozen=True)
class AccessCompat:
    """One section's lines (Rule 3): per-method settings as (mask, value), later first."""

    orders: tuple[tuple[Mask, str], ...]
    satisfies: tuple[tuple[Mask, str], ...]
    allows: tuple[Entry, ...]
    denies: tuple[Entry, ...]
    volatile: bool

    def _setting(self, pairs: tuple[tuple[Mask, str], ...], method: str, default: str) -> str:
        for mask, value in pairs:
            if mask.allows(method):
                return value
        return default

    def satisfy_any(self, method: str) -> bool:
        return self._setting(self.satisfies, method, "all") == "any"

    def allowed(self, ctx: RequestContext) -> bool:
        """Rule 2."""
        method = ctx.request.method
        if not self.allows and not self.denies:
            return self._setting(self.orders, method, DENY_ALLOW) != ALLOW_DENY \
                and self._setting(self.orders, method, DENY_ALLOW) != MUTUAL
        ip = client_ip(ctx) if self.volatile else None
        host: list[Any] = []

        def found(entries: tuple[Entry, ...]) -> bool:
            return any(e.limited.allows(method) and e.matches(ctx, ip, host) for e in entries)

        order = self._setting(self.orders, method, DENY_ALLOW)
        if order == ALLOW_DENY:
            return found(self.allows) and not found(self.denies)
        if order == DENY_ALLOW:
            return not found(self.denies) or found(self.allows)
        return found(self.allows) and not found(self.denies)


def fold(items: list[tuple[Any, Any]]) -> AccessCompat:
    """The Order/Allow/Deny/Satisfy lines of one section -> its AccessCompat (Rule 3)."""
    orders: list[tuple[Mask, str]] = []
    satisfies: list[tuple[Mask, str]] = []
    allows: list[Entry] = []
    denies: list[Entry] = []
    for value, _ in items:
        kind, what, mask = value
        if kind == "order":
            orders.insert(0, (mask, what))
        elif kind == "satisfy":
            satisfies.insert(0, (mask, what))
        else:
            entries = [Entry(e.kind, e.value, mask) for e in what]
            (allows if kind == "allow" else denies).extend(entries)
    volatile = any(e.kind != "all" for e in (*allows, *denies))
    return AccessCompat(tuple(orders), tuple(satisfies), tuple(allows), tuple(denies), volatile)


def _with_mask(value: Any, mask: Mask) -> Any:
    return (value[0], value[1], value[2] & mask)


def _line(conv: Any) -> Any:
    def parse(args: list[str]) -> Any:
        kind, what = conv(args)
        return (kind, what, ALL_METHODS)
    return parse


_EXTRA: dict[str, Any] = {"group": fold, "limited": _with_mask}


class AccessCompatModule(Module):
    """The directives; the check runs in mod_authz_core's access_checker (Satisfy, Rule 5)."""

    name: ClassVar[str] = "access_compat_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_access_compat.c",)
    builtin: ClassVar[bool] = True
    route_pure: ClassVar[bool] = True
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("Order", Args.RAW_ARGS, Ctx.DIR, _line(_order), None, "access_compat",
                  "The order Allow and Deny are applied: Deny,Allow, Allow,Deny or Mutual-failure.",
                  syntax="Order Deny,Allow|Allow,Deny|Mutual-failure", owner="access_compat_module",
                  extra=_EXTRA, override=Override.LIMIT),
        Directive("Allow", Args.RAW_ARGS, Ctx.DIR, _line(_entries("allow")), None, "access_compat",
                  "Clients let in: all, addresses, networks, host names, env=[!]VAR.",
                  syntax="Allow from all|host|env=[!]var ...", owner="access_compat_module",
                  extra=_EXTRA, override=Override.LIMIT),
        Directive("Deny", Args.RAW_ARGS, Ctx.DIR, _line(_entries("deny")), None, "access_compat",
                  "Clients refused: all, addresses, networks, host names, env=[!]VAR.",
                  syntax="Deny from all|host|env=[!]var ...", owner="access_compat_module",
                  extra=_EXTRA, override=Override.LIMIT),
        Directive("Satisfy", Args.TAKE1, Ctx.DIR, _line(_satisfy), None, "access_compat",
                  "Any: Allow/Deny or Require suffices; All: both are needed.",
                  syntax="Satisfy Any|All", owner="access_compat_module",
                  extra=_EXTRA, override=Override.AUTHCONFIG),
    ]
