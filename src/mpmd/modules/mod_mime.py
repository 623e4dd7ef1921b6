"""mod_mime: the Content-Type of a file from its extensions (TypesConfig, AddType, ForceType).

Rule 1: TypesConfig names an Apache-format mime.types file (default conf/mime.types under
        ServerRoot).  A TypesConfig line naming a file that cannot be opened stops the server
        (-t and start), as httpd's AH01597 does; without the directive, a missing default
        file means the copy bundled with mpmd is used.  The table is read once per
        generation, by the master before it forks (post_config), never per request.
Rule 2: every extension of the file name counts, as in httpd ("a.tar.gz", "index.html.en"); the
        last one with a known type wins; AddType in the per-dir config overrides the file, and
        ForceType overrides everything.  No known type -> no Content-Type (httpd 2.4 has no
        DefaultType).
Rule 3: a charset is added only when configured: AddCharset by extension, or AddDefaultCharset
        (core) for text/plain and text/html, as httpd.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from mpmd.config import values as v
from mpmd.config.directives import Args, Ctx, Directive, Merge
from mpmd.config.model import Problem
from mpmd.core.exchange import RequestContext
from mpmd.core.modules import Module

BUNDLED_TYPES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "conf", "mime.types")
DEFAULT_CHARSET_TYPES = ("text/plain", "text/html")
_MAX_DIR_TABLES = 256
_MAX_MEMO = 4096            # file names whose type one DirTypes remembers


def read_types(path: str) -> dict[str, str]:
    """An Apache mime.types file -> {extension: media type} (lower-case extensions)."""
    table: dict[str, str] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            for ext in words[1:]:
                table[ext.lower().lstrip(".")] = words[0]
    return table


M_TYPES_CONFIG = "MPMD0901"


def types_path(server: Any) -> str:
    path = getattr(server, "types_config", None) or "conf/mime.types"
    if not os.path.isabs(path):
        path = os.path.join(getattr(server, "server_root", None) or os.getcwd(), path)
    return path


def load_types(server: Any) -> dict[str, str]:
    """Rule 1 (a configured file was checked at load, ``check_types_config``; if it has gone
    since, the bundled table rather than failing every request)."""
    try:
        return read_types(types_path(server))
    except OSError:
        return read_types(BUNDLED_TYPES)


def check_types_config(cfg: Any) -> list[Problem]:
    """Rule 1: a TypesConfig line whose file cannot be opened is an error at its line."""
    where = cfg.where("types_config")     # "file:line" of the line that set it, or "default"
    if where == "default":
        return []
    file, _, line = where.rpartition(":")
    path = types_path(cfg)
    try:
        with open(path, "rb"):
            pass
    except OSError:
        return [Problem("error", M_TYPES_CONFIG,
                        f"could not open mime types config file {path}.", file, int(line))]
    return []


def add_type_value(args: list[str]) -> tuple[str, tuple[str, ...]]:
    if len(args) < 2:
        raise ValueError("needs a media type and at least one extension")
    if "/" not in args[0]:
        raise ValueError(f"{args[0]!r} is not a media type (type/subtype)")
    return args[0], tuple(a.lower().lstrip(".") for a in args[1:])


def add_charset_value(args: list[str]) -> tuple[str, tuple[str, ...]]:
    if len(args) < 2:
        raise ValueError("needs a charset and at least one extension")
    return args[0], tuple(a.lower().lstrip(".") for a in args[1:])


def charset_value(args: list[str]) -> str | bool:
    """AddDefaultCharset On|Off|charset (On = iso-8859-1, as httpd)."""
    word = args[0]
    return {"on": True, "off": False}.get(word.lower(), word)


def _pairs(value: Any) -> list[tuple[str, tuple[str, ...]]]:
    return [p for p in (value or ()) if isinstance(p, tuple)]


def default_charset(dc: Any) -> str | None:
    value = getattr(dc, "add_default_charset", None)
    if value is None or value is False or str(value).lower() == "off":
        return None
    if value is True or str(value).lower() == "on":
        return "iso-8859-1"
    return str(value)


class DirTypes:
    """The type and charset tables that apply under one per-dir config."""

    __slots__ = ("dc", "types", "charsets", "force", "default_charset", "memo")

    def __init__(self, dc: Any, base: dict[str, str]) -> None:
        self.dc = dc
        added = _pairs(getattr(dc, "add_type", None))
        self.types = dict(base, **{e: t for t, exts in added for e in exts}) if added else base
        self.charsets = {e: c for c, exts in _pairs(getattr(dc, "add_charset", None)) for e in exts}
        force = getattr(dc, "force_type", None)
        self.force = None if not force or str(force).lower() == "none" else str(force)
        self.default_charset = default_charset(dc)
        self.memo: dict[str, str | None] = {}

    def content_type(self, filename: str) -> str | None:
        """Rules 2 and 3, remembered per file name (the tables never change)."""
        memo = self.memo
        ctype = memo.get(filename, memo)
        if ctype is memo:
            if len(memo) >= _MAX_MEMO:
                memo.clear()
            ctype = memo[filename] = self._content_type(filename)
        return ctype  # type: ignore[return-value]

    def _content_type(self, filename: str) -> str | None:
        exts = filename.rpartition("/")[2].lower().split(".")[1:]
        ctype = None
        charset = None
        for ext in exts:
            ctype = self.types.get(ext, ctype)
            charset = self.charsets.get(ext, charset)
        ctype = self.force or ctype
        if ctype is None:
            return None
        if charset is None and ctype in DEFAULT_CHARSET_TYPES:
            charset = self.default_charset
        return f"{ctype}; charset={charset}" if charset else ctype


class MimeModule(Module):
    name: ClassVar[str] = "mime_module"
    route_pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("mod_mime.c",)
    builtin: ClassVar[bool] = True
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("TypesConfig", Args.TAKE1, Ctx.SERVER, v.path, "conf/mime.types", "types_config",
                  "The mime.types file (extension -> media type); an error if it cannot be "
                  "opened.  Without this directive, the bundled one if conf/mime.types is missing.",
                  syntax="TypesConfig file-path", owner="mime_module"),
        Directive("AddType", Args.RAW_ARGS, Ctx.ANY, add_type_value, [], "add_type",
                  "Map file extensions to a media type.", merge=Merge.APPEND,
                  syntax="AddType media-type extension [extension] ...", owner="mime_module"),
        Directive("AddCharset", Args.RAW_ARGS, Ctx.ANY, add_charset_value, [], "add_charset",
                  "Add a charset to the Content-Type of files with these extensions.",
                  merge=Merge.APPEND, syntax="AddCharset charset extension [extension] ...",
                  owner="mime_module"),
        Directive("AddDefaultCharset", Args.TAKE1, Ctx.ANY, charset_value, False,
                  "add_default_charset", "Charset added to text/plain and text/html answers "
                  "(On = iso-8859-1, Off = none).", syntax="AddDefaultCharset On|Off|charset",
                  owner="mime_module"),
        Directive("ForceType", Args.TAKE1, Ctx.DIR, v.string, None, "force_type",
                  "Serve every matching file with this media type.",
                  syntax="ForceType media-type|None", owner="mime_module"),
    ]

    def __init__(self) -> None:
        self._main: Any = None             # TypesConfig is the main server's (server config)
        self._base: dict[str, str] = {}
        self._dirs: dict[int, DirTypes] = {}

    def post_config(self, server: Any) -> None:
        """In the master, before fork: read TypesConfig now, as httpd does in the parent; a
        child under User/Group may not be able to read it."""
        self._main, self._base, self._dirs = server, load_types(server), {}

    def _tables(self, server: Any, dc: Any) -> DirTypes:
        hosts = getattr(server, "vhosts", None)
        main = hosts.main if hosts else server
        if main is not self._main:
            self._main, self._base, self._dirs = main, load_types(main), {}
        tables = self._dirs.get(id(dc))
        if tables is None or tables.dc is not dc:
            if len(self._dirs) >= _MAX_DIR_TABLES:
                self._dirs.clear()
            tables = self._dirs[id(dc)] = DirTypes(dc, self._base)
        return tables

    def check_config(self, cfg: Any) -> list[Problem]:
        return check_types_config(cfg)

    def fixups(self, ctx: RequestContext) -> None:
        if ctx.filename:
            ctx.notes["content_type"] = self._tables(ctx.server, ctx.dir_config).content_type(ctx.filename)
