"""ErrorLog and LogLevel: one line per message, with a stable message id (httpd APLOGNO).

Line shape (httpd 2.4): ``[Wed Oct 11 14:32:52.123456 2000] [mpm_prefork:notice] [pid 42] MPMD0101: text``

Rule 1: every message that tests or operators grep for has an id ``MPMDnnnn``; ids are never reused.
Rule 2: a message below the configured level costs one integer comparison (check ``enabled()``
        before building expensive text on a hot path).
Rule 3: the log file is opened O_APPEND and each line is one ``os.write``, so lines written by
        the master and by many children never interleave.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

LEVELS: dict[str, int] = {
    "emerg": 0, "alert": 1, "crit": 2, "error": 3, "warn": 4, "notice": 5, "info": 6, "debug": 7,
    **{f"trace{i}": 7 + i for i in range(1, 9)},
}


def _stamp(now: float) -> str:
    frac = int((now % 1) * 1_000_000)
    t = time.localtime(now)
    return time.strftime("%a %b %d %H:%M:%S", t) + f".{frac:06d} " + time.strftime("%Y", t)


class ErrorLog:
    """Writes leveled lines to a file (or stderr).  Inherited across fork."""

    def __init__(self, path: str | None = None, level: str = "warn") -> None:
        self.path = path
        self.level = LEVELS.get(str(level).split()[0].split(":")[-1].lower(), LEVELS["warn"])
        self.fd = self._open(path)

    @staticmethod
    def _open(path: str | None) -> int:
        if not path or path in ("stderr", "/dev/stderr"):
            return sys.stderr.fileno()
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def enabled(self, level: str) -> bool:
        return LEVELS[level] <= self.level

    def log(self, level: str, msg_id: str, text: str, module: str = "core") -> None:
        # notice is always written, as httpd does for startup/shutdown messages.
        if LEVELS[level] > self.level and level != "notice":
            return
        line = f"[{_stamp(time.time())}] [{module}:{level}] [pid {os.getpid()}] {msg_id}: {text}\n"
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
        if self.fd > 2:
            os.close(self.fd)
            self.fd = sys.stderr.fileno()


def from_config(cfg: Any) -> ErrorLog:
    """The ErrorLog for a ServerConfig (ErrorLog/LogLevel directives; stderr when unset)."""
    path = getattr(cfg, "error_log", None)
    level = getattr(cfg, "log_level", "warn") or "warn"
    if isinstance(path, str) and path.startswith("|"):
        path = None        # piped logs are not supported: fall back to stderr
    return ErrorLog(path if isinstance(path, str) else None, str(level))
