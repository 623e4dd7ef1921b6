"""The master: config -> listeners -> scoreboard -> MPM.run(), in a restart loop.

Theory: ``serve(cfg, opts)`` binds every Listen address, creates the scoreboard (sized once by
ServerLimit/ThreadLimit), installs the signal table and writes the PidFile.  Each *generation*
builds an MPM with the current config and runs it; the MPM returns STOP, RESTART or GRACEFUL.
On a restart the NEW config is built first, before any child retires (``load_next``, called by
the MPM when the signal comes); if it does not load, or an application it mounts no longer
imports, nothing restarts: the running generation keeps serving (``apachectl graceful`` refuses
a config that fails its configtest the same way).

Rule 1: the master never serves requests (except with -X, where there is no master at all).
Rule 2: listeners survive restarts; Listen changes need a full stop/start.
Rule 3: the ready file is written (atomically) once the generation's children are up:
        ``{"pid": master_pid, "listeners": [[host, port], ...], "mpm": name, "generation": n}``.
Rule 4: ``ps`` and ``top`` tell the master from its children: its title is
        ``mpmd: master (event) -f /etc/mpmd/httpd.conf`` (the command's arguments), theirs
        ``mpmd: child (event) generation 3`` (``mpm/common.py`` Rule 6).  -X keeps its command.
Rule 5: once the first generation is up the URLs it serves are printed on stderr
        (``mpmd: serving http://127.0.0.1:8080/``); a detached server (``-k start``,
        supervisor/daemon.py) hands them to the command that started it, which prints them.
Rule 6: systemd hears of each step through sd_notify (supervisor/notify.py): READY=1,
        RELOADING=1 then READY=1 on a restart, STOPPING=1, and STATUS= from maintenance.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

from mpmd.supervisor import listeners as listeners_mod
from mpmd.core import log as log_mod
from mpmd.core import piped
from mpmd.supervisor import pidfile
from mpmd.supervisor.daemon import Detached, detach
from mpmd.supervisor.notify import Notifier
from mpmd.supervisor.signals import SignalQueue
from mpmd.mpm import load_mpm_class
from mpmd.mpm.base import Runtime, RunResult
from mpmd.mpm.common import master_title, set_proctitle
from mpmd.scoreboard.board import Scoreboard
from mpmd.tls import sites_of

M_BIND = "MPMD0001"
M_RUNNING = "MPMD0002"
M_STOPPING = "MPMD0003"
M_RELOAD_FAILED = "MPMD0004"
M_RESTARTING = "MPMD0005"
M_MPM_FAILED = "MPMD0006"
M_CHECK = "MPMD0007"
M_POST_CONFIG = "MPMD0008"
M_PID_CREATE = "MPMD0009"
M_PID_LOG = "MPMD0010"
M_OPEN_LOG = "MPMD0011"


def write_ready_file(path: str, pid: int, lsts: list[Any], mpm: str, generation: int) -> None:
    data = {"pid": pid, "listeners": [[lst.host, lst.port] for lst in lsts], "mpm": mpm,
            "generation": generation}
    tmp = f"{path}.tmp{pid}"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def reload_config(cfg: Any, opts: Any, log: Any) -> Any:
    """The NEW config for a restart, or the old one when it does not load."""
    loader = getattr(opts, "load_config", None)
    try:
        if callable(loader):
            return loader()
        from mpmd.config.loader import load_config
        path = getattr(opts, "config_file", None)
        return load_config(path, defines=tuple(getattr(opts, "defines", ()) or ()))
    except Exception as exc:  # noqa: BLE001 - any failure keeps the running config
        # one error-log line per config error (a ConfigErrors holds every error of the load)
        for error in getattr(exc, "errors", None) or [exc]:
            text = str(error).replace("\n", " ")
            log.error(M_RELOAD_FAILED, f"restart failed, keeping the running configuration: {text}")
        return cfg


class Master:
    """One server lifetime: what survives restarts is held here (httpd retained data)."""

    def __init__(self, cfg: Any, opts: Any) -> None:
        self.cfg = cfg
        self.opts = opts
        self.log = log_mod.from_config(cfg)
        self.pid = os.getpid()
        self.listeners: list[Any] = []
        self.retained: dict[str, Any] = {}        # pool, pipe of death, spawn state, halt flag
        self.generation = 0
        self.signals: SignalQueue | None = None
        self.detached: Detached | None = getattr(opts, "detached", None)
        self.notifier = Notifier()
        self.announced = False
        self.next_cfg: Any = None                 # read by load_next, taken by restart

    def setup(self) -> int:
        try:
            self.listeners = listeners_mod.bind_all(
                self.cfg.listen, int(getattr(self.cfg, "listen_backlog", 511) or 511),
                defer_accept=_defers_accept(self.cfg), remap=getattr(self.cfg, "listen_remap", ()))
        except listeners_mod.BindError as exc:
            # httpd says this on stderr, before its logs are open (AH00072, then AH00015).
            say(f"{log_mod.errno_text(exc.error)}: {M_BIND}: make_sock: could not bind to "
                f"address {exc.address}\nno listening sockets available, shutting down")
            return 1
        self.mpm_cls = load_mpm_class(self.cfg.mpm_name)
        for problem in self.mpm_cls.check_config(self.cfg):
            self.log.warn(getattr(problem, "id", M_CHECK), getattr(problem, "text", str(problem)),
                          f"mpm_{self.cfg.mpm_name}")
        limits = self.mpm_cls.scoreboard_limits(self.cfg)
        self.scoreboard = Scoreboard(*limits)
        return 0

    def ready(self) -> None:
        path = getattr(self.opts, "ready_file", None)
        if path:
            write_ready_file(path, self.pid, self.listeners, self.cfg.mpm_name, self.generation)
        self.notifier.ready(self.scoreboard)
        if not self.announced:                   # Rule 5
            self.announced = True
            urls = [listener_url(lst) for lst in self.listeners]
            if self.detached is not None:
                self.detached.started(urls)
            else:
                say("".join(f"mpmd: serving {url}\n" for url in urls).rstrip("\n"))

    def stopping(self) -> None:
        self.notifier.stopping()

    def tick(self) -> None:
        self.notifier.tick(self.scoreboard)

    def run(self) -> int:
        single = bool(getattr(self.opts, "single_process", False))
        if not single:
            self.signals = SignalQueue()
            self.signals.install()
            set_proctitle(master_title(self.cfg.mpm_name, sys.argv[1:]))
        else:
            # -X: TERM (`-k stop`) stops like Ctrl-C, through the finally below that removes
            # the PidFile, instead of killing the process where it stands.
            previous_term = signal.signal(signal.SIGTERM, signal.default_int_handler)
        # -X writes the PidFile too (httpd does), so `-k stop` finds a debugging server.
        pid_path = getattr(self.cfg, "pid_file", None)
        try:
            if pid_path and not self.log_pid(pid_path):
                return 1
            self.log.notice(M_RUNNING, f"mpmd ({self.cfg.mpm_name}) configured -- resuming normal "
                            "operations", f"mpm_{self.cfg.mpm_name}")
            try:
                return self.loop(single)
            finally:
                if pid_path:
                    pidfile.remove(pid_path, self.pid)
        finally:
            listeners_mod.close_all(self.listeners)
            self.notifier.close()
            if self.signals is not None:
                self.signals.restore()
            if single:
                signal.signal(signal.SIGTERM, previous_term)

    def log_pid(self, path: str) -> bool:
        """Write the PidFile before any child exists; False (logged as httpd's AH00099 and
        AH00100) when it cannot be written: the server does not start."""
        try:
            pidfile.write(path, self.pid)
        except pidfile.PidFileError as exc:
            self.log.error(M_PID_CREATE, f"{log_mod.errno_text(exc.error)}: could not create {exc.tmp}")
            self.log.error(M_PID_LOG, f"mpmd: could not log pid to file {path}")
            return False
        return True

    def post_config(self) -> bool:
        """Run the modules' post_config hooks in the master, before forking (e.g. WSGIPreload)."""
        try:
            log_mod.open_server_logs(self.cfg)
        except OSError as exc:
            self.log.emerg(M_POST_CONFIG, f"could not open a virtual host's ErrorLog: {exc}")
            return False
        hooks = getattr(self.cfg, "hooks", None)
        if hooks is None or "post_config" not in getattr(hooks, "by_hook", {}):
            return True
        try:
            hooks.run("post_config", self.cfg)
        except Exception as exc:  # noqa: BLE001 - a module failing at start-up stops the server
            self.log.emerg(M_POST_CONFIG, f"post_config failed: {exc!r}")
            return False
        return True

    def loop(self, single: bool) -> int:
        while True:
            if not self.post_config():
                return 1
            # TLS: the contexts this generation's config built while it loaded (mod_ssl)
            listeners_mod.assign_tls(self.listeners, sites_of(self.cfg))
            if self.detached is not None:        # checked: leave the terminal (daemon.py)
                self.detached.release_terminal()
            runtime = Runtime(log=self.log, signals=self.signals, generation=self.generation,
                              single_process=single, on_ready=self.ready, retained=self.retained,
                              on_stopping=self.stopping, on_tick=self.tick,
                              load_next=self.load_next)
            mpm = self.mpm_cls(self.cfg, self.listeners, self.scoreboard, runtime)
            result = mpm.run()
            if result in (RunResult.STOP, RunResult.GRACEFUL_STOP):
                self.notifier.stopping()
                self.log.notice(M_STOPPING, "caught SIGTERM, shutting down")
                return 1 if self.retained.get("halt") else 0
            self.restart(result)

    def load_next(self) -> bool:
        """A restart signal: read the new config while the running generation still serves.
        False when it does not load (or names another MPM): nothing restarts."""
        self.notifier.reloading()
        new = reload_config(self.cfg, self.opts, self.log)
        if new is not self.cfg and getattr(new, "mpm_name", None) != self.cfg.mpm_name:
            self.log.error(M_RELOAD_FAILED, "the MPM cannot change on restart; keeping "
                           f"{self.cfg.mpm_name}")
            new = self.cfg
        if new is self.cfg:
            self.notifier.ready(self.scoreboard)
            return False
        self.next_cfg = new
        return True

    def restart(self, result: RunResult) -> None:
        if self.next_cfg is None:                 # an MPM that restarts without asking
            self.load_next()
        self.cfg, self.next_cfg = self.next_cfg or self.cfg, None
        self.generation += 1
        kind = "Graceful restart" if result is RunResult.GRACEFUL else "SIGHUP received.  Attempting to restart"
        self.log.notice(M_RESTARTING, f"{kind} (generation {self.generation})")


def serve(cfg: Any, opts: Any) -> int:
    """Run the server until stopped; the process exit code (0 after a clean stop, 1 when it
    cannot start: nothing is left behind -- no listener, child, PidFile or piped logger)."""
    if getattr(opts, "detach", False):       # -k start: the command waits, the server runs on
        outcome = detach()
        if isinstance(outcome, int):
            return outcome
        opts.detached = outcome
    try:
        try:
            master = Master(cfg, opts)
        except OSError as exc:               # ErrorLog unwritable, syslog facility unknown ...
            say(open_log_failure(exc, getattr(cfg, "error_log", "")))
            return 1
        code = master.setup()
        if code:
            return code
        return master.run()
    finally:
        piped.close_all()


def listener_url(lst: Any) -> str:
    """``http://127.0.0.1:8080/``, ``https://[::1]:8443/``; "Listen 80" is ``http://0.0.0.0:80/``."""
    host = lst.host or "0.0.0.0"
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if lst.tls else 'http'}://{host}:{lst.port}/"


def open_log_failure(exc: OSError, target: str) -> str:
    """httpd's AH00091 (or AH10036 for syslog), then AH00015."""
    if exc.errno:
        text = f"{log_mod.errno_text(exc)}: {M_OPEN_LOG}: mpmd: could not open error log file {target}."
    else:
        text = f"{M_OPEN_LOG}: mpmd: {exc}"
    return f"{text}\nUnable to open logs"


def say(text: str) -> None:
    """Start-up failures before the ErrorLog is usable go to stderr, as httpd's do."""
    print(text, file=sys.stderr, flush=True)


def _defers_accept(cfg: Any) -> bool:
    """``AcceptFilter http data`` (the default) -> TCP_DEFER_ACCEPT on the listeners."""
    words = getattr(cfg, "accept_filter", None) or ["http", "data"]
    return str(words[-1]).lower() in ("data", "dataready", "httpready")
