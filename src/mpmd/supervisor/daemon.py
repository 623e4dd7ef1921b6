"""``mpmd -k start`` detaches, as httpd's does; the command's exit status says whether it started.

Theory: ``detach()`` forks twice (the middle process calls ``setsid`` and exits, so the server
is in a session of its own, with no terminal, and its parent is init).  The command waits on a
pipe.  The server keeps the terminal's stdin/stdout/stderr while it loads its logs, binds its
listeners, writes its PidFile and runs the modules' post_config hooks, so a start-up error is
printed where the user typed the command; then (``release_terminal``, before the first child is
forked) it points them at /dev/null, and once its first children are up it writes the URLs it
serves into the pipe (``started``).  The command prints them and exits 0; if the pipe closes
with nothing in it, the server could not start and the command exits 1 (as ``apachectl start``).

Rule 1: only the master holds the pipe: a process forked later closes its copy
        (``os.register_at_fork``), so a master that dies is seen even with children left.
Rule 2: ``-D FOREGROUND`` keeps ``-k start`` in front, as httpd; plain ``mpmd`` and
        ``mpmd -f FILE`` always stay in front (the CLI decides, ``opts.detach``).
"""

from __future__ import annotations

import os
import sys

_status_fd: int | None = None           # the master's end of the pipe (Rule 1)


def _close_in_child() -> None:
    global _status_fd
    if _status_fd is not None:
        try:
            os.close(_status_fd)
        except OSError:
            pass
        _status_fd = None


os.register_at_fork(after_in_child=_close_in_child)


class Detached:
    """The detached server's side of the pipe to the command that started it."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.released = False

    def release_terminal(self) -> None:
        """stdin, stdout and stderr to /dev/null: the ErrorLog says the rest."""
        if self.released:
            return
        self.released = True
        sys.stdout.flush()
        sys.stderr.flush()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if null > 2:
            os.close(null)

    def started(self, urls: list[str]) -> None:
        """Tell the command the server is up (once); it prints ``urls``."""
        global _status_fd
        if _status_fd is None:
            return
        try:
            os.write(self.fd, ("ok\n" + "".join(f"{u}\n" for u in urls) + "\n").encode())
        except OSError:
            pass
        _close_in_child()


def detach() -> int | Detached:
    """In the command: its exit status, once the server is up or has failed.  In the server:
    a ``Detached`` to report through."""
    global _status_fd
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w)
        os.waitpid(pid, 0)                  # the middle process, gone at once
        return wait_started(r)
    os.close(r)
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
    except BaseException:  # noqa: BLE001 - the command sees EOF and exits 1
        os._exit(1)
    _status_fd = w
    return Detached(w)


def wait_started(fd: int) -> int:
    data = b""
    while not data.endswith(b"\n\n"):
        try:
            chunk = os.read(fd, 4096)
        except InterruptedError:
            continue
        if not chunk:
            break
        data += chunk
    os.close(fd)
    lines = data.decode(errors="replace").split("\n")
    if lines[0] != "ok":
        return 1                             # the server printed why; it is gone
    for url in filter(None, lines[1:]):
        print(f"mpmd: serving {url}", file=sys.stderr, flush=True)
    return 0
