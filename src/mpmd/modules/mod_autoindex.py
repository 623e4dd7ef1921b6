"""mod_autoindex: the listing of a directory (Options Indexes), the "autoindex" handler, shaped
as httpd 2.4's: the same rows, order, columns, icons and header/readme inclusion.

Rule 1: names are HTML-escaped in text and percent-encoded in links (httpd's
        ap_os_escape_path, lower-case hex), so a file called ``<script>.html`` or ``a"b``
        cannot inject markup; AddDescription text is the administrator's HTML, as in httpd.
Rule 2: an entry is listed unless it is "." or "..", matches IndexIgnore (``*`` and ``?``
        only, as httpd's ap_strcmp_match, on the base name), is neither a regular file nor a
        directory (symlinks are followed), or is refused to the client by the access hooks
        (Require) -- then only with IndexOptions ShowForbidden.  The parent directory comes
        first, but at "/" and when IndexIgnore hides "..".
Rule 3: the order is IndexOrderDefault (Ascending Name by default) or the query's
        ``C=N|M|S|D`` and ``O=A|D`` (``F=0|1|2`` the format, ``V=0|1`` VersionSort,
        ``P=pattern`` a filter; IgnoreClient ignores the query), with FoldersFirst, VersionSort
        (httpd's apr_strnatcmp, bytes as signed chars) and IgnoreCase as httpd's dsortf; ties
        by name.
Rule 4: IndexOptions FancyIndexing lists in a <pre> block, with HTMLTable in a <table>, and
        without either as a <ul>; sizes as apr_strfsize ("4.9K"), dates in local time as
        "%Y-%m-%d %H:%M" (UseOldDateFormat "%d-%b-%Y %H:%M"); NameWidth and
        DescriptionWidth pad and cut as httpd.
Rule 5: AddIcon*, AddAlt*, AddDescription and IndexIgnore lines are searched as httpd merges
        them: a section's lines before the lines of the scopes around it, each scope's in
        the order written, first match wins.  An IndexOptions line with keywords that are
        not +/- prefixed replaces what the scopes around it set, and several such lines in
        one scope add up (httpd's merge_autoindex_configs).  The scope of each line is
        stamped on its value when the configuration loads (``check_config``).
Rule 6: HeaderName and ReadmeName are URLs relative to the listing's (or absolute), looked
        up as httpd's subrequest (Alias, MultiViews, Require and mod_mime apply; a regular
        file only): text/html is included as its handler answers it (the preamble is left
        out with SuppressHTMLPreamble), other text/* escaped in a <pre>; a header replaces
        the <h1>, a readme the server signature.  HEAD gets the head alone.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat as stat_mod
import time
from email.utils import formatdate
from html import escape
from typing import Any, ClassVar
from urllib.parse import quote, unquote_to_bytes

from mpmd.config import values as v
from mpmd.config.directives import Args, Ctx, Directive, Merge, Override
from mpmd.core import request as pipeline
from mpmd.core.exchange import FileBody, RequestContext, Response
from mpmd.core.modules import Module
from mpmd.core.request import BadPath, error, normalize

# IndexOptions keywords that are flags (httpd's opts bits)
FLAGS = ("FancyIndexing", "FoldersFirst", "HTMLTable", "IconsAreLinks", "IgnoreCase",
         "IgnoreClient", "ScanHTMLTitles", "SuppressColumnSorting", "SuppressDescription",
         "SuppressHTMLPreamble", "SuppressIcon", "SuppressLastModified", "SuppressSize",
         "SuppressRules", "TrackModified", "VersionSort", "XHTML", "ShowForbidden",
         "AddAltClass")
_FLAG_NAMES = {f.lower(): f for f in FLAGS}
DEFAULT_NAME_WIDTH = 23
DEFAULT_DESC_WIDTH = 23
DEFAULT_ICON_WIDTH = 20
DEFAULT_ICON_HEIGHT = 22
_UNSET, _ADJUST, _FIXED = 0, 1, 2
DOCTYPE_HTML = ('<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN" '
                '"http://www.w3.org/TR/html4/strict.dtd">\n<html>\n')
DOCTYPE_XHTML = ('<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
                 '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
                 '<html xmlns="http://www.w3.org/1999/xhtml">\n')
_PATH_SAFE = "$-_.+!*'(),:;@&=/~"


# -- configuration values ------------------------------------------------------------------

@dataclasses.dataclass
class Scoped:
    """A value whose scope (the section its line is in; 0: server level) is stamped when the
    configuration loads (Rule 5)."""

    scope: int = dataclasses.field(default=0, init=False, compare=False)


@dataclasses.dataclass
class OptionsLine(Scoped):
    """One IndexOptions line."""

    absolute: frozenset[str] | None        # the unprefixed keywords (None: none)
    add: frozenset[str]
    remove: frozenset[str]
    none: bool = False
    settings: tuple[tuple[str, Any], ...] = ()


@dataclasses.dataclass(frozen=True)
class IndexOpts:
    """The IndexOptions in effect (httpd's opts, incremented_opts, decremented_opts ...)."""

    flags: frozenset[str] = frozenset()
    inc: frozenset[str] = frozenset()
    dec: frozenset[str] = frozenset()
    settings: tuple[tuple[str, Any], ...] = ()
    scope: int = -1                        # where the last unprefixed line was (Rule 5)

    def get(self, name: str, default: Any = None) -> Any:
        for key, value in self.settings:
            if key == name:
                return value
        return default


def _atoi(text: str) -> int:
    m = re.match(r"\s*[-+]?\d+", text)
    return int(m.group(0)) if m else 0


def index_options_value(args: list[str]) -> OptionsLine:
    """httpd's add_opts, its messages word for word."""
    absolute: set[str] | None = None
    add: set[str] = set()
    remove: set[str] = set()
    none = False
    settings: dict[str, Any] = {}
    for word in args:
        action = word[0] if word[:1] in ("+", "-") else ""
        w = word[1:] if action else word
        lower = w.lower()
        option = _FLAG_NAMES.get(lower)
        if option is None:
            if lower == "none":
                if action:
                    raise v.Worded("Cannot combine '+' or '-' with 'None' keyword")
                none, absolute, add, remove = True, set(), set(), set()
                continue
            if lower == "iconwidth":
                settings["icon_width"] = 0 if action == "-" else DEFAULT_ICON_WIDTH
            elif lower.startswith("iconwidth="):
                if action == "-":
                    raise v.Worded("Cannot combine '-' with IconWidth=n")
                settings["icon_width"] = _atoi(w[10:])
            elif lower == "iconheight":
                settings["icon_height"] = 0 if action == "-" else DEFAULT_ICON_HEIGHT
            elif lower.startswith("iconheight="):
                if action == "-":
                    raise v.Worded("Cannot combine '-' with IconHeight=n")
                settings["icon_height"] = _atoi(w[11:])
            elif lower == "namewidth":
                if action != "-":
                    raise v.Worded("NameWidth with no value may only appear as '-NameWidth'")
                settings["name"] = (_FIXED, DEFAULT_NAME_WIDTH)
            elif lower.startswith("namewidth="):
                if action == "-":
                    raise v.Worded("Cannot combine '-' with NameWidth=n")
                if w[10:11] == "*":
                    settings["name"] = (_ADJUST, DEFAULT_NAME_WIDTH)
                else:
                    width = _atoi(w[10:])
                    if width and width < 5:
                        raise v.Worded("NameWidth value must be greater than 5")
                    settings["name"] = (_FIXED, width)
            elif lower == "descriptionwidth":
                if action != "-":
                    raise v.Worded("DescriptionWidth with no value may only appear as "
                                   "'-DescriptionWidth'")
                settings["desc"] = (_FIXED, DEFAULT_DESC_WIDTH)
            elif lower.startswith("descriptionwidth="):
                if action == "-":
                    raise v.Worded("Cannot combine '-' with DescriptionWidth=n")
                if w[17:18] == "*":
                    settings["desc"] = (_ADJUST, DEFAULT_DESC_WIDTH)
                else:
                    width = _atoi(w[17:])
                    if width and width < 12:
                        raise v.Worded("DescriptionWidth value must be greater than 12")
                    settings["desc"] = (_FIXED, width)
            elif lower.startswith("type="):
                settings["type"] = w[5:]
            elif lower.startswith("charset="):
                settings["charset"] = w[8:]
            elif lower == "useolddateformat":
                settings["date_format"] = "%d-%b-%Y %H:%M"
            else:
                raise v.Worded("Invalid directory indexing option")
            continue
        if not action:
            absolute = (absolute or set()) | {option}
            add, remove = set(), set()
        elif action == "+":
            add.add(option)
            remove.discard(option)
        else:
            remove.add(option)
            add.discard(option)
    if none and absolute:
        raise v.Worded("Cannot combine other IndexOptions keywords with 'None'")
    return OptionsLine(frozenset(absolute) if absolute is not None else None, frozenset(add),
                       frozenset(remove), none, tuple(settings.items()))


def combine_options(old: Any, line: Any) -> IndexOpts:
    """Rule 5: httpd's merge_autoindex_configs, one line at a time."""
    old = old if isinstance(old, IndexOpts) else IndexOpts()
    if not isinstance(line, OptionsLine):
        return old
    settings = dict(old.settings)
    settings.update(line.settings)
    merged = tuple(settings.items())
    if line.none:
        return IndexOpts(frozenset(), frozenset(), frozenset(), merged, line.scope)
    if line.absolute is not None:
        base = line.absolute
        if old.scope == line.scope:                 # several lines of one scope add up
            base = old.flags | base
        flags = (base | line.add) - line.remove
        return IndexOpts(flags, line.add, line.remove, merged, line.scope)
    inc = (old.inc | line.add) - line.remove
    dec = old.dec | line.remove
    return IndexOpts((old.flags | inc) - dec, inc, dec, merged, old.scope)


combine_options.render = lambda value: ""  # type: ignore[attr-defined]


@dataclasses.dataclass
class Item(Scoped):
    """An AddIcon*/AddAlt* pattern: ``list`` "icon" or "alt", ``kind`` "path", "type" or
    "encoding"."""

    list: str
    kind: str
    to: str
    data: str


@dataclasses.dataclass
class Described(Scoped):
    pattern: str
    description: str
    full_path: bool
    wildcards: bool


@dataclasses.dataclass
class Ignore(Scoped):
    pattern: str | None                   # None: IndexIgnoreReset On (Rule 5)


def _icon_items(kind: str) -> Any:
    def convert(args: list[str]) -> list[Item]:
        if len(args) < 2:
            raise ValueError("needs an icon and at least one name")
        icon = args[0]
        alt = None
        if icon.startswith("("):
            close = icon.find(")")
            if close < 0:
                raise v.Worded("missing closing paren")
            alt, _, icon = icon[1:close].partition(",")
        out = []
        for to in args[1:]:
            to = _item_to(kind, to)
            if alt is not None:
                out.append(Item("alt", kind, to, alt))
            out.append(Item("icon", kind, to, icon))
        return out
    return convert


def _alt_items(kind: str) -> Any:
    def convert(args: list[str]) -> list[Item]:
        if len(args) < 2:
            raise ValueError("needs a text and at least one name")
        return [Item("alt", kind, _item_to(kind, to), args[0]) for to in args[1:]]
    return convert


def _item_to(kind: str, to: str) -> str:
    if kind == "path":
        if to == "**DIRECTORY**":
            to = "^^DIRECTORY^^"
        if not any(c in to for c in "*?"):
            to = "*" + to
    elif kind == "encoding":
        to = to.lower()
    return to


def add_description_value(args: list[str]) -> list[Described]:
    if len(args) < 2:
        raise ValueError("needs a description and at least one name")
    out = []
    for to in args[1:]:
        full = "/" in to
        wild = full or any(c in to for c in "*?[")
        pattern = (("*/" if full else "*") + to + "*") if wild else to
        out.append(Described(pattern, args[0], full, wild))
    return out


def index_ignore_value(args: list[str]) -> list[Ignore]:
    return [Ignore(a) for a in args]


def index_ignore_reset_value(args: list[str]) -> list[Ignore]:
    return [Ignore(None)] if v.flag(args) else []


def order_value(args: list[str]) -> tuple[str, str]:
    direction, key = args
    d = {"ascending": "A", "descending": "D"}.get(direction.lower())
    if d is None:
        raise v.Worded("First keyword must be 'Ascending' or 'Descending'")
    k = {"name": "N", "date": "M", "size": "S", "description": "D"}.get(key.lower())
    if k is None:
        raise v.Worded("Second keyword must be 'Name', 'Date', 'Size', or 'Description'")
    return k, d


# -- matching -------------------------------------------------------------------------------

_MATCHERS: dict[tuple[str, bool], Any] = {}


def strmatch(text: str, pattern: str, fold: bool = False) -> bool:
    """httpd's ap_strcmp_match / ap_strcasecmp_match: ``*`` (any run, "/" too) and ``?``."""
    key = (pattern, fold)
    rx = _MATCHERS.get(key)
    if rx is None:
        if len(_MATCHERS) > 4096:
            _MATCHERS.clear()
        body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        rx = _MATCHERS[key] = re.compile(body + r"\Z", re.S | (re.I if fold else 0))
    return rx.match(text) is not None


def in_httpd_order(items: list[Any]) -> list[Any]:
    """Rule 5: the lines of inner scopes first, each scope's in the order written."""
    groups: list[list[Any]] = []
    last = None
    for item in items:
        if not groups or item.scope != last:
            groups.append([])
            last = item.scope
        groups[-1].append(item)
    return [item for group in reversed(groups) for item in group]


def _flat(value: Any) -> list[Any]:
    out: list[Any] = []
    for item in value or ():
        if isinstance(item, list):
            out.extend(item)
        else:
            out.append(item)
    return out


def find_item(items: list[Item], which: str, path: str, ctype: str | None,
              encoding: str | None, path_only: bool) -> str | None:
    """httpd's find_item over the icon or alt list."""
    special = path.startswith("^")
    for item in items:
        if item.list != which:
            continue
        if item.kind == "path" or special:
            if strmatch(path, item.to):
                return item.data
        elif not path_only:
            if not encoding:
                if item.kind == "type" and ctype and strmatch(ctype, item.to, True):
                    return item.data
            elif item.kind == "encoding" and strmatch(encoding, item.to, True):
                return item.data
    return None


def find_desc(descs: list[Described], path: str) -> str | None:
    name = path.rsplit("/", 1)[-1]
    for d in descs:
        target = path if d.full_path else name
        if d.wildcards:
            if _fnmatch(target, d.pattern):
                return d.description
        elif d.pattern in target:
            return d.description
    return None


def _fnmatch(text: str, pattern: str) -> bool:
    import fnmatch
    return fnmatch.fnmatchcase(text, pattern)


def ignored(patterns: list[Ignore], name: str) -> bool:
    for ig in patterns:
        if ig.pattern is not None and strmatch(name, ig.pattern.rsplit("/", 1)[-1]):
            return True
    return False


def ignore_list(value: Any) -> list[Ignore]:
    """IndexIgnore patterns in effect: after the last IndexIgnoreReset On, its scope's lines
    kept (Rule 5)."""
    items = [i for i in _flat(value) if isinstance(i, Ignore)]
    resets = [i for i in items if i.pattern is None]
    if resets:
        scope = resets[-1].scope
        first = next(n for n, i in enumerate(items) if i.scope == scope)
        items = items[first:]
    return items


# -- sizes, names, sorting --------------------------------------------------------------------

def strfsize(size: int) -> str:
    """apr_strfsize: four characters."""
    if size < 0:
        return "  - "
    if size < 973:
        return f"{size:3d} "
    units = "KMGTPE"
    o = 0
    while True:
        remain = size & 1023
        size >>= 10
        if size >= 973:
            o += 1
            continue
        if size < 9 or (size == 9 and remain < 973):
            remain = (remain * 5 + 256) // 512
            if remain >= 10:
                size, remain = size + 1, 0
            return f"{size}.{remain}{units[o]}"
        if remain >= 512:
            size += 1
        return f"{size:3d}{units[o]}"


def _signed(b: int) -> int:
    return b - 256 if b >= 128 else b


def strnatcmp(a: bytes, b: bytes, fold: bool = False) -> int:
    """apr_strnatcmp / apr_strnatcasecmp (Martin Pool's natural order), chars signed."""
    ai = bi = 0
    la, lb = len(a), len(b)

    def at(s: bytes, i: int) -> int:
        return _signed(s[i]) if i < len(s) else 0

    def digit(c: int) -> bool:
        return 48 <= c <= 57

    while True:
        ca, cb = at(a, ai), at(b, bi)
        while ca in (32, 9, 10, 11, 12, 13):
            ai += 1
            ca = at(a, ai)
        while cb in (32, 9, 10, 11, 12, 13):
            bi += 1
            cb = at(b, bi)
        if digit(ca) and digit(cb):
            fractional = ca == 48 or cb == 48
            i, j = ai, bi
            bias = 0
            while True:
                x, y = at(a, i), at(b, j)
                if not digit(x) and not digit(y):
                    result = 0 if fractional else bias
                    break
                if not digit(x):
                    result = -1
                    break
                if not digit(y):
                    result = 1
                    break
                if x != y:
                    if fractional:
                        result = -1 if x < y else 1
                        break
                    if not bias:
                        bias = -1 if x < y else 1
                i += 1
                j += 1
            if result:
                return result
        if ai >= la and bi >= lb:
            return 0
        if fold:
            ca = ca - 32 if 97 <= ca <= 122 else ca
            cb = cb - 32 if 97 <= cb <= 122 else cb
        if ca < cb:
            return -1
        if ca > cb:
            return 1
        ai += 1
        bi += 1


def _cmp(x: Any, y: Any) -> int:
    return (x > y) - (x < y)


@dataclasses.dataclass
class Ent:
    name: str                 # "x/" for a directory; the parent's full URL path for the parent
    raw: bytes
    icon: str | None = None
    alt: str | None = None
    desc: str | None = None
    size: int = -1
    lm: float = -1
    isdir: bool = False
    parent: bool = False


def sort_key(key: str, ascending: bool, version: bool, fold: bool) -> Any:
    import functools

    def compare(e1: Ent, e2: Ent) -> int:
        if e1.parent:
            return -1
        if e2.parent:
            return 1
        if e1.isdir != e2.isdir:
            return -1 if e1.isdir else 1
        c1, c2 = (e1, e2) if ascending else (e2, e1)
        if key == "M":
            r = _cmp(c1.lm, c2.lm)
            if r:
                return r
        elif key == "S":
            r = _cmp(c1.size, c2.size)
            if r:
                return r
        elif key == "D":
            d1 = (c1.desc or "").encode("utf-8", "surrogateescape")
            d2 = (c2.desc or "").encode("utf-8", "surrogateescape")
            r = strnatcmp(d1, d2) if version else _cmp(d1, d2)
            if r:
                return r
        result = 0
        if version:
            if fold:
                result = strnatcmp(c1.raw, c2.raw, True)
            if not result:
                result = strnatcmp(c1.raw, c2.raw)
        if not result and fold:
            result = _cmp(c1.raw.lower(), c2.raw.lower())
        if not result:
            result = _cmp(c1.raw, c2.raw)
        return result
    return functools.cmp_to_key(compare)


def escape_path(name: str) -> str:
    """ap_os_escape_path: lower-case hex, "/" and ";" kept."""
    raw = name.encode("utf-8", "surrogateescape")
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(raw, safe=_PATH_SAFE))


def html_text(text: str) -> str:
    """ap_escape_html: < > & and the double quote; the bytes of the name as they are."""
    return escape(text, quote=False).replace('"', "&quot;")


# -- the listing --------------------------------------------------------------------------------

@dataclasses.dataclass
class Query:
    key: str
    direction: str
    flags: frozenset[str]
    colargs: str
    pattern: str | None


def parse_query(query: str, key: str, direction: str, flags: frozenset[str]) -> Query:
    """Rule 3: httpd's C=, O=, F=, V=, P= (separated by & or ;); anything else ends it."""
    fval = vval = ppre = epattern = ""
    pattern = None
    q = query
    while q:
        if len(q) >= 3 and q[1] == "=" and (len(q) == 3 or q[3] in "&;") and \
                (q[0] == "C" and q[2] in "NMSD" or q[0] == "O" and q[2] in "AD"
                 or q[0] == "F" and q[2] in "012" or q[0] == "V" and q[2] in "01"):
            c, val = q[0], q[2]
            if c == "C":
                key = val
            elif c == "O":
                direction = val
            elif c == "F":
                if val == "0":
                    flags = flags - {"FancyIndexing", "HTMLTable"}
                elif val == "1":
                    flags = (flags | {"FancyIndexing"}) - {"HTMLTable"}
                else:
                    flags = flags | {"FancyIndexing", "HTMLTable"}
                fval = ";F=" + val
            else:
                flags = flags | {"VersionSort"} if val == "1" else flags - {"VersionSort"}
                vval = ";V=" + val
            q = q[4:] if len(q) > 3 else ""
        elif q.startswith("P="):
            end = len(q)
            for i, ch in enumerate(q[2:], 2):
                if ch in "&;":
                    end = i
                    break
            raw = q[2:end]
            pattern = None
            if raw:
                try:
                    pattern = unquote_to_bytes(raw).decode("utf-8", "surrogateescape")
                    ppre = ";P="
                    epattern = quote(pattern.encode("utf-8", "surrogateescape"), safe="/;:@&=+$,-_.!~*'()")
                except ValueError:
                    pattern = None
            q = q[end + 1:] if end + 1 < len(q) else ""
        else:
            break
    return Query(key, direction, flags, fval + vval + ppre + epattern, pattern)


class AutoindexHandler:
    kind = "inline"

    def __call__(self, ctx: RequestContext) -> Response:
        method = ctx.request.method
        if method not in ("GET", "HEAD"):
            from mpmd.modules.static_files import method_not_allowed
            return method_not_allowed(ctx)
        dirname = ctx.filename or ""
        if not dirname.endswith("/"):
            dirname += "/"
        try:
            names = sorted(os.listdir(dirname))
        except OSError:
            return error(403, ctx)
        return Listing(ctx, dirname).render(names, method == "HEAD")


class Listing:
    """One listing (httpd's index_directory)."""

    def __init__(self, ctx: RequestContext, dirname: str) -> None:
        self.ctx = ctx
        self.dirname = dirname
        dc = ctx.dir_config
        self.dc = dc
        opts = getattr(dc, "index_options", None)
        self.opts = opts if isinstance(opts, IndexOpts) else IndexOpts()
        items = in_httpd_order(_flat(getattr(dc, "index_icons", None)))
        self.items = [i for i in items if isinstance(i, Item)]
        self.descs = in_httpd_order([d for d in _flat(getattr(dc, "index_descriptions", None))
                                     if isinstance(d, Described)])
        self.ignore = ignore_list(getattr(dc, "index_ignore", None))
        self.default_icon = getattr(dc, "default_icon", None)
        self.mime = next((m for m in ctx.server.modules
                          if getattr(m, "name", None) == "mime_module"), None)

    # -- entries --
    def _icon_alt(self, ent: Ent, path: str, ctype: str | None, enc: str | None,
                  is_dir: bool) -> None:
        items = self.items
        if is_dir:
            ent.icon = find_item(items, "icon", path, None, None, True) or \
                find_item(items, "icon", "^^DIRECTORY^^", None, None, True)
            ent.alt = find_item(items, "alt", path, None, None, True) or \
                find_item(items, "alt", "^^DIRECTORY^^", None, None, True) or "DIR"
        else:
            ent.icon = find_item(items, "icon", path, ctype, enc, False)
            ent.alt = find_item(items, "alt", path, ctype, enc, False)

    def parent(self, fancy: bool) -> Ent | None:
        uri = self.ctx.uri_path
        if uri in ("", "/"):
            return None
        parent = uri.rstrip("/").rsplit("/", 1)[0] + "/"
        testpath = self.dirname + ".."
        if ignored(self.ignore, ".."):
            return None
        ent = Ent(parent, parent.encode("utf-8", "surrogateescape"), parent=True)
        if fancy:
            items = self.items
            ent.icon = find_item(items, "icon", testpath, None, None, True) or \
                find_item(items, "icon", "^^DIRECTORY^^", None, None, True)
            ent.alt = find_item(items, "alt", testpath, None, None, True) or \
                find_item(items, "alt", "^^DIRECTORY^^", None, None, True) or "PARENTDIR"
            if ent.alt == "DIR" and not find_item(items, "alt", testpath, None, None, True):
                ent.alt = "PARENTDIR"
            ent.desc = find_desc(self.descs, testpath)
        return ent

    def entry(self, name: str, flags: frozenset[str], pattern: str | None) -> Ent | None:
        if name in (".", ".."):
            return None
        if pattern is not None and not _period_match(name, pattern):
            return None
        if ignored(self.ignore, name):
            return None
        path = self.dirname + name
        try:
            st = os.stat(path)
        except OSError:
            return None
        is_dir = stat_mod.S_ISDIR(st.st_mode)
        if not is_dir and not stat_mod.S_ISREG(st.st_mode):
            return None
        uri = self.ctx.uri_path.rstrip("/") + "/" + name
        dc = self.ctx.server.dir_config(path, uri)
        allowed = self._allowed(path, uri, dc)
        if not allowed and "ShowForbidden" not in flags:
            return None
        ent = Ent(name + ("/" if is_dir else ""), (name + ("/" if is_dir else "")).encode(
            "utf-8", "surrogateescape"))
        if flags & {"FancyIndexing", "HTMLTable"}:
            ent.lm = st.st_mtime
            ctype = enc = None
            if not is_dir and self.mime is not None and allowed:    # httpd's subrequest
                # stops at the refusal, before its type is known: no type, no encoding
                meta = self.mime.meta(self.ctx.server, dc, path)
                ctype, enc = meta.media_type, meta.encoding
                if ctype:
                    ctype = ctype.lower()
            if is_dir:
                ent.isdir = "FoldersFirst" in flags
            else:
                ent.size = st.st_size
            self._icon_alt(ent, path, ctype, enc, is_dir)
            ent.desc = find_desc(self.descs, path)
            if ent.desc is None and "ScanHTMLTitles" in flags and not is_dir \
                    and ctype == "text/html" and not enc:
                ent.desc = scan_title(path)
        return ent

    def _allowed(self, path: str, uri: str, dc: Any) -> bool:
        """Rule 2: the access hooks (Require) for the entry as if it were requested."""
        checks = self.ctx.server.hooks.by_hook.get("access_checker") or ()
        if not checks:
            return True
        sub = dataclasses.replace(self.ctx, filename=path, uri_path=uri, dir_config=dc,
                                  notes={}, env=dict(self.ctx.env))
        for fn in checks:
            try:
                resp = fn(sub)
            except Exception:  # noqa: BLE001 - an entry a module cannot judge is not shown
                return False
            if resp is not None and resp.status >= 400:
                return False
        return True

    # -- the page --
    def render(self, names: list[str], head: bool) -> Response:
        ctx = self.ctx
        opts = self.opts
        ctype = opts.get("type") or "text/html"
        charset = opts.get("charset")
        charset = "ISO-8859-1" if charset is None else charset
        headers = [("Content-Type", f"{ctype};charset={charset}" if charset else ctype)]
        if "TrackModified" in opts.flags:
            try:
                st = os.stat(self.dirname)
                headers.append(("Last-Modified", formatdate(int(st.st_mtime), usegmt=True)))
                headers.append(("ETag", f'"{st.st_size:x}-{st.st_mtime_ns // 1000:x}"'))
            except OSError:
                pass
        if head:
            return Response(200, headers, b"")
        key, direction = getattr(self.dc, "index_order_default", None) or ("N", "A")
        flags = opts.flags
        if "IgnoreClient" in flags:
            query = Query(key, direction, flags | {"SuppressColumnSorting"}, "", None)
        else:
            query = parse_query(ctx.request.query.decode("latin-1"), key, direction, flags)
        flags = query.flags
        fancy = bool(flags & {"FancyIndexing", "HTMLTable"})
        title = html_text(ctx.uri_path.rstrip("/") or "/")
        out: list[str] = []
        xhtml = "XHTML" in flags
        self.emit_head(out, title, "SuppressHTMLPreamble" in flags, xhtml)
        ents = []
        parent = self.parent(fancy)
        if parent is not None:
            parent.lm = -1
            ents.append(parent)
        for name in names:
            ent = self.entry(name, flags, query.pattern)
            if ent is not None:
                ents.append(ent)
        if query.key == "M":
            for ent in ents:
                if ent.lm < 0 and not ent.parent:
                    ent.lm = 0
        ents.sort(key=sort_key(query.key, query.direction == "A", "VersionSort" in flags,
                               "IgnoreCase" in flags))
        self.output(out, ents, flags, query)
        self.emit_tail(out, "SuppressHTMLPreamble" in flags)
        body = "".join(out).encode("utf-8", "surrogateescape")
        return Response(200, headers + [("Content-Length", str(len(body)))], body)

    def emit_preamble(self, out: list[str], title: str, xhtml: bool) -> None:
        out.append((DOCTYPE_XHTML if xhtml else DOCTYPE_HTML)
                   + f" <head>\n  <title>Index of {title}</title>\n")
        sheet = getattr(self.dc, "index_style_sheet", None)
        if sheet is not None:
            out.append(f'  <link rel="stylesheet" href="{sheet}" type="text/css"'
                       + (" />\n" if xhtml else ">\n"))
        insert = getattr(self.dc, "index_head_insert", None)
        if insert is not None:
            out.append(insert)
        out.append(" </head>\n <body>\n")

    def _include(self, name: str | None, header: bool) -> tuple[str, str] | None:
        """Rule 6: ("html" | "text", content) of a HeaderName/ReadmeName, looked up as
        httpd's subrequest: the URL relative to the listing's (Alias, MultiViews, Require and
        the file's type apply), a regular file only; text/html is run through its handler,
        other text/* read and escaped."""
        if not name:
            return None
        ctx = self.ctx
        uri = name if name.startswith("/") else ctx.uri_path.rstrip("/") + "/" + name
        try:
            uri = normalize(uri)
        except BadPath:
            return None
        headers = ctx.request.headers
        if header:                     # httpd asks for text only, and for no encoding
            headers = tuple((k, v) for k, v in headers if k not in (b"accept", b"accept-encoding"))
            headers += ((b"accept", b"text/html, text/plain"),)
        raw = quote(uri.encode("utf-8", "surrogateescape"), safe="/:@!$&'()*+,;=-._~")
        request = dataclasses.replace(ctx.request, method="GET", target=raw.encode(),
                                      path=raw.encode(), query=b"", headers=headers)
        sub = dataclasses.replace(ctx, request=request, uri_path="/", path_info="",
                                  filename=None, handler=None, dir_config=None, notes={},
                                  env=dict(ctx.env))
        try:
            handler = pipeline.prepare(sub)
            if isinstance(handler, Response) or not sub.filename \
                    or not stat_mod.S_ISREG(os.stat(sub.filename).st_mode):
                return None
            ctype = (sub.notes.get("content_type") or "").split(";", 1)[0].strip().lower()
            if ctype == "text/html":
                resp = pipeline.run_handler(sub, handler)
                return ("html", _body_text(resp)) if resp.status == 200 else None
            if ctype.startswith("text/"):
                with open(sub.filename, "rb") as f:
                    data = f.read().decode("utf-8", "surrogateescape")
                return "text", "<pre>\n" + html_text(data) + "</pre>\n"
        except (OSError, ValueError):
            return None
        return None

    def emit_head(self, out: list[str], title: str, suppress: bool, xhtml: bool) -> None:
        found = self._include(getattr(self.dc, "header_name", None), True)
        if found is not None and found[0] == "html":
            if not suppress:
                self.emit_preamble(out, title, xhtml)
            out.append(found[1])
            return
        self.emit_preamble(out, title, xhtml)
        if found is not None:
            out.append(found[1])
            return
        if getattr(self.dc, "index_style_sheet", None) is not None:
            out.append(f'  <h1 id="indextitle">Index of {title}</h1>\n')
        else:
            out.append(f"<h1>Index of {title}</h1>\n")

    def emit_tail(self, out: list[str], suppress: bool) -> None:
        found = self._include(getattr(self.dc, "readme_name", None), False)
        if found is not None:
            out.append(found[1])
        else:
            from mpmd.core import errors
            sign = getattr(errors, "signature", None)        # ServerSignature (httpd's
            sig = sign(self.ctx) if sign is not None else ""  # ap_psignature)
            if sig:
                out.append(f"<address>{sig}</address>\n")
        if not (found is not None and found[0] == "html" and suppress):
            out.append("</body></html>\n")

    def _img(self, src: str, alt: str, xhtml: bool) -> str:
        opts = self.opts
        out = f'<img src="{html_text(src)}" alt="{alt}"'
        if opts.get("icon_width"):
            out += f' width="{opts.get("icon_width")}"'
        if opts.get("icon_height"):
            out += f' height="{opts.get("icon_height")}"'
        return out + (" />" if xhtml else ">")

    def output(self, out: list[str], ents: list[Ent], flags: frozenset[str], q: Query) -> None:
        opts = self.opts
        static = "SuppressColumnSorting" in flags
        xhtml = "XHTML" in flags
        name_mode, name_width = opts.get("name", (_UNSET, DEFAULT_NAME_WIDTH))
        desc_mode, desc_width = opts.get("desc", (_UNSET, DEFAULT_DESC_WIDTH))
        table = "HTMLTable" in flags
        fancy = "FancyIndexing" in flags
        if fancy and not table:
            if name_mode == _ADJUST:
                name_width = max([name_width] + [len(e.raw) for e in ents])
            if desc_mode == _ADJUST:
                desc_width = max([desc_width] + [len(e.desc) for e in ents if e.desc])
        pad = " " * name_width
        icons = "SuppressIcon" not in flags
        blank = find_item(self.items, "icon", "^^BLANKICON^^", None, None, True)

        def link(anchor: str, column: str) -> str:
            if static:
                return anchor
            reverse = q.key == column and q.direction == "A"
            return f'<a href="?C={column};O={"D" if reverse else "A"}{q.colargs}">{anchor}</a>'

        breakrow = ""
        css = getattr(self.dc, "index_style_sheet", None) is not None     # IndexStyleSheet

        def cell(tag: str, name: str, plain: str = "") -> str:
            return f'<{tag} class="indexcol{name}">' if css else f"<{tag}{plain}>"

        if table:
            cols = 1
            out.append('  <table id="indexlist">\n   <tr class="indexhead">' if css
                       else "  <table>\n   <tr>")
            if icons:
                out.append(cell("th", "icon", ' valign="top"'))
                out.append(self._img(blank, "[ICO]", xhtml) + "</th>" if blank else "&nbsp;</th>")
                cols += 1
            out.append(cell("th", "name") + link("Name", "N"))
            if "SuppressLastModified" not in flags:
                out.append("</th>" + cell("th", "lastmod") + link("Last modified", "M"))
                cols += 1
            if "SuppressSize" not in flags:
                out.append("</th>" + cell("th", "size") + link("Size", "S"))
                cols += 1
            if "SuppressDescription" not in flags:
                out.append("</th>" + cell("th", "desc") + link("Description", "D"))
                cols += 1
            if "SuppressRules" not in flags:
                klass = ' class="indexbreakrow"' if css else ""
                breakrow = (f'   <tr{klass}><th colspan="{cols}">'
                            f'<hr{" /" if xhtml else ""}></th></tr>\n')
            out.append("</th></tr>\n" + breakrow)
        elif fancy:
            out.append("<pre>")
            if icons:
                out.append(self._img(blank, "Icon ", xhtml) + " " if blank else "      ")
            out.append(link("Name", "N") + pad[4:] + " ")
            if "SuppressLastModified" not in flags:
                out.append(link("Last modified", "M") + "      ")
            if "SuppressSize" not in flags:
                out.append(link("Size", "S") + "  ")
            if "SuppressDescription" not in flags:
                out.append(link("Description", "D"))
            out.append(f"<hr{' /' if xhtml else ''}>" if "SuppressRules" not in flags else "\n")
        else:
            out.append("<ul>")
        date_format = opts.get("date_format") or "%Y-%m-%d %H:%M"
        for x, ent in enumerate(ents):
            anchor = html_text(escape_path(ent.name))
            shown = "Parent Directory" if ent.parent else ent.name
            if table or fancy:
                cut = shown
                if len(shown.encode("utf-8", "surrogateescape")) > name_width and \
                        (fancy and not table or name_mode != _ADJUST):
                    raw = shown.encode("utf-8", "surrogateescape")[:name_width - 3] + b"..>"
                    cut = raw.decode("utf-8", "surrogateescape")
                width = len(cut.encode("utf-8", "surrogateescape"))
                img = ""
                if icons:
                    if ent.icon or self.default_icon:
                        img = self._img(ent.icon or self.default_icon,
                                        f"[{ent.alt if ent.alt else '   '}]", xhtml)
                    if "IconsAreLinks" in flags:
                        img = f'<a href="{anchor}">{img}</a>'
                date = time.strftime(date_format, time.localtime(ent.lm)) if ent.lm != -1 else None
            if table:
                if not css:
                    out.append("<tr>")
                elif ent.alt and "AddAltClass" in flags:
                    out.append(f'   <tr class="{"odd" if x & 1 else "even"}-{ent.alt.lower()}">')
                else:
                    out.append(f'   <tr class="{"odd" if x & 1 else "even"}">')
                if icons:
                    out.append(cell("td", "icon", ' valign="top"') + f'{img or "&nbsp;"}</td>')
                if name_mode == _ADJUST:
                    out.append(cell("td", "name") + f'<a href="{anchor}">{html_text(shown)}</a>')
                else:
                    out.append(cell("td", "name")
                               + f'<a href="{anchor}">{html_text(cut)}</a>{pad[width:]}')
                if "SuppressLastModified" not in flags:
                    out.append("</td>" + (cell("td", "lastmod", ' align="right"') + f"{date}  "
                                          if date is not None else cell("td", "lastmod")
                                          + "&nbsp;"))
                if "SuppressSize" not in flags:
                    out.append("</td>" + cell("td", "size", ' align="right"') + strfsize(ent.size))
                if "SuppressDescription" not in flags:
                    if ent.desc:
                        text = ent.desc if desc_mode == _ADJUST else \
                            terminate_description(ent.desc, desc_width, desc_mode, flags)
                        out.append("</td>" + cell("td", "desc") + text)
                    else:
                        out.append("</td>" + cell("td", "desc") + "&nbsp;")
                out.append("</td></tr>\n")
            elif fancy:
                if icons:
                    out.append((img if img else "     ") + " ")
                out.append(f'<a href="{anchor}">{html_text(cut)}</a>{pad[width:]} ')
                if "SuppressLastModified" not in flags:
                    out.append(f"{date}  " if date is not None else " " * 19)
                if "SuppressSize" not in flags:
                    out.append(strfsize(ent.size) + "  ")
                if "SuppressDescription" not in flags and ent.desc:
                    out.append(terminate_description(ent.desc, desc_width, desc_mode, flags))
                out.append("\n")
            else:
                out.append(f'<li><a href="{anchor}"> {html_text(shown)}</a></li>\n')
        if table:
            out.append(breakrow + "</table>\n")
        elif fancy:
            out.append(f"<hr{' /' if xhtml else ''}></pre>\n" if "SuppressRules" not in flags
                       else "</pre>\n")
        else:
            out.append("</ul>\n")


def _body_text(resp: Response) -> str:
    """A subrequest's answer as text (its bytes, a file region or chunks)."""
    body = resp.body
    try:
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        elif isinstance(body, FileBody):
            body.file.seek(body.offset)
            data = body.file.read(body.length)
        else:
            data = b"".join(bytes(chunk) for chunk in body)  # type: ignore[union-attr]
    finally:
        close = getattr(body, "close", None)
        if close is not None and not isinstance(body, (bytes, bytearray)):
            close()
        if resp.on_close is not None:
            resp.on_close()
    return data.decode("utf-8", "surrogateescape")


def terminate_description(desc: str, width: int, mode: int, flags: frozenset[str]) -> str:
    """httpd's terminate_description: cut to ``width`` visible characters (tags and
    entities count as none and one), ending with ">"."""
    maxsize = width
    if mode == _UNSET:
        if "SuppressIcon" in flags:
            maxsize += 6
        if "SuppressLastModified" in flags:
            maxsize += 19
        if "SuppressSize" in flags:
            maxsize += 7
    chars = list(desc)
    x = 0
    n = len(chars)
    while x < n and (maxsize > 0 or chars[x] == "<"):
        if chars[x] == "<":
            while x < n and chars[x] != ">":
                x += 1
            if x >= n:
                maxsize = 0
                break
        elif chars[x] == "&":
            maxsize -= 1
            while x < n and chars[x] != ";":
                x += 1
            if x >= n:
                maxsize = 0
                break
        else:
            maxsize -= 1
        x += 1
    if not maxsize and x < n:
        return "".join(chars[:x - 1]) + ">"
    return desc


def _period_match(name: str, pattern: str) -> bool:
    """apr_fnmatch with FNM_PERIOD: a leading "." must be matched by a "." in the pattern."""
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return _fnmatch(name, pattern)


def scan_title(path: str) -> str | None:
    """ScanHTMLTitles: the <title> of the file's first 8 KiB, line breaks as spaces."""
    try:
        with open(path, "rb") as f:
            data = f.read(8191).decode("utf-8", "surrogateescape")
    except OSError:
        return None
    m = re.search(r"<title>", data, re.I)
    if not m:
        return None
    rest = data[m.end():]
    end = rest.find("<")
    if end >= 0:
        rest = rest[:end]
    rest = rest.lstrip("\r\n")
    return rest.replace("\r", " ").replace("\n", " ")


def _stamp(values: Any, scope: int) -> None:
    for item in values if isinstance(values, list) else [values]:
        if isinstance(item, Scoped):
            item.scope = scope


class AutoindexModule(Module):
    name: ClassVar[str] = "autoindex_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_autoindex.c",)
    builtin: ClassVar[bool] = True
    _O = "autoindex_module"
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("IndexOptions", Args.RAW_ARGS, Ctx.ANY, index_options_value, None,
                  "index_options", "How listings look (FancyIndexing, HTMLTable, VersionSort, "
                  "FoldersFirst, NameWidth=*, Charset=...); +/- edit the inherited set.",
                  extra={"combine": combine_options}, owner=_O,
                  syntax="IndexOptions [+|-]option [[+|-]option] ...", override=Override.INDEXES),
        Directive("IndexOrderDefault", Args.TAKE2, Ctx.ANY, order_value, None,
                  "index_order_default", "The listing's order before the client picks one.",
                  syntax="IndexOrderDefault Ascending|Descending Name|Date|Size|Description",
                  owner=_O, override=Override.INDEXES),
        Directive("IndexIgnore", Args.ITERATE, Ctx.ANY, index_ignore_value, [], "index_ignore",
                  "Names (* and ? wildcards) hidden from directory listings.",
                  merge=Merge.APPEND, syntax="IndexIgnore file [file] ...", owner=_O,
                  override=Override.INDEXES),
        Directive("IndexIgnoreReset", Args.FLAG, Ctx.ANY, index_ignore_reset_value, [],
                  "index_ignore", "On: forget the IndexIgnore lines of the scopes around.",
                  merge=Merge.APPEND, syntax="IndexIgnoreReset On|Off", owner=_O,
                  override=Override.INDEXES),
        Directive("AddIcon", Args.RAW_ARGS, Ctx.ANY, _icon_items("path"), [], "index_icons",
                  "Icon (or (ALT,icon)) for names ending so (^^DIRECTORY^^, ^^BLANKICON^^).",
                  merge=Merge.APPEND, syntax="AddIcon icon name [name] ...", owner=_O,
                  override=Override.INDEXES),
        Directive("AddIconByType", Args.RAW_ARGS, Ctx.ANY, _icon_items("type"), [],
                  "index_icons", "Icon (or (ALT,icon)) for files of these media types.",
                  merge=Merge.APPEND, syntax="AddIconByType icon MIME-type [MIME-type] ...",
                  owner=_O, override=Override.INDEXES),
        Directive("AddIconByEncoding", Args.RAW_ARGS, Ctx.ANY, _icon_items("encoding"), [],
                  "index_icons", "Icon (or (ALT,icon)) for files with these encodings.",
                  merge=Merge.APPEND,
                  syntax="AddIconByEncoding icon MIME-encoding [MIME-encoding] ...", owner=_O,
                  override=Override.INDEXES),
        Directive("AddAlt", Args.RAW_ARGS, Ctx.ANY, _alt_items("path"), [], "index_icons",
                  "Alt text of the icon of names ending so.", merge=Merge.APPEND,
                  syntax="AddAlt string file [file] ...", owner=_O, override=Override.INDEXES),
        Directive("AddAltByType", Args.RAW_ARGS, Ctx.ANY, _alt_items("type"), [],
                  "index_icons", "Alt text of the icon of files of these media types.",
                  merge=Merge.APPEND, syntax="AddAltByType string MIME-type [MIME-type] ...",
                  owner=_O, override=Override.INDEXES),
        Directive("AddAltByEncoding", Args.RAW_ARGS, Ctx.ANY, _alt_items("encoding"), [],
                  "index_icons", "Alt text of the icon of files with these encodings.",
                  merge=Merge.APPEND,
                  syntax="AddAltByEncoding string MIME-encoding [MIME-encoding] ...", owner=_O,
                  override=Override.INDEXES),
        Directive("AddDescription", Args.RAW_ARGS, Ctx.ANY, add_description_value, [],
                  "index_descriptions", "Description (HTML) shown for matching names.",
                  merge=Merge.APPEND, syntax="AddDescription string file [file] ...", owner=_O,
                  override=Override.INDEXES),
        Directive("DefaultIcon", Args.TAKE1, Ctx.ANY, v.string, None, "default_icon",
                  "Icon of files no AddIcon* line matches.", syntax="DefaultIcon url-path",
                  owner=_O, override=Override.INDEXES),
        Directive("IndexStyleSheet", Args.TAKE1, Ctx.ANY, v.string, None, "index_style_sheet",
                  "A style sheet for listings (and their classes: indexlist, indexhead, "
                  "indexcolname ...).", syntax="IndexStyleSheet url-path", owner=_O,
                  override=Override.INDEXES),
        Directive("IndexHeadInsert", Args.TAKE1, Ctx.ANY, v.string, None, "index_head_insert",
                  "Markup put in the <head> of listings.",
                  syntax='IndexHeadInsert "markup ..."', owner=_O, override=Override.INDEXES),
        Directive("HeaderName", Args.TAKE1, Ctx.ANY, v.string, None, "header_name",
                  "File put at the top of a listing (text/html as is, text/* in <pre>).",
                  syntax="HeaderName filename", owner=_O, override=Override.INDEXES),
        Directive("ReadmeName", Args.TAKE1, Ctx.ANY, v.string, None, "readme_name",
                  "File put at the end of a listing (text/html as is, text/* in <pre>).",
                  syntax="ReadmeName filename", owner=_O, override=Override.INDEXES),
    ]

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {"autoindex": AutoindexHandler()}

    def check_config(self, cfg: Any) -> list[Any]:
        """Rule 5: stamp each line's value with its scope."""
        fields = {"index_options", "index_ignore", "index_icons", "index_descriptions"}
        todo = list(getattr(cfg, "sections", None) or ())
        while todo:
            section = todo.pop()
            for op in section.ops:
                if op.directive.field in fields:
                    _stamp(op.value, id(section))
            todo.extend(section.sections)
        return []
