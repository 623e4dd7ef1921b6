"""ErrorLog and LogLevel: one line per message, with a stable message id (httpd APLOGNO).

Line shape (httpd 2.4): ``[Wed Oct 11 14:32:52.123456 2000] [mpm_prefork:notice] [pid 42] MPMD0101: text``

Rule 1: every message that tests or operators grep for has an id ``MPMDnnnn``; ids are never reused.
Rule 2: a message below the configured level costs one integer comparison (check ``enabled()``
        before building expensive text on a hot path); a ``module:level`` word of LogLevel adds
        one dict lookup, only when such words were given.
Rule 3: the log file is opened O_APPEND and each line is one ``os.write``, so lines written by
        the master and by many children never interleave.
Rule 4: ErrorLog targets as httpd: a path, ``stderr``, ``syslog[:facility[:tag]]`` (the line
        without its time stamp goes to syslog(3) at the matching priority), or a piped program
        ``|cmd`` / ``|$cmd`` (core/piped.py: started once by the master, inherited by children).
Rule 5: LogLevel words as httpd's set_loglevel: a bare level sets the server's level and resets
        every module level; ``module:level`` sets one module's (``authz_core``,
        ``authz_core_module`` or ``mod_authz_core.c``).  The config converter validates the
        words with ``parse_log_level``; that the modules exist is the loader's check.
Rule 6: ``ErrorLogFormat`` replaces the line shape, as httpd's (``ErrorLogFormat.render``):
        %t %{u}t %{c}t %{cu}t, %l %m %M (the message with its id) %P %T %{g}T %F %E, and for a
        request's lines %a %{c}a %A %L %{name}i %{name}e %{name}n %k %v %V; ``%-x`` logs "-"
        for an empty item, ``%7x`` only from that level (7: debug) on; a blank (or ``% ``)
        starts a field, ``\\ `` is a blank inside one, and a field with an empty item is left
        out whole (``[client\\ %a]`` on a line about no request).  An unknown specifier is
        refused at -t in httpd's words.  Without it, the line is Rule 1's.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Callable

from mpmd.core import piped

LEVELS: dict[str, int] = {
    "emerg": 0, "alert": 1, "crit": 2, "error": 3, "warn": 4, "notice": 5, "info": 6, "debug": 7,
    **{f"trace{i}": 7 + i for i in range(1, 9)},
}
LEVEL_KEYWORD_ERROR = ("Log level keyword must be one of emerg/alert/crit/error/warn/notice/info/"
                       "debug/trace1/.../trace8")
SYSLOG_PRIORITY = {"emerg": 0, "alert": 1, "crit": 2, "error": 3, "warn": 4, "notice": 5,
                   "info": 6}          # debug and trace*: LOG_DEBUG (7)
DEFAULT_SYSLOG_FACILITY = "local7"     # httpd's default


def module_key(name: str) -> str:
    """``mod_authz_core.c``, ``authz_core_module``, ``authz_core`` -> ``authz_core``."""
    name = name.strip().lower()
    if name.endswith(".c"):                      # a module's source file name: mod_mime.c, prefork.c
        name = name[:-2].removeprefix("mod_")
    return name.removesuffix("_module")


def parse_log_level(text: str) -> tuple[int | None, dict[str, int]]:
    """LogLevel words -> (server level or None, {module key: level}); ValueError as httpd's."""
    level: int | None = None
    modules: dict[str, int] = {}
    for word in str(text).split():
        module, colon, keyword = word.partition(":")
        if not colon:
            if word.lower() not in LEVELS:
                raise ValueError(LEVEL_KEYWORD_ERROR)
            level, modules = LEVELS[word.lower()], {}      # a bare level resets the modules
            continue
        if not keyword:
            raise ValueError(f"Module specifier '{module}' must be followed by a log level keyword")
        if keyword.lower() not in LEVELS:
            raise ValueError(f"{module}:{keyword}: {LEVEL_KEYWORD_ERROR}")
        modules[module_key(module)] = LEVELS[keyword.lower()]
    return level, modules


def log_level_modules(text: str) -> list[str]:
    """The module names LogLevel's ``module:level`` words name, as written."""
    return [w.partition(":")[0] for w in str(text).split() if ":" in w]


def errno_text(exc: OSError) -> str:
    """httpd's ``(2)No such file or directory`` prefix for an OS error."""
    return f"({exc.errno}){exc.strerror}" if exc.errno else str(exc)


def _stamp(now: float) -> str:
    frac = int((now % 1) * 1_000_000)
    t = time.localtime(now)
    return time.strftime("%a %b %d %H:%M:%S", t) + f".{frac:06d} " + time.strftime("%Y", t)


class _Syslog:
    """``syslog[:facility[:tag]]``: the stdlib syslog module, opened once per process tree."""

    def __init__(self, target: str) -> None:
        import syslog
        _, _, rest = target.partition(":")
        facility, _, tag = rest.partition(":")
        facility = facility or DEFAULT_SYSLOG_FACILITY
        code = getattr(syslog, f"LOG_{facility.upper()}", None)
        if not facility.isalnum() or not isinstance(code, int):
            raise OSError(f"could not open syslog error log {facility}.")
        self.syslog = syslog
        syslog.openlog(tag or "mpmd", syslog.LOG_PID | syslog.LOG_NDELAY | syslog.LOG_CONS, code)

    def write(self, level: str, line: str) -> None:
        self.syslog.syslog(SYSLOG_PRIORITY.get(level, 7), line)


# --- ErrorLogFormat (Rule 6) ----------------------------------------------------------------

SEP = 1              # the item starts a field
HYPHEN = 2           # "%-x": "-" when empty
MESSAGE = 4          # %M: always written, even in a field being left out
TIME_ARGS = {"", "u", "c", "cu", "uc"}
M_MISSING = "main ErrorLogFormat must contain message format string '%M'"


def _time_item(now: float, arg: str) -> str:
    t = time.localtime(now)
    frac = f".{int((now % 1) * 1_000_000):06d}" if "u" in arg else ""
    if "c" in arg:                               # compact ISO 8601
        return time.strftime("%Y-%m-%d %H:%M:%S", t) + frac
    return time.strftime("%a %b %d %H:%M:%S", t) + frac + time.strftime(" %Y", t)


def _addr(pair: Any) -> str:
    return f"{pair[0]}:{pair[1]}" if pair else ""


def _client(ctx: Any, arg: str) -> str:
    if ctx is None:
        return ""
    useragent = getattr(ctx, "useragent_addr", None)
    if arg != "c" and useragent is not None:
        return _addr(useragent())
    conn = ctx.conn
    return _addr(getattr(conn, "peer", None) or conn.client_addr)


def _request_log_id(ctx: Any) -> str:
    if ctx is None:
        return ""
    try:
        from mpmd.core.logid import log_id
    except ImportError:                          # no request ids in this build
        return getattr(ctx, "log_id", None) or ""
    return log_id(ctx)


def _header(ctx: Any, name: str) -> str:
    if ctx is None:
        return ""
    value = ctx.request.header(name.lower().encode("latin-1"))
    return value.decode("latin-1") if value else ""


def _caller() -> str:
    """%F: the file and line of the code that logged, out of this module and the helpers that
    log for a request (``request.log_error``): ``cycle.py(212)``."""
    frame = sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename == __file__
                                 or frame.f_code.co_name == "log_error"):
        frame = frame.f_back
    if frame is None:
        return ""
    return f"{os.path.basename(frame.f_code.co_filename)}({frame.f_lineno})"


def _server_name(facts: dict[str, Any]) -> str:
    """%v: the ServerName of the request's server (its vhost), else of the log's server."""
    ctx = facts["ctx"]
    name = getattr(getattr(ctx, "server", None), "server_name", None) if ctx is not None else None
    return _host_only(name) if isinstance(name, str) else facts["server_name"]


def _host_only(name: str) -> str:
    """``www.example.com:8080`` -> ``www.example.com`` (``[::1]`` stays)."""
    host, colon, port = name.rpartition(":")
    return host if colon and port.isdigit() and not name.endswith("]") else name


# specifier -> (value(line facts, argument), the arguments it takes (None: any))
_Facts = dict[str, Any]
SPECIFIERS: dict[str, tuple[Callable[[_Facts, str], str], set[str] | None]] = {
    "t": (lambda f, a: _time_item(f["now"], a), TIME_ARGS),
    "l": (lambda f, a: f["level"], {""}),
    "m": (lambda f, a: f["module"], {""}),
    "M": (lambda f, a: f["message"], {""}),
    "P": (lambda f, a: str(os.getpid()), {""}),
    "T": (lambda f, a: str(threading.get_native_id() if a == "g" else threading.get_ident()), {"", "g"}),
    "F": (lambda f, a: _caller(), {""}),
    "E": (lambda f, a: "", {""}),                # errors are in the message: "(2)No such file..."
    "a": (lambda f, a: _client(f["ctx"], a), {"", "c"}),
    "A": (lambda f, a: _addr(f["ctx"].conn.server_addr) if f["ctx"] is not None else "", {""}),
    "L": (lambda f, a: _request_log_id(f["ctx"]), {""}),
    "i": (lambda f, a: _header(f["ctx"], a), None),
    "e": (lambda f, a: str(f["ctx"].env.get(a, "")) if f["ctx"] is not None else "", None),
    "n": (lambda f, a: str(f["ctx"].notes.get(a, "") or "") if f["ctx"] is not None else "", None),
    "k": (lambda f, a: str(f["ctx"].conn.requests_served) if f["ctx"] is not None else "", {""}),
    "v": (lambda f, a: _server_name(f), {""}),
    "V": (lambda f, a: (f["ctx"].host().rsplit(":", 1)[0] if f["ctx"] is not None and f["ctx"].host()
                        else _server_name(f)), {""}),
    "%": (lambda f, a: "%", {""}),
}
_ESCAPES = {"r": "\r", "n": "\n", "t": "\t"}


class ErrorLogFormat:
    """A parsed ErrorLogFormat (Rule 6): items of (flags, minimum level, specifier, argument
    or literal text).  ValueError in httpd's words for what it refuses."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.items: list[tuple[int, int, str, str]] = []
        i, n = 0, len(text)
        while i < n:
            flags = 0
            if text[i] == "%" and text[i + 1:i + 2] == " ":      # "% ": a field, no output
                flags, i = SEP, i + 2
                if i >= n:
                    break
            if text[i] == "%":
                i = self._item(text, i + 1, flags)
            else:
                i = self._literal(text, i, flags)
        if not any(f & MESSAGE for f, _, _, _ in self.items):
            raise ValueError(M_MISSING)

    def _item(self, text: str, i: int, flags: int) -> int:
        level, arg = 0, ""
        while i < len(text):
            c = text[i]
            if c == "{":
                end = text.find("}", i)
                if end < 0:
                    raise ValueError("missing '}' in error log format")
                arg, i = text[i + 1:end], end + 1
            elif c == "-":
                flags, i = flags | HYPHEN, i + 1
            elif c == "+":
                raise ValueError("The '+' flag cannot be used in the main error log format")
            elif c.isdigit():
                level, i = int(c), i + 1
            else:
                spec = SPECIFIERS.get(c)
                if spec is None:
                    raise ValueError(f"Unrecognized error log format directive %{c}")
                if spec[1] is not None and arg not in spec[1]:
                    raise ValueError(f"ErrorLogFormat: %{{{arg}}}{c} is not supported by mpmd")
                if spec[1] is None and not arg:
                    raise ValueError(f"ErrorLogFormat: %{c} needs a name: %{{name}}{c}")
                if c == "M":
                    flags |= MESSAGE
                self.items.append((flags, level, c, arg))
                return i + 1
        raise ValueError("Ran off end of error log format parsing args to some directive")

    def _literal(self, text: str, i: int, flags: int) -> int:
        """Text up to the next % or blank; a leading blank starts a field (httpd)."""
        if text[i] == " ":
            flags |= SEP
        out: list[str] = []
        at_start = True
        while i < len(text) and text[i] != "%" and (text[i] != " " or at_start):
            c = text[i]
            if c == "\\" and i + 1 < len(text):
                out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
                i += 2
                at_start = False
                continue
            if c != " ":
                at_start = False
            out.append(c)
            i += 1
        self.items.append((flags, 0, "", "".join(out)))
        return i

    def render(self, facts: _Facts, level_number: int) -> str:
        """The line (httpd's do_errorlog_format): a field with an empty item is dropped."""
        out = ""
        field_start = 0
        skipping = False
        for flags, min_level, spec, arg in self.items:
            if flags & SEP:
                if skipping:
                    skipping = False
                else:
                    field_start = len(out)
            if flags & MESSAGE:
                out += facts["message"]
                continue
            if skipping:
                continue
            if min_level > level_number:
                out, skipping = out[:field_start], True
                continue
            value = arg if not spec else SPECIFIERS[spec][0](facts, arg)
            if value:
                out += value
            elif flags & HYPHEN:
                out += "-"
            elif spec:
                out, skipping = out[:field_start], True
        return out


_FORMATS: dict[str, ErrorLogFormat] = {}


def parse_error_log_format(text: str) -> ErrorLogFormat:
    """The parsed format, once per text (ValueError: Rule 6)."""
    fmt = _FORMATS.get(text)
    if fmt is None:
        fmt = _FORMATS[text] = ErrorLogFormat(text)
    return fmt


class ErrorLog:
    """Writes leveled lines to a file, stderr, a pipe or syslog (Rule 4).  Inherited across fork."""

    def __init__(self, path: str | None = None, level: str = "warn", line_format: str | None = None,
                 server_name: str | None = None) -> None:
        self.path = path
        server, self.module_levels = parse_log_level(level)
        self.level = LEVELS["warn"] if server is None else server
        self.format = parse_error_log_format(line_format) if line_format else None
        self.server_name = server_name or ""
        self.syslog: _Syslog | None = None
        if isinstance(path, str) and (path == "syslog" or path.startswith("syslog:")):
            self.syslog = _Syslog(path)
            self.fd = -1
        else:
            self.fd = self._open(path)

    @staticmethod
    def _open(path: str | None) -> int:
        if not path or path in ("stderr", "/dev/stderr"):
            return sys.stderr.fileno()
        if piped.is_piped(path):
            return piped.open(path)
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def limit(self, module: str) -> int:
        """The level in force for ``module`` (Rule 5)."""
        if not self.module_levels:
            return self.level
        key = module_key(module)
        # An MPM logs as "prefork" or "mpm_prefork"; LogLevel may say mpm_prefork or prefork.c.
        for name in (key, f"mpm_{key}", key.removeprefix("mpm_")):
            found = self.module_levels.get(name)
            if found is not None:
                return found
        return self.level

    def enabled(self, level: str, module: str = "core") -> bool:
        return LEVELS[level] <= (self.level if not self.module_levels else self.limit(module))

    def log(self, level: str, msg_id: str, text: str, module: str = "core", ctx: Any = None) -> None:
        """``ctx``: the request the line is about, for ErrorLogFormat's %a, %L, %{name}i ..."""
        # notice is always written, as httpd does for startup/shutdown messages.
        limit = self.level if not self.module_levels else self.limit(module)
        if LEVELS[level] > limit and level != "notice":
            return
        if self.format is not None:
            self._write_formatted(level, msg_id, text, module, ctx)
            return
        body = f"[{module}:{level}] [pid {os.getpid()}] {msg_id}: {text}"
        if self.syslog is not None:
            self.syslog.write(level, body)
            return
        line = f"[{_stamp(time.time())}] {body}\n"
        try:
            os.write(self.fd, line.encode("utf-8", "replace"))
        except OSError:
            pass

    def _write_formatted(self, level: str, msg_id: str, text: str, module: str, ctx: Any) -> None:
        facts = {"now": time.time(), "level": level, "module": module, "message": f"{msg_id}: {text}",
                 "ctx": ctx, "server_name": self.server_name}
        assert self.format is not None
        line = self.format.render(facts, LEVELS[level])
        if self.syslog is not None:
            self.syslog.write(level, line)
            return
        try:
            os.write(self.fd, (line + "\n").encode("utf-8", "replace"))
        except OSError:
            pass

    def emerg(self, msg_id: str, text: str, module: str = "core") -> None:
        self.log("emerg", msg_id, text, module)

    def error(self, msg_id: str, text: str, module: str = "core") -> None:
        self.log("error", msg_id, text, module)

    def warn(self, msg_id: str, text: str, module: str = "core") -> None:
        self.log("warn", msg_id, text, module)

    def notice(self, msg_id: str, text: str, module: str = "core") -> None:
        self.log("notice", msg_id, text, module)

    def info(self, msg_id: str, text: str, module: str = "core") -> None:
        self.log("info", msg_id, text, module)

    def debug(self, msg_id: str, text: str, module: str = "core") -> None:
        self.log("debug", msg_id, text, module)

    def close(self) -> None:
        # A piped log's fd belongs to core/piped.py, which closes it at master exit.
        if self.fd > 2 and not piped.is_piped(self.path):
            os.close(self.fd)
        self.fd = sys.stderr.fileno()


# id(vhost) -> (vhost, its ErrorLog) for each <VirtualHost> with an ErrorLog or LogLevel of its
# own, opened by the master per generation (before User/Group, as httpd opens them) and
# inherited by the children.  A request's errors go to its server's log (``for_server``).
_server_logs: dict[int, tuple[Any, ErrorLog]] = {}


def open_server_logs(cfg: Any) -> None:
    """In the master, each generation: the vhosts' own ErrorLogs; the last generation's close."""
    old = [log for _, log in _server_logs.values()]
    _server_logs.clear()
    hosts = getattr(cfg, "vhosts", None)
    mine = (getattr(cfg, "error_log", None), getattr(cfg, "log_level", None),
            getattr(cfg, "error_log_format", None))
    for server in (hosts.vhosts if hosts else ()):
        if (server.error_log, server.log_level, server.error_log_format) != mine:
            _server_logs[id(server)] = (server, from_config(server))
    for log in old:
        log.close()


def for_server(server: Any, fallback: Any) -> Any:
    """The ErrorLog of ``server`` when it has its own, else ``fallback`` (the main one)."""
    hit = _server_logs.get(id(server))
    return hit[1] if hit is not None and hit[0] is server else fallback


def from_config(cfg: Any) -> ErrorLog:
    """The ErrorLog for a ServerConfig (ErrorLog/LogLevel directives; stderr when unset)."""
    path = getattr(cfg, "error_log", None)
    level = getattr(cfg, "log_level", "warn") or "warn"
    line_format = getattr(cfg, "error_log_format", None)
    name = getattr(cfg, "server_name", None)
    return ErrorLog(path if isinstance(path, str) else None, str(level),
                    line_format if isinstance(line_format, str) else None,
                    _host_only(name) if isinstance(name, str) else None)
