"""Cross-directive checks, run after loading; ``mpmd -t`` prints what they find.

Rule 1: a check is a function ``(cfg) -> list[Problem]`` in ``CHECKS``; it never raises and
        never changes the config except to clamp a value the way httpd does, saying so.
Rule 2: MPM-specific checks belong to the MPM class (``check_config(cfg)``, httpd's
        prefork_check_config); module checks to the module (an optional ``check_config``).
Rule 3: level "error" problems stop the server (the loader raises them as ConfigError, at
        the problem's file and line: a check that finds an error names the line to blame);
        "warn" and "notice" are printed by -t and logged at start.
Message ids: config owns MPMD05nn (loader: 0510-0519; checks: 0501-0509; 0507: the line after
a check's error, "Configuration check failed"; 0508/0509: StuckRequestAction).
"""

from __future__ import annotations

import os
from typing import Any, Callable

from mpmd.config.model import Problem


def no_listen(cfg: Any) -> list[Problem]:
    if cfg.listen:
        return []
    return [Problem("warn", "MPMD0501", "no Listen directive: the server would not listen on any socket")]


def duplicate_listen(cfg: Any) -> list[Problem]:
    """httpd's words, at the line of the second Listen of an address (port 0: tests)."""
    seen: set[tuple[str, int]] = set()
    out: list[Problem] = []
    origins = cfg.origins("listen")
    for i, a in enumerate(cfg.listen):
        if a.port == 0:
            continue
        if (a.host, a.port) in seen:
            file, line = origins[i] if i < len(origins) else (None, None)
            out.append(Problem("error", "MPMD0502", "Cannot define multiple Listeners on the same IP:port",
                               file, line))
        seen.add((a.host, a.port))
    return out


def listen_remap_used(cfg: Any) -> list[Problem]:
    """A ListenRemap for a port no Listen line has would change nothing: named, as Rule 7."""
    ports = {a.port for a in cfg.listen}
    origins = cfg.origins("listen_remap")
    out: list[Problem] = []
    for i, (port, _) in enumerate(getattr(cfg, "listen_remap", None) or ()):
        if port not in ports:
            file, line = origins[i] if i < len(origins) else (None, None)
            out.append(Problem("warn", "MPMD0515", f"ListenRemap has no effect: no Listen line "
                                                   f"has port {port}", file, line))
    return out


def document_root_exists(cfg: Any) -> list[Problem]:
    root = cfg.document_root
    if root and not os.path.isdir(root):
        return [Problem("warn", "MPMD0503", f"Warning: DocumentRoot [{root}] does not exist")]
    return []


def pid_dir_exists(cfg: Any) -> list[Problem]:
    # httpd's -t does not look at the PidFile; starting then fails (MPMD0009).  Say it early.
    value = getattr(cfg, "pid_file", None)
    if value and os.path.isabs(value) and not os.path.isdir(os.path.dirname(value)):
        return [Problem("warn", "MPMD0504", f"PidFile directory {os.path.dirname(value)} does not exist")]
    return []


def error_log_dir_exists(cfg: Any) -> list[Problem]:
    """httpd open_error_log: a missing directory fails -t and start-up (AH02291)."""
    value = getattr(cfg, "error_log", None)
    if not value or not os.path.isabs(value):
        return []                      # stderr, syslog, |program
    folder = os.path.dirname(value)
    if os.path.isdir(folder):
        return []
    where = cfg.where("error_log") if hasattr(cfg, "where") else "default"
    return [Problem("error", "MPMD0506", f"(2)No such file or directory: MPMD0506: Cannot access "
                    f"directory '{folder}/' for main error log (ErrorLog at {where})")]


M_STUCK_REPLACE = "MPMD0508"
M_STUCK_INERT = "MPMD0509"


def stuck_requests(cfg: Any) -> list[Problem]:
    """StuckRequestAction replace replaces a process: refused where a process serves several
    requests at once (worker, event: ThreadsPerChild; nginx: a loop's every connection), as
    gunicorn's worker timeout replaces only a worker that stopped as a whole; named at -t when
    StuckRequestTimeout is 0, which leaves it nothing to do."""
    if getattr(cfg, "stuck_request_action", "log") != "replace":
        return []
    file, line = _file_line(cfg.where("stuck_request_action"))
    mpm = cfg.mpm_class
    if not mpm.one_request_per_process():
        return [Problem("error", M_STUCK_REPLACE, f"StuckRequestAction replace is refused with the "
                        f"{cfg.mpm_name} MPM: one of its processes serves many requests at once, "
                        "and replacing it would cut off all of them for the one that is stuck; "
                        "use StuckRequestAction log, or the prefork MPM", file, line)]
    if not float(cfg.stuck_request_timeout or 0):
        return [Problem("warn", M_STUCK_INERT, "StuckRequestAction replace has no effect: "
                        "StuckRequestTimeout is 0 (off)", file, line)]
    return []


def _file_line(where: str) -> tuple[str | None, int | None]:
    """``cfg.where``'s ``file:line`` as (file, line); (None, None) for "default"."""
    file, colon, line = where.rpartition(":")
    return (file, int(line)) if colon and line.isdigit() else (None, None)


def mpm_checks(cfg: Any) -> list[Problem]:
    return _delegate(cfg.mpm_class, cfg, f"mpm_{cfg.mpm_name}_module")


def module_checks(cfg: Any) -> list[Problem]:
    out: list[Problem] = []
    for module in cfg.modules:
        out += _delegate(module, cfg, getattr(module, "name", "") or type(module).__name__)
    return out


def _delegate(owner: Any, cfg: Any, label: str) -> list[Problem]:
    fn = getattr(owner, "check_config", None)
    if fn is None:
        return []
    try:
        return list(fn(cfg) or [])
    except Exception as exc:          # a module's bug must not hide the other checks
        return [Problem("warn", "MPMD0505", f"{label}: check_config failed: {type(exc).__name__}: {exc}")]


CHECKS: list[Callable[[Any], list[Problem]]] = [
    no_listen, duplicate_listen, listen_remap_used, document_root_exists, pid_dir_exists, error_log_dir_exists, mpm_checks,
    module_checks, stuck_requests,
]


def run(cfg: Any) -> list[Problem]:
    problems: list[Problem] = []
    for check in CHECKS:
        problems += check(cfg)
    return problems
