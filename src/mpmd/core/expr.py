"""ap_expr: httpd's expression language, the subset real configurations use (<If>, ...).

Theory: ``compile_expr(text)`` tokenizes and parses (recursive descent, no ``eval``) once,
at config load, into a tree of small closures-free node tuples; ``Expr.evaluate(ctx)``
walks it per request against a RequestContext.  A parse error is ``ExprError`` with the
0-based position in the text; the loader turns it into a ConfigError at file:line.

Grammar (httpd's ap_expr, lowest precedence first):
    expr   := and ( "||" and )*
    and    := unary ( "&&" unary )*
    unary  := "!" unary | "(" expr ")" | "true" | "false" | comp
    comp   := UNOP word | word BINOP word | word "in" "{" word ("," word)* "}"
            | word ("=~" | "!~") REGEX
    word   := atom ( "." atom )*           (concatenation)
    atom   := 'string' | "string" | digits | %{VAR} | %{func:arg} | $N | func "(" word ")"
BINOP: == = != < <= > >= (strings), -eq -ne -lt -le -gt -ge (integers), -ipmatch,
-strmatch, -strcmatch, -fnmatch.  UNOP: -d -e -f -s -L -h -l -x (files), -n -z -T
(strings), -R (the client address in a subnet).  Regexes: /re/ or m#re# with flags i, s, m,
x; ``$0``..``$9`` are the groups of the last successful match in the same expression.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re
import stat
from typing import Any
from urllib.parse import quote, unquote


class ExprError(ValueError):
    """A parse error: ``pos`` is the offset in the expression's text."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos

    def __str__(self) -> str:
        return f"{self.message} at position {self.pos}"


class ExprEvalError(Exception):
    """An expression that cannot be evaluated for this request (a non-integer for -eq)."""


# ----------------------------------------------------------------------------- tokens

STRING_OPS = {"==": "eq", "=": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
INT_OPS = {"-eq", "-ne", "-lt", "-le", "-gt", "-ge"}
WORD_BINOPS = {"-ipmatch", "-strmatch", "-strcmatch", "-fnmatch"} | INT_OPS
UNOPS = {"-d", "-e", "-f", "-s", "-L", "-h", "-l", "-x", "-n", "-z", "-T", "-R"}
FUNCTIONS = {"tolower", "toupper", "escape", "unescape", "req", "http", "env", "note",
             "reqenv", "osenv", "resp"}
REGEX_FLAGS = {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE, "x": re.VERBOSE}

_HEADER_VARS = {"HTTP_ACCEPT", "HTTP_COOKIE", "HTTP_FORWARDED", "HTTP_HOST",
                "HTTP_PROXY_CONNECTION", "HTTP_REFERER", "HTTP_USER_AGENT"}
VARIABLES = {"REQUEST_METHOD", "REQUEST_SCHEME", "REQUEST_URI", "QUERY_STRING", "HTTPS",
             "REMOTE_ADDR", "SERVER_NAME", "SERVER_PORT", "THE_REQUEST", "REQUEST_FILENAME",
             "SCRIPT_FILENAME", "DOCUMENT_ROOT", "SERVER_PROTOCOL", "PATH_INFO", "IPV6",
             "REMOTE_PORT", "IS_SUBREQ", "CONTEXT_PREFIX", "REMOTE_USER", "AUTH_TYPE",
             "SERVER_ADDR", "REQUEST_LOG_ID", "CONN_REMOTE_ADDR", "HANDLER"} | _HEADER_VARS


class _Tok:
    __slots__ = ("kind", "value", "pos")

    def __init__(self, kind: str, value: Any, pos: int) -> None:
        self.kind = kind      # "op", "str", "num", "var", "ref", "regex", "ident", "end"
        self.value = value
        self.pos = pos

    def __repr__(self) -> str:
        return f"{self.kind}:{self.value!r}@{self.pos}"


_PUNCT = ("&&", "||", "==", "!=", "<=", ">=", "=~", "!~", "(", ")", "{", "}", ",", ".", "!",
          "<", ">", "=")


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        start = i
        if c in "'\"":
            parts, i = _string_parts(text, i + 1, c)
            toks.append(_Tok("str", parts, start))
            continue
        if c == "%" and text.startswith("%{", i):
            node, i = _var_ref(text, i)
            toks.append(_Tok("var", node, start))
            continue
        if c == "$" and i + 1 < n and text[i + 1].isdigit():
            toks.append(_Tok("ref", int(text[i + 1]), start))
            i += 2
            continue
        if c == "/" or (c == "m" and i + 1 < n and not text[i + 1].isalnum()
                        and not text[i + 1].isspace() and text[i + 1] not in "(_"
                        and toks and toks[-1].kind == "op" and toks[-1].value in ("=~", "!~")):
            if c == "/":
                delim, body = "/", i + 1
            else:
                delim, body = text[i + 1], i + 2
            end = body
            while end < n and text[end] != delim:
                end += 2 if text[end] == "\\" and delim != "\\" else 1
            if end >= n:
                raise ExprError("unterminated regular expression", start)
            pattern = text[body:end]
            i = end + 1
            flags = 0
            while i < n and text[i].isalpha():
                if text[i] not in REGEX_FLAGS:
                    raise ExprError(f"unknown regular expression flag '{text[i]}'", i)
                flags |= REGEX_FLAGS[text[i]]
                i += 1
            if delim != "/":
                pattern = pattern.replace("\\" + delim, delim)
            try:
                rx = re.compile(_pcre_to_python(pattern), flags)
            except re.error as exc:
                raise ExprError(f"cannot compile regular expression: {exc}", start) from None
            toks.append(_Tok("regex", rx, start))
            continue
        if c == "-" and i + 1 < n and text[i + 1].isalpha():
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            toks.append(_Tok("op", text[i:j], start))
            i = j
            continue
        if c.isdigit():
            j = i
            while j < n and text[j].isdigit():
                j += 1
            toks.append(_Tok("num", text[i:j], start))
            i = j
            continue
        if c.isalpha() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            toks.append(_Tok("ident", text[i:j], start))
            i = j
            continue
        for p in _PUNCT:
            if text.startswith(p, i):
                toks.append(_Tok("op", p, start))
                i += len(p)
                break
        else:
            raise ExprError(f"syntax error, unexpected character '{c}'", start)
    toks.append(_Tok("end", None, n))
    return toks


def _pcre_to_python(pattern: str) -> str:
    """The few PCRE spellings Python's re writes otherwise: named groups."""
    return re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern).replace("(?'", "(?P'")


def _var_ref(text: str, i: int) -> tuple[tuple, int]:
    """``%{NAME}`` or ``%{func:arg}`` at ``text[i]``; returns the node and the next offset."""
    end = text.find("}", i + 2)
    colon = text.find(":", i + 2)
    if end < 0:
        raise ExprError("unterminated %{", i)
    if 0 <= colon < end:                   # %{func:arg}, the arg a string (%{...} inside)
        name = text[i + 2:colon]
        fn = name.lower()
        if fn not in FUNCTIONS:
            raise ExprError(f"unknown function '{name}'", i)
        arg, after = _string_parts(text, colon + 1, "}")
        return ("call", fn, arg), after
    return _variable(text[i + 2:end], i), end + 1


def _variable(name: str, pos: int) -> tuple:
    upper = name.upper()
    if upper in VARIABLES or (upper.startswith("HTTP_") and len(upper) > 5):
        return ("var", upper)
    raise ExprError(f"variable '{name}' does not exist", pos)


def _string_parts(text: str, i: int, quote_char: str) -> tuple[tuple, int]:
    """A quoted string from ``text[i]`` (after the quote): ("cat", parts) with %{...} and $N
    interpolated, backslash escaping the next character."""
    parts: list[tuple] = []
    buf: list[str] = []
    n = len(text)
    start = i - 1
    while True:
        if i >= n:
            raise ExprError("unterminated string", start)
        c = text[i]
        if c == quote_char:
            i += 1
            break
        if c == "\\" and i + 1 < n and quote_char != "}":
            buf.append(text[i + 1])
            i += 2
        elif c == "%" and text.startswith("%{", i):
            if buf:
                parts.append(("lit", "".join(buf)))
                buf = []
            node, i = _var_ref(text, i)
            parts.append(node)
        elif c == "$" and i + 1 < n and text[i + 1].isdigit():
            if buf:
                parts.append(("lit", "".join(buf)))
                buf = []
            parts.append(("ref", int(text[i + 1])))
            i += 2
        else:
            buf.append(c)
            i += 1
    if buf or not parts:
        parts.append(("lit", "".join(buf)))
    return (parts[0] if len(parts) == 1 else ("cat", tuple(parts))), i


# ----------------------------------------------------------------------------- parser

class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def is_op(self, *values: str) -> bool:
        tok = self.peek()
        return tok.kind == "op" and tok.value in values

    def fail(self, tok: _Tok | None = None) -> ExprError:
        tok = tok or self.peek()
        if tok.kind == "end":
            return ExprError("syntax error, unexpected end of expression", tok.pos)
        shown = self.text[tok.pos:tok.pos + 20]
        return ExprError(f"syntax error near '{shown}'", tok.pos)

    def expect(self, value: str) -> None:
        if not self.is_op(value):
            raise self.fail()
        self.next()

    def parse(self) -> tuple:
        if self.peek().kind == "end":
            raise ExprError("empty expression", 0)
        node = self.expr()
        if self.peek().kind != "end":
            raise self.fail()
        return node

    def expr(self) -> tuple:
        node = self.conj()
        while self.is_op("||"):
            self.next()
            node = ("or", node, self.conj())
        return node

    def conj(self) -> tuple:
        node = self.unary()
        while self.is_op("&&"):
            self.next()
            node = ("and", node, self.unary())
        return node

    def unary(self) -> tuple:
        tok = self.peek()
        if tok.kind == "op" and tok.value == "!":
            self.next()
            return ("not", self.unary())
        if tok.kind == "op" and tok.value == "(":
            self.next()
            node = self.expr()
            self.expect(")")
            return node
        if tok.kind == "ident" and tok.value in ("true", "false"):
            self.next()
            return ("const", tok.value == "true")
        return self.comp()

    def comp(self) -> tuple:
        tok = self.peek()
        if tok.kind == "op" and tok.value.startswith("-") and len(tok.value) > 1:
            if tok.value not in UNOPS:
                if tok.value in ("-F", "-U", "-A"):
                    raise ExprError(f"unary operator '{tok.value}' (a subrequest) is not supported", tok.pos)
                raise ExprError(f"unknown unary operator '{tok.value}'", tok.pos)
            self.next()
            return ("unop", tok.value, self.word())
        left = self.word()
        tok = self.next()
        if tok.kind == "op":
            if tok.value in STRING_OPS:
                return ("scmp", STRING_OPS[tok.value], left, self.word())
            if tok.value in ("=~", "!~"):
                rx = self.next()
                if rx.kind != "regex":
                    raise ExprError("syntax error, a regular expression must follow " + tok.value, rx.pos)
                return ("match", tok.value == "=~", left, rx.value)
            if tok.value in INT_OPS:
                return ("icmp", tok.value[1:], left, self.word())
            if tok.value in WORD_BINOPS:
                return ("binop", tok.value, left, self.word())
            if tok.value.startswith("-") and len(tok.value) > 1:
                raise ExprError(f"unknown binary operator '{tok.value}'", tok.pos)
        if tok.kind == "ident" and tok.value == "in":
            self.expect("{")
            words = [self.word()]
            while self.is_op(","):
                self.next()
                words.append(self.word())
            self.expect("}")
            return ("in", left, tuple(words))
        raise self.fail(tok)

    def word(self) -> tuple:
        node = self.atom()
        while self.is_op("."):
            self.next()
            node = ("cat", (node, self.atom()))
        return node

    def atom(self) -> tuple:
        tok = self.next()
        if tok.kind == "str":
            return tok.value
        if tok.kind == "num":
            return ("lit", tok.value)
        if tok.kind == "var":
            return tok.value
        if tok.kind == "ref":
            return ("ref", tok.value)
        if tok.kind == "ident" and self.is_op("("):
            name = tok.value.lower()
            if name not in FUNCTIONS:
                raise ExprError(f"unknown function '{tok.value}'", tok.pos)
            self.next()
            arg = self.word()
            self.expect(")")
            return ("call", name, arg)
        raise self.fail(tok)


# ----------------------------------------------------------------------------- evaluation

class _State:
    __slots__ = ("ctx", "groups")

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.groups: tuple[str, ...] = ()


class Expr:
    """A compiled expression: ``evaluate(ctx)`` -> bool (``ExprEvalError`` when it cannot
    be evaluated); ``text`` as written."""

    __slots__ = ("text", "tree")

    def __init__(self, text: str, tree: tuple) -> None:
        self.text = text
        self.tree = tree

    def evaluate(self, ctx: Any) -> bool:
        return _cond(self.tree, _State(ctx))

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"


def compile_expr(text: str) -> Expr:
    """Parse ``text`` (raises ExprError)."""
    return Expr(text, _Parser(text).parse())


def _cond(node: tuple, st: _State) -> bool:
    kind = node[0]
    if kind == "and":
        return _cond(node[1], st) and _cond(node[2], st)
    if kind == "or":
        return _cond(node[1], st) or _cond(node[2], st)
    if kind == "not":
        return not _cond(node[1], st)
    if kind == "const":
        return node[1]
    if kind == "scmp":
        a, b = _word(node[2], st), _word(node[3], st)
        return _compare(node[1], a, b)
    if kind == "icmp":
        a, b = _int(_word(node[2], st)), _int(_word(node[3], st))
        return _compare(node[1], a, b)
    if kind == "match":
        m = node[3].search(_word(node[2], st))
        if m is not None:
            st.groups = (m.group(0),) + tuple(g or "" for g in m.groups())
        return (m is not None) == node[1]
    if kind == "in":
        value = _word(node[1], st)
        return any(value == _word(w, st) for w in node[2])
    if kind == "unop":
        return _unop(node[1], _word(node[2], st), st)
    if kind == "binop":
        return _binop(node[1], _word(node[2], st), _word(node[3], st))
    raise ExprEvalError(f"not a condition: {kind}")


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "eq":
        return a == b
    if op == "ne":
        return a != b
    if op == "lt":
        return a < b
    if op == "le":
        return a <= b
    if op == "gt":
        return a > b
    return a >= b


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ExprEvalError(f"not an integer: {text!r}") from None


def _unop(op: str, arg: str, st: _State) -> bool:
    if op == "-n":
        return arg != ""
    if op == "-z":
        return arg == ""
    if op == "-T":
        return arg.lower() not in ("", "0", "off", "false", "no")
    if op == "-R":
        return _ipmatch(_remote_addr(st.ctx), arg)
    if not arg:
        return False
    try:
        info = os.lstat(arg) if op in ("-L", "-h", "-l") else os.stat(arg)
    except (OSError, ValueError):
        return False
    if op == "-d":
        return stat.S_ISDIR(info.st_mode)
    if op == "-f":
        return stat.S_ISREG(info.st_mode)
    if op == "-s":
        return stat.S_ISREG(info.st_mode) and info.st_size > 0
    if op in ("-L", "-h", "-l"):
        return stat.S_ISLNK(info.st_mode)
    if op == "-x":
        return os.access(arg, os.X_OK)
    return True                                      # -e


def _binop(op: str, a: str, b: str) -> bool:
    if op == "-ipmatch":
        return _ipmatch(a, b)
    if op == "-strmatch":
        return fnmatch.fnmatchcase(a, b)
    if op == "-strcmatch":
        return fnmatch.fnmatchcase(a.lower(), b.lower())
    if op == "-fnmatch":
        return re.fullmatch(_fn_pathname(b), a) is not None
    return _compare(op[1:], _int(a), _int(b))       # -eq .. -ge


def _fn_pathname(pattern: str) -> str:
    """fnmatch with FNM_PATHNAME: ``*`` and ``?`` do not match "/"."""
    rx = fnmatch.translate(pattern)
    return rx.replace(".*", "[^/]*").replace("(?s:.", "(?s:[^/]").replace(".)", "[^/])")


def _ipmatch(addr: str, net: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr.split("%")[0])
        network = ipaddress.ip_network(net.strip(), strict=False)
    except ValueError:
        return False
    if ip.version != network.version and ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.version == network.version and ip in network


def _word(node: tuple, st: _State) -> str:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "cat":
        return "".join(_word(p, st) for p in node[1])
    if kind == "var":
        return variable(st.ctx, node[1])
    if kind == "ref":
        n = node[1]
        return st.groups[n] if n < len(st.groups) else ""
    if kind == "call":
        return _call(node[1], _word(node[2], st), st.ctx)
    raise ExprEvalError(f"not a string: {kind}")


def _header(ctx: Any, name: str) -> str:
    values = ctx.request.header_values(name.lower().encode("latin-1"))
    return ", ".join(v.decode("latin-1") for v in values)


def _remote_addr(ctx: Any) -> str:
    return ctx.useragent_addr()[0]


def _call(fn: str, arg: str, ctx: Any) -> str:
    if fn == "tolower":
        return arg.lower()
    if fn == "toupper":
        return arg.upper()
    if fn == "escape":
        return quote(arg, safe="/-_.!~*'()")
    if fn == "unescape":
        return unquote(arg)
    if fn in ("req", "http"):
        return _header(ctx, arg)
    if fn == "resp":
        return ""                                     # no response yet where mpmd evaluates
    if fn == "note":
        value = ctx.notes.get(arg)
        return value if isinstance(value, str) else ""
    if fn == "reqenv":
        return ctx.env.get(arg, "")
    if fn == "osenv":
        return os.environ.get(arg, "")
    # env: a note, then the request's variables, then the process environment (httpd)
    value = ctx.notes.get(arg)
    if isinstance(value, str):
        return value
    if arg in ctx.env:
        return ctx.env[arg]
    return os.environ.get(arg, "")


def _host_and_port(ctx: Any) -> tuple[str, str]:
    host = ctx.host()
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit() and not host.endswith("]"):
        return name, port
    return host, ""


def variable(ctx: Any, name: str) -> str:
    """The value of ``%{name}`` (upper case) for the request ``ctx``."""
    request = ctx.request
    if name == "REQUEST_URI":
        return ctx.uri_path
    if name == "HTTP_HOST":
        return ctx.host()
    if name.startswith("HTTP_"):
        return _header(ctx, name[5:].replace("_", "-"))
    if name == "REQUEST_METHOD":
        return request.method
    if name == "REQUEST_SCHEME":
        return ctx.conn.scheme
    if name == "HTTPS":
        return "on" if ctx.conn.scheme == "https" else "off"
    if name == "QUERY_STRING":
        return request.query.decode("latin-1")
    if name == "REMOTE_ADDR":
        return _remote_addr(ctx)
    if name == "REMOTE_PORT":
        return str(ctx.useragent_addr()[1])
    if name == "CONN_REMOTE_ADDR":
        return (ctx.conn.peer or ctx.conn.client_addr)[0]
    if name == "SERVER_ADDR":
        return ctx.conn.server_addr[0]
    if name == "SERVER_NAME":
        host, _ = _host_and_port(ctx)
        if host and str(getattr(ctx.server, "use_canonical_name", "Off")).lower() == "off":
            return host
        name_cfg = getattr(ctx.server, "server_name", None) or host
        return str(name_cfg).rsplit(":", 1)[0] if name_cfg else ""
    if name == "SERVER_PORT":
        _, port = _host_and_port(ctx)
        return port or str(ctx.conn.server_addr[1])
    if name == "SERVER_PROTOCOL":
        return f"HTTP/{request.http_version}"
    if name == "THE_REQUEST":
        return f"{request.method} {request.target.decode('latin-1')} HTTP/{request.http_version}"
    if name in ("REQUEST_FILENAME", "SCRIPT_FILENAME"):
        return ctx.filename or ""
    if name == "DOCUMENT_ROOT":
        return str(getattr(ctx.server, "document_root", "") or "")
    if name == "PATH_INFO":
        return ctx.path_info or ""
    if name == "IPV6":
        return "on" if ":" in _remote_addr(ctx) else "off"
    if name == "IS_SUBREQ":
        return "false"
    if name == "CONTEXT_PREFIX":
        return ""
    if name == "REMOTE_USER":
        return ctx.env.get("REMOTE_USER", "") or str(ctx.notes.get("user") or "")
    if name == "AUTH_TYPE":
        return ctx.env.get("AUTH_TYPE", "")
    if name == "HANDLER":
        return ctx.handler or ""
    if name == "REQUEST_LOG_ID":
        return ctx.log_id or ""
    return ""
