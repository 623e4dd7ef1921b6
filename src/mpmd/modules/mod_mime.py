"""mod_mime: what a file's extensions say about it (TypesConfig, AddType, AddCharset,
AddLanguage, AddEncoding, AddHandler, their Remove* forms, DefaultLanguage, ForceType).

Rule 1: TypesConfig names an Apache-format mime.types file (default conf/mime.types under
        ServerRoot).  A TypesConfig line naming a file that cannot be opened stops the server
        (-t and start), as httpd's AH01597 does; without the directive, a missing default
        file means the copy bundled with mpmd is used.  The table is read once per
        generation, by the master before it forks (post_config), never per request.
Rule 2: every extension of the file name counts, as in httpd ("a.tar.gz", "index.html.en"),
        left to right (leading dots belong to the base name: ".png" has no extension); for each: the AddType of the extension or else the TypesConfig one
        sets the media type (the last one found wins), AddCharset the charset, AddLanguage
        adds a language (Content-Language lists them), AddEncoding sets the encoding (several
        are joined by ", " in Content-Encoding), AddHandler the handler.  Extensions are
        compared without case, and the values are kept in lower case, as httpd does.
        ForceType overrides the media type.  No known type -> no Content-Type (httpd 2.4 has
        no DefaultType).
Rule 3: a charset is added only when configured: AddCharset by extension, or AddDefaultCharset
        (core) for text/plain and text/html, as httpd.
Rule 4: the extension lines of one scope are replayed in the order the per-directory walk
        merges them; RemoveType hides the TypesConfig entry too (httpd's empty forced type),
        RemoveCharset/RemoveLanguage/RemoveEncoding/RemoveHandler drop what an AddX line set.
Rule 5: an AddHandler naming a handler mpmd has (server-status, wsgi-script, type-map ...)
        picks it, unless SetHandler says otherwise (httpd's core fixup runs after
        mod_mime).  One naming a handler mpmd lacks (cgi-script without mod_cgi) is what
        Apache does without that module: the file is served by the default handler, as a
        static file; -t names a line naming one of Apache's handlers mpmd lacks (MPMD0515),
        and the error log says it once per process and file (MPMD0902), in the words of
        httpd's AH00523 warning.
Rule 6: the extensions that said nothing (and the base name) are the file's "exceptions",
        which MultiViews compares with the requested name (mod_negotiation); with
        MultiviewsMatch Handlers an AddHandler extension says something, with Any every one.
Rule 7: an encoding written "x-gzip" (or any "x-" one) is sent without its "x-" to a client
        whose Accept-Encoding names it so ("gzip"), as httpd does; such a file's route
        depends on that header, so it is not kept in the route cache.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, NamedTuple

from mpmd.config import values as v
from mpmd.config.directives import Args, Ctx, Directive, Merge, Override
from mpmd.config.model import Problem
from mpmd.core.exchange import RequestContext
from mpmd.core.log import for_server as log_for_server
from mpmd.core.modules import Module, volatile_route

BUNDLED_TYPES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "conf", "mime.types")
DEFAULT_CHARSET_TYPES = ("text/plain", "text/html")
_MAX_DIR_TABLES = 256
_MAX_MEMO = 4096            # file names whose type one DirTypes remembers
DEFAULT_HANDLER = "default-handler"


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
M_HANDLER_NOT_FOUND = "MPMD0902"
# Handlers of Apache's modules that mpmd does not have: an AddHandler line naming one is named
# at -t (config/loader.py Rule 7), and such files are served as static files (Rule 5).
APACHE_ONLY_HANDLERS = frozenset({
    "cgi-script", "imap-file", "send-as-is", "server-info", "ldap-status",
    "isapi-handler", "perl-script", "fcgid-script", "php-script", "application/x-httpd-php",
    "lua-script", "lua-map"})
NO_SUCH_HANDLER = {"no_effect": (APACHE_ONLY_HANDLERS,
                                 "mpmd has no such handler; the files are served as static "
                                 "files, as Apache does without the module")}


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


class ExtOp(NamedTuple):
    """One extension line: ``what`` ("type", "charset", "language", "encoding", "handler")
    set to ``value`` for ``exts``; ``value`` None removes it (Rule 4)."""

    what: str
    value: str | None
    exts: tuple[str, ...]


def _exts(words: list[str]) -> tuple[str, ...]:
    return tuple(w.lower().lstrip(".") for w in words)


def _adder(what: str, label: str, check: Any = None) -> Any:
    def convert(args: list[str]) -> ExtOp:
        if len(args) < 2:
            raise ValueError(f"needs {label} and at least one extension")
        if check is not None:
            check(args[0])
        value = args[0] if what == "type" else args[0].lower()
        return ExtOp(what, value, _exts(args[1:]))
    convert.kind = "words"  # type: ignore[attr-defined]
    return convert


def _media_type(word: str) -> None:
    if "/" not in word:
        raise ValueError(f"{word!r} is not a media type (type/subtype)")


def _remover(what: str) -> Any:
    def convert(args: list[str]) -> ExtOp:
        return ExtOp(what, "" if what == "type" else None, _exts(args))
    return convert


add_type_value = _adder("type", "a media type", _media_type)
add_charset_value = _adder("charset", "a charset")
add_language_value = _adder("language", "a language tag")
add_encoding_value = _adder("encoding", "an encoding")
add_handler_value = _adder("handler", "a handler name")


def multiviews_match_value(args: list[str]) -> frozenset[str]:
    """httpd's multiviews_match: Any and NegotiatedOnly stand alone."""
    words = {"any": "Any", "negotiatedonly": "NegotiatedOnly", "filters": "Filters",
             "handlers": "Handlers"}
    out = set()
    for arg in args:
        word = words.get(arg.lower())
        if word is None:
            raise v.Worded("MultiviewsMatch requires Any, NegotiatedOnly, Handlers or Filters")
        out.add(word)
    if len(out) > 1 and out & {"Any", "NegotiatedOnly"}:
        raise v.Worded("MultiviewsMatch Any or NegotiatedOnly may not be combined with "
                       "other options")
    return frozenset(out)


multiviews_match_value.render = lambda value: " ".join(sorted(value))  # type: ignore[attr-defined]


def charset_value(args: list[str]) -> str | bool:
    """AddDefaultCharset On|Off|charset (On = iso-8859-1, as httpd)."""
    word = args[0]
    return {"on": True, "off": False}.get(word.lower(), word)


def default_charset(dc: Any) -> str | None:
    value = getattr(dc, "add_default_charset", None)
    if value is None or value is False or str(value).lower() == "off":
        return None
    if value is True or str(value).lower() == "on":
        return "iso-8859-1"
    return str(value)


class Meta(NamedTuple):
    """What mod_mime says of one file name."""

    content_type: str | None        # the Content-Type value, charset included
    media_type: str | None          # without parameters
    charset: str | None
    languages: tuple[str, ...]
    encoding: str | None
    handler: str | None
    exceptions: tuple[str, ...]     # the base name and the extensions nothing knew (Rule 6)
    headers: tuple[tuple[str, str], ...] | None   # Content-Encoding / Content-Language


def plain_x_encoding(headers: tuple[tuple[str, str], ...],
                     ctx: RequestContext) -> tuple[tuple[str, str], ...]:
    """Rule 7: "x-gzip" is sent as "gzip" to a client whose Accept-Encoding names gzip."""
    accepted = {part.split(";", 1)[0].strip().lower()
                for value in ctx.request.header_values(b"accept-encoding")
                for part in value.decode("latin-1").split(",")}
    if not accepted:
        return headers
    out = []
    for name, value in headers:
        if name == "Content-Encoding":
            value = ", ".join(enc[2:] if enc.startswith("x-") and enc[2:] in accepted else enc
                              for enc in value.split(", "))
        out.append((name, value))
    return tuple(out)


def ext_table(dc: Any) -> dict[str, dict[str, str]]:
    """Rule 4: the extension lines of ``dc`` replayed in order."""
    table: dict[str, dict[str, str]] = {}
    for op in getattr(dc, "mime_map", None) or ():
        if not isinstance(op, ExtOp):
            continue
        for ext in op.exts:
            info = table.setdefault(ext, {})
            if op.value is None:
                info.pop(op.what, None)
            else:
                info[op.what] = op.value
    return table


class DirTypes:
    """The type, charset, language, encoding and handler tables under one per-dir config."""

    __slots__ = ("dc", "types", "exts", "force", "default_charset", "default_language",
                 "multimatch", "memo")

    def __init__(self, dc: Any, base: dict[str, str]) -> None:
        self.dc = dc
        self.types = base
        self.exts = ext_table(dc)
        force = getattr(dc, "force_type", None)
        self.force = None if not force or str(force).lower() == "none" else str(force)
        self.default_charset = default_charset(dc)
        lang = getattr(dc, "default_language", None)
        self.default_language = str(lang).lower() if lang else None
        self.multimatch = frozenset(getattr(dc, "multiviews_match", None) or ("NegotiatedOnly",))
        self.memo: dict[str, Meta] = {}

    def meta(self, filename: str) -> Meta:
        """Rules 2, 3 and 6, remembered per file name (the tables never change)."""
        memo = self.memo
        found = memo.get(filename)
        if found is None:
            if len(memo) >= _MAX_MEMO:
                memo.clear()
            found = memo[filename] = self._meta(filename)
        return found

    def content_type(self, filename: str) -> str | None:
        return self.meta(filename).content_type

    def _meta(self, filename: str) -> Meta:
        name = filename.rpartition("/")[2]
        dots = len(name) - len(name.lstrip("."))        # ".png" is a hidden file named png
        base, *exts = name[dots:].split(".")
        base = name[:dots] + base
        ctype = charset = encoding = handler = None
        languages: list[str] = []
        exceptions = [base]
        for ext in exts:
            lower = ext.lower()
            info = self.exts.get(lower)
            found = False
            forced = info.get("type") if info else None
            if forced is None and lower in self.types:
                ctype, found = self.types[lower], True
            if info:
                if forced:                                   # "" = RemoveType (Rule 4)
                    ctype, found = forced, True
                if "charset" in info:
                    charset, found = info["charset"], True
                if "language" in info:
                    languages.append(info["language"])
                    found = True
                if "encoding" in info:
                    enc = info["encoding"]
                    encoding = enc if encoding is None else f"{encoding}, {enc}"
                    found = True
                if "handler" in info:
                    handler = info["handler"]
                    found = found or "Handlers" in self.multimatch
            if not found and "Any" not in self.multimatch:
                exceptions.append(ext)
        if not languages and self.default_language:
            languages.append(self.default_language)
        ctype = self.force or ctype
        value = None
        if ctype is not None:
            shown = charset
            if shown is None and ctype in DEFAULT_CHARSET_TYPES:
                shown = self.default_charset
            value = f"{ctype}; charset={shown}" if shown else ctype
        headers: list[tuple[str, str]] = []
        if encoding:
            headers.append(("Content-Encoding", encoding))
        if languages:
            headers.append(("Content-Language", ", ".join(languages)))
        return Meta(value, ctype, charset, tuple(languages), encoding, handler,
                    tuple(exceptions), tuple(headers) or None)


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
        Directive("AddType", Args.RAW_ARGS, Ctx.ANY, add_type_value, [], "mime_map",
                  "Map file extensions to a media type.", merge=Merge.APPEND,
                  syntax="AddType media-type extension [extension] ...", owner="mime_module",
                  override=Override.FILEINFO),
        Directive("AddCharset", Args.RAW_ARGS, Ctx.ANY, add_charset_value, [], "mime_map",
                  "Add a charset to the Content-Type of files with these extensions.",
                  merge=Merge.APPEND, syntax="AddCharset charset extension [extension] ...",
                  owner="mime_module", override=Override.FILEINFO),
        Directive("AddLanguage", Args.RAW_ARGS, Ctx.ANY, add_language_value, [], "mime_map",
                  "The language (Content-Language, MultiViews) of files with these extensions.",
                  merge=Merge.APPEND, syntax="AddLanguage language-tag extension [extension] ...",
                  owner="mime_module", override=Override.FILEINFO),
        Directive("AddEncoding", Args.RAW_ARGS, Ctx.ANY, add_encoding_value, [], "mime_map",
                  "The Content-Encoding of files with these extensions (x-gzip .gz).",
                  merge=Merge.APPEND, syntax="AddEncoding encoding extension [extension] ...",
                  owner="mime_module", override=Override.FILEINFO),
        Directive("AddHandler", Args.RAW_ARGS, Ctx.ANY, add_handler_value, [], "mime_map",
                  "The handler of files with these extensions; one mpmd lacks (cgi-script) "
                  "serves them as static files, as Apache without that module (named at -t).",
                  merge=Merge.APPEND, syntax="AddHandler handler-name extension [extension] ...",
                  owner="mime_module", extra=NO_SUCH_HANDLER, override=Override.FILEINFO),
        Directive("RemoveType", Args.ITERATE, Ctx.ANY, _remover("type"), [], "mime_map",
                  "Forget the media type of these extensions (TypesConfig's too).",
                  merge=Merge.APPEND, syntax="RemoveType extension [extension] ...",
                  owner="mime_module", override=Override.FILEINFO),
        Directive("RemoveCharset", Args.ITERATE, Ctx.ANY, _remover("charset"), [], "mime_map",
                  "Forget the AddCharset of these extensions.", merge=Merge.APPEND,
                  syntax="RemoveCharset extension [extension] ...", owner="mime_module",
                  override=Override.FILEINFO),
        Directive("RemoveLanguage", Args.ITERATE, Ctx.ANY, _remover("language"), [], "mime_map",
                  "Forget the AddLanguage of these extensions.", merge=Merge.APPEND,
                  syntax="RemoveLanguage extension [extension] ...", owner="mime_module",
                  override=Override.FILEINFO),
        Directive("RemoveEncoding", Args.ITERATE, Ctx.ANY, _remover("encoding"), [], "mime_map",
                  "Forget the AddEncoding of these extensions.", merge=Merge.APPEND,
                  syntax="RemoveEncoding extension [extension] ...", owner="mime_module",
                  override=Override.FILEINFO),
        Directive("RemoveHandler", Args.ITERATE, Ctx.ANY, _remover("handler"), [], "mime_map",
                  "Forget the AddHandler of these extensions.", merge=Merge.APPEND,
                  syntax="RemoveHandler extension [extension] ...", owner="mime_module",
                  override=Override.FILEINFO),
        Directive("MultiviewsMatch", Args.ITERATE, Ctx.ANY, multiviews_match_value, None,
                  "multiviews_match", "Which files MultiViews may offer: NegotiatedOnly (the "
                  "default: every extension known to mod_mime), Handlers (AddHandler ones "
                  "too), Any.", extra={"no_effect": (frozenset({"filters"}), "mpmd's mod_mime "
                                       "maps no filter to an extension")},
                  syntax="MultiviewsMatch Any|NegotiatedOnly|Filters|Handlers "
                         "[Handlers|Filters]", owner="mime_module", override=Override.FILEINFO),
        Directive("DefaultLanguage", Args.TAKE1, Ctx.ANY, v.string, None, "default_language",
                  "The Content-Language of files no AddLanguage extension names.",
                  syntax="DefaultLanguage language-tag", owner="mime_module",
                  override=Override.FILEINFO),
        Directive("AddDefaultCharset", Args.TAKE1, Ctx.ANY, charset_value, False,
                  "add_default_charset", "Charset added to text/plain and text/html answers "
                  "(On = iso-8859-1, Off = none).", syntax="AddDefaultCharset On|Off|charset",
                  owner="mime_module", override=Override.FILEINFO),
        Directive("ForceType", Args.TAKE1, Ctx.DIR, v.string, None, "force_type",
                  "Serve every matching file with this media type.",
                  syntax="ForceType media-type|None", owner="mime_module", override=Override.FILEINFO),
    ]

    def __init__(self) -> None:
        self._main: Any = None             # TypesConfig is the main server's (server config)
        self._base: dict[str, str] = {}
        self._dirs: dict[int, DirTypes] = {}
        self._warned: set[tuple[str, str]] = set()

    def post_config(self, server: Any) -> None:
        """In the master, before fork: read TypesConfig now, as httpd does in the parent; a
        child under User/Group may not be able to read it."""
        self._main, self._base, self._dirs = server, load_types(server), {}

    def tables(self, server: Any, dc: Any) -> DirTypes:
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

    _tables = tables

    def meta(self, server: Any, dc: Any, filename: str) -> Meta:
        return self.tables(server, dc).meta(filename)

    def check_config(self, cfg: Any) -> list[Problem]:
        return check_types_config(cfg)

    def fixups(self, ctx: RequestContext) -> None:
        filename = ctx.filename
        if not filename:
            return
        meta = self.tables(ctx.server, ctx.dir_config).meta(filename)
        notes = ctx.notes
        # mod_rewrite's T= wins over AddType and ForceType (its hook_mimetype runs last)
        notes["content_type"] = notes.get("forced_type") or meta.content_type
        if meta.encoding is not None and "x-" in meta.encoding:
            volatile_route(ctx)                                  # Rule 7
            notes["content_headers"] = plain_x_encoding(meta.headers or (), ctx)
        elif meta.headers is not None:
            notes["content_headers"] = meta.headers
        elif "content_headers" in notes:             # an internal redirect's first file's
            del notes["content_headers"]
        if meta.handler is not None and ctx.handler is None:
            forced = getattr(ctx.dir_config, "set_handler", None)
            if not forced or str(forced).lower() == "none":     # httpd: SetHandler None
                self._add_handler(ctx, meta.handler, filename)  # leaves mod_mime's

    def _add_handler(self, ctx: RequestContext, name: str, filename: str) -> None:
        """Rule 5."""
        if name in ctx.server.hooks.handlers:
            ctx.handler = name
            return
        key = (name, filename)
        if key not in self._warned:
            if len(self._warned) > _MAX_MEMO:
                self._warned.clear()
            self._warned.add(key)
            text = (f'handler "{name}" not found for: {filename}; served by the default '
                    "handler, as httpd does without the module")
            errlog = log_for_server(ctx.server, getattr(ctx.mpm, "log", None))
            if errlog is not None and hasattr(errlog, "warn"):
                errlog.warn(M_HANDLER_NOT_FOUND, text, "mime_module")
            else:
                from mpmd.core.request import log_error
                log_error(ctx, M_HANDLER_NOT_FOUND, text)


