"""Signals: one table maps each signal to an action, for the master and for ``-k ACTION``.

Rule 1: a handler only records the signal (writes its number to a self-pipe); the master's loop
        reads the pipe and dispatches to ``handle_<action>`` (nginx signals[], gunicorn arbiter).
Rule 2: ``mpmd -k ACTION`` looks the action up in the same ``SIGNALS`` table, reads the PidFile
        and sends the signal; with no server running it does what httpd does (send_action).
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import sys
from typing import Any

from mpmd.mpm.base import ACTION_OF, SIGNAL_FOR_COMMAND, SIGNALS
from mpmd.supervisor import pidfile


class SignalQueue:
    """Self-pipe: handlers write signal numbers, the loop waits on ``fileno()`` and drains."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old: dict[int, Any] = {}
        self.pid = os.getpid()

    def _handler(self, signo: int, frame: Any) -> None:
        if os.getpid() != self.pid:
            return               # a forked child before close_in_child: the pipe is the master's
        try:
            os.write(self.w, bytes((signo,)))
        except OSError:
            pass                 # pipe full: the same signals are already queued

    def install(self) -> None:
        for spec in SIGNALS:
            self._old[spec.signo] = signal.signal(spec.signo, self._handler)
            signal.siginterrupt(spec.signo, False)

    def restore(self) -> None:
        for signo, old in self._old.items():
            signal.signal(signo, old if old is not None else signal.SIG_DFL)
        self._old.clear()

    def fileno(self) -> int:
        return self.r

    def wait(self, timeout: float) -> list[str]:
        """Actions recorded so far, waiting up to ``timeout`` seconds for the first one."""
        try:
            ready, _, _ = select.select([self.r], [], [], max(timeout, 0.0))
        except InterruptedError:
            ready = [self.r]
        return self.drain() if ready else []

    def drain(self) -> list[str]:
        actions: list[str] = []
        while True:
            try:
                data = os.read(self.r, 512)
            except BlockingIOError:
                break
            if not data:
                break
            actions.extend(ACTION_OF[b] for b in data if b in ACTION_OF)
        return actions

    def close_in_child(self, restore: bool = True) -> None:
        """A forked child keeps no part of the master's signal plumbing: the handlers as they
        were before ``install`` (``restore``: False when the child installs its own for every
        signal of the table right after, which spares it that work) and no self-pipe."""
        if restore:
            self.restore()
        for fd in (self.r, self.w):
            try:
                os.close(fd)
            except OSError:
                pass


def set_cloexec(fd: int) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFD)
    fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)


NOT_RUNNING = -1      # send_action: no server to signal, and the action starts one (the CLI does)
STARTS_IF_NOT_RUNNING = ("restart", "graceful")


def find_master(cfg: Any) -> tuple[int | None, str]:
    """(pid of the running master or None, httpd's words for why not: "(no pid file)", "(pid 7?)")."""
    path = getattr(cfg, "pid_file", None)
    pid = pidfile.read(path) if path else None
    if pid is None:
        return None, "(no pid file)"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None, f"(pid {pid}?)"
    except PermissionError:
        pass                     # someone else's process: it exists
    return pid, f"(pid {pid})"


def send_action(cfg: Any, action: str) -> int:
    """``mpmd -k ACTION``: signal the running master named by the PidFile; 0 on success.

    With no server running, stop and graceful-stop say so and succeed (httpd: "httpd (no pid
    file) not running", exit 0); restart and graceful return NOT_RUNNING and the CLI starts one.
    """
    signo = SIGNAL_FOR_COMMAND.get(action)
    if signo is None:
        print(f"mpmd: unknown -k action {action!r}; use one of "
              f"{', '.join(sorted(SIGNAL_FOR_COMMAND))}", file=sys.stderr)
        return 1
    pid, why = find_master(cfg)
    if pid is None:
        if action in STARTS_IF_NOT_RUNNING:
            return NOT_RUNNING
        print(f"mpmd {why} not running")
        return 0
    try:
        os.kill(pid, signo)
    except ProcessLookupError:
        print(f"mpmd {why} not running")
        return 0
    except PermissionError as exc:
        print(f"mpmd: cannot signal pid {pid}: {exc}", file=sys.stderr)
        return 1
    return 0
