"""mod_setenvif: SetEnvIf, SetEnvIfNoCase, BrowserMatch and BrowserMatchNoCase.

Rule 1: the attribute is a request field (its name as written, case-insensitive), one of
        Remote_Host, Remote_Addr, Server_Addr, Request_Method, Request_Protocol, Request_URI,
        or a regular expression over field names (any character outside ``[-A-Za-z0-9_]``
        makes it one; the last matching field's value is tested).  A field name that is not
        in the request names an env variable set before (by an earlier line).  A missing
        value is "", so ``^$`` matches it (httpd).
Rule 2: when the regex matches, each ``var`` is set to "1", ``var=value`` to the value with
        $0..$9 taken from the match, and ``!var`` removed, in ``ctx.env`` (httpd's
        subprocess_env).  Lines run in configuration order, server level first.
Rule 3: as httpd's match_headers: the server-level lines (and a <VirtualHost>'s) run in
        post_read_request, before translate_name (an <If> or a server-context RewriteCond
        reads what they set), the lines of the request's sections in header_parser, after
        map_to_storage and before the access check (core/request.py Rule 6); ``Require env``
        and ``Allow from env=`` see both.  A route from the route cache skips
        post_read_request: its header_parser runs every line.  Nothing they set is kept with
        a route.  Debian's stock BrowserMatch lines must
        cost little: what a list of lines does for the same attribute values is remembered, so
        a repeated User-Agent costs one dict lookup.
Rule 4: of httpd's special variables, ``nokeepalive`` is acted on (the connection closes after
        the answer); downgrade-1.0, force-response-1.0, redirect-carefully are set and not
        acted on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from mpmd.config.directives import Args, Ctx, Directive, Merge, Override
from mpmd.config.values import Worded
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.modules import SET_FIELDS, Module
from mpmd.modules.mod_headers import _pregsub

SPECIALS = ("remote_host", "remote_addr", "server_addr", "request_method", "request_protocol",
            "request_uri")
_PLAIN_NAME = re.compile(r"[-A-Za-z0-9_]*")
MEMO_MAX = 2048


@dataclass(frozen=True)
class EnvRule:
    attribute: str                           # a special (lower case), a field name, or a regex
    special: str | None
    name_regex: re.Pattern[str] | None       # a regex over request field names
    regex: re.Pattern[str]
    features: tuple[tuple[str, str | None], ...]   # (var, value template) / (var, None): unset


def _rule(args: list[str], name: str, attribute: str | None, nocase: bool) -> EnvRule:
    args = list(args)
    if attribute is None:
        if not args:
            raise Worded(f"Missing header-field name for {name}")
        attribute = args.pop(0)
    if not args or not args[0]:
        raise Worded(f"Missing regular expression for {name}")
    pattern = args.pop(0)
    if not args:
        raise Worded(f"Missing envariable expression for {name}")
    try:
        regex = re.compile(pattern, re.I if nocase else 0)
    except re.error:
        raise Worded("Regular expression could not be compiled.") from None
    features: list[tuple[str, str | None]] = []
    for word in args:
        if word.startswith("!"):
            features.append((word[1:], None))
        elif "=" in word:
            var, _, value = word.partition("=")
            features.append((var, value))
        else:
            features.append((word, "1"))
    low = attribute.lower()
    special = low if low in SPECIALS else None
    name_regex = None
    if special is None and not _PLAIN_NAME.fullmatch(attribute):
        try:
            name_regex = re.compile(attribute, re.I)
        except re.error:
            raise Worded("Regular expression could not be compiled.") from None
    return EnvRule(attribute, special, name_regex, regex, tuple(features))


def set_env_if(args: list[str]) -> EnvRule:
    return _rule(args, "SetEnvIf", None, False)


def set_env_if_nocase(args: list[str]) -> EnvRule:
    return _rule(args, "SetEnvIfNoCase", None, True)


def browser_match(args: list[str]) -> EnvRule:
    return _rule(args, "BrowserMatch", "User-Agent", False)


def browser_match_nocase(args: list[str]) -> EnvRule:
    return _rule(args, "BrowserMatchNoCase", "User-Agent", True)


def _field(request: Any, name: bytes) -> str | None:
    values = [v for k, v in request.headers if k == name]
    if not values:
        return None
    return ", ".join(v.decode("latin-1") for v in values)


def attribute_value(rule: EnvRule, ctx: RequestContext) -> str | None:
    special = rule.special
    if special is not None:
        if special == "remote_addr" or special == "remote_host":
            addr = getattr(ctx, "useragent", None) or ctx.conn.client_addr
            return addr[0]
        if special == "server_addr":
            return ctx.conn.server_addr[0]
        if special == "request_method":
            return ctx.request.method
        if special == "request_protocol":
            return "HTTP/" + ctx.request.http_version
        return ctx.uri_path
    if rule.name_regex is not None:
        found = None
        for key, value in ctx.request.headers:
            if rule.name_regex.search(key.decode("latin-1")):
                found = value.decode("latin-1")
        return found
    value = _field(ctx.request, rule.attribute.lower().encode("latin-1"))
    if value is None:
        value = ctx.env.get(rule.attribute)
    return value


class RuleSet:
    """The lines of one per-directory config, and what they did for given attribute values."""

    __slots__ = ("dc", "rules", "memo", "keyed", "attrs", "index", "single")

    def __init__(self, dc: Any, rules: Any = None) -> None:
        self.dc = dc
        self.rules: tuple[EnvRule, ...] = tuple(
            rules if rules is not None else getattr(dc, "set_env_if", None) or ())
        # the distinct attributes (Debian's 14 BrowserMatch lines test one), and each line's
        keys: dict[tuple[Any, ...], int] = {}
        self.attrs: list[EnvRule] = []
        index = []
        for r in self.rules:
            key = (r.special, r.attribute.lower(), r.name_regex.pattern if r.name_regex else None)
            if key not in keys:
                keys[key] = len(self.attrs)
                self.attrs.append(r)
            index.append(keys[key])
        self.index = tuple(index)
        self.memo: dict[Any, tuple[tuple[str, str | None], ...]] = {}
        # Rule 3: remembered only when no line tests a variable a line sets
        set_here = {var for r in self.rules for var, _ in r.features}
        self.keyed = not any(r.special is None and r.name_regex is None
                             and r.attribute in set_here for r in self.rules)
        # the common case (Debian's stock lines): one request field tested by every line, and
        # a field present needs no env fallback: its raw value is the memo's key
        only = self.attrs[0] if len(self.attrs) == 1 else None
        self.single = (only.attribute.lower().encode("latin-1") if only is not None and
                       only.special is None and only.name_regex is None and self.keyed else None)

    def apply(self, ctx: RequestContext) -> None:
        rules = self.rules
        single = self.single
        if single is not None:
            raw = None
            for key, value in ctx.request.headers:
                if key == single:
                    raw = value if raw is None else raw + b", " + value
            if raw is not None:
                ops = self.memo.get(raw)
                if ops is None:
                    text = raw.decode("latin-1")
                    ops = tuple(run(rules, None, [text] * len(rules)))
                    if len(self.memo) >= MEMO_MAX:
                        self.memo.clear()
                    self.memo[raw] = ops
                if ops:
                    _apply(ctx.env, ops)
                return
        if not self.keyed:                   # a line tests what an earlier one set: in order
            for rule in rules:
                run((rule,), ctx, (attribute_value(rule, ctx),))
            return
        values = tuple(attribute_value(r, ctx) for r in self.attrs)
        ops = self.memo.get(values)
        if ops is None:
            ops = tuple(run(rules, None, [values[i] for i in self.index]))
            if len(self.memo) >= MEMO_MAX:
                self.memo.clear()
            self.memo[values] = ops
        _apply(ctx.env, ops)


def _apply(env: dict[str, str], ops: Any) -> None:
    for var, value in ops:
        if value is None:
            env.pop(var, None)
        else:
            env[var] = value


def run(rules: tuple[EnvRule, ...], ctx: RequestContext | None,
        values: Any) -> list[tuple[str, str | None]]:
    """Rule 2 for each line given its attribute's value: the changes, made to ``ctx.env`` too
    when ``ctx`` is given."""
    ops: list[tuple[str, str | None]] = []
    for rule, value in zip(rules, values):
        text = value if value is not None else ""
        m = rule.regex.search(text)
        if m is None:
            continue
        for var, template in rule.features:
            new = None if template is None else _pregsub(template, m) if "$" in template \
                or "&" in template or "\\" in template else template
            ops.append((var, new))
            if ctx is not None:
                if new is None:
                    ctx.env.pop(var, None)
                else:
                    ctx.env[var] = new
    return ops


def _directive(name: str, conv: Any, syntax: str, doc: str) -> Directive:
    return Directive(name, Args.RAW_ARGS, Ctx.ANY, conv, [], "set_env_if", doc,
                     merge=Merge.APPEND, syntax=syntax, owner="setenvif_module",
                     override=Override.FILEINFO)


SERVER_RAN = "setenvif.server"        # ctx.notes: post_read_request ran the server's lines


class SetEnvIfModule(Module):
    name: ClassVar[str] = "setenvif_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_setenvif.c",)
    builtin: ClassVar[bool] = True
    route_pure: ClassVar[bool] = True    # what it sets is the env, never kept with a route
    DIRECTIVES: ClassVar[list[Directive]] = [
        _directive("SetEnvIf", set_env_if,
                   "SetEnvIf attribute regex [!]env-variable[=value] ...",
                   "Set env variables when a request attribute (a field, Remote_Addr, "
                   "Request_URI ...) matches a regex."),
        _directive("SetEnvIfNoCase", set_env_if_nocase,
                   "SetEnvIfNoCase attribute regex [!]env-variable[=value] ...",
                   "SetEnvIf with a case-insensitive regex."),
        _directive("BrowserMatch", browser_match,
                   "BrowserMatch regex [!]env-variable[=value] ...",
                   "Set env variables when the User-Agent matches a regex."),
        _directive("BrowserMatchNoCase", browser_match_nocase,
                   "BrowserMatchNoCase regex [!]env-variable[=value] ...",
                   "BrowserMatch with a case-insensitive regex."),
    ]

    def __init__(self) -> None:
        self._sets: dict[int, RuleSet] = {}

    def unused_hooks(self, values: dict[str, Any]) -> tuple[str, ...]:
        used = "set_env_if" in values.get(SET_FIELDS, ("set_env_if",))
        return () if used else ("post_read_request", "header_parser", "output_filter")

    def output_filter(self, ctx: RequestContext, resp: Response) -> Response:
        """Rule 4: ``nokeepalive`` closes the connection after the answer (httpd's
        ap_set_keepalive reads it in subprocess_env)."""
        if "nokeepalive" not in ctx.env or resp.close_connection:
            return resp
        return Response(resp.status, resp.headers, resp.body, True, resp.on_close, None,
                        resp.local)

    def _rules(self, dc: Any, server: Any, which: int) -> RuleSet:
        """The lines of ``dc`` a phase runs (Rule 3): the server's (which=0), the sections'
        (1), or all (2, when post_read_request did not run: a cached route)."""
        key = (id(dc), which)
        rules = self._sets.get(key)
        if rules is None or rules.dc is not dc:
            if len(self._sets) > 256:
                self._sets.clear()
            lines = tuple(getattr(dc, "set_env_if", None) or ())
            if which != 2:
                ours = tuple(getattr(server.default_dir, "set_env_if", None) or ())
                split = len(ours) if lines[:len(ours)] == ours else 0
                lines = lines[:split] if which == 0 else lines[split:]
            rules = self._sets[key] = RuleSet(dc, lines)
        return rules

    def post_read_request(self, ctx: RequestContext) -> None:
        """Rule 3: the server-level lines, before the route is known."""
        ctx.notes[SERVER_RAN] = True
        server = ctx.server
        rules = self._rules(server.default_dir, server, 0)
        if rules.rules:
            rules.apply(ctx)

    def header_parser(self, ctx: RequestContext) -> None:
        """Rule 3: the lines of the request's sections; all of them for a cached route."""
        dc = ctx.dir_config if ctx.dir_config is not None else ctx.server.default_dir
        rules = self._rules(dc, ctx.server, 1 if ctx.notes.pop(SERVER_RAN, None) else 2)
        if rules.rules:
            rules.apply(ctx)
