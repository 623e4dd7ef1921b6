"""mpmd as a service (docs/service.md), on the real binary.

``-k start`` detaches and says whether it started (supervisor/daemon.py); ``-k graceful`` with
none running starts one detached; systemd hears READY/RELOADING/STOPPING/STATUS through
``$NOTIFY_SOCKET`` (supervisor/notify.py); SIGTERM lets the requests in flight finish
(mpm/common.py Rule 7).  Every detached server is killed, by the pid in its PidFile, in a
``finally``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.wsgi_support import REPO
from tests.support.confbuilder import ConfBuilder
from tests.support.harness import SRC, group_pids, wait_for
from tests.support.rawclient import get, request_once

ENV = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def mpmd(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """The command, as a user types it; it must return (a detached server keeps no pipe)."""
    return subprocess.run([sys.executable, "-m", "mpmd", *args], capture_output=True, text=True,
                          env=ENV, timeout=timeout)


def site(tmp_path: Path, mpm: str = "prefork") -> ConfBuilder:
    conf = ConfBuilder(tmp_path, mpm=mpm)
    conf.htdocs.mkdir(parents=True, exist_ok=True)
    (conf.htdocs / "index.html").write_text("hi\n")
    conf.write()
    return conf


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_detached(conf: ConfBuilder, pid: int | None = None) -> None:
    """Cleanup: SIGKILL the detached server's process group (never ours)."""
    if pid is None:
        try:
            pid = int(conf.pid_file.read_text())
        except (OSError, ValueError):
            return
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    if pgid != os.getpgrp():
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def served_port(stderr: str) -> int:
    """The port of ``mpmd: serving http://127.0.0.1:PORT/``."""
    line = next(x for x in stderr.splitlines() if x.startswith("mpmd: serving http://127.0.0.1:"))
    return int(line.rsplit(":", 1)[1].rstrip("/"))


def test_k_start_detaches_and_k_stop_stops_it(tmp_path: Path) -> None:
    conf = site(tmp_path)
    path = str(conf.root / "httpd.conf")
    pid = None
    try:
        res = mpmd("-k", "start", "-f", path)
        assert res.returncode == 0, res
        pid = int(conf.pid_file.read_text())
        assert alive(pid)
        pgid = os.getpgid(pid)
        assert os.getsid(pid) != os.getsid(0)             # a session of its own, no terminal
        assert os.readlink(f"/proc/{pid}/fd/2") == os.devnull
        port = served_port(res.stderr)
        assert request_once(port, get("/index.html")).status == 200
        stop = mpmd("-k", "stop", "-f", path)
        assert stop.returncode == 0, stop
        wait_for(lambda: not alive(pid), 20, message="the detached master gone")
        wait_for(lambda: not group_pids(pgid), 10, message="its children gone too")
        assert not conf.pid_file.exists()
        with pytest.raises(OSError):
            request_once(port, get("/index.html"))
    finally:
        kill_detached(conf, pid)


def test_k_start_errors_reach_the_terminal_with_exit_1(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    conf = ConfBuilder(tmp_path, listen=f"127.0.0.1:{busy.getsockname()[1]}")
    conf.write()
    try:
        res = mpmd("-k", "start", "-f", str(conf.root / "httpd.conf"))
        assert res.returncode == 1, res
        assert "could not bind to address" in res.stderr, res
        assert "Traceback" not in res.stderr and not conf.pid_file.exists()
    finally:
        busy.close()
        kill_detached(conf)


def test_k_graceful_with_none_running_starts_one_detached(tmp_path: Path) -> None:
    conf = site(tmp_path)
    path = str(conf.root / "httpd.conf")
    ready = tmp_path / "ready.json"
    try:
        res = mpmd("-k", "graceful", "-f", path, "--ready-file", str(ready))
        assert res.returncode == 0, res
        assert "mpmd not running, trying to start" in res.stdout
        pid = int(conf.pid_file.read_text())
        assert alive(pid) and os.getsid(pid) != os.getsid(0)
        assert request_once(served_port(res.stderr), get("/index.html")).status == 200
        again = mpmd("-k", "graceful", "-f", path)          # now it is running: a reload
        assert again.returncode == 0 and "trying to start" not in again.stdout, again
        wait_for(lambda: '"generation": 1' in ready.read_text(), 20, message="generation 1")
        assert int(conf.pid_file.read_text()) == pid
    finally:
        kill_detached(conf)


def test_foreground_define_keeps_k_start_in_front(tmp_path: Path) -> None:
    conf = site(tmp_path)
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen([sys.executable, "-m", "mpmd", "-k", "start", "-D", "FOREGROUND",
                             "-f", str(conf.root / "httpd.conf"), "--ready-file", str(ready)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
                            start_new_session=True)
    try:
        wait_for(ready.exists, 20, message="the ready file")
        assert proc.poll() is None and int(conf.pid_file.read_text()) == proc.pid
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


class NotifyListener:
    """The systemd side: a unix datagram socket, at a path or in the abstract namespace."""

    def __init__(self, tmp_path: Path, abstract: bool) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"mpmd-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            self.env = str(tmp_path / "notify.sock")
            self.sock.bind(self.env)
        self.messages: list[str] = []

    def wait_for(self, field: str, timeout: float = 20.0) -> str:
        """The next message with ``field`` as one of its lines (earlier ones are kept)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, msg in enumerate(self.messages):
                if field in msg.split("\n"):
                    del self.messages[: i + 1]
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {field} within {timeout}s; got {self.messages}")
            self.sock.settimeout(left)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_sd_notify_ready_reloading_stopping_status(tmp_path: Path, abstract: bool) -> None:
    conf = site(tmp_path)
    listener = NotifyListener(tmp_path, abstract)
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen([sys.executable, "-m", "mpmd", "-f", str(conf.root / "httpd.conf"),
                             "--ready-file", str(ready)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(ENV, NOTIFY_SOCKET=listener.env), start_new_session=True)
    try:
        first = listener.wait_for("READY=1")
        status = [x for x in first.split("\n") if x.startswith("STATUS=")]
        assert status and "idle workers:" in status[0] and "Total requests:" in status[0], first
        proc.send_signal(signal.SIGUSR1)
        listener.wait_for("RELOADING=1")
        listener.wait_for("READY=1")
        proc.send_signal(signal.SIGTERM)
        listener.wait_for("STOPPING=1")
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        listener.sock.close()


def test_sigterm_lets_a_request_in_flight_finish(tmp_path: Path, mpm: str) -> None:
    conf = site(tmp_path, mpm)
    conf.add(f'WSGIPythonPath "{REPO}"')
    conf.add("WSGIApp /slow tests.apps.wsgi_apps:sleepy_marked")
    conf.write()
    marks = tmp_path / "marks"
    marks.mkdir()
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen([sys.executable, "-m", "mpmd", "-f", str(conf.root / "httpd.conf"),
                             "--ready-file", str(ready)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
                            start_new_session=True)
    got: list[object] = []
    try:
        import json
        port = json.loads(wait_for(lambda: ready.exists() and ready.read_text(), 20,
                                   message="the ready file"))["listeners"][0][1]

        def client() -> None:
            try:
                resp = request_once(port, get(f"/slow?s=1&d={marks}"))
                got.append((resp.status, resp.body))
            except OSError as exc:
                got.append(exc)

        t = threading.Thread(target=client, daemon=True)
        t.start()
        wait_for(lambda: os.listdir(marks), 10, message="the request in the app")
        proc.send_signal(signal.SIGTERM)
        t.join(20)
        assert got == [(200, b"slept\n")], got
        assert proc.wait(20) == 0
        wait_for(lambda: not group_pids(proc.pid), 10, message="every process gone")
    finally:
        if proc.poll() is None or group_pids(proc.pid):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)
