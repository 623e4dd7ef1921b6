"""mod_log_config: LogFormat and CustomLog (access logs), written in log_transaction.

Theory: each CustomLog's format is compiled once per generation into a list of small field
functions (no parsing or regex per request); a request joins their output into one line.

Rule 1: the line is written with one ``os.write`` on a descriptor opened ``O_APPEND``, so lines
        from many processes and threads never interleave (POSIX appends are atomic per write
        on local files).  The master opens the files (post_config), the children inherit them.
Rule 2: formats follow httpd: ``%h %l %u %t "%r" %>s %b``, ``%{Header}i``, ``%{Header}o``, ``%D``
        (microseconds), ``%T`` (seconds) ...; "common" and "combined" are predefined nicknames.
        Unknown letters are a configuration error.
Rule 3: text from the client (%r, %i, %U, %q, %u) is escaped as httpd does: '"' and '\\' get a
        backslash, control and non-ASCII bytes become \\xhh -- a client cannot forge log lines.
Rule 4: ``CustomLog "|cmd" fmt`` (and ``|$cmd``, through the shell) writes to a program started
        once by the master before it forks (core/piped.py); every child writes into its pipe.
Rule 5: each server writes its own CustomLog lines; a <VirtualHost> without any writes the main
        server's (httpd's merge).  ``%v`` is the serving server's ServerName, ``%V`` the host
        the client asked for (UseCanonicalName Off), else that ServerName.
Rule 6: a request the core refused (core/request.py Rule 5) logs as httpd logs one: %r is what
        was read of its request line, escaped as in Rule 3, or "-" when none was.
Rule 7: %a and %h are the client after mod_remoteip (``ctx.useragent``), %{c}a and %{c}h the
        connection's peer; host names are never looked up (HostnameLookups Off), so %h is an
        address, as httpd's.
Rule 8: byte counts as httpd's mod_logio: %O is the answer as written (head, body, chunk lines,
        a 100 Continue before it), %I the request's head and the body bytes read (a chunked
        body's chunk lines are not counted), %S both.  They come from ``ctx.wire``
        (core/cycle.py), asked only by a format that has them.  %L is the request's log id (core/logid.py), the one its error-log lines
        carry; %{name}C a request cookie's value, as httpd's log_cookie finds it.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, Callable, ClassVar

from mpmd.config.directives import Args, Ctx, Directive, Merge
from mpmd.config.vhosts import host_of, server_hostname
from mpmd.core import piped
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.logid import log_id
from mpmd.core.modules import Module, PerServer, servers_of
from mpmd.core.request import RefusedRequest
from mpmd.core.expr import ExprError, ExprEvalError, compile_expr

NICKNAMES = {
    "common": '%h %l %u %t "%r" %>s %b',
    "combined": '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"',
    "vhost_combined": '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"',
    "referer": "%{Referer}i -> %U",
    "agent": "%{User-agent}i",
}
_TOKEN = re.compile(r"%([<>!\d,]*)(?:\{([^}]*)\})?([a-zA-Z%])")
_ESCAPES = {i: f"\\x{i:02x}" for i in list(range(0x20)) + list(range(0x7f, 0x100))}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\"})

Field = Callable[[RequestContext, Response, int, float], str]


def escape(value: bytes | str) -> str:
    """Rule 3."""
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    text = value.decode("latin-1")
    return text.translate(_ESCAPES) if not (text.isascii() and text.isprintable()
                                            and '"' not in text and "\\" not in text) else text


class _TimeCache:
    """``[10/Oct/2000:13:55:36 -0700]`` for a second, rebuilt when the second changes."""

    def __init__(self) -> None:
        self.second, self.text = -1, ""

    def __call__(self, ts: float) -> str:
        second = int(ts)
        if second != self.second:
            self.text = time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(second))
            self.second = second
        return self.text


_clock = _TimeCache()


def _request_line(ctx: RequestContext, resp: Response, n: int, now: float) -> str:
    req = ctx.request
    if type(req) is RefusedRequest:                  # Rule 6
        return "-" if req.line is None else escape(req.line)
    return escape(f"{req.method} ".encode() + req.target + f" HTTP/{req.http_version}".encode())


def _header_in(name: str) -> Field:
    key = name.lower().encode("latin-1")

    def field(ctx: RequestContext, resp: Response, n: int, now: float) -> str:
        value = ctx.request.header(key)
        return "-" if value is None else escape(value)
    return field


def _header_out(name: str) -> Field:
    def field(ctx: RequestContext, resp: Response, n: int, now: float) -> str:
        value = resp.header(name)
        return "-" if value is None else escape(value)
    return field


def _started(ctx: RequestContext, now: float) -> float:
    return ctx.start_time or now


def _useragent(ctx: RequestContext, resp: Response, n: int, now: float) -> str:
    """%a and %h: the client after mod_remoteip (Rule 7)."""
    return (ctx.useragent or ctx.conn.client_addr)[0]


def _peer(ctx: RequestContext, resp: Response, n: int, now: float) -> str:
    """%{c}a and %{c}h: the connection's peer."""
    return (ctx.conn.peer or ctx.conn.client_addr)[0]


def _client(arg: str) -> Field:
    return _peer if arg == "c" else _useragent


def _bytes_in(ctx: RequestContext) -> int:
    wire = ctx.wire
    return wire.bytes_in() if wire is not None else 0


def _bytes_out(ctx: RequestContext, n: int) -> int:
    wire = ctx.wire
    return wire.bytes_out(n) if wire is not None else n


def cookie_value(header: bytes | None, name: str) -> str | None:
    """httpd's log_cookie: the value of cookie ``name`` (any case) in a Cookie field, trailing
    white space cut; an empty value is no value."""
    if not header:
        return None
    wanted = name.lower()
    for part in header.decode("latin-1").split(";"):
        key, eq, value = part.lstrip("=").partition("=")
        if eq and key.strip(" \t") and value and key.strip(" \t").lower() == wanted:
            return value.rstrip(" \t\r\n\v\f")
    return None


def _cookie(name: str) -> Field:
    def field(ctx: RequestContext, resp: Response, n: int, now: float) -> str:
        value = cookie_value(ctx.request.header(b"cookie"), name)
        return "-" if value is None else escape(value)
    return field


# letter -> field function (letters taking no {arg}).
FIELDS: dict[str, Field] = {
    "h": _useragent,
    "a": _useragent,
    "A": lambda c, r, n, t: c.conn.server_addr[0],
    "p": lambda c, r, n, t: str(c.conn.server_addr[1]),
    "l": lambda c, r, n, t: "-",
    "u": lambda c, r, n, t: escape(c.notes["remote_user"]) if c.notes.get("remote_user") else "-",
    "t": lambda c, r, n, t: _clock(_started(c, t)),
    "r": _request_line,
    "s": lambda c, r, n, t: str(r.status),
    "b": lambda c, r, n, t: str(n) if n else "-",
    "B": lambda c, r, n, t: str(n),
    "O": lambda c, r, n, t: str(_bytes_out(c, n)),
    "I": lambda c, r, n, t: str(_bytes_in(c)),
    "S": lambda c, r, n, t: str(_bytes_in(c) + _bytes_out(c, n)),
    "L": lambda c, r, n, t: log_id(c),
    "D": lambda c, r, n, t: str(int((t - _started(c, t)) * 1_000_000)),
    "T": lambda c, r, n, t: str(int(t - _started(c, t))),
    "m": lambda c, r, n, t: c.request.method,
    "H": lambda c, r, n, t: f"HTTP/{c.request.http_version}",
    "U": lambda c, r, n, t: escape(c.request.path),
    "q": lambda c, r, n, t: "?" + escape(c.request.query) if c.request.query else "",
    "f": lambda c, r, n, t: escape(c.filename or "-"),
    "R": lambda c, r, n, t: c.handler or "-",
    "P": lambda c, r, n, t: str(os.getpid()),
    "v": lambda c, r, n, t: server_hostname(c.server),
    "V": lambda c, r, n, t: host_of(c.request.header(b"host")) or server_hostname(c.server),
    "k": lambda c, r, n, t: str(c.conn.requests_served),
    "X": lambda c, r, n, t: "-" if r.close_connection else "+",
    "%": lambda c, r, n, t: "%",
}
# letter -> factory taking the {arg}.
ARG_FIELDS: dict[str, Callable[[str], Field]] = {
    "i": _header_in,
    "o": _header_out,
    "n": lambda name: lambda c, r, n, t: escape(str(c.notes.get(name, "-"))),
    "e": lambda name: lambda c, r, n, t: escape(c.env.get(name, "-")),     # subprocess_env
    "t": lambda fmt: lambda c, r, n, t: time.strftime(fmt, time.localtime(_started(c, t))),
    "a": _client,
    "h": _client,
    "C": _cookie,
}


def compile_format(fmt: str) -> list[Field | str]:
    """A LogFormat string -> literal strings and field functions (Rule 2)."""
    parts: list[Field | str] = []
    pos = 0
    for m in _TOKEN.finditer(fmt):
        if m.start() > pos:
            parts.append(_unescape_literal(fmt[pos:m.start()]))
        mods, arg, letter = m.groups()
        if arg is not None and letter in ARG_FIELDS:
            parts.append(ARG_FIELDS[letter](arg))
        elif letter in FIELDS:
            parts.append(FIELDS[letter])
        else:
            raise ValueError(f"Unrecognized LogFormat directive %{letter}")
        pos = m.end()
    if pos < len(fmt):
        parts.append(_unescape_literal(fmt[pos:]))
    return parts


def _unescape_literal(text: str) -> str:
    return text.replace("\\t", "\t").replace("\\n", "\n").replace('\\"', '"')


def format_line(parts: list[Field | str], ctx: RequestContext, resp: Response,
                nbytes: int, now: float) -> str:
    return "".join(p if isinstance(p, str) else p(ctx, resp, nbytes, now) for p in parts) + "\n"


def template(parts: list[Field | str]) -> tuple[str, list[Field]]:
    """Literals folded into a %-template, so a line is one ``template % values``."""
    text = "".join(p.replace("%", "%%") if isinstance(p, str) else "%s" for p in parts) + "\n"
    return text, [p for p in parts if not isinstance(p, str)]


def log_format_value(args: list[str]) -> tuple[str, str | None]:
    compile_format(args[0])                      # validate now: errors carry file:line
    return args[0], (args[1] if len(args) > 1 else None)


def custom_log_value(args: list[str]) -> tuple[str, str, str | None]:
    if len(args) == 3 and args[2].startswith("expr="):
        try:
            compile_expr(args[2][5:])          # checked now: an error carries file:line
        except ExprError as exc:
            raise ValueError(f"Cannot parse condition clause: {exc}") from None
    elif len(args) == 3 and (not args[2].startswith("env=") or args[2] in ("env=", "env=!")):
        raise ValueError("third argument must be env=[!]name or expr=expression")
    return args[0], args[1], (args[2] if len(args) > 2 else None)


class LogFile:
    """One CustomLog: compiled format + O_APPEND descriptor (Rule 1)."""

    def __init__(self, path: str, parts: list[Field | str], condition: str | None) -> None:
        self.path, self.parts = path, parts
        self.template, self.fields = template(parts)
        self.env_name, self.env_negate = None, False
        self.expr = compile_expr(condition[5:]) if condition and condition.startswith("expr=") else None
        if condition and condition.startswith("env="):
            name = condition[4:]
            self.env_negate, self.env_name = name.startswith("!"), name.lstrip("!")
        if piped.is_piped(path):
            # A copy of the master's pipe (Rule 4): closing it at child exit (or -X) keeps the
            # master's end, which a restarted program reads from.
            self.fd = os.dup(piped.open(path))
        else:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def wanted(self, ctx: RequestContext) -> bool:
        if self.expr is not None:
            try:
                return self.expr.evaluate(ctx)
            except (ExprEvalError, AttributeError):   # a refused request: no full context
                return False
        if self.env_name is None:
            return True
        return (self.env_name in ctx.env) != self.env_negate     # set, whatever its value

    def write(self, ctx: RequestContext, resp: Response, nbytes: int, now: float) -> None:
        if (self.env_name is None and self.expr is None) or self.wanted(ctx):
            line = self.template % tuple([f(ctx, resp, nbytes, now) for f in self.fields])
            os.write(self.fd, line.encode("utf-8", "replace"))

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


def log_specs(server: Any) -> list[tuple[tuple[Any, ...], Callable[[], LogFile]]]:
    """The CustomLog lines of ``server`` (files and piped programs, Rule 4): for each, a key
    naming the log and its format, and how to open it."""
    nick = dict(NICKNAMES)
    for fmt, name in getattr(server, "log_format", None) or ():
        nick[name or "default"] = fmt
    root = getattr(server, "server_root", None) or os.getcwd()
    specs: list[tuple[tuple[Any, ...], Callable[[], LogFile]]] = []
    for path, fmt, cond in getattr(server, "custom_log", None) or ():
        full = path if os.path.isabs(path) or piped.is_piped(path) else os.path.join(root, path)
        text = nick.get(fmt, fmt)
        specs.append(((full, text, cond),
                      lambda full=full, text=text, cond=cond: LogFile(full, compile_format(text), cond)))
    return specs


# The CustomLog files the master opened for the running generation (``post_config``).  Module-
# level: each generation's config has its own module instances, and the master closes the last
# generation's descriptors when it opens the next (its children keep the copies they inherited).
_master_logs: list[LogFile] = []


class LogConfigModule(Module):
    name: ClassVar[str] = "log_config_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_log_config.c",)
    builtin: ClassVar[bool] = True
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("LogFormat", Args.TAKE12, Ctx.SERVER | Ctx.VHOST, log_format_value, [],
                  "log_format", "Define an access log format, optionally with a nickname.",
                  merge=Merge.APPEND, syntax="LogFormat format|nickname [nickname]",
                  owner="log_config_module"),
        Directive("CustomLog", Args.TAKE23, Ctx.SERVER | Ctx.VHOST, custom_log_value, [],
                  "custom_log", "Write an access log file in a format or nickname.",
                  merge=Merge.APPEND, extra={"vhost_merge": "own"}, syntax="CustomLog file format|nickname [env=[!]var]",
                  owner="log_config_module"),
    ]

    def __init__(self) -> None:
        self._open: dict[tuple[str, str, str | None, tuple[Any, ...]], LogFile] = {}
        self.logs_for = PerServer(self._logs_of)

    def unused_hooks(self, values: dict[str, Any]) -> tuple[str, ...]:
        """No CustomLog: no access log to write, no call per request."""
        return () if values.get("custom_log") else ("log_transaction",)

    def post_config(self, server: Any) -> None:
        """In the master, before fork and before User/Group take effect: open the CustomLog
        files of every server and start the piped ones' programs (Rule 4), as httpd opens its
        logs in the parent as root; children inherit the descriptors, so a log directory only
        root may write to still gets every child's lines (Rule 1)."""
        logs = [log for each in servers_of(server) for log in self.logs_for(each)]
        for old in _master_logs:
            if old not in logs:
                old.close()
        _master_logs[:] = logs

    def _logs_of(self, server: Any) -> list[LogFile]:
        """``server``'s logs; a vhost that inherits the main server's CustomLog lines (Rule 5)
        shares their open files."""
        logs = []
        for key, make in log_specs(server):
            log = self._open.get(key)
            if log is None:
                log = self._open[key] = make()
            logs.append(log)
        return logs

    def child_exit(self, server: Any, mpm: Any) -> None:
        for log in self._open.values():
            log.close()
        self._open.clear()
        self.logs_for.clear()

    def log_transaction(self, ctx: RequestContext, response: Response, bytes_sent: int) -> None:
        logs = self.logs_for(ctx.server)
        if logs:
            now = time.time()
            for log in logs:
                log.write(ctx, response, bytes_sent, now)
