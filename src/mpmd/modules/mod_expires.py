"""mod_expires: ExpiresActive, ExpiresByType and ExpiresDefault.

Rule 1: a code is ``A<seconds>`` / ``M<seconds>`` or httpd's long form ``access|now|
        modification [plus] {<num> <type>}*`` (years = 365 days, months = 30 days, weeks,
        days, hours, minutes, seconds; httpd reads only the first letter(s) of each word).
Rule 2: an answer gets ``Expires`` (base + seconds, never before the request time) and
        ``max-age=<seconds left>`` merged into its Cache-Control (httpd's apr_table_mergen:
        appended to an existing one with ", "), unless it already has an Expires field.  The
        code is ExpiresByType's for the answer's media type (without parameters), else its
        ``type/*`` line, else ExpiresDefault.  ``M`` needs a file: the request's (a static
        file, a WSGI script), else nothing is added.
Rule 3: which answers, as httpd (its filter is inserted before the handler runs, also for the
        server's own answers, unless the status is already an error): every answer of a
        handler (static files and their 304s, a WSGI or ASGI app's answer whatever its status),
        and the server's own redirects (3xx); not the server's error pages (4xx, 5xx) nor an
        ErrorDocument page for an error.
Rule 4: a cached file's shared answer gets its edited copy once per second (``memo=()``), so
        the static fast path keeps its Plan.
"""

from __future__ import annotations

import os
from email.utils import formatdate
from typing import Any, ClassVar

from mpmd.config import values as v
from mpmd.config.directives import Args, Ctx, Directive, Merge, Override
from mpmd.config.values import Worded
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.modules import SET_FIELDS, Module

UNITS = (("y", 365 * 86400), ("mo", 30 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600),
         ("mi", 60), ("s", 1))
MEMO_MAX = 1024
REDIRECT_STATUS = "error_document.status"       # ctx.notes: the error an ErrorDocument serves


def expires_code(text: str) -> str:
    """Rule 1: httpd's check_code -> ``A3600`` / ``M86400`` (refusals in its words)."""
    if text[:1] in ("A", "M"):
        digits = ""
        for c in text[1:]:
            if not c.isdigit():
                break
            digits += c
        return text[0] + str(int(digits or 0))
    words = text.split()
    word = words.pop(0).lower() if words else ""
    if word[:1] in ("n", "a"):
        base = "A"
    elif word[:1] == "m":
        base = "M"
    else:
        raise Worded(f"bad expires code, unrecognised <base> '{word}'")
    if words and words[0][:1].lower() == "p":
        words.pop(0)
    seconds = 0
    while words:
        num = words.pop(0)
        if not num[:1].isdigit():
            raise Worded(f"bad expires code, numeric value expected <num> '{num}'")
        digits = num[:len(num) - len(num.lstrip("0123456789"))]
        if not words:
            raise Worded("bad expires code, missing <type>")
        unit = words.pop(0).lower()
        for prefix, factor in UNITS:
            if unit[:len(prefix)] == prefix:
                seconds += factor * int(digits)
                break
        else:
            raise Worded(f"bad expires code, unrecognised <type>'{unit}'")
    return f"{base}{seconds}"


def by_type_value(args: list[str]) -> tuple[str, str]:
    mime, code = args
    try:
        return mime.lower(), expires_code(code)
    except Worded as exc:
        raise Worded(f"'ExpiresByType {mime} {code}': {exc}") from None


def default_value(args: list[str]) -> str:
    try:
        return expires_code(args[0])
    except Worded as exc:
        raise Worded(f"'ExpiresDefault {args[0]}': {exc}") from None



class Table:
    """One per-directory config's ExpiresActive, types and default, and the kept copies."""

    __slots__ = ("dc", "active", "types", "default", "memo")

    def __init__(self, dc: Any) -> None:
        self.dc = dc
        self.types = dict(getattr(dc, "expires_by_type", None) or ())
        self.default = getattr(dc, "expires_default", None)
        self.active = bool(getattr(dc, "expires_active", False)) and bool(
            self.types or self.default)
        self.memo: dict[int, tuple[Any, int, Response]] = {}

    def code_for(self, ctype: str | None) -> str | None:
        if ctype:
            mime = ctype.split(";", 1)[0].strip().lower()
            code = self.types.get(mime)
            if code is not None:
                return code
            major = mime.split("/", 1)[0]
            code = self.types.get(major + "/*")
            if code is not None:
                return code
        return self.default


class ExpiresModule(Module):
    name: ClassVar[str] = "expires_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_expires.c",)
    builtin: ClassVar[bool] = True
    output_order: ClassVar[int] = 20
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("ExpiresActive", Args.FLAG, Ctx.ANY, v.flag, False, "expires_active",
                  "Add Expires and Cache-Control max-age to answers (ExpiresByType, "
                  "ExpiresDefault).", syntax="ExpiresActive On|Off", owner="expires_module",
                  override=Override.INDEXES),
        Directive("ExpiresByType", Args.TAKE2, Ctx.ANY, by_type_value, [], "expires_by_type",
                  "The expiry of answers of a media type (type/* for a major type): A<seconds>, "
                  "M<seconds> or \"access plus 1 month\".", merge=Merge.APPEND,
                  syntax="ExpiresByType media-type <code>", owner="expires_module",
                  override=Override.INDEXES),
        Directive("ExpiresDefault", Args.TAKE1, Ctx.ANY, default_value, None, "expires_default",
                  "The expiry of answers no ExpiresByType line names.",
                  syntax="ExpiresDefault <code>", owner="expires_module", override=Override.INDEXES),
    ]

    def __init__(self) -> None:
        self._tables: dict[int, Table] = {}

    def unused_hooks(self, values: dict[str, Any]) -> tuple[str, ...]:
        used = values.get(SET_FIELDS, ("expires_active",))
        return () if "expires_active" in used else ("output_filter",)

    def output_filter(self, ctx: RequestContext, resp: Response) -> Response:
        dc = ctx.dir_config if ctx.dir_config is not None else ctx.server.default_dir
        table = self._tables.get(id(dc))
        if table is None or table.dc is not dc:
            if len(self._tables) > 256:
                self._tables.clear()
            table = self._tables[id(dc)] = Table(dc)
        if not table.active:
            return resp
        if resp.status >= 400 and resp.local or ctx.notes.get(REDIRECT_STATUS, 0) >= 400:
            return resp                                                          # Rule 3
        now = ctx.start_time
        if resp.memo is not None and type(resp.headers) is tuple:               # Rule 4
            hit = table.memo.get(id(resp))
            if hit is not None and hit[0] is resp and hit[1] == int(now):
                return hit[2]
            out = self._expire(table, ctx, resp)
            if out is not resp and type(out.body) is bytes:
                out.memo = ()
                if len(table.memo) >= MEMO_MAX:
                    table.memo.clear()
                table.memo[id(resp)] = (resp, int(now), out)
            return out
        return self._expire(table, ctx, resp)

    @staticmethod
    def _expire(table: Table, ctx: RequestContext, resp: Response) -> Response:
        """Rule 2."""
        headers = resp.headers
        ctype = None
        for name, value in headers:
            low = name.lower()
            if low == "expires":
                return resp
            if low == "content-type":
                ctype = value
        code = table.code_for(ctype or ctx.notes.get("content_type"))     # a 304 has none
        if code is None:
            return resp
        now = int(ctx.start_time or 0) or None
        if now is None:
            import time
            now = int(time.time())
        if code[0] == "M":
            if not ctx.filename:
                return resp
            try:
                base = int(os.stat(ctx.filename).st_mtime)
            except (OSError, ValueError):
                return resp
        else:
            base = now
        expires = max(base + int(code[1:]), now)
        fields = list(headers)
        age = f"max-age={expires - now}"
        for i, (name, value) in enumerate(fields):
            if name.lower() == "cache-control":
                fields[i] = (name, value + ", " + age)
                break
        else:
            fields.append(("Cache-Control", age))
        fields.append(("Expires", formatdate(expires, usegmt=True)))
        return Response(resp.status, tuple(fields), resp.body, resp.close_connection,
                        resp.on_close, None, resp.local)
