"""mod_rewrite's configuration: the Rewrite* lines parsed, compiled and merged as httpd's
mod_rewrite merges them (its config_server_merge and config_perdir_merge).

Theory: every Rewrite* line of one scope (the server, a <VirtualHost>, a <Directory>, a
.htaccess file) shares the config field ``rewrite``; the loader groups one scope's lines into
one op (``extra["group"]``) after ``bind`` has tagged each with the scope it was written in,
and ``merge`` folds that op over the inherited value, as httpd merges one module config over
another.  The value is a ``RewriteConf``: the server part (``Scope`` for translate_name) and
the per-directory part (``Scope`` for fixups), each with its own rules.

Rule 1: a RewriteCond belongs to the next RewriteRule of its scope; conditions after the last
        rule of a scope belong to none (httpd drops them too).
Rule 2: per-directory merge (a deeper <Directory> over a shallower one): the engine state,
        options and RewriteBase are inherited unless set; the rules are the deeper scope's
        alone, unless its options say Inherit (its own first, then the parent's) or
        InheritBefore (the parent's first).  The prefix stripped from the file name is the
        deepest scope's directory, for inherited rules too (httpd's ``a->directory``).
Rule 3: server merge (a <VirtualHost> over the main server): the same, with the maps (Inherit
        and InheritBefore bring the main server's maps).  A vhost without any Rewrite line is
        merged over the main server at first use (``for_vhost``).
Rule 4: a server-level RewriteEngine or RewriteOptions also sets the per-directory defaults
        (httpd's cmd_rewriteengine sets both), so a <Directory> with rules and no
        RewriteEngine line of its own is on when the server level is.
Rule 5: what mpmd does not implement is refused at load with the line: the P (proxy) and CO
        (cookie) flags, -U conditions, RewriteOptions other than Inherit, InheritBefore,
        InheritDown, InheritDownBefore, IgnoreInherit and AllowNoSlash, prg/dbm/dbd maps,
        and Rewrite* lines in <Location>, <Files>, <DirectoryMatch> and <If> sections (httpd
        documents those as unsupported).
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote

from mpmd.config.values import Worded

# RewriteOptions words -> option names
OPTIONS = {"inherit": "Inherit", "inheritbefore": "InheritBefore", "inheritdown": "InheritDown",
           "inheritdownbefore": "InheritDownBefore", "ignoreinherit": "IgnoreInherit",
           "allownoslash": "AllowNoSlash"}
REFUSED_OPTIONS = ("AllowAnyURI", "MergeBase", "IgnoreContextInfo", "LegacyPrefixDocRoot",
                   "LongURLOptimization", "UnsafePrefixStat")
REDIRECT_WORDS = {"permanent": 301, "temp": 302, "seeother": 303}
HTTP_STATUSES = frozenset({100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
                           300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405,
                           406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421,
                           422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504,
                           505, 506, 507, 508, 510, 511})
SERVER_KINDS = ("VirtualHost",)
REFUSED_SECTIONS = ("Location", "LocationMatch", "Files", "FilesMatch", "DirectoryMatch", "If",
                    "ElseIf", "Else")


# -- parsing ------------------------------------------------------------------------------------

def split_args(text: str) -> list[str]:
    """httpd's parseargline: up to three words, each optionally quoted, "\\ " kept in a word."""
    out: list[str] = []
    i, n = 0, len(text)
    while len(out) < 3:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        quote = text[i] if text[i] in "\"'" else ""
        if quote:
            i += 1
        start = i
        while i < n:
            c = text[i]
            if (c.isspace() and not quote) or (quote and c == quote):
                break
            if c == "\\" and i + 1 < n and text[i + 1].isspace():
                i += 2
                continue
            i += 1
        out.append(text[start:i])
        i += 1
    return out


def _raw(args: list[str]) -> str:
    # The loader splits words already (quotes removed); put them back as one line for
    # parseargline, quoting a word with spaces.
    return " ".join(f'"{a}"' if (not a or any(c.isspace() for c in a)) and '"' not in a else a
                    for a in args)


def _flag_items(text: str, directive: str) -> list[tuple[str, str | None]]:
    if not (text.startswith("[") and text.endswith("]")):
        raise Worded(f"{directive}: bad flag delimiters")
    items = []
    for word in text[1:-1].split(","):
        word = word.strip()
        if not word:
            continue
        key, eq, val = word.partition("=")
        items.append((key.strip(), val if eq else None))
    return items


@dataclass(frozen=True)
class Cond:
    text: str                    # the line as written, for traces
    input: str
    kind: str                    # "regex", "expr", "-f" ... "=", "<", "-eq" ...
    pattern: str
    regex: re.Pattern[str] | None = None
    expr: Any = None
    negate: bool = False
    nocase: bool = False
    ornext: bool = False
    novary: bool = False


def _compile(pattern: str, nocase: bool, directive: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE if nocase else 0)
    except re.error:
        raise Worded(f"{directive}: cannot compile regular expression '{pattern}'") from None


def parse_cond(args: list[str]) -> Cond:
    words = split_args(_raw(args))
    if len(words) < 2:
        raise Worded(f"RewriteCond: bad argument line '{_raw(args)}'")
    test, pattern = words[0], words[1]
    nocase = ornext = novary = False
    if len(words) > 2 and words[2]:
        for key, _ in _flag_items(words[2], "RewriteCond"):
            k = key.lower()
            if k in ("nocase", "nc"):
                nocase = True
            elif k in ("ornext", "or"):
                ornext = True
            elif k in ("novary", "nv"):
                novary = True
            else:
                raise Worded(f"RewriteCond: unknown flag '{key}'")
    negate = pattern.startswith("!")
    if negate:
        pattern = pattern[1:]
    kind = "regex"
    if test.lower() == "expr":
        kind = "expr"
    elif len(pattern) == 2 and pattern[0] == "-" and pattern[1] in "fsdxhLlUF":
        kind = {"h": "-l", "L": "-l"}.get(pattern[1], pattern)
        pattern = ""
    elif len(pattern) >= 3 and pattern[0] == "-" and pattern[1:3] in ("lt", "le", "gt", "ge",
                                                                     "eq", "ne"):
        kind, pattern = "-" + pattern[1:3], pattern[3:]
        if kind == "-ne":
            kind, negate = "-eq", not negate
    elif len(pattern) >= 2 and pattern[0] in "<>=":
        if pattern[:2] in ("<=", ">="):
            kind, pattern = pattern[:2], pattern[2:]
        else:
            kind, pattern = pattern[0], pattern[1:]
            if kind == "=" and pattern == '""':
                pattern = ""
    if kind == "-U":
        raise Worded("RewriteCond: the -U test (a subrequest for a URL) is not supported by "
                     "mpmd; test the file with -f or -d")
    if kind == "-F":
        kind = "-f"              # mpmd makes no subrequest: an existing regular file
    if nocase and kind not in ("regex", "<", ">", "<=", ">=", "="):
        nocase = False           # httpd warns and ignores NC on a file or integer test
    regex = expr = None
    if kind == "regex":
        regex = _compile(pattern, nocase, "RewriteCond")
    elif kind == "expr":
        from mpmd.core.expr import ExprError, compile_expr
        try:
            expr = compile_expr(pattern)
        except ExprError as exc:
            raise Worded(f'RewriteCond: cannot compile expression "{pattern}": {exc}') from None
    return Cond(" ".join(args), test, kind, pattern, regex, expr, negate, nocase, ornext, novary)


@dataclass(frozen=True)
class Rule:
    text: str
    pattern: str
    regex: re.Pattern[str]
    output: str
    negate: bool = False
    nosub: bool = False          # substitution "-"
    last: bool = False
    end: bool = False
    chain: bool = False
    next: bool = False
    skip: int = 0
    redirect: int = 0            # R: the status (302 default)
    status: int = 0              # F, G, R=4xx/5xx: answer this status
    qsa: bool = False
    qsd: bool = False
    qsl: bool = False
    noescape: bool = False
    passthrough: bool = False
    nosubreq: bool = False
    backref_escape: bool = False
    backref_chars: str | None = None
    backref_noplus: bool = False
    discard_path: bool = False
    mime: str | None = None
    handler: str | None = None
    env: tuple[str, ...] = ()
    unsafe_prefix_stat: bool = False
    unsafe_allow_3f: bool = False
    conds: tuple[Cond, ...] = ()
    starts_with_ref: bool = False  # substitution's first segment is a back-reference

    @property
    def reads_query(self) -> bool:
        return "?" in self.output or self.qsd


_FLAG_UNSUPPORTED = {
    "p": "the P (proxy) flag is not offered (use ProxyPass)",
    "proxy": "the P (proxy) flag is not offered (use ProxyPass)",
    "co": "the CO (cookie) flag is not supported by mpmd; set the cookie with Header",
    "cookie": "the CO (cookie) flag is not supported by mpmd; set the cookie with Header",
}


def _rule_flags(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    env: list[str] = []
    for key, val in _flag_items(text, "RewriteRule"):
        k = key.lower()
        if k in _FLAG_UNSUPPORTED:
            raise Worded("RewriteRule: " + _FLAG_UNSUPPORTED[k])
        if k in ("b", "backrefescaping"):
            out["backref_escape"] = True
            if val:
                out["backref_chars"] = val
        elif k == "bnp" or k == "backrefnoplus":
            out["backref_noplus"] = True
        elif k in ("c", "chain"):
            out["chain"] = True
        elif k in ("d", "dpi", "discardpath"):
            out["discard_path"] = True
        elif k in ("e", "env"):
            env.append(val or "")
        elif k == "end":
            out["end"] = True
        elif k in ("f", "forbidden"):
            out["status"] = 403
        elif k in ("g", "gone"):
            out["status"] = 410
        elif k in ("h", "handler"):
            out["handler"] = val or ""
        elif k in ("l", "last"):
            out["last"] = True
        elif k in ("ne", "noescape"):
            out["noescape"] = True
        elif k in ("n", "next"):
            out["next"] = True
        elif k in ("ns", "nosubreq"):
            out["nosubreq"] = True
        elif k in ("nc", "nocase"):
            out["nocase"] = True
        elif k in ("pt", "passthrough"):
            out["passthrough"] = True
        elif k in ("qsa", "qsappend"):
            out["qsa"] = True
        elif k in ("qsd", "qsdiscard"):
            out["qsd"] = True
        elif k in ("qsl", "qslast"):
            out["qsl"] = True
        elif k in ("r", "redirect"):
            status = 302
            if val:
                if val.lower() in REDIRECT_WORDS:
                    status = REDIRECT_WORDS[val.lower()]
                elif val[0].isdigit():
                    status = int(re.match(r"\d+", val).group())
                    if status not in HTTP_STATUSES:
                        raise Worded(f"RewriteRule: invalid HTTP response code '{val}' for flag 'R'")
                    if not 300 <= status < 400:
                        out["status"] = status
            out["redirect"] = status
        elif k in ("s", "skip"):
            out["skip"] = int(val or "0") if (val or "0").isdigit() else 0
        elif k in ("t", "type"):
            out["mime"] = val or ""
        elif k == "unsafeprefixstat":
            out["unsafe_prefix_stat"] = True
        elif k == "unsafeallow3f":
            out["unsafe_allow_3f"] = True
        else:
            raise Worded(f"RewriteRule: unknown flag '{key}'")
    if env:
        out["env"] = tuple(env)
    return out


def parse_rule(args: list[str]) -> Rule:
    words = split_args(_raw(args))
    if len(words) < 2:
        raise Worded(f"RewriteRule: bad argument line '{_raw(args)}'")
    pattern, output = words[0], words[1]
    flags = _rule_flags(words[2]) if len(words) > 2 and words[2] else {}
    nocase = flags.pop("nocase", False)
    negate = pattern.startswith("!")
    if negate:
        pattern = pattern[1:]
    regex = _compile(pattern, nocase, "RewriteRule")
    nosub = output == "-" or bool(flags.get("status"))
    # httpd 2.4.60: a server-context result whose first segment is a back-reference
    # (/$1, %1) is never taken as a file system path without UnsafePrefixStat
    first = output[1:3] if output.startswith("/") else output[:2]
    starts_ref = len(first) == 2 and first[0] in "$%" and first[1].isdigit()
    return Rule(" ".join(args), pattern, regex, output, negate=negate, nosub=nosub,
                starts_with_ref=starts_ref, **flags)


# -- maps -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Map:
    name: str
    kind: str                    # "txt", "rnd", "int"
    source: str                  # file, or the function name

    def lookup(self, key: str) -> str | None:
        if self.kind == "int":
            return INTERNAL_MAPS[self.source](key)
        value = _txt_lookup(self.source, key)
        if value is not None and self.kind == "rnd" and "|" in value:
            value = random.choice(value.split("|"))
        return value


def _escape_map(key: str) -> str:
    from mpmd.modules.rewrite_engine import escape_uri
    return escape_uri(key)


INTERNAL_MAPS = {"toupper": str.upper, "tolower": str.lower, "escape": _escape_map,
                 "unescape": lambda key: unquote(key, errors="surrogateescape")}

# file -> (mtime, {key: value}): a txt map is read again when its file changes (httpd caches
# by mtime too).
_txt_cache: dict[str, tuple[float, dict[str, str]]] = {}


def _txt_lookup(path: str, key: str) -> str | None:
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return None
    hit = _txt_cache.get(path)
    if hit is None or hit[0] != mtime:
        table: dict[str, str] = {}
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                for line in fh:
                    if not line or line[0] == "#" or line[0].isspace():
                        continue
                    words = line.split()
                    if len(words) >= 2 and words[0] not in table:
                        table[words[0]] = words[1]
        except OSError:
            return None
        hit = _txt_cache[path] = (mtime, table)
    return hit[1].get(key)


def parse_map(args: list[str]) -> Map:
    name, spec = args
    lower = spec.lower()
    for prefix in ("prg:", "dbm", "dbd:", "fastdbd:"):
        if lower.startswith(prefix):
            raise Worded(f"RewriteMap: map type {prefix.rstrip(':')} (in '{spec}') is not "
                         "supported by mpmd; use txt:, rnd: or int:")
    if lower.startswith("int:"):
        func = spec[4:]
        if func not in INTERNAL_MAPS:
            raise Worded(f"RewriteMap: internal map not found:{func}")
        return Map(name, "int", func)
    kind, path = ("rnd", spec[4:]) if lower.startswith("rnd:") else \
        ("txt", spec[4:] if lower.startswith("txt:") else spec)
    return Map(name, kind, path)


# -- scopes and merging ----------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    """One Rewrite* line, tagged with its scope by ``bind``."""

    what: str                    # "engine", "options", "base", "cond", "rule"
    value: Any
    scope: str = "server"        # "server", "vhost", "dir"
    directory: str | None = None
    owner: int = 0               # id of its <VirtualHost> section (0: main server)


@dataclass(frozen=True)
class Scope:
    engine: bool = False
    engine_set: bool = False
    options: frozenset[str] = frozenset()
    options_set: bool = False
    base: str | None = None
    base_set: bool = False
    rules: tuple[Rule, ...] = ()
    directory: str | None = None
    owner: int = 0
    maps: tuple[Map, ...] = ()

    def map(self, name: str) -> Map | None:
        for m in self.maps:
            if m.name == name:
                return m
        return None


@dataclass(frozen=True)
class RewriteConf:
    server: Scope | None = None
    dir: Scope | None = None


def _scope_of(items: tuple[Item, ...]) -> Scope:
    scope = Scope(directory=items[0].directory, owner=items[0].owner)
    conds: list[Cond] = []
    rules: list[Rule] = []
    for item in items:
        if item.what == "engine":
            scope = replace(scope, engine=item.value, engine_set=True)
        elif item.what == "options":
            scope = replace(scope, options=scope.options | item.value, options_set=True)
        elif item.what == "base":
            scope = replace(scope, base=item.value, base_set=True)
        elif item.what == "cond":
            conds.append(item.value)
        elif item.what == "rule":
            rules.append(replace(item.value, conds=tuple(conds)))
            conds = []                                     # Rule 1
    return replace(scope, rules=tuple(rules))


def merge_scopes(base: Scope, over: Scope, server: bool) -> Scope:
    """httpd's config_perdir_merge / config_server_merge (Rules 2 and 3)."""
    options = over.options if over.options_set else base.options
    if server and not over.options_set and ({"InheritDown", "InheritDownBefore"} & base.options):
        options = options | ({"Inherit"} if "InheritDown" in base.options else {"InheritBefore"})
    if server and "IgnoreInherit" in over.options:
        options = options - {"Inherit", "InheritBefore"}
    if "Inherit" in options:
        rules, maps = over.rules + base.rules, over.maps + base.maps
    elif "InheritBefore" in options:
        rules, maps = base.rules + over.rules, base.maps + over.maps
    else:
        rules, maps = over.rules, over.maps
    return Scope(engine=over.engine if over.engine_set else base.engine,
                 engine_set=over.engine_set or base.engine_set,
                 options=options, options_set=over.options_set or base.options_set,
                 base=over.base if over.base_set else base.base,
                 base_set=over.base_set or base.base_set,
                 rules=rules, directory=over.directory, owner=over.owner,
                 maps=maps if server else ())


def merge(inherited: RewriteConf | None, items: tuple[Item, ...]) -> RewriteConf:
    """The config field's ``combine``: one scope's lines over what it inherits."""
    conf = inherited or RewriteConf()
    if not items:
        return conf
    own = _scope_of(items)
    if items[0].scope == "dir":
        base = conf.dir or Scope()
        return replace(conf, dir=merge_scopes(base, own, server=False))
    if items[0].scope == "vhost":
        srv = merge_scopes(conf.server or Scope(), own, server=True)
    else:
        srv = own
    # Rule 4: the server level's RewriteEngine/RewriteOptions are the per-dir defaults too.
    d = conf.dir or Scope()
    d = replace(d, engine=srv.engine if own.engine_set else d.engine,
                engine_set=own.engine_set or d.engine_set,
                options=srv.options if own.options_set else d.options,
                options_set=own.options_set or d.options_set)
    return RewriteConf(srv, d)


def with_maps(scope: Scope, maps: list[Any], owner: int) -> Scope:
    """The scope's RewriteMap entries: its own server's, then (Inherit) the main server's."""
    own = tuple(m.value for m in maps if m.owner == owner)
    if owner and {"Inherit", "InheritBefore"} & scope.options:
        main = tuple(m.value for m in maps if m.owner == 0)
        own = own + main if "Inherit" in scope.options else main + own
    return replace(scope, maps=own)


def bind(value: Any, section: Any) -> Item:
    """The loader's ``extra["bind"]``: tag a line with the scope it was written in."""
    what, payload = value
    if section is None:
        return Item(what, payload, "server")
    if section.kind in SERVER_KINDS:
        return Item(what, payload, "vhost", owner=id(section))
    if section.kind in REFUSED_SECTIONS or section.regex is not None:
        raise ValueError(f"not supported in <{section.kind}> by mpmd (httpd documents rewrite "
                         "rules there as unsupported); use <Directory> or the server level")
    if what == "options" and payload - {"Inherit", "InheritBefore", "AllowNoSlash"}:
        raise ValueError("InheritDown, InheritDownBefore and IgnoreInherit are server options")
    directory = section.arg if section.arg.endswith("/") else section.arg + "/"
    return Item(what, payload, "dir", directory)


def bind_map(value: Map, section: Any) -> Item:
    return Item("map", value, owner=id(section) if section is not None else 0)


def bind_base(value: Any, section: Any) -> Item:
    if section is None or section.kind in SERVER_KINDS:
        raise ValueError("only valid in per-directory config files")
    return bind(value, section)


def engine_value(args: list[str]) -> tuple[str, bool]:
    word = args[0].lower()
    if word not in ("on", "off"):
        raise Worded("RewriteEngine must be On or Off")
    return ("engine", word == "on")


def options_value(args: list[str]) -> tuple[str, frozenset[str]]:
    out = set()
    for word in args:
        name = OPTIONS.get(word.lower())
        if name is None:
            if word.lower().startswith("maxredirects="):
                continue                              # httpd: removed, ignored with a warning
            known = {o.lower(): o for o in REFUSED_OPTIONS}
            if word.lower() in known:
                raise Worded(f"RewriteOptions: option '{known[word.lower()]}' is not supported "
                             "by mpmd")
            raise Worded(f"RewriteOptions: unknown option '{word}'")
        out.add(name)
    return ("options", frozenset(out))


def base_value(args: list[str]) -> tuple[str, str]:
    url = args[0]
    if not url:
        raise Worded("RewriteBase: empty URL not allowed")
    if not url.startswith("/"):
        raise Worded("RewriteBase: argument is not a valid URL")
    return ("base", url)


def cond_value(args: list[str]) -> tuple[str, Cond]:
    return ("cond", parse_cond(args))


def rule_value(args: list[str]) -> tuple[str, Rule]:
    return ("rule", parse_rule(args))


