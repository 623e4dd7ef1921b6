"""mod_alias: Alias, AliasMatch and Redirect in translate_name.

Rule 1: Redirect rules are tried before aliases (httpd's order); ``Redirect [status] URL-path
        URL`` answers status (default 302) with URL + the rest of the path + the query; "gone"
        (410) takes no URL.
Rule 2: ``Alias /url /path`` matches whole path segments: "/icons" matches "/icons" and
        "/icons/x" but not "/iconsx"; an alias ending in "/" needs the slash in the URL.
        The first matching Alias/AliasMatch in configuration order wins.
Rule 3: the mapped file is the target plus the already normalized URL remainder, and the target
        becomes ``notes["root"]`` so the symlink check confines the request to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

from mpmd.config.directives import Args, Ctx, Directive, Merge
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.modules import Module, PerServer
from mpmd.core.request import error

# Redirect status keywords (httpd mod_alias).
REDIRECT_STATUS = {"permanent": 301, "temp": 302, "seeother": 303, "gone": 410}


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
    url: str
    target: str | None

    def location(self, uri: str, query: bytes) -> str | None:
        if not (uri == self.url or uri.startswith(self.url.rstrip("/") + "/")):
            return None
        rest = quote(uri[len(self.url):].encode("utf-8", "surrogateescape"), safe="/:@!$&'()*+,;=-._~")
        loc = (self.target or "") + rest
        return loc + ("?" + quote(query, safe="=&;%+/?:@-._~") if query else "")


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


def redirect_value(args: list[str]) -> RedirectRule:
    status = 302
    if args[0].lower() in REDIRECT_STATUS:
        status = REDIRECT_STATUS[args.pop(0).lower()]
    elif args[0].isdigit():
        status = int(args.pop(0))
    if status == 410 or not 300 <= status < 400:
        if len(args) != 1:
            raise ValueError("Redirect to non-URL must take only the URL-path")
        return RedirectRule(status, args[0], None)
    if len(args) != 2 or "://" not in args[1] and not args[1].startswith("/"):
        raise ValueError("Redirect needs a URL-path and a full URL")
    return RedirectRule(status, args[0], args[1])


# httpd's merge_alias_config: a vhost's Alias and Redirect lines are tried before the main
# server's (config/loader.py _merge_vhost).
VHOST_FIRST = {"vhost_merge": "first"}


def _rules(server: Any) -> tuple[tuple[RedirectRule, ...], tuple[AliasRule, ...]]:
    """(Redirect rules, Alias then AliasMatch rules) of ``server``, read once per generation."""
    redirects = tuple(getattr(server, "redirect", None) or ())
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
        Directive("Redirect", Args.TAKE123, Ctx.SERVER | Ctx.VHOST, redirect_value, [],
                  "redirect", "Send an external redirect for URLs under a path.",
                  merge=Merge.APPEND, extra=VHOST_FIRST, syntax="Redirect [status] URL-path [URL]",
                  owner="alias_module"),
    ]

    def __init__(self) -> None:
        self.rules = PerServer(_rules)

    def translate_name(self, ctx: RequestContext) -> bool | Response | None:
        redirects, aliases = self.rules(ctx.server)
        uri = ctx.uri_path
        for rule in redirects:
            loc = rule.location(uri, ctx.request.query)
            if loc is not None:
                headers = [("Location", loc)] if rule.target else []
                return error(rule.status, ctx, headers)
        for rule in aliases:
            filename = rule.map(uri)
            if filename is not None:
                ctx.filename = filename
                ctx.notes["root"] = rule.target if rule.regex is None else "/"
                return True
        return None
