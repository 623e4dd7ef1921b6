"""mod_authz_core: ``Require`` in the per-directory config, checked in access_checker.

Rule 1: providers are a table (``PROVIDERS``): ``all granted|denied``, ``method M ...``,
        ``ip addr|cidr ...``, ``local``; ``Require not <provider> ...`` negates one.  Unknown
        providers are a configuration error, never a silent grant.
Rule 2: the requirements of one section form a RequireAny (httpd's default without a
        container); an inner section's Require lines replace the outer ones (AuthMerging Off).
Rule 3: no Require anywhere means granted; a denial is 403 (no authentication here).
Rule 5: ``user``, ``valid-user`` (mod_authz_user) and ``group`` (mod_authz_groupfile) need a
        user: without one they answer None ("denied, no user", httpd's AUTHZ_DENIED_NO_USER).
        When the Require lines come to None, mod_auth.py's ``authenticate`` finds the user
        (or answers 401/500) and the lines are judged again; a user still denied gets 401 with
        WWW-Authenticate, as httpd's auth_checker answers.  Such routes are volatile.
        ``Require env`` is not a provider (refused at -t): SetEnvIf runs in header_parser,
        after access_checker (core/request.py Rule 6), so no variable would be set yet.
Rule 4: ``ip`` and ``local`` judge the useragent address (``ctx.useragent_addr()``): the client
        mod_remoteip found behind trusted proxies, else the connection's peer; the route is
        then volatile (core/modules.py), so each request is judged.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from mpmd.config.directives import Args, Ctx, Directive, Override
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.modules import Module, volatile_route
from mpmd.core.request import error, log_error

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


def _parse_names(what: str) -> Callable[[list[str]], Any]:
    def parse(args: list[str]) -> Any:
        if not args:
            raise ValueError(f"'Require {what}' needs at least one name")
        return frozenset(args)
    return parse


def _parse_none(what: str) -> Callable[[list[str]], Any]:
    def parse(args: list[str]) -> Any:
        if args:
            raise ValueError(f"'Require {what}' takes no arguments")
        return None
    return parse


def _user(ctx: RequestContext, names: Any) -> bool | None:
    user = ctx.notes.get("remote_user")
    return None if user is None else user in names


def _valid_user(ctx: RequestContext, _: Any) -> bool | None:
    return None if ctx.notes.get("remote_user") is None else True


def _group(ctx: RequestContext, names: Any) -> bool | None:
    if ctx.notes.get("remote_user") is None:
        return None
    from mpmd.modules.mod_auth import in_group
    return in_group(ctx, names)


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


# decided by who asks (the client's address, the user): volatile routes
CLIENT_PROVIDERS = frozenset({"ip", "local", "user", "valid-user", "group", "expr"})

# provider -> (parse args, check(ctx, parsed) -> bool)
PROVIDERS: dict[str, tuple[Callable[[list[str]], Any], Callable[[RequestContext, Any], bool | None]]] = {
    "all": (_parse_all, lambda ctx, granted: granted),
    "method": (_parse_method, lambda ctx, methods: ctx.request.method in methods),
    "ip": (_parse_ip, _in),
    "local": (_parse_local, _in),
    "expr": (_parse_expr, _expr),
    "user": (_parse_names("user"), _user),
    "valid-user": (_parse_none("valid-user"), _valid_user),
    "group": (_parse_names("group"), _group),
}


@dataclass(frozen=True)
class Requirement:
    provider: str
    negate: bool
    arg: Any

    def granted(self, ctx: RequestContext) -> bool | None:
        """True, False, or None: denied for want of a user (Rule 5; "not" keeps None)."""
        result = PROVIDERS[self.provider][1](ctx, self.arg)
        return None if result is None else result != self.negate


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


def check(ctx: RequestContext, reqs: list[Requirement]) -> bool | None:
    """Rule 2: RequireAny over the positive requirements; any failing "not" denies.
    None: no grant yet, and a user could change that (Rule 5)."""
    negative = [r.granted(ctx) for r in reqs if r.negate]
    if False in negative:
        return False
    positive = [r.granted(ctx) for r in reqs if not r.negate]
    if None in negative:
        return None
    if not positive or True in positive:
        return True
    return None if None in positive else False


class AuthzCoreModule(Module):
    name: ClassVar[str] = "authz_core_module"
    route_pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("mod_authz_core.c",)
    builtin: ClassVar[bool] = True
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("Require", Args.RAW_ARGS, Ctx.DIR, require_value, None, "require",
                  "Who may access: all granted|denied, method M..., ip A[/N]..., local, "
                  "user U..., valid-user, group G...; 'not' negates.", syntax="Require [not] provider [args ...]",
                  owner="authz_core_module", extra={"group": True}, override=Override.AUTHCONFIG),
    ]

    def access_checker(self, ctx: RequestContext) -> Response | None:
        reqs = _requirements(ctx.dir_config)
        if any(r.provider in CLIENT_PROVIDERS for r in reqs):
            volatile_route(ctx)              # the answer depends on who asks
        if not reqs:
            return None
        result = check(ctx, reqs)
        if result is None:                   # Rule 5: who is the user?
            from mpmd.modules.mod_auth import authenticate, challenge
            answer = authenticate(ctx)
            if answer is not None:
                return answer
            if check(ctx, reqs):
                return None
            log_error(ctx, "AH01631", f"user {ctx.notes.get('remote_user')}: authorization "
                      f"failure for \"{ctx.uri_path}\"")
            return challenge(ctx)
        return None if result else error(403, ctx)
