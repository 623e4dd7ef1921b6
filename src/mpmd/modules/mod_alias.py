"""mod_alias: Alias, AliasMatch and the Redirect family, as httpd's mod_alias.

Rule 1: Redirect rules are tried before aliases (httpd's order); ``Redirect [status] URL-path
        URL`` answers status (default 302) with URL + the rest of the path + the query; "gone"
        (410) takes no URL.  ``RedirectMatch [status] regex URL`` expands $N in URL from the
        match on the whole path; ``RedirectPermanent`` and ``RedirectTemp`` are 301 and 302.
        A target with no ``?`` gets the request's query string.
Rule 4: the Redirect family also works in <Directory>, <Location>, <Files> and .htaccess
        (override FileInfo): those lines are checked in fixups against the request's URL path,
        after access control, innermost section first (httpd's fixup_redir), while server and
        <VirtualHost> lines are checked in translate_name.  Inside <Location> the URL-path is
        left out (``Redirect 301 https://x/``): the rule covers the section's own path.
Rule 2: ``Alias /url /path`` matches whole path segments: "/icons" matches "/icons" and
        "/icons/x" but not "/iconsx"; an alias ending in "/" needs the slash in the URL.
        The first matching Alias/AliasMatch in configuration order wins.
Rule 3: the mapped file is the target plus the already normalized URL remainder, and the target
        becomes ``notes["root"]`` so the symlink check confines the request to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, ClassVar
from urllib.parse import quote

from mpmd.config.directives import Args, Ctx, Directive, Merge, Override
from mpmd.core.errors import self_url
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.modules import SET_FIELDS, Module, PerServer
from mpmd.core.request import error
from mpmd.modules.mod_rewrite import NOTE_ANSWER

# Redirect status keywords (httpd mod_alias).
REDIRECT_STATUS = {"permanent": 301, "temp": 302, "seeother": 303, "gone": 410}
_DOLLAR = re.compile(r"\$(\d)")


@dataclass(frozen=True)
class AliasRule:
    url: str
    target: str
    regex: re.Pattern[str] | None = None

    def map(self, uri: str) -> str | None:
        """The file for ``uri``, or None (Rule 2)."""
        if self.regex is not None:
            m = self.regex.match(uri)
            return m.expand(self.target.replace("$", "\\")) if m else None
        url = self.url
        if url.endswith("/"):
            if not uri.startswith(url):
                return None
        elif not (uri == url or uri.startswith(url + "/")):
            return None
        rest = uri[len(url):]
        if not rest:
            return self.target
        return self.target.rstrip("/") + "/" + rest.lstrip("/")


@dataclass(frozen=True)
class RedirectRule:
    status: int
    url: str                   # the URL-path, or RedirectMatch's pattern; "" = the <Location>'s
    target: str | None
    regex: re.Pattern[str] | None = None
    in_dir: bool = False       # written in a section or .htaccess (Rule 4)
    origin: int = 0            # which section (its id): lines of one section keep their order
    whole: bool = False        # <Location>'s one-argument form: every URL under it -> target

    def location(self, uri: str, query: bytes) -> str | None:
        """Where ``uri`` goes, or None when the rule does not cover it ("" for a 410/4xx)."""
        if self.regex is not None:
            m = self.regex.search(uri)
            if m is None:
                return None
            loc = _DOLLAR.sub(lambda d: m.group(int(d.group(1))) or "", self.target or "")
        else:
            if not (uri == self.url or uri.startswith(self.url.rstrip("/") + "/")):
                return None
            rest = "" if self.whole else quote(uri[len(self.url):].encode("utf-8", "surrogateescape"),
                                               safe="/:@!$&'()*+,;=-._~")
            loc = (self.target or "") + rest
        if query and self.target and "?" not in loc:
            loc += "?" + quote(query, safe="=&;%+/?:@-._~")
        return loc


def alias_value(args: list[str]) -> AliasRule:
    url, target = args
    if not url.startswith("/"):
        raise ValueError("URL path must start with /")
    return AliasRule(url, target)


def alias_match_value(args: list[str]) -> AliasRule:
    pattern, target = args
    try:
        return AliasRule(pattern, target, re.compile(pattern))
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None


def _status(args: list[str], default: int) -> int:
    if args and args[0].lower() in REDIRECT_STATUS:
        return REDIRECT_STATUS[args.pop(0).lower()]
    if args and args[0].isdigit():
        return int(args.pop(0))
    return default


def _is_url(text: str) -> bool:
    return "://" in text or text.startswith("/")


def redirect_value(args: list[str], default: int = 302) -> RedirectRule:
    """``Redirect [status] [URL-path] [URL]``; the URL-path may be left out only inside
    <Location> (checked by ``_bind_redirect``), where a lone argument that is a URL is the
    target."""
    args = list(args)
    status = _status(args, default) if default == 302 else default
    if status == 410 or not 300 <= status < 400:
        if len(args) > 1:
            raise ValueError("Redirect to non-URL must take only the URL-path")
        return RedirectRule(status, args[0] if args else "", None)
    if len(args) == 1 and "://" in args[0]:
        return RedirectRule(status, "", args[0])            # <Location> form
    if len(args) != 2 or not _is_url(args[1]):
        raise ValueError("Redirect to non-URL must take only the URL-path" if len(args) == 1
                         else "Redirect needs a URL-path and a full URL")
    if not args[0].startswith("/"):
        raise ValueError("URL-path must start with /")
    return RedirectRule(status, args[0], args[1])


def redirect_match_value(args: list[str]) -> RedirectRule:
    """``RedirectMatch [status] regex [URL]``."""
    args = list(args)
    status = _status(args, 302)
    target = None
    if 300 <= status < 400 and status != 410:
        if len(args) != 2 or not _is_url(args[1]):
            raise ValueError("RedirectMatch needs a regular expression and a URL")
        target = args[1]
    elif len(args) != 1:
        raise ValueError("Redirect to non-URL must take only the URL-path")
    try:
        regex = re.compile(args[0])
    except re.error as exc:
        raise ValueError(f"Regular expression could not be compiled: {exc}") from None
    return RedirectRule(status, args[0], target, regex)


def _bind_redirect(rule: RedirectRule, section: Any) -> RedirectRule:
    """Rule 4: a line in a section is checked in fixups; only <Location> may leave out the
    URL-path, which is then the section's (httpd 2.4.19's one-argument form)."""
    if section is None or section.kind == "VirtualHost":
        if not rule.url:
            raise ValueError("Redirect takes a URL-path outside <Location>")
        return rule
    if not rule.url and rule.regex is None:
        if section.kind != "Location" or section.regex is not None:
            raise ValueError("Redirect takes a URL-path outside <Location>")
        rule = replace(rule, url=section.arg, whole=True)
    return replace(rule, in_dir=True, origin=id(section))


def _too_few(name: str) -> RedirectRule:
    raise ValueError(f"{name} takes a URL-path and a URL")


# httpd's merge_alias_config: a vhost's Alias and Redirect lines are tried before the main
# server's (config/loader.py _merge_vhost).
VHOST_FIRST = {"vhost_merge": "first"}
REDIRECT_EXTRA = {**VHOST_FIRST, "bind": _bind_redirect}


def _rules(server: Any) -> tuple[tuple[RedirectRule, ...], tuple[AliasRule, ...]]:
    """(server-level Redirect rules, Alias then AliasMatch rules) of ``server``, read once
    per generation."""
    redirects = tuple(r for r in getattr(server, "redirect", None) or () if not r.in_dir)
    aliases = tuple(getattr(server, "alias", None) or ()) + \
        tuple(getattr(server, "alias_match", None) or ())
    return redirects, aliases


class AliasModule(Module):
    name: ClassVar[str] = "alias_module"
    route_pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("mod_alias.c",)
    builtin: ClassVar[bool] = True
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("Alias", Args.TAKE2, Ctx.SERVER | Ctx.VHOST, alias_value, [], "alias",
                  "Map a URL path to a file system path.", merge=Merge.APPEND,
                  extra=VHOST_FIRST, syntax="Alias URL-path file-path|directory-path", owner="alias_module"),
        Directive("AliasMatch", Args.TAKE2, Ctx.SERVER | Ctx.VHOST, alias_match_value, [],
                  "alias_match", "Map URLs matching a regular expression to file system paths "
                  "($1.. are the groups).", merge=Merge.APPEND, extra=VHOST_FIRST,
                  syntax="AliasMatch regex file-path|directory-path", owner="alias_module"),
        Directive("Redirect", Args.TAKE123, Ctx.ANY, redirect_value, [],
                  "redirect", "Send an external redirect for URLs under a path.",
                  merge=Merge.APPEND, extra=REDIRECT_EXTRA, syntax="Redirect [status] URL-path [URL]",
                  owner="alias_module", override=Override.FILEINFO),
        Directive("RedirectMatch", Args.TAKE123, Ctx.ANY, redirect_match_value, [],
                  "redirect", "Send an external redirect for URLs matching a regular "
                  "expression ($1.. are the groups).", merge=Merge.APPEND, extra=REDIRECT_EXTRA,
                  syntax="RedirectMatch [status] regex [URL]", owner="alias_module",
                  override=Override.FILEINFO),
        Directive("RedirectPermanent", Args.TAKE12, Ctx.ANY,
                  lambda args: redirect_value(args, 301), [], "redirect",
                  "Redirect with status 301.", merge=Merge.APPEND, extra=REDIRECT_EXTRA,
                  syntax="RedirectPermanent URL-path URL", owner="alias_module",
                  override=Override.FILEINFO),
        Directive("RedirectTemp", Args.TAKE12, Ctx.ANY,
                  lambda args: redirect_value(args, 302) if len(args) == 2 or "://" in args[0]
                  else _too_few("RedirectTemp"), [], "redirect",
                  "Redirect with status 302.", merge=Merge.APPEND, extra=REDIRECT_EXTRA,
                  syntax="RedirectTemp URL-path URL", owner="alias_module",
                  override=Override.FILEINFO),
    ]

    def __init__(self) -> None:
        self.rules = PerServer(_rules)

    def translate_name(self, ctx: RequestContext) -> bool | Response | None:
        redirects, aliases = self.rules(ctx.server)
        uri = ctx.uri_path
        for rule in redirects:
            loc = rule.location(uri, ctx.request.query)
            if loc is not None:
                return _redirect(ctx, rule, loc)
        for rule in aliases:
            filename = rule.map(uri)
            if filename is not None:
                ctx.filename = filename
                ctx.notes["root"] = rule.target if rule.regex is None else "/"
                return True
        return None

    def fixups(self, ctx: RequestContext) -> Response | None:
        """Rule 4: the Redirect lines of the sections and .htaccess files that apply,
        innermost first."""
        rules = getattr(ctx.dir_config, "redirect", None)
        if not rules or not rules[-1].in_dir or NOTE_ANSWER in ctx.notes:
            return None                 # mod_rewrite's fixup answered first (as in httpd)
        for rule in _innermost_first(rules):
            loc = rule.location(ctx.uri_path, ctx.request.query)
            if loc is not None:
                return _redirect(ctx, rule, loc)
        return None

    def unused_hooks(self, values: dict[str, Any]) -> list[str]:
        return [] if "redirect" in values.get(SET_FIELDS, {"redirect"}) else ["fixups"]


def _innermost_first(rules: list[RedirectRule]) -> list[RedirectRule]:
    """The section lines of a merged list, the sections' order reversed and each one's lines
    in order (httpd's merge puts a section's redirects before its parent's)."""
    groups: list[list[RedirectRule]] = []
    for rule in rules:
        if not rule.in_dir:
            continue
        if groups and groups[-1][0].origin == rule.origin:
            groups[-1].append(rule)
        else:
            groups.append([rule])
    return [rule for group in reversed(groups) for rule in group]


def _redirect(ctx: RequestContext, rule: RedirectRule, loc: str) -> Response:
    """The answer; a target that is a URL-path is made absolute from the request's own
    scheme and host (httpd's ap_construct_url in mod_alias)."""
    if not rule.target:
        return error(rule.status, ctx)
    if loc.startswith("/"):
        loc = self_url(ctx) + loc
    return error(rule.status, ctx, [("Location", loc)])
