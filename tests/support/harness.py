"""Run the real server for a test: ``python -m mpmd -f CONF --ready-file F`` on 127.0.0.1:0.

The server runs in its own session/process group; ``stop()`` sends TERM, then KILL after a
deadline, and asserts that no process of the group is left (gunicorn setsid/killpg style).
Nothing sleeps for a fixed time: every wait polls a condition with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from tests.support.confbuilder import ConfBuilder

SRC = Path(__file__).resolve().parents[2] / "src"


def wait_for(cond: Callable[[], object], timeout: float = 10.0, interval: float = 0.02,
             message: str = "condition") -> object:
    """Poll ``cond`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def _live_processes() -> Iterator[tuple[int, int, int]]:
    """(pid, ppid, pgid) of every live (non-zombie) process, from /proc/PID/stat."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if fields[0] != "Z":
            yield int(entry), int(fields[1]), int(fields[2])


def group_pids(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid``."""
    return [pid for pid, _, group in _live_processes() if group == pgid]


def children_of(pid: int) -> list[int]:
    return [child for child, ppid, _ in _live_processes() if ppid == pid]


def age_fresh_files(top: Path, window: float = 60.0, back: float = 3600.0) -> None:
    """Files the test wrote in the last ``window`` seconds are set ``back`` in time: a file
    written this second is "young" (static_files Rule 5: a weak ETag, as httpd), and the tests
    want a deployed site's strong validators.  A time a test set itself (past or future) stays."""
    if not top.is_dir():
        return
    now = time.time()
    for path in [top, *top.rglob("*")]:
        try:
            st = path.lstat()
            if now - window < st.st_mtime <= now and not path.is_symlink():
                os.utime(path, (st.st_atime, st.st_mtime - back))
        except OSError:
            continue


class Server:
    """One running server.  Use as a context manager or call start()/stop()."""

    def __init__(self, conf: ConfBuilder, args: tuple[str, ...] = ()) -> None:
        self.conf = conf
        self.args = args
        self.root = conf.root
        self.ready_file = self.root / "ready.json"
        self.out_file = self.root / "server.out"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready: dict = {}

    # -- life cycle --------------------------------------------------------------------------
    def start(self, timeout: float = 20.0) -> "Server":
        conf_path = self.conf.write()
        age_fresh_files(self.conf.htdocs)
        if self.ready_file.exists():
            self.ready_file.unlink()
        env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with open(self.out_file, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mpmd", "-f", str(conf_path), "--ready-file",
                 str(self.ready_file), *self.args],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        self.ready = self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 20.0, generation: int | None = None) -> dict:
        def check() -> dict | None:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}\n{self.diagnostics()}")
            try:
                data = json.loads(self.ready_file.read_text())
            except (OSError, ValueError):
                return None
            if generation is not None and data.get("generation") != generation:
                return None
            return data
        try:
            return wait_for(check, timeout, message="the ready file")  # type: ignore[return-value]
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnostics()}") from None

    def stop(self, timeout: float = 15.0) -> int:
        """TERM, then KILL after ``timeout``; asserts the whole process group is gone."""
        assert self.proc is not None
        pgid = self.proc.pid
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                self.proc.wait(5)
                raise AssertionError(f"server ignored SIGTERM\n{self.diagnostics()}")
        try:
            wait_for(lambda: not group_pids(pgid), 10.0, message="no process left in the group")
        except AssertionError:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            raise
        return self.proc.returncode

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()

    # -- facts -------------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return int(self.ready["pid"])

    @property
    def port(self) -> int:
        return int(self.ready["listeners"][0][1])

    @property
    def host(self) -> str:
        return str(self.ready["listeners"][0][0])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def children(self) -> list[int]:
        return children_of(self.pid)

    def error_log_text(self) -> str:
        try:
            return self.conf.error_log.read_text(errors="replace")
        except OSError:
            return ""

    def diagnostics(self) -> str:
        try:
            out = self.out_file.read_text(errors="replace")
        except OSError:
            out = ""
        return f"--- server output ---\n{out[-4000:]}\n--- error log ---\n{self.error_log_text()[-4000:]}"

    def signal(self, signo: int) -> None:
        os.kill(self.pid, signo)
