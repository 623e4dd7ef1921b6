"""mod_rewrite's engine: a rule list applied to one request, as httpd's apply_rewrite_list.

Theory: ``Run`` carries what httpd keeps in r->filename, r->args, r->path_info and the rewrite
context: the back-references of the last matched rule pattern ($N) and of the last matched
regex condition (%N), and whether anything read went beyond the path (then the outcome is not
route-cacheable).

Rule 1: per directory, the pattern sees the file name (plus path info) with the directory's
        prefix stripped; a relative substitution gets the prefix back (httpd's "add per-dir
        prefix").
Rule 2: expansion order as httpd's do_expand: "\\x" is x, %{VAR}, ${map:key|default} (key and
        default expanded first), $N and %N; any other "$" or "%" is itself.  With B the
        back-references are escaped (everything but letters, digits and "_"; space as "+"
        unless BNP, or only the characters B= lists).
Rule 3: a "?" in the substitution sets the query (QSA appends the old one, QSD drops it, an
        empty one is none); an absolute URL is a redirect, reduced to a path when it names this
        server and the rule has no R.
Rule 4: conditions: a chain of [OR] ones holds when one of them does; %N refers to the last
        regex condition that matched (not negated).  -f/-s/-d/-x/-l test the file system, the
        string comparisons are byte order, -lt/-eq... compare integers (atoi).
Rule 5: N starts the list again, at most ``MAX_ROUNDS`` times (httpd's 32000) before a 500.
"""

from __future__ import annotations

import os
import re
import stat
import time
from typing import Any

from mpmd.core.errors import host_and_port
from mpmd.modules.rewrite_rules import Cond, Rule, Scope

MAX_ROUNDS = 32000
NORMAL, NOESCAPE, STATUS = 1, 2, 4
_PATH_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                       b"$-_.+!*'(),:@&=/~")
_ABSOLUTE = re.compile(r"(?i)(ajp|balancer|fcgi|ftp|gopher|https?|h2c?|ldap|nntp|scgi|uwsgi|wss?)"
                       r"://|(mailto|news):|unix:")
API_VERSION = "20120211:140"
_FILE_TESTS = frozenset({"-f", "-s", "-d", "-x", "-l"})
_HEADER_VARS = {"HTTP_HOST": "Host", "HTTP_USER_AGENT": "User-Agent", "HTTP_REFERER": "Referer",
                "HTTP_COOKIE": "Cookie", "HTTP_ACCEPT": "Accept", "HTTP_FORWARDED": "Forwarded",
                "HTTP_PROXY_CONNECTION": "Proxy-Connection"}          # httpd 2.4's module magic number, as its API_VERSION


def escape_uri(text: str) -> str:
    """httpd's ap_escape_uri: what is not safe in a path as %xx, lower-case hex (its c2x)."""
    raw = text.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if b in _PATH_SAFE else f"%{b:02x}" for b in raw)


def _escape_backref(text: str, chars: str | None, noplus: bool) -> str:
    raw = text.encode("utf-8", "surrogateescape")
    out = []
    for b in raw:
        c = chr(b)
        keep = (c not in chars) if chars is not None else (c.isascii() and (c.isalnum() or c == "_"))
        if keep:
            out.append(c)
        elif c == " " and not noplus:
            out.append("+")
        else:
            out.append(f"%{b:02x}")
    return "".join(out)


def absolute_skip(uri: str) -> tuple[int, bool]:
    """(length of "scheme://" or 0, whether a query may be split off: not for mailto/news)."""
    m = _ABSOLUTE.match(uri)
    if m is None:
        return 0, True
    return m.end(), m.group(2) is None


def escape_absolute_uri(uri: str, skip: int) -> str:
    """httpd's escape_absolute_uri: the path after scheme://host/ escaped."""
    if uri[skip - 1:skip] != "/":
        return uri
    slash = uri.find("/", skip)
    if slash < 0 or slash + 1 >= len(uri):
        return uri
    return uri[:slash + 1] + escape_uri(uri[slash + 1:])


class Run:
    """One application of mod_rewrite to a request (httpd's rewrite_ctx and request_rec)."""

    def __init__(self, ctx: Any, scope: Scope, perdir: str | None, trace: Any,
                 maps: Scope | None = None) -> None:
        self.ctx = ctx
        self.scope = maps or scope              # where ${map:...} is looked up
        self.perdir = perdir
        self.filename = ""
        query = ctx.request.query
        self.args: str | None = query.decode("latin-1") if query else None
        self.path_info = ctx.path_info or ""
        self.status = 0
        self.rr: tuple[str, Any] | None = None
        self.rc: tuple[str, Any] | None = None
        self.volatile = False
        self.file_tests: list[tuple[str, str, bool]] = []     # (test, path, result): mod_rewrite Rule 5
        self.headers_read: list[tuple[bytes, list[bytes]]] = []   # (name, values): Rule 5 too
        self.query_changed = False
        self.no_prefix_stat = False
        self.mime: str | None = None
        self.handler: str | None = None
        self.end = False
        self.uri = ""
        self.trace = trace
        self.vary: list[str] = []
        self._vary_mark = 0

    # -- variables -------------------------------------------------------------------------------
    def header(self, name: str) -> str:
        key = name.lower().encode("latin-1")
        values = self.ctx.request.header_values(key)
        self.headers_read.append((key, values))
        if values and name.lower() not in [v.lower() for v in self.vary]:
            self.vary.append(name)
        return ", ".join(v.decode("latin-1") for v in values)

    def server_name(self) -> str:
        host, _ = host_and_port(self.ctx.host())
        server = self.ctx.server
        if host and str(getattr(server, "use_canonical_name", "Off")).lower() != "on":
            return host
        name = getattr(server, "server_name", None) or host or "localhost"
        return host_and_port(str(name))[0]

    def server_port(self) -> int:
        ctx = self.ctx
        _, port = host_and_port(ctx.host())
        if port is not None and str(getattr(ctx.server, "use_canonical_name", "Off")).lower() != "on":
            return port
        _, port = host_and_port(str(getattr(ctx.server, "server_name", "") or ""))
        if port is not None:
            return port
        return 443 if ctx.conn.scheme == "https" else 80

    def self_url(self) -> str:
        """scheme://name[:port] of this request (httpd's fully_qualify_uri prefix)."""
        scheme = self.ctx.conn.scheme
        port = self.server_port()
        shown = "" if port == (443 if scheme == "https" else 80) else f":{port}"
        return f"{scheme}://{self.server_name()}{shown}"

    def variable(self, name: str) -> str:
        ctx = self.ctx
        upper = name.upper()
        if len(name) > 4 and name[3] == ":" and upper.startswith("ENV"):
            self.volatile = True
            key = name[4:]
            note = ctx.notes.get(key)
            if isinstance(note, str):
                return note
            return ctx.env.get(key, os.environ.get(key, ""))
        if len(name) > 5 and name[4] == ":":
            if upper.startswith("HTTP"):
                return self.header(name[5:])
            if upper.startswith("SSL"):
                return ""
            return ""
        if upper.startswith("TIME"):
            self.volatile = True
            t = time.localtime()
            return {"TIME": time.strftime("%Y%m%d%H%M%S", t), "TIME_YEAR": f"{t.tm_year:04d}",
                    "TIME_MON": f"{t.tm_mon:02d}", "TIME_DAY": f"{t.tm_mday:02d}",
                    "TIME_HOUR": f"{t.tm_hour:02d}", "TIME_MIN": f"{t.tm_min:02d}",
                    "TIME_SEC": f"{t.tm_sec:02d}",
                    "TIME_WDAY": str((t.tm_wday + 1) % 7)}.get(upper, "")
        request = ctx.request
        if upper in _HEADER_VARS:
            return self.header(_HEADER_VARS[upper])
        if upper == "REQUEST_URI":
            return ctx.uri_path
        if upper in ("REQUEST_FILENAME", "SCRIPT_FILENAME"):
            return self.filename
        if upper == "QUERY_STRING":
            self.volatile = True
            return self.args or ""
        if upper == "REQUEST_METHOD":
            return request.method
        if upper == "THE_REQUEST":
            self.volatile = True
            return f"{request.method} {request.target.decode('latin-1')} HTTP/{request.http_version}"
        if upper in ("REMOTE_ADDR", "REMOTE_HOST"):
            self.volatile = True
            return ctx.useragent_addr()[0]
        if upper == "REMOTE_PORT":
            self.volatile = True
            return str(ctx.useragent_addr()[1])
        if upper == "HTTPS":
            return "on" if ctx.conn.scheme == "https" else "off"
        if upper == "REQUEST_SCHEME":
            return ctx.conn.scheme
        if upper == "SERVER_NAME":
            self.volatile = True
            return self.server_name()
        if upper == "SERVER_PORT":
            self.volatile = True
            return str(self.server_port())
        if upper == "SERVER_ADDR":
            self.volatile = True
            return ctx.conn.server_addr[0]
        if upper == "SERVER_PROTOCOL":
            self.volatile = True
            return f"HTTP/{request.http_version}"
        if upper == "SERVER_ADMIN":
            return str(getattr(ctx.server, "server_admin", "") or "")
        if upper == "SERVER_SOFTWARE":
            from mpmd.core.errors import server_tokens_header
            return server_tokens_header(str(getattr(ctx.server, "server_tokens", "Full") or "Full"))
        if upper == "DOCUMENT_ROOT":
            return str(getattr(ctx.server, "document_root", "") or "")
        if upper == "PATH_INFO":
            return self.path_info
        if upper == "IS_SUBREQ":
            return "false"
        if upper == "API_VERSION":
            return API_VERSION
        if upper == "IPV6":
            self.volatile = True
            return "on" if ":" in ctx.useragent_addr()[0] else "off"
        if upper in ("REMOTE_USER", "AUTH_TYPE", "REMOTE_IDENT"):
            self.volatile = True
            return ctx.env.get(upper, "") if upper != "REMOTE_IDENT" else ""
        if upper in ("CONTEXT_PREFIX", "CONTEXT_DOCUMENT_ROOT"):
            return "" if upper == "CONTEXT_PREFIX" else str(getattr(ctx.server, "document_root", "") or "")
        return ""

    # -- expansion (Rule 2) ---------------------------------------------------------------------
    def expand(self, text: str, rule: Rule | None = None) -> str:
        if "\\" not in text and "$" not in text and "%" not in text:
            return text
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c == "\\":
                if i + 1 < n:
                    out.append(text[i + 1])
                    i += 2
                else:
                    out.append(c)
                    i += 1
                continue
            if c in "$%" and i + 1 < n and text[i + 1] == "{":
                close = _closing_curly(text, i + 2)
                if close >= 0:
                    inner = text[i + 2:close]
                    if c == "%":
                        out.append(self.variable(inner))
                        i = close + 1
                        continue
                    colon = _in_curlies(inner, ":")
                    if colon >= 0:
                        out.append(self.map_lookup(inner, colon))
                        i = close + 1
                        continue
            if c in "$%" and i + 1 < n and text[i + 1].isdigit():
                ref = self.rr if c == "$" else self.rc
                k = int(text[i + 1])
                if ref is not None:
                    source, m = ref
                    try:
                        value = m.group(k)
                    except (IndexError, re.error):
                        value = None
                    if value:
                        if rule is not None and rule.backref_escape:
                            value = _escape_backref(value, rule.backref_chars, rule.backref_noplus)
                        out.append(value)
                i += 2
                continue
            out.append(c)
            i += 1
        return "".join(out)

    def map_lookup(self, inner: str, colon: int) -> str:
        name = inner[:colon]
        rest = inner[colon + 1:]
        bar = _in_curlies(rest, "|")
        key = self.expand(rest if bar < 0 else rest[:bar])
        default = "" if bar < 0 else self.expand(rest[bar + 1:])
        found = self.scope.map(name)
        if found is None:
            return default
        if found.kind == "rnd":
            self.volatile = True
        value = found.lookup(key)
        if self.trace:
            self.trace(5, f"map lookup {'OK' if value is not None else 'FAILED'}: map={name} "
                          f"key={key}" + (f" -> val={value}" if value is not None else ""))
        return default if value is None else value

    # -- conditions (Rule 4) --------------------------------------------------------------------
    def cond(self, c: Cond) -> bool:
        kind = c.kind
        if kind == "expr":
            self.volatile = True
            try:
                rc = bool(c.expr.evaluate(self.ctx))
            except Exception:  # noqa: BLE001 - httpd: an evaluation error is a non-match
                rc = False
            return rc != c.negate
        value = self.expand(c.input)
        if c.novary:
            self.vary = self.vary[:self._vary_mark]
        if kind == "regex":
            m = c.regex.search(value)
            rc = m is not None
            if rc and not c.negate:
                self.rc = (value, m)
        elif kind in _FILE_TESTS:
            rc = _file_test(kind, value)
            self.file_tests.append((kind, value, rc))
        elif kind in ("=", "<", ">", "<=", ">="):
            a, b = (value.lower(), c.pattern.lower()) if c.nocase else (value, c.pattern)
            cmp = _lexi(a, b)
            rc = {"=": cmp == 0, "<": cmp < 0, ">": cmp > 0, "<=": cmp <= 0, ">=": cmp >= 0}[kind]
        else:
            a, b = _atoi(value), _atoi(c.pattern)
            rc = {"-eq": a == b, "-lt": a < b, "-le": a <= b, "-gt": a > b, "-ge": a >= b}[kind]
        if c.negate:
            rc = not rc
        if self.trace:
            self.trace(4, f"RewriteCond: input='{value}' pattern='{'!' if c.negate else ''}"
                          f"{c.pattern or kind}'{' [NC]' if c.nocase else ''} => "
                          f"{'matched' if rc else 'not-matched'}")
        return rc

    # -- one rule ------------------------------------------------------------------------------
    def rule(self, p: Rule) -> int:
        """0: no match; 1: matched and rewrote; 2: matched, no substitution."""
        uri = self.filename
        perdir = self.perdir
        if perdir:
            if self.path_info:
                uri += self.path_info
            if uri.startswith(perdir):
                if self.trace:
                    self.trace(3, f"strip per-dir prefix: {uri} -> {uri[len(perdir):]}")
                uri = uri[len(perdir):]
        self.uri = uri
        if self.trace:
            self.trace(3, f"applying pattern '{p.pattern}' to uri '{uri}'")
        m = p.regex.search(uri)
        if (m is not None) == p.negate:
            return 0
        self.rc = None
        self.rr = None if p.negate else (uri, m)
        conds = p.conds
        i = 0
        kept = self.vary
        self.vary = list(kept)
        while i < len(conds):
            c = conds[i]
            self._vary_mark = len(self.vary)
            rc = self.cond(c)
            if c.ornext:
                if rc:
                    while i < len(conds) and conds[i].ornext:
                        i += 1
            elif not rc:
                self.vary = kept             # httpd: a rule that fails adds no Vary
                return 0
            i += 1
        newuri = None
        if not p.nosub:
            newuri = self.expand(p.output, p)
            if self.trace:
                self.trace(2, f"rewrite '{uri}' -> '{newuri}'")
        for item in p.env:
            expanded = self.expand(item)
            if expanded.startswith("!"):
                self.ctx.env.pop(expanded[1:], None)
            else:
                name, _, val = expanded.partition(":")
                self.ctx.env[name] = val
        if p.nosub:
            self._force_type_handler(p)
            if p.status:
                self.status = p.status
            return 2
        assert newuri is not None
        # httpd 2.4.60: a "?" that only an expansion brought, in a request that had an
        # encoded one, is refused unless UnsafeAllow3F
        if not p.unsafe_allow_3f and "?" in newuri and "?" not in p.output and "%3f" in \
                self.ctx.request.target.decode("latin-1").lower():
            if self.trace:
                self.trace(1, "Unsafe URL with %3f URL rewritten without UnsafeAllow3F")
            self.status = 403
            return 3
        if not perdir and p.starts_with_ref and not p.unsafe_prefix_stat:
            self.no_prefix_stat = True
        self.filename = newuri
        if perdir and p.discard_path:
            self.path_info = ""
        self._split_query(p)
        if not self.filename.startswith("/") and not absolute_skip(self.filename)[0]:
            if perdir:
                if self.trace:
                    self.trace(3, f"add per-dir prefix: {self.filename} -> {perdir}{self.filename}")
                self.filename = perdir + self.filename
            else:                       # httpd 2.4: a server-context result is a URL-path
                if self.trace:
                    self.trace(3, f"add root prefix: {self.filename} -> /{self.filename}")
                self.filename = "/" + self.filename
        if p.redirect and not p.status:
            if not absolute_skip(self.filename)[0]:
                self.filename = self.self_url() + ("" if self.filename.startswith("/") else "/") \
                    + self.filename
            self.status = p.redirect
            return 1
        self._reduce()
        if absolute_skip(self.filename)[0]:
            self.status = 302
            return 1
        self._force_type_handler(p)
        return 1

    def _force_type_handler(self, p: Rule) -> None:
        if p.mime is not None:
            value = self.expand(p.mime, p).lower()
            if value:
                self.mime = value
        if p.handler is not None:
            value = self.expand(p.handler, p).lower()
            if value:
                self.handler = value

    def _split_query(self, p: Rule) -> None:
        skip, splits = absolute_skip(self.filename)
        if skip and not splits:
            self.args = None
            return
        if p.qsd:
            self.args = None
            self.query_changed = True
        q = self.filename.rfind("?") if p.qsl else self.filename.find("?")
        if q >= 0:
            new = self.filename[q + 1:]
            self.filename = self.filename[:q]
            args = new + "&" + self.args if p.qsa and self.args else (new + "&" if p.qsa else new)
            if args.endswith("&"):
                args = args[:-1]
            self.args = args or None
            self.query_changed = True

    def _reduce(self) -> None:
        """httpd's reduce_uri: http://this-host[:port]/x -> /x."""
        scheme = self.ctx.conn.scheme
        fn = self.filename
        if not fn.lower().startswith(scheme + "://") or len(fn) <= len(scheme) + 3:
            return
        rest = fn[len(scheme) + 3:]
        m = re.match(r"([^/:]*)(?::(\d*))?(/.*)?$", rest, re.S)
        if m is None:
            return
        host, port, url = m.group(1), m.group(2), m.group(3) or "/"
        port_n = int(port) if port else (443 if scheme == "https" else 80)
        if matches_request_vhost(self.ctx.server, host, port_n):
            if self.trace:
                self.trace(3, f"reduce {fn} -> {url}")
            self.filename = url
            self.no_prefix_stat = True       # httpd 2.4.60: a reduced URL is docroot-relative

    # -- the list --------------------------------------------------------------------------------
    def apply(self, rules: tuple[Rule, ...]) -> int:
        changed = 0
        rounds = 0
        i = 0
        n = len(rules)
        while i < n:
            p = rules[i]
            rc = self.rule(p)
            if rc:
                if self.status and (p.status or rc == 3):
                    return STATUS
                if rc != 2:
                    changed = NOESCAPE if p.noescape else NORMAL
                if p.passthrough:
                    self.filename = "passthrough:" + self.filename
                    return NORMAL
                if p.end:
                    self.end = True
                    break
                if p.last:
                    break
                if p.next:
                    rounds += 1
                    limit = 2 * int(getattr(self.ctx.server, "limit_request_line", 8190) or 8190)
                    if rounds > MAX_ROUNDS or len(self.filename) > limit:
                        from mpmd.core.request import log_error
                        log_error(self.ctx, "MPMD2053", f"RewriteRule '{p.pattern}' and URI "
                                  f"'{self.ctx.uri_path}' exceeded maximum length ({limit}) "
                                  "or number of rounds")
                        self.status = 500
                        return STATUS
                    i = 0
                    continue
                i += p.skip
            else:
                while i < n and rules[i].chain:
                    i += 1
            i += 1
        return changed


def _closing_curly(text: str, start: int) -> int:
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        elif text[i] == "{":
            depth += 1
    return -1


def _in_curlies(text: str, ch: str) -> int:
    depth = 0
    for i, c in enumerate(text):
        if c == ch and depth == 0:
            return i
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
    return -1


def _lexi(a: str, b: str) -> int:
    """httpd's compare_lexicography: the shorter string is the smaller, else byte order."""
    if len(a) != len(b):
        return 1 if len(a) > len(b) else -1
    return (a > b) - (a < b)


def _atoi(text: str) -> int:
    m = re.match(r"\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else 0


def same_file_tests(tests: tuple[tuple[str, str, bool], ...]) -> Any:
    """A route check (core/request.py Rule 9): every file test still gives its result."""
    return lambda _request: all(_file_test(kind, path) is rc for kind, path, rc in tests)


def same_headers(seen: tuple[tuple[bytes, list[bytes]], ...]) -> Any:
    """A route check: each request header the rules read has the values it had."""
    return lambda request: all(request.header_values(name) == values for name, values in seen)


def _file_test(kind: str, path: str) -> bool:
    try:
        st = os.lstat(path) if kind == "-l" else os.stat(path)
    except (OSError, ValueError):
        return False
    if kind == "-f":
        return stat.S_ISREG(st.st_mode)
    if kind == "-s":
        return stat.S_ISREG(st.st_mode) and st.st_size > 0
    if kind == "-d":
        return stat.S_ISDIR(st.st_mode)
    if kind == "-x":
        return bool(st.st_mode & 0o111)
    return stat.S_ISLNK(st.st_mode)


def prefix_exists(path: str) -> bool:
    """httpd's prefix_stat: whether the first component of ``path`` exists."""
    first = path.lstrip("/").split("/", 1)[0]
    try:
        os.stat("/" + first)
        return True
    except (OSError, ValueError):
        return False


def matches_request_vhost(server: Any, host: str, port: int) -> bool:
    """httpd's ap_matches_request_vhost: whether host:port names ``server`` (reduce_uri)."""
    host = host.lower()
    for addr in getattr(server, "vhost_addrs", None) or ():
        if (addr.port == 0 or addr.port == port) and host == str(addr.ip).lower():
            return True
    name = str(getattr(server, "server_name", "") or "")
    name_host, name_port = host_and_port(name)
    if port != (name_port or 0):
        return False
    names = [name_host.lower()]
    for value in getattr(server, "server_alias", None) or ():
        names += [v.lower() for v in (value if isinstance(value, (list, tuple)) else [value])]
    import fnmatch
    return any(host == n or fnmatch.fnmatchcase(host, n) for n in names if n)


def split_path_info(filename: str, known_dir: str = "") -> tuple[str, str]:
    """httpd's directory walk: the path up to its first missing component or regular file,
    and the rest as path info ("/a/real.html/x" -> ("/a/real.html", "/x")).  ``known_dir``
    (with its "/"): a directory above the file known to exist, whose components need no
    stat."""
    try:
        os.stat(filename)
        return filename, ""
    except (OSError, ValueError):
        pass
    parts = filename.split("/")
    cur = ""
    first = 1
    if known_dir and filename.startswith(known_dir):
        cur = known_dir.rstrip("/")
        first = cur.count("/") + 1
    for i in range(first, len(parts)):
        cur += "/" + parts[i]
        try:
            is_dir = stat.S_ISDIR(os.stat(cur).st_mode)
        except (OSError, ValueError):
            is_dir = False
        if not is_dir:
            rest = parts[i + 1:]
            return cur, ("/" + "/".join(rest)) if rest else ""
    return filename, ""
