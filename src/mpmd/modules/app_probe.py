"""Import applications in a throwaway process, to check them before the server starts.

mod_wsgi and mod_asgi import their applications in each child (or, with ``WSGIPreload On``, in
the master once the configuration is loaded).  An application that cannot be imported would
then show only in the ErrorLog, and every request it should answer would get a 500.  So
``mpmd -t``, start-up and every restart import each mount's application here first (the
modules' ``check_config``), and the command line's ``package.module:app`` asks here whether
its callable speaks WSGI or ASGI.  httpd's ``-t`` does not run module code; mod_wsgi users
expect an application that cannot be imported to stop the server, as gunicorn's does.

Rule 1: the imports run in a forked child that reports through a pipe and ends with
        ``os._exit``: the master keeps nothing of them (no module, thread or connection),
        whatever WSGIPreload says.  What the application does outside its process when
        imported (a file written) is done once more per check.
Rule 2: the child sees what a server child sees: the master's ``sys.path`` with WSGIPythonPath
        in front, and the same working directory.  It resets the master's signal handlers
        first, so a signal sent to the child never runs them.
Rule 3: each application gets an ``Outcome``: its interface, or the error that stopped it,
        worded in one line with the place it was raised.  A child that dies while importing
        (a crashing extension) is that application's error; one that takes longer than
        PROBE_TIMEOUT_S is killed and what it had not reported is not checked (``note``).
Rule 4: the interface is decided as uvicorn's auto-detection does: "asgi" when the callable, or
        its ``__call__``, is a coroutine function; otherwise "wsgi".  A class is "wsgi" (PEP
        3333 allows a class as the application; ASGI 2's classes are not served).
"""

from __future__ import annotations

import asyncio.coroutines
import importlib
import inspect
import json
import os
import select
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

PROBE_TIMEOUT_S = 30.0
# Frames in these are the import's machinery, not the application's place (describe).
MPMD_DIR = str(Path(__file__).resolve().parents[1]) + os.sep
IMPORTLIB_DIR = os.path.dirname(importlib.__file__) + os.sep


@dataclass(frozen=True, slots=True)
class Outcome:
    """What importing one application gave (Rule 3)."""

    interface: str | None = None     # "wsgi" | "asgi": imported, and callable
    error: str | None = None         # why it could not be used
    note: str | None = None          # why it was not checked


def load_object(spec: str) -> Any:
    """``package.module:attr.sub`` -> the object."""
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _is_coroutine_function(fn: Any) -> bool:
    # asgiref's markcoroutinefunction (before Python 3.12) sets asyncio's private marker.
    marker = getattr(asyncio.coroutines, "_is_coroutine", None)
    return inspect.iscoroutinefunction(fn) or (
        marker is not None and getattr(fn, "_is_coroutine", None) is marker)


def interface_of(app: Any) -> str:
    """"asgi" or "wsgi" for a callable (Rule 4)."""
    if inspect.isclass(app):
        return "wsgi"
    if _is_coroutine_function(app) or _is_coroutine_function(getattr(app, "__call__", None)):
        return "asgi"
    return "wsgi"


def describe(exc: BaseException) -> str:
    """``Type: message``, and where it was raised when that is in the application's code
    rather than in the import machinery or mpmd."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{type(exc).__name__}: {exc.msg} (at {exc.filename}:{exc.lineno})"
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(("<", MPMD_DIR, IMPORTLIB_DIR))]
    if frames:
        text += f" (at {frames[-1].filename}:{frames[-1].lineno})"
    return text


def _try(loader: Callable[[], Any]) -> dict[str, str]:
    try:
        app = loader()
    except BaseException as exc:        # SystemExit or KeyboardInterrupt from the app too
        return {"error": describe(exc)}
    if not callable(app):
        return {"error": f"{type(app).__name__} object is not callable"}
    return {"interface": interface_of(app)}


def probe(loaders: Sequence[Callable[[], Any]], paths: Sequence[str] = (),
          timeout_s: float = PROBE_TIMEOUT_S) -> list[Outcome]:
    """Call each loader in one forked child with ``paths`` in front of sys.path (Rules 1-3)."""
    if not loaders:
        return []
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(loaders, paths, write_fd)
    os.close(write_fd)
    try:
        data, finished = _read_all(read_fd, timeout_s)
    finally:
        os.close(read_fd)
    if not finished:
        os.kill(pid, signal.SIGKILL)
    status = _wait(pid)
    reported = [Outcome(**json.loads(line)) for line in data.decode().splitlines() if line]
    return reported + _unreported(len(loaders) - len(reported), finished, status, timeout_s)


def _child(loaders: Sequence[Callable[[], Any]], paths: Sequence[str], fd: int) -> None:
    code = 0
    try:
        _default_signals()
        for d in reversed(paths):
            if d not in sys.path:
                sys.path.insert(0, d)
        for loader in loaders:
            line = (json.dumps(_try(loader)) + "\n").encode()
            while line:
                line = line[os.write(fd, line):]
    except BaseException:
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _default_signals() -> None:
    signal.set_wakeup_fd(-1)
    for signo in signal.valid_signals():
        try:
            if callable(signal.getsignal(signo)):
                signal.signal(signo, signal.SIG_DFL)
        except (OSError, ValueError, TypeError):
            continue


def _read_all(fd: int, timeout_s: float) -> tuple[bytes, bool]:
    """What the child wrote, and whether it closed the pipe before the deadline."""
    deadline = time.monotonic() + timeout_s
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return b"".join(chunks), False
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)


def _wait(pid: int) -> int | None:
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:           # reaped by someone else: the status is unknown
        return None


def _unreported(count: int, finished: bool, status: int | None, timeout_s: float) -> list[Outcome]:
    if count <= 0:
        return []
    if not finished:
        why = f"importing it took more than {timeout_s:g} s"
        return [Outcome(note=why)] + [Outcome(note="an earlier import did not finish")] * (count - 1)
    how = "ended"
    if status is not None and os.WIFSIGNALED(status):
        how = f"was killed by signal {os.WTERMSIG(status)}"
    elif status is not None and os.WIFEXITED(status):
        how = f"exited with status {os.WEXITSTATUS(status)}"
    first = Outcome(error=f"the process importing it {how}")
    return [first] + [Outcome(note="an earlier import ended the process")] * (count - 1)


# -- the modules' check_config: every mount's line, one probe ---------------------------------

@dataclass(frozen=True, slots=True)
class MountLine:
    """One WSGIApp / WSGIScriptAlias / ASGIApp line and how its application is loaded."""

    directive: str                   # as written in the table: "WSGIApp"
    what: str                        # "myapp:app" or the script's path
    loader: Callable[[], Any]
    file: str | None
    line: int | None


def lines_of(cfg: Any, field: str) -> list[tuple[Any, str | None, int | None]]:
    """(value, file, line) of each line setting ``field``: the main server's, then each
    <VirtualHost>'s own."""
    values = list(getattr(cfg, field, None) or ())
    origins = cfg.origins(field) if hasattr(cfg, "origins") else []
    out = [(v, *(origins[i] if i < len(origins) else (None, None))) for i, v in enumerate(values)]
    hosts = getattr(cfg, "vhosts", None)
    for server in (hosts.servers() if hosts else [])[1:]:
        section = getattr(server, "vhost", None)
        for op in getattr(section, "ops", ()):
            if op.directive.field == field:
                out.append((op.value, op.file, op.line))
    return out


def check_mounts(mounts: Sequence[MountLine], paths: Sequence[str], want: str, msg_id: str,
                 mismatch: tuple[str, str]) -> list[Any]:
    """Problems for the mounts whose application cannot be imported (errors, at their line),
    was not checked (warnings), or is not ``want`` (``mismatch``: level and text)."""
    from mpmd.config.model import Problem
    first: dict[tuple[str, str], MountLine] = {}
    for m in mounts:
        first.setdefault((m.directive, m.what), m)
    unique = list(first.values())
    problems: list[Any] = []
    for m, outcome in zip(unique, probe([m.loader for m in unique], paths)):
        if outcome.error is not None:
            text, level = f"{m.directive}: cannot load {m.what}: {outcome.error}", "error"
        elif outcome.note is not None:
            text, level = f"{m.directive}: {m.what} was not checked: {outcome.note}", "warn"
        elif outcome.interface != want:
            level, text = mismatch[0], f"{m.directive}: {m.what} {mismatch[1]}"
        else:
            continue
        problems.append(Problem(level, msg_id, text, m.file, m.line))
    return problems
