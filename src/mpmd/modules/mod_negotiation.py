"""mod_negotiation: content negotiation (Options MultiViews, type maps, LanguagePriority,
ForceLanguagePriority), httpd's server-driven algorithm.

Rule 1: MultiViews: when a request's file does not exist and its directory has Options
        MultiViews, the files of that directory named ``<name>.<something>`` that the client
        may read (Require) are the variants, each described by mod_mime (type, charset,
        languages, encoding).  A file
        whose extensions mod_mime does not know, but for the requested name's own segments
        (httpd's "exceptions list"), is no variant (index.foo.html for /index); neither is a
        directory.  Names matched but none usable: 404, as httpd.  A type map among them
        (AddHandler type-map) is used instead of the directory.
Rule 2: the choice is httpd's ``is_variant_better``, in order: the Accept quality times the
        source quality (wildcards without any explicit q count 0.01 and 0.02), the language
        quality (Accept-Language, with prefix matches, "*"; variants without a language get
        0.0001 when others have one), the LanguagePriority rank (ForceLanguagePriority
        Prefer, the default), the text/html level, the charset (Accept-Charset; ISO-8859-1
        is acceptable unless excluded; a non-ISO-8859-1 charset wins a tie), the encoding
        (Accept-Encoding; without it, identity is preferred), the smaller file, the first
        name in byte order.  A variant with any quality 0 is out.  ForceLanguagePriority
        Fallback gives a variant no accepted language can choose a quality of 0.0001 by its
        LanguagePriority rank.  The ``prefer-language`` and ``no-gzip`` environment
        variables act as in httpd.
Rule 3: a chosen variant is served as if asked for by name (its own <Files>, Require, handler,
        type), with ``Content-Location`` (the variant's name), ``Vary`` (``negotiate`` and
        each dimension the variants differ in) and ``TCN: choice`` for GET and HEAD (httpd's
        transparent negotiation), Vary alone for other methods; these reach every answer for
        it, a 304 included.  No acceptable variant: 406, with ``Alternates``, ``Vary``,
        ``TCN: list`` and the list of variants in the page, as httpd.
Rule 4: the outcome depends on request headers, so a request under MultiViews never enters
        the route cache (``volatile_route``); directories without MultiViews pay one set
        lookup per uncached route.
Rule 5: type maps (``AddHandler type-map .var``): records of header lines (URI,
        Content-Type with ``qs``/``level``/``charset``, Content-Language, Content-Encoding,
        Content-Length, Description, Body) separated by blank lines; the chosen URI is
        served through an internal redirect (its Vary/TCN/Content-Location headers on the
        answer), a ``Body:`` variant from the map itself.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
import stat as stat_mod
from dataclasses import dataclass, field
from html import escape
from typing import Any, ClassVar
from urllib.parse import quote

from mpmd.config import values as v
from mpmd.config.directives import Args, Ctx, Directive, Override
from mpmd.core.errors import error_page
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.modules import Module, volatile_route
from mpmd.core.request import BadPath, error, internal_redirect, log_error, normalize

CGI_MAGIC_TYPE = "application/x-httpd-cgi"
TYPE_MAP = "type-map"
NEGOTIATED = "negotiated-variant"          # the handler that wraps a chosen variant's
NOTE_HEADERS = "negotiation.headers"       # ctx.notes: the headers a choice adds (Rule 3)
NOTE_HANDLER = "negotiation.handler"       # ctx.notes: the variant's own handler name
DEFAULT_HANDLER = "default-handler"
M_NONE_NEGOTIABLE = "MPMD0911"
M_NOT_ACCEPTABLE = "MPMD0912"
M_TYPE_MAP = "MPMD0913"
_SAFE_SEGMENT = "$-_.+!*'(),:@&=~"           # httpd's T_ESCAPE_PATH_SEGMENT: ';' escaped


class Force(frozenset):
    """A ForceLanguagePriority line's words; ``scope``: its section (0: server level), stamped
    when the configuration loads (``check_config``)."""

    scope = 0
    none = False


def force_priority_value(args: list[str]) -> Force:
    """ForceLanguagePriority None | Prefer | Fallback [Prefer | Fallback]."""
    words = {a.lower() for a in args}
    if "none" in words:
        if len(words) > 1:
            raise v.Worded("Cannot combine ForceLanguagePriority options with None")
        out = Force()
        out.none = True
        return out
    unknown = words - {"prefer", "fallback"}
    if unknown:
        raise v.Worded("Invalid ForceLanguagePriority option " + sorted(unknown)[0])
    return Force(w.capitalize() for w in words)


force_priority_value.render = lambda value: " ".join(sorted(value)) or "None"  # type: ignore[attr-defined]


def combine_force(old: Any, new: Any) -> Any:
    """httpd: the lines of one scope add up (a None line and a Prefer/Fallback line in one
    scope, an error in httpd, leave the later one); a scope's lines replace the scopes'
    around it."""
    if isinstance(old, Force) and isinstance(new, Force) and old.scope == new.scope \
            and old.none == new.none:
        out = Force(old | new)
        out.scope, out.none = new.scope, old.none and new.none
        return out
    return new


class Priority(list):
    """A LanguagePriority line's languages, with its scope (as ``Force``)."""

    scope = 0


def language_priority_value(args: list[str]) -> Priority:
    return Priority(a.lower() for a in args)


def combine_priority(old: Any, new: Any) -> Any:
    """httpd: the lines of one scope add up; a scope's lines replace the scopes' around it."""
    if isinstance(old, Priority) and isinstance(new, Priority) and old.scope == new.scope:
        out = Priority([*old, *new])
        out.scope = new.scope
        return out
    return new


# -- the client's Accept* headers --------------------------------------------------------

@dataclass(slots=True)
class AcceptRec:
    name: str
    quality: float = 1.0
    level: float = 0.0
    charset: str = ""


def _atoq(text: str) -> float:
    try:
        q = float(text.strip())
    except ValueError:
        return 0.0
    return min(max(q, 0.0), 1.0) if q == q else 0.0


def parse_entry(text: str, is_accept: bool = False) -> AcceptRec | None:
    """One element of an Accept* list (httpd's get_entry): the name in lower case, q (or qs),
    level, charset."""
    name, *params = text.split(";")
    name = name.strip().lower()
    if not name:
        return None
    if is_accept and name == "*":
        name = "*/*"
    rec = AcceptRec(name)
    for param in params:
        key, _, value = param.partition("=")
        key, value = key.strip().lower(), value.strip().strip('"')
        if key in ("q", "qs"):
            rec.quality = _atoq(value)
        elif key == "level":
            try:
                rec.level = float(value)
            except ValueError:
                rec.level = 0.0
        elif key == "charset":
            rec.charset = value.lower()
    return rec


def parse_list(value: bytes | None, is_accept: bool = False) -> list[AcceptRec] | None:
    """An Accept* header: None when absent, a list (maybe empty) when present."""
    if value is None:
        return None
    out = []
    for part in value.decode("latin-1").split(","):
        rec = parse_entry(part, is_accept)
        if rec is not None:
            out.append(rec)
    return out


def _header(ctx: RequestContext, name: bytes) -> bytes | None:
    values = ctx.request.header_values(name)
    return b", ".join(values) if values else None


# -- variants -----------------------------------------------------------------------------

@dataclass(slots=True)
class Variant:
    name: str                             # relative to the directory (or the map's)
    path: str | None                      # the file, None for a Body variant
    media_type: str
    charset: str | None = None
    languages: tuple[str, ...] = ()
    encoding: str | None = None
    source_quality: float = 1.0
    level: float = 0.0
    length: int = -1
    description: str = ""
    body: bytes | None = None             # a type map's Body: variant
    dc: Any = None
    # computed per request
    mime_q: float = 1.0
    mime_stars: int = 0
    level_matched: float = 0.0
    lang_q: float = 1.0
    lang_index: int = -1
    enc_q: float = 1.0
    charset_q: float = 1.0
    definite: bool = True
    is_pseudo_html: bool = field(default=False)

    def size(self) -> int:
        if self.length < 0 and self.path is not None:
            try:
                self.length = os.stat(self.path).st_size
            except OSError:
                pass
        return self.length


def variant_from_type(name: str, path: str | None, content_type: str) -> Variant:
    rec = parse_entry(content_type) or AcceptRec("")
    var = Variant(name, path, rec.name, charset=rec.charset or None,
                  source_quality=rec.quality, level=rec.level)
    var.is_pseudo_html = var.media_type == "text/html"
    return var


@dataclass(slots=True)
class Negotiation:
    """One request's view: its Accept* lists and the configuration that applies."""

    accepts: list[AcceptRec] | None
    encodings: list[AcceptRec] | None
    languages: list[AcceptRec] | None
    charsets: list[AcceptRec] | None
    priority: list[str]
    force: frozenset[str]
    accept_q: bool = False
    default_lang_q: float = 1.0


def negotiation_for(ctx: RequestContext, dc: Any) -> Negotiation:
    accepts = parse_list(_header(ctx, b"accept"), True)
    neg = Negotiation(accepts, parse_list(_header(ctx, b"accept-encoding")),
                      parse_list(_header(ctx, b"accept-language")),
                      parse_list(_header(ctx, b"accept-charset")),
                      list(getattr(dc, "language_priority", None) or ()),
                      getattr(dc, "force_language_priority", None)
                      if getattr(dc, "force_language_priority", None) is not None
                      else frozenset({"Prefer"}))
    neg.accept_q = any(a.quality < 1.0 for a in accepts or ())
    # httpd's maybe_add_default_accepts (GET without arguments: scripts are not preferred)
    if neg.accepts is None:
        neg.accepts = [AcceptRec("*/*")]
    neg.accepts.append(AcceptRec(CGI_MAGIC_TYPE, 0.001))
    return neg


def _mime_match(acc: AcceptRec, var: Variant) -> bool:
    name, avail = acc.name, var.media_type
    if name.startswith("*"):
        var.mime_stars = max(var.mime_stars, 1)
        return True
    if name.endswith("*") and avail.startswith(name[:-2]):
        var.mime_stars = max(var.mime_stars, 2)
        return True
    if name == avail and acc.level >= var.level:
        var.level_matched = var.level
        var.mime_stars = 3
        return True
    return False


def set_accept_quality(neg: Negotiation, var: Variant) -> None:
    q = 0.0
    definite = True
    for acc in neg.accepts or ():
        before = var.mime_stars
        if not _mime_match(acc, var) or before == var.mime_stars:
            continue
        if not neg.accept_q and var.mime_stars == 1:
            q = 0.01
        elif not neg.accept_q and var.mime_stars == 2:
            q = 0.02
        else:
            q = acc.quality
        definite = var.mime_stars == 3
    var.mime_q = q
    var.definite = var.definite and definite


def set_default_lang_quality(neg: Negotiation, variants: list[Variant]) -> None:
    neg.default_lang_q = 0.0001 if any(v.languages for v in variants) else 1.0


def _priority_index(priority: list[str], lang: str) -> int:
    for i, want in enumerate(priority):
        if lang.startswith(want):              # httpd's find_lang_index: a prefix compare
            return i
    return -1


def set_language_quality(neg: Negotiation, var: Variant) -> None:
    if not var.languages:
        var.lang_q = neg.default_lang_q
        return
    if neg.languages is None:
        var.definite = False
    else:
        best: AcceptRec | None = None
        star: AcceptRec | None = None
        fiddle_q = 0.0
        any_on_star = False
        for lang in var.languages:
            best_this: AcceptRec | None = None
            longest = 0
            for acc in neg.languages:
                if acc.name == "*":
                    star = star or acc
                    continue
                n = len(acc.name)
                if lang.startswith(acc.name) and (len(lang) == n or lang[n] == "-"):
                    if n > longest:
                        longest, best_this = n, acc
                if best_this is None and "-" in acc.name:
                    prefix = acc.name.split("-", 1)[0]
                    if lang.startswith(prefix):
                        fiddle_q = 0.001
            if best is None or (best_this is not None and best_this.quality > best.quality):
                best = best_this
            if best_this is None and star is not None:
                any_on_star = True
        if any_on_star and star is not None and (best is None or star.quality > best.quality):
            best = star
            var.definite = False
        var.lang_q = best.quality if best is not None else fiddle_q
    prefer, fallback = "Prefer" in neg.force, "Fallback" in neg.force
    if (prefer and var.lang_index < 0) or (fallback and not var.lang_q):
        ranks = [i for i in (_priority_index(neg.priority, lang) for lang in var.languages)
                 if i >= 0]
        if ranks:
            if var.lang_q:
                if prefer:
                    var.lang_index = min(ranks)
            elif fallback:
                var.lang_index = min(ranks)
                var.lang_q = 0.0001
                var.definite = False


def _identity(enc: str | None) -> bool:
    return not enc or enc in ("7bit", "8bit", "binary")


def set_encoding_quality(neg: Negotiation, var: Variant) -> None:
    enc = var.encoding
    if neg.encodings is None:
        var.enc_q = 1.0 if _identity(enc) else 0.5
        return
    if _identity(enc):
        enc, if_not_found = "identity", 0.0001
    else:
        if_not_found = 0.0
    enc = enc[2:] if enc.startswith("x-") else enc  # type: ignore[union-attr]
    star = None
    for acc in neg.encodings:
        name = acc.name[2:] if acc.name.startswith("x-") else acc.name
        if name == enc:
            var.enc_q = acc.quality
            return
        if name == "*":
            star = acc
    var.enc_q = star.quality if star is not None else if_not_found


def set_charset_quality(neg: Negotiation, var: Variant) -> None:
    charset = var.charset
    if neg.charsets is None:
        if charset:
            var.definite = False
        return
    if not charset:
        if not var.media_type.startswith("text/"):
            return
        charset = "iso-8859-1"
    star = None
    for acc in neg.charsets:
        if acc.name == charset:
            var.charset_q = acc.quality
            return
        if acc.name == "*":
            star = acc
    if star is not None:
        var.charset_q = star.quality
        var.definite = False
        return
    var.charset_q = 1.0 if charset == "iso-8859-1" else 0.0


def _level_cmp(a: Variant, b: Variant) -> int:
    if a.is_pseudo_html and not b.is_pseudo_html:
        return 0
    if not a.is_pseudo_html and a.media_type != b.media_type:
        return 0
    if a.level_matched != b.level_matched:
        return 1 if a.level_matched > b.level_matched else -1
    if a.level != b.level:
        return 1 if a.level < b.level else -1
    return 0


def _latin1(charset: str | None) -> bool:
    return not charset or charset == "iso-8859-1"


def is_better(var: Variant, best: Variant | None, bestq: float) -> float | None:
    """httpd's is_variant_better (Rule 2): the new best q when ``var`` beats ``best``."""
    if 0.0 in (var.enc_q, var.lang_q, var.source_quality, var.charset_q, var.mime_q):
        return None
    q = var.mime_q * var.source_quality
    if q == 0.0 or q < bestq:
        return None
    if q > bestq or best is None:
        return q
    if var.lang_q != best.lang_q:
        return q if var.lang_q > best.lang_q else None
    if best.lang_index != -1 and (var.lang_index == -1 or var.lang_index > best.lang_index):
        return None
    if var.lang_index != -1 and (best.lang_index == -1 or var.lang_index < best.lang_index):
        return q
    levcmp = _level_cmp(var, best)
    if levcmp:
        return q if levcmp > 0 else None
    if var.charset_q < best.charset_q:
        return None
    if var.charset_q > best.charset_q or (not _latin1(var.charset) and _latin1(best.charset)):
        return q
    if var.enc_q != best.enc_q:
        return q if var.enc_q > best.enc_q else None
    if var.size() >= best.size():
        return None
    return q


def best_match(neg: Negotiation, variants: list[Variant], env: dict[str, str]) -> Variant | None:
    preferred = env.get("prefer-language")
    no_gzip = "no-gzip" in env
    set_default_lang_quality(neg, variants)
    while True:
        best, bestq = None, 0.0
        for var in variants:
            if no_gzip and not _identity(var.encoding) and var.encoding != "identity":
                continue
            if preferred and preferred not in var.languages:
                continue
            set_accept_quality(neg, var)
            if preferred:
                var.lang_q, var.definite = 1.0, True
            else:
                set_language_quality(neg, var)
            set_encoding_quality(neg, var)
            set_charset_quality(neg, var)
            q = is_better(var, best, bestq)
            if q is not None:
                best, bestq = var, q
        if preferred and (best is None or bestq <= 0):
            preferred = None
            continue
        return best if bestq > 0 else None


# -- the answer's headers -------------------------------------------------------------------

def vary_value(variants: list[Variant], transparent: bool) -> str | None:
    """Rule 3: ``negotiate`` and the dimensions in which the variants differ."""
    first = variants[0] if variants else None
    dims = []
    if first is not None:
        for label, key in (("accept", lambda x: x.media_type), ("accept-language",
                           lambda x: ",".join(x.languages)), ("accept-charset",
                           lambda x: x.charset or ""), ("accept-encoding",
                           lambda x: x.encoding or "")):
            if any(key(x) != key(first) for x in variants[1:]):
                dims.append(label)
    if transparent:
        dims.insert(0, "negotiate")
    return ",".join(dims) or None


def escape_segment(name: str) -> str:
    """httpd's ap_escape_path_segment: lower-case hex, "/" escaped too."""
    raw = quote(name.encode("utf-8", "surrogateescape"), safe=_SAFE_SEGMENT)
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), raw)


def _q_text(q: float) -> str:
    text = f"{q:1.3f}".rstrip("0")
    return text.rstrip(".") if text.endswith(".") else text


def alternates(variants: list[Variant]) -> str:
    parts = []
    for var in variants:
        item = f'{{"{escape_segment(var.name)}" {_q_text(var.source_quality)}'
        if var.media_type:
            item += f" {{type {var.media_type}}}"
        if var.charset:
            item += f" {{charset {var.charset}}}"
        if var.languages:
            item += f" {{language {','.join(var.languages)}}}"
        if var.encoding:
            item += f" {{encoding {var.encoding}}}"
        if var.size() >= 0:
            item += f" {{length {var.size()}}}"
        parts.append(item + "}")
    return ", ".join(parts)


def variant_list(variants: list[Variant]) -> str:
    """The 406 page's list (httpd's make_variant_list), names escaped."""
    out = ["Available variants:\n<ul>\n"]
    for var in variants:
        name = escape(var.name)
        line = f'<li><a href="{escape(quote(var.name, safe=_SAFE_SEGMENT + "/"))}">{name}</a> ' \
               f"{escape(var.description)}"
        if var.media_type:
            line += f", type {escape(var.media_type)}"
        if var.languages:
            line += f", language {escape(','.join(var.languages))}"
        if var.charset:
            line += f", charset {escape(var.charset)}"
        if var.encoding:
            line += f", encoding {escape(var.encoding)}"
        out.append(line + "</li>\n")
    out.append("</ul>\n")
    return "".join(out)


def not_acceptable(ctx: RequestContext, variants: list[Variant], transparent: bool) -> Response:
    resp = error(406, ctx)
    page = resp.body if isinstance(resp.body, bytes) else error_page(406)
    listing = variant_list(variants).encode("latin-1", "xmlcharrefreplace")
    at = page.find(b"</p>\n")
    body = page[:at + 5] + listing + page[at + 5:] if at >= 0 else page
    headers = [h for h in resp.headers if h[0].lower() != "content-length"]
    headers.append(("Alternates", alternates(variants)))
    vary = vary_value(variants, transparent)
    if vary:
        headers.append(("Vary", vary))
    if transparent:
        headers.append(("TCN", "list"))
    resp.headers = headers
    resp.body = body
    log_error(ctx, M_NOT_ACCEPTABLE, f"no acceptable variant: {ctx.filename}")
    return resp


def choice_headers(variants: list[Variant], chosen: Variant, transparent: bool) -> tuple:
    out = []
    if transparent:
        out.append(("Content-Location", escape_segment(chosen.name)))
    vary = vary_value(variants, transparent)
    if vary:
        out.append(("Vary", vary))
    if transparent:
        out.append(("TCN", "choice"))
    return tuple(out)


def with_headers(resp: Response, extra: tuple) -> Response:
    """``resp`` plus ``extra`` (a new Response: a handler may hand out one shared answer)."""
    names = {name.lower() for name, _ in extra}
    headers = [h for h in resp.headers if h[0].lower() not in names or h[0].lower() == "vary"]
    return Response(resp.status, headers + list(extra), resp.body, resp.close_connection,
                    resp.on_close)


# -- reading the variants -----------------------------------------------------------------

def _mime(ctx: RequestContext) -> Any:
    for module in ctx.server.modules:
        if getattr(module, "name", None) == "mime_module":
            return module
    return None


def _segments_match(exceptions: tuple[str, ...], wanted: str) -> bool:
    """httpd: each unknown part of the file's name must be, in order, a segment of the name
    asked for (index.html.foo answers index.foo or index.html.foo, never index.foo.html)."""
    todo = list(exceptions)
    for segment in wanted.split("."):
        if todo and segment == todo[0]:
            todo.pop(0)
    return not todo


def multiviews_names(dirname: str, wanted: str) -> list[str]:
    prefix = wanted + "."
    try:
        with os.scandir(dirname) as it:
            return sorted(e.name for e in it if e.name.startswith(prefix))
    except OSError:
        return []


def has_variants(dirname: str, wanted: str) -> bool:
    """Whether MultiViews may find variants of ``wanted`` in ``dirname`` (mod_dir asks)."""
    return bool(multiviews_names(dirname, wanted))


def access_allowed(ctx: RequestContext, path: str, uri: str, dc: Any) -> bool:
    """The access hooks (Require) for ``path`` as if it were requested (httpd's subrequest):
    a variant the client may not read is no variant."""
    checks = ctx.server.hooks.by_hook.get("access_checker") or ()
    if not checks:
        return True
    sub = dataclasses.replace(ctx, filename=path, uri_path=uri, dir_config=dc, notes={},
                              env=dict(ctx.env))
    for fn in checks:
        try:
            resp = fn(sub)
        except Exception:  # noqa: BLE001 - a file a module cannot judge is not offered
            return False
        if resp is not None and resp.status >= 400:
            return False
    return True


def read_multiviews(ctx: RequestContext, mime: Any) -> tuple[list[Variant], bool, str | None]:
    """Rule 1: (variants, whether any name matched, the type map to use instead)."""
    filename = ctx.filename or ""
    dirname, wanted = filename.rsplit("/", 1)
    uri_dir = ctx.uri_path.rsplit("/", 1)[0] + "/"
    variants: list[Variant] = []
    matched = False
    for name in multiviews_names(dirname, wanted):
        path = dirname + "/" + name
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat_mod.S_ISDIR(st.st_mode):
            continue
        matched = True
        if not stat_mod.S_ISREG(st.st_mode):
            continue
        dc = ctx.server.dir_config(path, uri_dir + name)
        if not access_allowed(ctx, path, uri_dir + name, dc):
            continue
        meta = mime.meta(ctx.server, dc, path)
        handler = meta.handler or getattr(dc, "set_handler", None)
        if not _segments_match(meta.exceptions, wanted):
            continue
        ctype = meta.content_type
        if ctype is None and handler:
            ctype = CGI_MAGIC_TYPE
        if ctype is None:
            continue
        if handler == TYPE_MAP:
            return [], True, path
        var = variant_from_type(name, path, ctype)
        var.languages, var.encoding, var.length, var.dc = meta.languages, meta.encoding, \
            st.st_size, dc
        variants.append(var)
    return variants, matched, None


def strip_paren_comments(text: str) -> str:
    """httpd's: each (comment) becomes as many spaces; "quoted" text is kept."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            end = text.find('"', i + 1)
            if end < 0:
                out.append(text[i:])
                break
            out.append(text[i:end + 1])
            i = end + 1
        elif c == "(":
            end = text.find(")", i)
            end = n - 1 if end < 0 else end
            out.append(" " * (end - i + 1))
            i = end + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_type_map(data: bytes, map_name: str, map_dir: str = "") -> list[Variant]:
    """Rule 5: the records of a type map (a URI's file, for its length, under ``map_dir``)."""
    variants: list[Variant] = []
    lines = data.split(b"\n")
    i = 0
    record: dict[str, str] = {}
    body: bytes | None = None

    def flush() -> None:
        nonlocal record, body
        name = record.get("uri")
        if body is not None:
            name = map_name
        has_content = any(k in record for k in ("content-type", "content-length",
                                                "content-language", "content-encoding"))
        if name and has_content:
            path = None if body is not None or not map_dir else \
                os.path.normpath(os.path.join(map_dir, name))
            var = variant_from_type(name, path, record.get("content-type", ""))
            langs = record.get("content-language")
            if langs:
                var.languages = tuple(x.strip().lower() for x in langs.split(",") if x.strip())
            enc = record.get("content-encoding")
            if enc:
                var.encoding = enc.split()[0].lower()
            length = record.get("content-length", "").strip()
            if length.isdigit():
                var.length = int(length)
            var.description = record.get("description", "")
            if body is not None:
                var.body, var.length = body, len(body)
            variants.append(var)
        record, body = {}, None

    last = None
    while i < len(lines):
        raw = lines[i].rstrip(b"\r")
        i += 1
        text = raw.decode("utf-8", "surrogateescape")
        if not text.strip():
            if record or body is not None:
                flush()
            last = None
            continue
        if text[0] in " \t" and last is not None:
            record[last] += " " + text.strip()
            continue
        key, colon, value = text.partition(":")
        if not colon:
            continue
        key = key.strip().lower()
        value = strip_paren_comments(value.lstrip(" \t"))
        if key != "description":
            value = value.strip()
        if key == "body":
            tag = value.strip().encode("utf-8", "surrogateescape")
            chunk = []
            while i < len(lines) and lines[i].rstrip(b"\r") != tag:
                chunk.append(lines[i] + b"\n")
                i += 1
            i += 1
            body = b"".join(chunk)
            last = None
            continue
        record[key] = value
        last = key
    if record or body is not None:
        flush()
    return variants


# -- the module -----------------------------------------------------------------------------

class NegotiatedHandler:
    """Rule 3: the chosen variant's own handler, its answer with the negotiation's headers."""

    kind = "inline"

    def __call__(self, ctx: RequestContext) -> Response:
        name = ctx.notes.get(NOTE_HANDLER) or DEFAULT_HANDLER
        handlers = ctx.server.hooks.handlers
        inner = handlers.get(name) or handlers[DEFAULT_HANDLER]
        ctx.handler = name
        resp = inner(ctx)
        extra = ctx.notes.get(NOTE_HEADERS)
        return with_headers(resp, extra) if extra else resp


class TypeMapHandler:
    """Rule 5."""

    kind = "inline"

    def __call__(self, ctx: RequestContext) -> Response:
        filename = ctx.filename or ""
        try:
            with open(filename, "rb") as f:
                data = f.read(1 << 20)
        except FileNotFoundError:
            return error(404, ctx)
        except OSError:
            return error(403, ctx)
        variants = parse_type_map(data, os.path.basename(filename), os.path.dirname(filename))
        return serve_type_map(ctx, variants, filename, ctx.uri_path.rsplit("/", 1)[0] + "/")


def serve_type_map(ctx: RequestContext, variants: list[Variant], map_file: str,
                   uri_dir: str) -> Response:
    if not variants:
        log_error(ctx, M_TYPE_MAP, f"type map {map_file} has no variants")
        return error(500, ctx)
    method = ctx.request.method
    transparent = method in ("GET", "HEAD") and not any("/" in v.name or v.body is not None
                                                       for v in variants)
    neg = negotiation_for(ctx, ctx.dir_config)
    chosen = best_match(neg, variants, ctx.env)
    if chosen is None:
        return not_acceptable(ctx, variants, transparent)
    extra = choice_headers(variants, chosen, transparent)
    if chosen.body is not None:
        headers = []
        if chosen.media_type:
            ctype = chosen.media_type + (f"; charset={chosen.charset}" if chosen.charset else "")
            headers.append(("Content-Type", ctype))
        if chosen.languages:
            headers.append(("Content-Language", ", ".join(chosen.languages)))
        if chosen.encoding:
            headers.append(("Content-Encoding", chosen.encoding))
        body = b"" if method == "HEAD" else chosen.body
        return Response(200, headers + [("Content-Length", str(len(chosen.body)))] + list(extra),
                        body)
    try:
        target = normalize(posixpath.join(uri_dir, chosen.name))
    except BadPath:
        return error(500, ctx)
    ctx.notes.pop(NOTE_HEADERS, None)
    resp = internal_redirect(ctx, target)
    return with_headers(resp, extra)


class NegotiationModule(Module):
    name: ClassVar[str] = "negotiation_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_negotiation.c",)
    builtin: ClassVar[bool] = True
    route_pure: ClassVar[bool] = True             # Rule 4: volatile_route where it is not
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("LanguagePriority", Args.ITERATE, Ctx.ANY, language_priority_value, None,
                  "language_priority", "Languages in order of preference, for ties in "
                  "negotiation (and ForceLanguagePriority).", extra={"combine": combine_priority},
                  syntax="LanguagePriority MIME-lang [MIME-lang] ...", owner="negotiation_module",
                  override=Override.FILEINFO),
        Directive("CacheNegotiatedDocs", Args.FLAG, Ctx.SERVER | Ctx.VHOST, v.flag, False,
                  "cache_negotiated_docs", "Accepted for Apache configurations; negotiated "
                  "answers carry no Expires either way, as Apache 2.4 sends them.",
                  syntax="CacheNegotiatedDocs On|Off", owner="negotiation_module",
                  extra={"no_effect": (None, "negotiated answers carry no Expires either "
                                             "way, as Apache 2.4's do")}),
        Directive("ForceLanguagePriority", Args.ITERATE, Ctx.ANY, force_priority_value, None,
                  "force_language_priority", "Prefer: LanguagePriority breaks ties; Fallback: "
                  "it picks a variant when no language is acceptable, instead of a 406 "
                  "(unset: Prefer).", extra={"combine": combine_force},
                  syntax="ForceLanguagePriority None|Prefer|Fallback [Prefer|Fallback]",
                  owner="negotiation_module", override=Override.FILEINFO),
    ]

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {NEGOTIATED: NegotiatedHandler(),
                                         TYPE_MAP: TypeMapHandler()}

    def check_config(self, cfg: Any) -> list[Any]:
        """Stamp each LanguagePriority and ForceLanguagePriority line with its scope."""
        todo = list(getattr(cfg, "sections", None) or ())
        while todo:
            section = todo.pop()
            for op in section.ops:
                if isinstance(op.value, (Force, Priority)):
                    op.value.scope = id(section)
            todo.extend(section.sections)
        return []

    def map_to_storage(self, ctx: RequestContext) -> Response | None:
        """Rule 1 (httpd's handle_multi, a type checker that runs before access checks here
        so that Require sees the chosen file)."""
        dc = ctx.dir_config
        options = getattr(dc, "options", None)
        if not options or "MultiViews" not in options:
            return None
        volatile_route(ctx)                                 # Rule 4
        filename = ctx.filename
        if not filename or filename.endswith("/") or ctx.handler is not None:
            return None
        try:
            os.stat(filename)
            return None
        except (OSError, ValueError):
            pass
        mime = _mime(ctx)
        if mime is None:
            return None
        variants, matched, type_map = read_multiviews(ctx, mime)
        if type_map is not None:
            ctx.filename = type_map
            ctx.dir_config = ctx.server.dir_config(type_map, ctx.uri_path)
            ctx.handler = TYPE_MAP
            return None
        if not variants:
            if matched:
                log_error(ctx, M_NONE_NEGOTIABLE, f"Negotiation: discovered file(s) matching "
                          f"request: {filename} (None could be negotiated).")
                return error(404, ctx)
            return None
        transparent = ctx.request.method in ("GET", "HEAD")
        neg = negotiation_for(ctx, dc)
        chosen = best_match(neg, variants, ctx.env)
        if chosen is None:
            return not_acceptable(ctx, variants, transparent)
        ctx.filename = chosen.path
        ctx.dir_config = chosen.dc
        ctx.notes[NOTE_HEADERS] = choice_headers(variants, chosen, transparent)
        return None

    def fixups(self, ctx: RequestContext) -> None:
        """Rule 3: the variant keeps its own handler, wrapped to add the headers."""
        if NOTE_HEADERS not in ctx.notes or ctx.handler == NEGOTIATED:
            return
        ctx.notes[NOTE_HANDLER] = ctx.handler or getattr(ctx.dir_config, "set_handler", None) \
            or DEFAULT_HANDLER
        ctx.handler = NEGOTIATED
