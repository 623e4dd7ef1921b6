"""Piped logs: ``ErrorLog "|cmd"`` and ``CustomLog "|cmd" fmt`` (httpd's reliable piped logs).

Theory: the master spawns each command once, before it forks, with a pipe as the program's
stdin; every child inherits the pipe's write end and writes lines into it.  The master keeps
the read end open too, so when the program dies nothing written is lost and no writer gets
EPIPE: the master reaps it (``reaped`` from the MPM's waitpid loop) and starts the program
again on the same pipe, which then reads what was buffered (httpd piped_log_maintenance).

Rule 1: ``|cmd args`` and ``||cmd args`` run the program directly; ``|$cmd`` runs it with
        /bin/sh -c (httpd 2.4).
Rule 2: one program per distinct command text per server lifetime; ``open`` in a forked child
        finds the master's entry (inherited memory) and spawns nothing.
Rule 3: ``close_all`` (master exit) closes the write end, so the program sees EOF, and gives
        it a moment to finish before SIGTERM: no logger outlives the server.
Message ids: MPMD0012-0013.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

M_RESTARTED = "MPMD0012"
M_SPAWN_FAILED = "MPMD0013"
EXIT_WAIT_S = 2.0


def argv_of(target: str) -> list[str]:
    """``|cmd``, ``||cmd`` or ``|$cmd`` -> the argv to execute (Rule 1)."""
    body = target[1:]
    if body.startswith("$"):
        return ["/bin/sh", "-c", body[1:].strip()]
    return shlex.split(body[1:] if body.startswith("|") else body)


class PipedLog:
    """One piped log program and the pipe it reads; ``fd`` is the end writers use."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.argv = argv_of(target)
        if not self.argv:
            raise OSError(f"empty piped log command {target!r}")
        self.r, self.fd = os.pipe()
        os.set_inheritable(self.fd, True)      # children write; the program gets r as stdin
        self.master_pid = os.getpid()
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawn()

    def spawn(self) -> None:
        try:
            self.proc = subprocess.Popen(self.argv, stdin=self.r, close_fds=True)
        except OSError:
            self.close()
            raise
        _BY_PID[self.proc.pid] = self

    def died(self, status: int) -> None:
        """The program exited: start it again on the same pipe (nothing buffered is lost)."""
        if self.proc is not None:
            _BY_PID.pop(self.proc.pid, None)
            self.proc.returncode = status      # reaped by the MPM; Popen must not wait again
        if self.fd < 0 or os.getpid() != self.master_pid:
            return
        _say(M_RESTARTED, f"piped log program '{self.target}' failed unexpectedly; restarting")
        try:
            self.spawn()
        except OSError as exc:
            _say(M_SPAWN_FAILED, f"could not restart piped log program '{self.target}': {exc}")

    def close(self) -> None:
        for fd in (self.fd, self.r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.fd = self.r = -1

    def stop(self) -> None:
        """Rule 3: EOF first, then TERM if the program does not exit by itself."""
        self.close()
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        _BY_PID.pop(proc.pid, None)
        try:
            proc.wait(EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(EXIT_WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        except ChildProcessError:
            pass


_BY_TARGET: dict[str, PipedLog] = {}
_BY_PID: dict[int, PipedLog] = {}


def is_piped(target: str | None) -> bool:
    return isinstance(target, str) and target.startswith("|")


def open(target: str) -> int:  # noqa: A001 - the module is used as ``piped.open``
    """The write end for ``target``, spawning its program on first use (Rule 2)."""
    log = _BY_TARGET.get(target)
    if log is None or log.fd < 0:
        log = _BY_TARGET[target] = PipedLog(target)
    return log.fd


def reaped(pid: int, status: int) -> bool:
    """Called for every pid the master reaps: True if it was a piped log program."""
    log = _BY_PID.get(pid)
    if log is None:
        return False
    log.died(status)
    return True


def close_all() -> None:
    """Master exit: stop every program this process started."""
    for log in list(_BY_TARGET.values()):
        if log.master_pid == os.getpid():
            log.stop()
    _BY_TARGET.clear()


def _say(msg_id: str, text: str) -> None:
    # The ErrorLog may be this very pipe: say it on the master's stderr, as httpd does.
    stamp = time.strftime("%a %b %d %H:%M:%S %Y")
    sys.stderr.write(f"[{stamp}] [core:error] [pid {os.getpid()}] {msg_id}: {text}\n")
    sys.stderr.flush()
