"""Start-up failures and logging targets on the real server, compared with httpd 2.4.

Each test starts ``python -m mpmd`` as a subprocess in its own session; a server that fails to
start must exit 1 with httpd's words, no traceback, and leave no process or listener behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.confbuilder import ConfBuilder
from tests.support.harness import SRC, Server, group_pids, wait_for
from tests.support.rawclient import get, request_once

# A piped log program: appends what it reads to the file named by argv[1], one line at a time.
APPENDER = textwrap.dedent('''
    import os, sys
    with open(sys.argv[1], "a") as out:
        out.write(f"started {os.getpid()}\\n")
        out.flush()
        for line in sys.stdin:
            out.write(line)
            out.flush()
''')


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """mpmd in a new session; afterwards nothing of its process group may be left."""
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "mpmd", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    wait_for(lambda: not group_pids(proc.pid), 10, message="no process left behind")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_port_free(port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))      # would fail if a listener had been left behind


def test_default_pidfile_without_logs_dir_fails_cleanly(tmp_path: Path) -> None:
    # The minimal config: PidFile defaults to logs/mpmd.pid under ServerRoot, and logs/ is absent.
    port = free_port()
    conf = tmp_path / "min.conf"
    conf.write_text(f"Listen 127.0.0.1:{port}\nDocumentRoot {tmp_path}\n")
    res = run("-f", str(conf), "--ready-file", str(tmp_path / "ready.json"))
    assert res.returncode == 1, res
    assert "Traceback" not in res.stderr
    assert f"could not create {tmp_path}/logs/mpmd.pid." in res.stderr
    assert f"could not log pid to file {tmp_path}/logs/mpmd.pid" in res.stderr
    assert not (tmp_path / "ready.json").exists()
    assert_port_free(port)


def test_pidfile_in_a_missing_dir_is_logged_to_the_error_log(tmp_path: Path) -> None:
    conf = ConfBuilder(tmp_path).set("PidFile", "/nonexist/e2.pid")
    res = run("-f", str(conf.write()))
    assert res.returncode == 1 and "Traceback" not in res.stderr, res
    text = conf.error_log.read_text()
    assert "(2)No such file or directory: could not create /nonexist/e2.pid." in text
    assert "MPMD0010: mpmd: could not log pid to file /nonexist/e2.pid" in text


def test_missing_error_log_dir_stops_the_start_too(tmp_path: Path) -> None:
    conf = ConfBuilder(tmp_path).set("ErrorLog", f"{tmp_path}/nonexist/error_log")
    res = run("-f", str(conf.write()))
    assert res.returncode == 1 and "Traceback" not in res.stderr, res
    assert f"Cannot access directory '{tmp_path}/nonexist/' for main error log" in res.stderr
    assert not conf.pid_file.exists()


def test_unwritable_error_log_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "error_log").mkdir()            # a directory where the file should be
    conf = ConfBuilder(tmp_path)
    res = run("-f", str(conf.write()))
    assert res.returncode == 1 and "Traceback" not in res.stderr, res
    assert "could not open error log file" in res.stderr and "Unable to open logs" in res.stderr


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_bind_failure_names_the_address(tmp_path: Path, family: str) -> None:
    fam, host = (socket.AF_INET, "127.0.0.1") if family == "ipv4" else (socket.AF_INET6, "::1")
    try:
        busy = socket.socket(fam)
        busy.bind((host, 0))
    except OSError:
        pytest.skip(f"no {family} loopback")
    busy.listen()
    with busy:
        port = busy.getsockname()[1]
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        conf = ConfBuilder(tmp_path).listen(shown)
        res = run("-f", str(conf.write()))
    assert res.returncode == 1, res
    assert (f"(98)Address already in use: MPMD0001: make_sock: could not bind to address {shown}\n"
            "no listening sockets available, shutting down") in res.stderr
    assert "Traceback" not in res.stderr and not conf.pid_file.exists()


def test_dash_X_writes_the_pidfile_and_k_stop_stops_it(conf: ConfBuilder, make_server) -> None:
    server = make_server(conf, "-X")
    assert conf.pid_file.read_text().strip() == str(server.pid)
    assert request_once(server.port, get("/index.html")).status == 200
    res = run("-f", str(conf.root / "httpd.conf"), "-k", "stop")
    assert res.returncode == 0, res
    assert server.proc.wait(20) == 0, server.diagnostics()
    assert not conf.pid_file.exists()


@pytest.mark.parametrize("action", ["graceful", "restart"])
def test_k_graceful_or_restart_starts_a_stopped_server(tmp_path: Path, action: str) -> None:
    """With -D FOREGROUND it stays in front; detached, test_service_e2e.py."""
    conf = ConfBuilder(tmp_path)
    path = conf.write()
    (conf.htdocs / "index.html").write_text("hi\n")
    server = Server(conf, ("-k", action, "-D", "FOREGROUND"))
    server.start()
    try:
        assert request_once(server.port, get("/index.html")).status == 200
        assert "mpmd not running, trying to start" in server.out_file.read_text()
        assert conf.pid_file.read_text().strip() == str(server.pid)
    finally:
        server.stop()
    assert path.exists()


def test_piped_error_and_access_logs_reach_the_program_and_survive_its_death(
        conf: ConfBuilder, make_server, tmp_path: Path) -> None:
    script = tmp_path / "appender.py"
    script.write_text(APPENDER)
    errors, access = tmp_path / "piped_error.log", tmp_path / "piped_access.log"
    conf.set("ErrorLog", f'"|{sys.executable} {script} {errors}"')
    conf.add(f'CustomLog "|${sys.executable} {script} {access}" "%r %>s"')
    server = make_server(conf)
    wait_for(lambda: errors.exists() and "MPMD0002" in errors.read_text(), 10,
             message="the start-up notice in the piped error log")
    assert request_once(server.port, get("/index.html")).status == 200
    wait_for(lambda: access.exists() and "GET /index.html HTTP/1.1 200" in access.read_text(), 10,
             message="the request in the piped access log")
    # Kill the access log program: the master starts it again on the same pipe.
    first = [line.split()[1] for line in access.read_text().splitlines() if line.startswith("started")]
    os.kill(int(first[0]), signal.SIGKILL)
    wait_for(lambda: access.read_text().count("started") >= 2, 10, message="the program restarted")
    assert request_once(server.port, get("/1k.bin")).status == 200
    wait_for(lambda: "GET /1k.bin HTTP/1.1 200" in access.read_text(), 10,
             message="a request logged by the restarted program")
    assert "MPMD0012" in server.out_file.read_text()
    assert server.stop() == 0          # and no logger is left in the group (stop() checks)


@pytest.mark.parametrize("target", ["syslog", "syslog:local3"])
def test_error_log_syslog_writes_no_file(conf: ConfBuilder, make_server, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    run_dir = tmp_path / "cwd"
    run_dir.mkdir()
    monkeypatch.chdir(run_dir)                  # the server's current directory
    conf.set("ErrorLog", target)
    server = make_server(conf)
    assert request_once(server.port, get("/index.html")).status == 200
    assert server.stop() == 0
    assert not os.listdir(run_dir) and not (tmp_path / target).exists()


def test_unknown_syslog_facility_fails_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    conf = ConfBuilder(tmp_path).set("ErrorLog", "syslog:bogus")
    path = conf.write()
    assert run("-f", str(path), "-t").returncode == 0        # as httpd: -t does not open logs
    res = run("-f", str(path))
    assert res.returncode == 1 and "Traceback" not in res.stderr, res
    assert "could not open syslog error log bogus." in res.stderr


def test_k_start_when_running_says_so(conf: ConfBuilder, make_server) -> None:
    # httpd: "httpd (pid N) already running", exit 0, and the running server is untouched.
    server = make_server(conf)
    res = run("-f", str(conf.root / "httpd.conf"), "-k", "start")
    assert res.returncode == 0 and f"mpmd (pid {server.pid}) already running" in res.stdout, res
    assert request_once(server.port, get("/index.html")).status == 200
