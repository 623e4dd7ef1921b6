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
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

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


class ErrorLog:
    """Writes leveled lines to a file, stderr, a pipe or syslog (Rule 4).  Inherited across fork."""

    def __init__(self, path: str | None = None, level: str = "warn") -> None:
        self.path = path
        server, self.module_levels = parse_log_level(level)
        self.level = LEVELS["warn"] if server is None else server
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

    def log(self, level: str, msg_id: str, text: str, module: str = "core") -> None:
        # notice is always written, as httpd does for startup/shutdown messages.
        limit = self.level if not self.module_levels else self.limit(module)
        if LEVELS[level] > limit and level != "notice":
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
    mine = (getattr(cfg, "error_log", None), getattr(cfg, "log_level", None))
    for server in (hosts.vhosts if hosts else ()):
        if (server.error_log, server.log_level) != mine:
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
    return ErrorLog(path if isinstance(path, str) else None, str(level))
