"""mod_dir: the trailing-slash redirect and DirectoryIndex (the "httpd/unix-directory" handler).

Rule 1: a directory URL without a trailing "/" gets a 301 to the same path plus "/" (DirectorySlash
        On), keeping the query.  The Location is an absolute path rebuilt from the normalized,
        re-encoded ``uri_path`` -- never "//host" (no open redirect) and never a raw CR/LF.
Rule 2: with the slash, each DirectoryIndex name that is a regular file is served through an
        internal redirect (Require, MIME, handlers apply to it as to a direct request); under
        Options MultiViews, so is a name with variants (index.html for index.html.en).
Rule 3: otherwise the "autoindex" handler lists the directory when Options Indexes is on and
        mod_autoindex is loaded; else 403, as httpd.
"""

from __future__ import annotations

import os
import stat as stat_mod
from typing import Any, ClassVar
from urllib.parse import quote

from mpmd.config import values as v
from mpmd.config.directives import Args, Ctx, Directive, Override
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.modules import Module
from mpmd.core.request import error, internal_redirect
from mpmd.modules.mod_negotiation import has_variants

AUTOINDEX_HANDLER = "autoindex"
_SAFE_PATH = "/:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?%"


def location_for(uri_path: str, query: bytes) -> str:
    """Rule 1: the redirect target, percent-encoded; the query keeps only printable ASCII."""
    path = "/" + uri_path.lstrip("/")
    loc = quote(path.encode("utf-8", "surrogateescape"), safe=_SAFE_PATH)
    if query:
        loc += "?" + quote(query, safe=_SAFE_QUERY)
    return loc


def _index_names(dc: Any) -> list[str]:
    names = getattr(dc, "directory_index", None)
    if names is None:
        return ["index.html"]
    if isinstance(names, str):
        names = names.split()
    if [n.lower() for n in names] == ["disabled"]:
        return []
    return list(names)


def _is_file(path: str) -> bool:
    try:
        return stat_mod.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


class DirectoryHandler:
    kind = "inline"

    def __call__(self, ctx: RequestContext) -> Response:
        dc = ctx.dir_config
        if not ctx.uri_path.endswith("/"):
            if getattr(dc, "directory_slash", True) is False:
                return error(404, ctx)
            loc = location_for(ctx.uri_path + "/", ctx.request.query)
            return error(301, ctx, [("Location", loc)])
        base = ctx.filename or ""
        base = base if base.endswith("/") else base + "/"
        options = getattr(dc, "options", None) or ()
        for name in _index_names(dc):
            if name.startswith("/"):
                return internal_redirect(ctx, name)
            if _is_file(base + name) or ("MultiViews" in options and has_variants(base, name)):
                return internal_redirect(ctx, ctx.uri_path + name)
        autoindex = ctx.server.hooks.handlers.get(AUTOINDEX_HANDLER)
        if "Indexes" in options and autoindex is not None:
            return autoindex(ctx)
        return error(403, ctx)


class DirModule(Module):
    name: ClassVar[str] = "dir_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_dir.c",)
    builtin: ClassVar[bool] = True
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("DirectoryIndex", Args.ITERATE, Ctx.ANY, v.words, ["index.html"],
                  "directory_index", "Files to look for when a directory is requested "
                  "(\"disabled\" turns it off).", syntax="DirectoryIndex disabled | local-url ...",
                  owner="dir_module", override=Override.INDEXES),
        Directive("DirectorySlash", Args.FLAG, Ctx.ANY, v.flag, True, "directory_slash",
                  "Redirect a directory URL without a trailing slash to the URL with one.",
                  syntax="DirectorySlash On|Off", owner="dir_module", override=Override.INDEXES),
    ]

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {"httpd/unix-directory": DirectoryHandler()}
