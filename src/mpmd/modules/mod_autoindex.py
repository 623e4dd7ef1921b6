"""mod_autoindex: an HTML listing of a directory (Options Indexes), the "autoindex" handler.

Rule 1: names are HTML-escaped in text and percent-encoded in links, so a file called
        ``<script>.html`` or ``a"b`` cannot inject markup.
Rule 2: entries are sorted by name, directories first marked with a trailing "/"; names that
        match IndexIgnore (shell patterns, default ". .." only) are hidden.
Rule 3: size is shown in httpd's short form (1.2K, 3.4M), dates as "YYYY-mm-dd HH:MM" (UTC).
"""

from __future__ import annotations

import fnmatch
import html
import os
import stat as stat_mod
import time
from typing import Any, ClassVar
from urllib.parse import quote

from mpmd.config import values as v
from mpmd.config.directives import Args, Ctx, Directive, Merge
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.modules import Module
from mpmd.core.request import error

_UNITS = ((1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K"))


def short_size(n: int) -> str:
    for limit, unit in _UNITS:
        if n >= limit:
            return f"{n / limit:.1f}{unit}"
    return str(n)


def _ignored(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def list_entries(path: str, ignore: list[str]) -> list[tuple[str, bool, int, float]]:
    """(name, is_dir, size, mtime) sorted: directories, then files, each by name (Rule 2)."""
    rows = []
    with os.scandir(path) as it:
        for entry in it:
            if _ignored(entry.name, ignore):
                continue
            try:
                st = entry.stat()
            except OSError:
                continue
            rows.append((entry.name, stat_mod.S_ISDIR(st.st_mode), st.st_size, st.st_mtime))
    rows.sort(key=lambda r: (not r[1], r[0]))
    return rows


def _row(name: str, is_dir: bool, size: int, mtime: float) -> str:
    label = name + ("/" if is_dir else "")
    href = quote(name.encode("utf-8", "surrogateescape"), safe="") + ("/" if is_dir else "")
    date = time.strftime("%Y-%m-%d %H:%M", time.gmtime(mtime))
    shown = html.escape(label.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
    return (f'<tr><td><a href="{href}">{shown}</a></td>'
            f'<td align="right">{date}</td><td align="right">{"-" if is_dir else short_size(size)}</td></tr>')


def render(uri_path: str, rows: list[tuple[str, bool, int, float]]) -> bytes:
    title = html.escape(uri_path.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
    out = ["<!DOCTYPE html>", "<html>", f"<head><title>Index of {title}</title></head>", "<body>",
           f"<h1>Index of {title}</h1>", "<table>",
           "<tr><th>Name</th><th>Last modified</th><th>Size</th></tr>"]
    if uri_path != "/":
        out.append('<tr><td><a href="../">Parent Directory</a></td><td></td><td align="right">-</td></tr>')
    out.extend(_row(*r) for r in rows)
    out += ["</table>", "</body></html>", ""]
    return "\n".join(out).encode("utf-8")


def _flatten(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    return [w for item in value for w in _flatten(item)]


class AutoindexHandler:
    kind = "inline"

    def __call__(self, ctx: RequestContext) -> Response:
        ignore = _flatten(getattr(ctx.dir_config, "index_ignore", None) or [])
        try:
            rows = list_entries(ctx.filename or "", ignore + [".", ".."])
        except OSError:
            return error(403, ctx)
        body = render(ctx.uri_path, rows)
        headers = [("Content-Type", "text/html; charset=UTF-8"), ("Content-Length", str(len(body)))]
        return Response(200, headers, b"" if ctx.request.method == "HEAD" else body)


class AutoindexModule(Module):
    name: ClassVar[str] = "autoindex_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_autoindex.c",)
    builtin: ClassVar[bool] = True
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("IndexIgnore", Args.ITERATE, Ctx.ANY, v.words, [], "index_ignore",
                  "Shell patterns of names hidden from directory listings.", merge=Merge.APPEND,
                  syntax="IndexIgnore pattern [pattern] ...", owner="autoindex_module"),
    ]

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {"autoindex": AutoindexHandler()}
