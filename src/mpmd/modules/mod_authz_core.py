"""mod_authz_core: ``Require`` in the per-directory config, checked in access_checker.

Rule 1: providers are a table (``PROVIDERS``): ``all granted|denied``, ``method M ...``,
        ``ip addr|cidr ...``, ``local``; ``Require not <provider> ...`` negates one.  Unknown
        providers are a configuration error, never a silent grant.
Rule 2: the requirements of one section form a RequireAny (httpd's default without a
        container); an inner section's Require lines replace the outer ones (AuthMerging Off).
Rule 3: no Require anywhere means granted; a denial is 403 (no authentication here).
Rule 4: ``ip`` and ``local`` judge the useragent address (``ctx.useragent_addr()``): the client
        mod_remoteip found behind trusted proxies, else the connection's peer; the route is
        then volatile (core/modules.py), so each request is judged.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from mpmd.config.directives import Args, Ctx, Directive
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.modules import Module, volatile_route
from mpmd.core.request import error

_LOCAL = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def _client_ip(ctx: RequestContext) -> Any:
    try:
        addr = ipaddress.ip_address((ctx.useragent or ctx.conn.client_addr)[0].split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped or addr


def _in(ctx: RequestContext, nets: tuple[Any, ...]) -> bool:
    ip = _client_ip(ctx)
    return ip is not None and any(ip.version == n.version and ip in n for n in nets)


def _parse_all(args: list[str]) -> Any:
    if len(args) != 1 or args[0].lower() not in ("granted", "denied"):
        raise ValueError("'Require all' takes 'granted' or 'denied'")
    return args[0].lower() == "granted"


def _parse_method(args: list[str]) -> Any:
    if not args:
        raise ValueError("'Require method' needs at least one method")
    return frozenset(a.upper() for a in args)


def _parse_ip(args: list[str]) -> Any:
    if not args:
        raise ValueError("'Require ip' needs at least one address")
    try:
        return tuple(ipaddress.ip_network(a, strict=False) for a in args)
    except ValueError as exc:
        raise ValueError(f"'Require ip': {exc}") from None


def _parse_local(args: list[str]) -> Any:
    if args:
        raise ValueError("'Require local' takes no arguments")
    return _LOCAL


def _parse_expr(args: list[str]) -> Any:
    """``Require expr "..."``: the rest of the line, an ap_expr (core/expr.py)."""
    from mpmd.core.expr import ExprError, compile_expr
    try:
        return compile_expr(" ".join(args))
    except ExprError as exc:
        raise ValueError(f"Cannot parse expression in require line: {exc}") from None


def _expr(ctx: RequestContext, expr: Any) -> bool:
    from mpmd.core.expr import ExprEvalError
    try:
        return expr.evaluate(ctx)
    except ExprEvalError:
        return False


CLIENT_PROVIDERS = frozenset({"ip", "local", "expr"})   # decided by the client or the request

# provider -> (parse args, check(ctx, parsed) -> bool)
PROVIDERS: dict[str, tuple[Callable[[list[str]], Any], Callable[[RequestContext, Any], bool]]] = {
    "all": (_parse_all, lambda ctx, granted: granted),
    "method": (_parse_method, lambda ctx, methods: ctx.request.method in methods),
    "ip": (_parse_ip, _in),
    "local": (_parse_local, _in),
    "expr": (_parse_expr, _expr),
}


@dataclass(frozen=True)
class Requirement:
    provider: str
    negate: bool
    arg: Any

    def granted(self, ctx: RequestContext) -> bool:
        return PROVIDERS[self.provider][1](ctx, self.arg) != self.negate


def require_value(args: list[str]) -> Requirement:
    negate = bool(args) and args[0].lower() == "not"
    words = args[1:] if negate else args
    if not words or words[0].lower() not in PROVIDERS:
        name = words[0] if words else ""
        raise ValueError(f"Unknown Authz provider: {name}")
    provider = words[0].lower()
    if negate and provider == "all":
        raise ValueError("'Require not all' is not allowed")
    return Requirement(provider, negate, PROVIDERS[provider][0](words[1:]))


def _requirements(dc: Any) -> list[Requirement]:
    value = getattr(dc, "require", None)
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check(ctx: RequestContext, reqs: list[Requirement]) -> bool:
    """Rule 2: RequireAny over the positive requirements; any failing "not" denies."""
    positive = [r for r in reqs if not r.negate]
    if any(not r.granted(ctx) for r in reqs if r.negate):
        return False
    return not positive or any(r.granted(ctx) for r in positive)


class AuthzCoreModule(Module):
    name: ClassVar[str] = "authz_core_module"
    route_pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("mod_authz_core.c", "authz_host_module", "mod_authz_host.c")
    builtin: ClassVar[bool] = True
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("Require", Args.RAW_ARGS, Ctx.DIR, require_value, None, "require",
                  "Who may access: all granted|denied, method M..., ip A[/N]..., local; "
                  "'not' negates.", syntax="Require [not] provider [args ...]",
                  owner="authz_core_module"),
    ]

    def access_checker(self, ctx: RequestContext) -> Response | None:
        reqs = _requirements(ctx.dir_config)
        if any(r.provider in CLIENT_PROVIDERS for r in reqs):
            volatile_route(ctx)              # the answer depends on who asks
        if reqs and not check(ctx, reqs):
            return error(403, ctx)
        return None
