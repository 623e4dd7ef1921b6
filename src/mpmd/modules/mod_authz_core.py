"""mod_authz_core: ``Require``, ``<RequireAll>``, ``<RequireAny>``, ``<RequireNone>`` and
AuthMerging in the per-directory config, judged in access_checker with mod_access_compat's
Order/Allow/Deny and Satisfy (mod_access_compat.py).

Theory: a section's authorisation is one tree, as httpd's authz_section_conf: its Require lines
and containers are the children of an implicit <RequireAny>; ``<RequireAll>`` and
``<RequireAny>`` nest, ``<RequireNone>`` is a <RequireAny> whose result is negated.  Each node
answers GRANTED, DENIED, DENIED_NO_USER (denied, and a user could change that) or NEUTRAL.

Rule 1: providers are a table (``PROVIDERS``): ``all granted|denied``, ``method M ...``,
        ``ip addr|cidr ...``, ``local``, ``host name ...``, ``env VAR ...``, ``expr``, ``user``,
        ``valid-user``, ``group``; ``Require not <provider> ...`` negates one.  Unknown
        providers are a configuration error, never a silent grant.
Rule 2: httpd's evaluation (apply_authz_sections): a NEUTRAL child is skipped; in an "all"
        node a DENIED child ends it DENIED, else DENIED_NO_USER wins over GRANTED; in an "any"
        node a GRANTED child ends it GRANTED, else DENIED_NO_USER wins over DENIED.  Negation
        turns GRANTED into DENIED and a denial into NEUTRAL (not being refused grants
        nothing).  A node whose method mask (``<Limit>``, ``<LimitExcept>``) leaves the request's
        method out answers GRANTED inside an "all" node and NEUTRAL inside an "any" one.  The
        whole tree is judged as a child of an "all" node; only GRANTED grants.
Rule 3: what httpd refuses at load is refused, with file:line: ``Require not`` or
        ``<RequireNone>`` directly in a <RequireAny> (the implicit one too: "negative Require
        directive has no effect in <RequireAny> directive") or a <RequireNone>, an empty
        container, a <RequireAll> holding only negative requirements (httpd's AH01624), ``Require not all``, any directive
        but Require and containers inside a container.
Rule 4: an inner section's tree replaces the outer one (AuthMerging Off, the default);
        ``AuthMerging And|Or`` in a section with its own Require lines joins the inherited
        tree and the section's under one <RequireAll>/<RequireAny>; ``AuthMerging Off`` alone in
        a section drops the inherited tree.  As httpd's location and file walks, the
        <Location> sections of a request join among themselves first and their result then
        joins the directory's (config/model.py, ``extra["phase_merge"]``): a <Location> with
        ``AuthMerging Or`` below one without it is or-ed with the <Directory>'s tree too.
Rule 5: ``user``, ``valid-user`` and ``group`` answer DENIED_NO_USER without a user; when the
        tree does, mod_auth.py's ``authenticate`` finds the user (or answers 401/500) and the
        tree is judged again: a user still denied gets 401 with WWW-Authenticate, as httpd's
        auth_checker answers; without a user a denial is 403.
Rule 6: ``ip``, ``local`` and ``host`` judge the useragent address (``ctx.useragent_addr()``:
        the client mod_remoteip found, else the peer); ``host`` takes the double-reverse name of
        that address (hostnames.py) and matches it on domain-name boundaries; ``env`` grants
        when one of its variables is set in ``ctx.env``, which SetEnvIf/BrowserMatch fill in
        header_parser before the access check (core/request.py Rule 6).  A tree holding any
        of these, ``expr`` or a user provider makes the route volatile: each request is judged.
Rule 7: mod_access_compat (Satisfy): with ``Satisfy Any`` a request Allow/Deny lets in skips
        the tree; with ``Satisfy All`` (the default) one Allow/Deny refuses is 403 before it.
Rule 8: ``AuthType Basic`` where no Require line applies is a 500 (httpd's AH01627); ``method``
        and <Limit> take HEAD as GET (httpd's method numbers).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import Any, Callable, ClassVar

from mpmd.config.directives import Args, Ctx, Directive, Override
from mpmd.config.values import Worded
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.modules import Module, volatile_route
from mpmd.core.request import error, log_error

_LOCAL = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

GRANTED, DENIED, DENIED_NO_USER, NEUTRAL = "granted", "denied", "denied-no-user", "neutral"


# -- method masks (<Limit>, <LimitExcept>) ---------------------------------------------------

@dataclass(frozen=True)
class Mask:
    """httpd's cmd->limited: the methods ``methods``, or (``excepted``) every other one.  HEAD
    is GET, as httpd's method numbers make it."""

    methods: frozenset[str]
    excepted: bool

    def allows(self, method: str) -> bool:
        return ((method if method != "HEAD" else "GET") in self.methods) != self.excepted

    def __and__(self, other: "Mask") -> "Mask":
        a, b = self.methods, other.methods
        if not self.excepted and not other.excepted:
            return Mask(a & b, False)
        if self.excepted and other.excepted:
            return Mask(a | b, True)
        return Mask(a - b, False) if not self.excepted else Mask(b - a, False)

    def __or__(self, other: "Mask") -> "Mask":
        a, b = self.methods, other.methods
        if not self.excepted and not other.excepted:
            return Mask(a | b, False)
        if self.excepted and other.excepted:
            return Mask(a & b, True)
        return Mask(b - a, True) if not self.excepted else Mask(a - b, True)

    @property
    def empty(self) -> bool:
        return not self.excepted and not self.methods


ALL_METHODS = Mask(frozenset(), True)


def limit_mask(args: list[str], name: str, outer: Mask | None) -> Mask:
    """<Limit M ...> / <LimitExcept M ...> inside ``outer``: the mask, or Worded in httpd's
    words (ap_limit_section)."""
    if not args:
        raise Worded(f"<{name}> directive requires additional arguments")
    methods = set()
    for word in args:
        if word == "TRACE" and name == "Limit":
            raise Worded("TRACE cannot be controlled by <Limit>, see TraceEnable")
        methods.add("GET" if word == "HEAD" else word)
    mask = Mask(frozenset(methods), name == "LimitExcept")
    old = outer or ALL_METHODS
    both = old & mask
    if both.empty:
        raise Worded(f"<{name}> directive excludes all methods")
    if both == old:
        raise Worded(f"<{name}> directive specifies methods already excluded")
    return both


# -- providers ---------------------------------------------------------------------------------

def client_ip(ctx: RequestContext) -> Any:
    try:
        addr = ipaddress.ip_address((ctx.useragent or ctx.conn.client_addr)[0].split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped or addr


def _in(ctx: RequestContext, nets: tuple[Any, ...]) -> bool:
    ip = client_ip(ctx)
    return ip is not None and any(ip.version == n.version and ip in n for n in nets)


def _parse_all(args: list[str]) -> Any:
    if len(args) != 1 or args[0].lower() not in ("granted", "denied"):
        raise ValueError("'Require all' takes 'granted' or 'denied'")
    return args[0].lower() == "granted"


def _parse_method(args: list[str]) -> Any:
    if not args:
        raise ValueError("'Require method' needs at least one method")
    return frozenset("GET" if a.upper() == "HEAD" else a.upper() for a in args)


def _method(ctx: RequestContext, methods: frozenset[str]) -> bool:
    method = ctx.request.method
    return (method if method != "HEAD" else "GET") in methods     # HEAD is GET, as Mask


def _looks_like_ip(word: str) -> bool:
    return ":" in word or all(c.isdigit() or c == "." for c in word)


def ip_subnet(word: str) -> Any:
    """apr_ipsubnet_create: ``ip``, partial ``10.1``, ``ip/bits``, ``ip/netmask``; None when the
    word does not look like an address (a host name)."""
    ip, slash, mask = word.partition("/")
    if not slash:
        if not _looks_like_ip(ip) or not ip:
            return None
        if ":" not in ip and ip.count(".") < 3 or ip.endswith("."):
            parts = [p for p in ip.split(".") if p]
            if not parts or len(parts) > 4 or any(not p.isdigit() or int(p) > 255 for p in parts):
                raise Worded("The specified IP address is invalid.")
            return ipaddress.ip_network(".".join(parts + ["0"] * (4 - len(parts)))
                                        + f"/{8 * len(parts)}", strict=False)
        try:
            return ipaddress.ip_network(ip)
        except ValueError:
            raise Worded("The specified IP address is invalid.") from None
    if not _looks_like_ip(ip) or not ip:
        raise Worded("An IP address was expected")
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise Worded("The specified IP address is invalid.") from None
    if mask.isdigit():
        bits = int(mask)
    elif addr.version == 4 and mask.count(".") == 3:
        try:
            bits = ipaddress.ip_network(f"0.0.0.0/{mask}").prefixlen
        except ValueError:
            raise Worded("The specified network mask is invalid.") from None
    else:
        raise Worded("The specified network mask is invalid.")
    try:
        return ipaddress.ip_network(f"{ip}/{bits}", strict=False)
    except ValueError:
        raise Worded("The specified network mask is invalid.") from None


def _parse_ip(args: list[str]) -> Any:
    if not args:
        raise ValueError("'Require ip' needs at least one address")
    nets = []
    for word in args:
        net = ip_subnet(word)
        if net is None:
            raise Worded(f"ip address '{word}' appears to be invalid")
        nets.append(net)
    return tuple(nets)


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


def _env(ctx: RequestContext, names: tuple[str, ...]) -> bool:
    env = ctx.env
    return any(name in env for name in names)


def _host(ctx: RequestContext, names: tuple[str, ...]) -> bool:
    from mpmd.modules.hostnames import in_domain, remote_host
    host = remote_host(ctx)
    if host is None:
        log_error(ctx, "AH01753", f"access check of '{' '.join(names)}' to {ctx.uri_path} "
                  "failed, reason: unable to get the remote host name")
        return False
    return any(in_domain(name, host) for name in names)


# decided by who asks (the client's address, its headers, the user): volatile routes
CLIENT_PROVIDERS = frozenset({"ip", "local", "host", "env", "user", "valid-user", "group", "expr"})

# provider -> (parse args, check(ctx, parsed) -> True | False | None: denied, no user)
PROVIDERS: dict[str, tuple[Callable[[list[str]], Any], Callable[[RequestContext, Any], bool | None]]] = {
    "all": (_parse_all, lambda ctx, granted: granted),
    "method": (_parse_method, _method),
    "ip": (_parse_ip, _in),
    "local": (_parse_local, _in),
    "host": (tuple, _host),
    "env": (tuple, _env),
    "expr": (_parse_expr, _expr),
    "user": (_parse_names("user"), _user),
    "valid-user": (_parse_none("valid-user"), _valid_user),
    "group": (_parse_names("group"), _group),
}


# -- the tree ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Requirement:
    """One Require line (a leaf)."""

    provider: str
    negate: bool
    arg: Any
    limited: Mask = ALL_METHODS

    @property
    def volatile(self) -> bool:
        return self.provider in CLIENT_PROVIDERS

    def judge(self, ctx: RequestContext, parent_all: bool) -> str:
        if not self.limited.allows(ctx.request.method):
            return GRANTED if parent_all else NEUTRAL
        result = PROVIDERS[self.provider][1](ctx, self.arg)
        answer = DENIED_NO_USER if result is None else GRANTED if result else DENIED
        if self.negate:
            return DENIED if answer == GRANTED else NEUTRAL
        return answer


@dataclass(frozen=True)
class AuthzSection:
    """A container: ``kind`` is RequireAll, RequireAny, RequireNone (or the implicit RequireAny
    of a section); ``merging`` is the AuthMerging of the section it stands for (Rule 4)."""

    kind: str
    children: tuple[Any, ...]
    limited: Mask = ALL_METHODS
    merging: str | None = None
    volatile: bool = False

    @property
    def all(self) -> bool:
        return self.kind == "RequireAll"

    @property
    def negate(self) -> bool:
        return self.kind == "RequireNone"

    def judge(self, ctx: RequestContext, parent_all: bool) -> str:
        if not self.limited.allows(ctx.request.method):
            return GRANTED if parent_all else NEUTRAL
        result = NEUTRAL
        is_all = self.kind == "RequireAll"
        for child in self.children:
            got = child.judge(ctx, is_all)
            if got == NEUTRAL:
                continue
            if is_all:
                if got == DENIED:
                    result = got
                    break
                if (got == DENIED_NO_USER and result != DENIED) or result == NEUTRAL:
                    result = got
            else:
                if got == GRANTED:
                    result = got
                    break
                if (got == DENIED_NO_USER and result == DENIED) or result == NEUTRAL:
                    result = got
        if self.kind == "RequireNone":
            return DENIED if result == GRANTED else NEUTRAL if result != NEUTRAL else result
        return result


def make_section(kind: str, children: tuple[Any, ...], merging: str | None = None) -> AuthzSection:
    """A container over ``children``; its mask is the union of theirs (httpd ORs each child's
    into its container's), so a section whose lines are all in <Limit POST> grants a GET."""
    limited = children[0].limited
    for child in children[1:]:
        limited = limited | child.limited
    return AuthzSection(kind, children, limited, merging,
                        any(child.volatile for child in children))


def check_child(container: str, child: Any) -> None:
    """Rule 3 for one child being added to a ``container``."""
    if container != "RequireAll" and child.negate:
        if isinstance(child, Requirement):
            raise Worded(f"negative Require directive has no effect in <{container}> directive")
        raise Worded(f"<{child.kind}> directive has no effect in <{container}> directive")


def check_container(kind: str, children: tuple[Any, ...]) -> None:
    if not children:
        raise Worded(f"<{kind}> directive contains no authorization directives")
    if kind == "RequireAll" and all(child.negate for child in children):
        raise Worded(f"<{kind}> directive contains only negative authorization directives")


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


def _auth_merging(args: list[str]) -> tuple[str, str]:
    word = args[0].lower()
    if word not in ("off", "and", "or"):
        raise Worded("AuthMerging must be one of: Off | And | Or")
    return ("merging", word)


def fold_section(items: list[tuple[Any, Any]]) -> Any:
    """The Require lines, containers and AuthMerging of one section (``items``: (value, op))
    -> its tree: the implicit <RequireAny> (Rule 3), with the section's AuthMerging (Rule 4).
    Raises Worded with the op to blame."""
    children = []
    merging = None
    for value, op in items:
        if isinstance(value, tuple):           # ("merging", word)
            merging = value[1]
            continue
        try:
            check_child("RequireAny", value)
        except Worded as exc:
            exc.op = op                        # type: ignore[attr-defined]
            raise
        children.append(value)
    if not children:
        return AuthzSection("RequireAny", (), ALL_METHODS, merging)
    return make_section("RequireAny", tuple(children), merging=merging)


def combine_sections(inherited: Any, new: Any) -> Any:
    """Rule 4: how a section's tree meets the one it inherits."""
    if new is None:
        return inherited
    if inherited is None or not inherited.children:
        return new
    if not new.children:                       # AuthMerging alone
        return new if new.merging == "off" else inherited
    if new.merging in ("and", "or"):           # the join keeps the AuthMerging (httpd's op)
        return AuthzSection("RequireAll" if new.merging == "and" else "RequireAny",
                            (inherited, new), inherited.limited | new.limited, new.merging,
                            inherited.volatile or new.volatile)
    return new


def limit_requirement(value: Any, mask: Mask) -> Any:
    """A Require line or container inside <Limit>/<LimitExcept>: only for those methods."""
    if isinstance(value, Requirement):
        return replace(value, limited=value.limited & mask)
    if isinstance(value, AuthzSection):
        return replace(value, limited=value.limited & mask)
    return value                               # AuthMerging: for every method, as httpd


def judge(ctx: RequestContext, tree: Any) -> str:
    return tree.judge(ctx, True)


class AuthzCoreModule(Module):
    name: ClassVar[str] = "authz_core_module"
    route_pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("mod_authz_core.c",)
    builtin: ClassVar[bool] = True
    _REQUIRE_EXTRA: ClassVar[dict[str, Any]] = {
        "group": fold_section, "combine": combine_sections, "limited": limit_requirement,
        "phase_merge": True}
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("Require", Args.RAW_ARGS, Ctx.DIR, require_value, None, "require",
                  "Who may access: all granted|denied, method M..., ip A[/N]..., local, host "
                  "name..., env VAR..., expr, user U..., valid-user, group G...; 'not' negates.",
                  syntax="Require [not] provider [args ...]",
                  owner="authz_core_module", extra=_REQUIRE_EXTRA, override=Override.AUTHCONFIG),
        Directive("AuthMerging", Args.TAKE1, Ctx.DIR, _auth_merging, None, "require",
                  "How a section's Require lines join the inherited ones: Off (replace), And, Or.",
                  syntax="AuthMerging Off|And|Or", owner="authz_core_module",
                  extra=_REQUIRE_EXTRA, override=Override.AUTHCONFIG),
        *(Directive(f"<{kind}>", Args.RAW_ARGS, Ctx.DIR, lambda args: args, None, "",
                    doc, syntax=f"<{kind}> ... </{kind}>", owner="authz_core_module",
                    extra={"section": kind, "inner": Ctx.DIR, "inline": "authz"},
                    override=Override.AUTHCONFIG)
          for kind, doc in (
              ("RequireAll", "Its Require lines and containers must all grant."),
              ("RequireAny", "One of its Require lines or containers must grant."),
              ("RequireNone", "None of its Require lines or containers may grant (it never "
                              "grants by itself)."))),
        *(Directive(f"<{kind}>", Args.RAW_ARGS, Ctx.DIR, lambda args: args, None, "",
                    doc, syntax=f"<{kind} method [method] ...> ... </{kind}>",
                    owner="core", extra={"section": kind, "inner": Ctx.DIR, "inline": "limit"},
                    override=Override.LIMIT | Override.AUTHCONFIG)
          for kind, doc in (
              ("Limit", "Its access control lines (Require, Allow, Deny, Order, Satisfy) apply "
                        "to these methods only."),
              ("LimitExcept", "Its access control lines apply to every method but these."))),
    ]

    def access_checker(self, ctx: RequestContext) -> Response | None:
        dc = ctx.dir_config
        tree = getattr(dc, "require", None)
        compat = getattr(dc, "access_compat", None)
        if tree is None and compat is None and getattr(dc, "auth_type", None) is None:
            return None
        if compat is not None:                   # Rule 7
            if compat.volatile:
                volatile_route(ctx)
            allowed = compat.allowed(ctx)
            if compat.satisfy_any(ctx.request.method):
                if allowed:
                    return None
            elif not allowed:
                log_error(ctx, "AH01797", f"client denied by server configuration: {ctx.filename or ctx.uri_path}")
                return error(403, ctx)
        if tree is None or not tree.children:
            if getattr(dc, "auth_type", None) == "Basic":
                log_error(ctx, "AH01627", "AuthType configured with no corresponding "
                          "authorization directives")
                return error(500, ctx)
            return None
        if tree.volatile:
            volatile_route(ctx)                  # the answer depends on who asks
        result = judge(ctx, tree)
        if result == GRANTED:
            return None
        if result == DENIED_NO_USER:             # Rule 5: who is the user?
            from mpmd.modules.mod_auth import authenticate, challenge
            answer = authenticate(ctx)
            if answer is not None:
                return answer
            if judge(ctx, tree) == GRANTED:
                return None
            log_error(ctx, "AH01631", f"user {ctx.notes.get('remote_user')}: authorization "
                      f"failure for \"{ctx.uri_path}\"")
            return challenge(ctx)
        log_error(ctx, "AH01630", f"client denied by server configuration: {ctx.filename or ctx.uri_path}")
        return error(403, ctx)
