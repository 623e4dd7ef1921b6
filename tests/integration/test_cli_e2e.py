"""The ``mpmd`` command on the real binary, for every MPM: -t, -V, -M, -k stop, -k graceful."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.support.confbuilder import ConfBuilder
from tests.support.harness import SRC, group_pids, wait_for
from tests.support.rawclient import get, request_once


def mpmd(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "mpmd", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


# (directive lines after the good preamble, line of the error, words the message must carry)
BAD = {
    "misspelled": ("KeepAlve On", 0, ["Invalid command 'KeepAlve'", "perhaps misspelled"]),
    "flag-without-arg": ("KeepAlive", 0, ["KeepAlive"]),
    "out-of-range": ("LimitRequestLine -1", 0, ['LimitRequestLine "-1" must be a non-negative integer']),
    "wrong-context": ("<Directory /tmp>\nListen 81\n</Directory>", 1, ["Listen not allowed in <Directory> context"]),
    "unclosed": ("ServerAdmin a@b\n<Directory /tmp>\nOptions Indexes", 1, ["<Directory", "not closed"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_dash_t_bad_config_exits_1_naming_file_line_directive(mpm, tmp_path, case):
    body, offset, words = BAD[case]
    conf = ConfBuilder(tmp_path, mpm=mpm).add(body)
    path = conf.write()
    line = conf.text().splitlines().index(body.splitlines()[0]) + 1 + offset
    res = mpmd("-f", str(path), "-t")
    assert res.returncode == 1, res
    assert f"Syntax error on line {line} of {path}" in res.stderr, res.stderr
    for word in words:
        assert word in res.stderr, res.stderr
    assert "Syntax OK" not in res.stderr + res.stdout


def test_dash_t_good_config(mpm, tmp_path):
    conf = ConfBuilder(tmp_path, mpm=mpm)
    (tmp_path / "htdocs").mkdir()
    res = mpmd("-f", str(conf.write()), "-t")
    assert res.returncode == 0 and "Syntax OK" in res.stderr, res


def test_wrong_config_never_starts_a_server(mpm, tmp_path):
    conf = ConfBuilder(tmp_path, mpm=mpm).add("KeepAlve On")
    res = mpmd("-f", str(conf.write()), "--ready-file", str(tmp_path / "ready.json"))
    assert res.returncode == 1 and "KeepAlve" in res.stderr
    assert not (tmp_path / "ready.json").exists() and not conf.pid_file.exists()


def test_dash_v_names_the_mpm_of_the_config(mpm, tmp_path):
    conf = ConfBuilder(tmp_path, mpm=mpm)
    path = conf.write()
    res = mpmd("-f", str(path), "-V")
    assert res.returncode == 0, res
    lines = [line.split(":", 1) for line in res.stdout.splitlines() if ":" in line]
    fields = {k.strip(): v.strip() for k, v in lines}
    assert fields["Server MPM"] == mpm
    assert fields["Server version"].startswith("mpmd/")
    assert "threaded" in fields and "forked" in fields
    assert str(path) in res.stdout
    mods = mpmd("-f", str(path), "-M")
    assert mods.returncode == 0 and "core_module" in mods.stdout


def test_dash_k_stop_stops_the_server_and_removes_the_pidfile(conf, make_server):
    server = make_server(conf)
    assert conf.pid_file.read_text().strip() == str(server.pid)
    assert request_once(server.port, get("/index.html")).status == 200
    res = mpmd("-f", str(conf.root / "httpd.conf"), "-k", "stop")
    assert res.returncode == 0, res
    assert server.proc.wait(20) == 0, server.diagnostics()
    wait_for(lambda: not group_pids(server.proc.pid), 10, message="every process gone")
    assert not conf.pid_file.exists()
    again = mpmd("-f", str(conf.root / "httpd.conf"), "-k", "stop")
    # httpd: "httpd (no pid file) not running", exit 0.
    assert again.returncode == 0 and "mpmd (no pid file) not running" in again.stdout, again


def test_dash_k_graceful_reloads_and_keeps_serving(conf, make_server):
    server = make_server(conf)
    port, gen = server.port, server.ready["generation"]
    statuses: list[object] = []
    done = threading.Event()

    def client() -> None:
        # bounded by time, not count: a fast client must still be sending after the reload
        deadline = time.monotonic() + 60
        while not done.is_set() and time.monotonic() < deadline:
            try:
                statuses.append(request_once(port, get("/index.html", extra="Connection: close\r\n")).status)
            except OSError as exc:
                statuses.append(repr(exc))

    t = threading.Thread(target=client, daemon=True)
    t.start()
    try:
        res = mpmd("-f", str(conf.root / "httpd.conf"), "-k", "graceful")
        assert res.returncode == 0, res
        server.wait_ready(generation=gen + 1)
        count = len(statuses)
        wait_for(lambda: len(statuses) >= count + 20, 20, message="requests after the reload")
    finally:
        done.set()
        t.join(20)
    assert server.port == port and server.proc.poll() is None
    bad = [s for s in statuses if s != 200]
    assert not bad, f"{len(bad)} of {len(statuses)} requests failed across the graceful restart: {bad[:5]}"


def test_graceful_with_a_broken_config_keeps_the_old_one(conf, make_server):
    server = make_server(conf)
    path = conf.root / "httpd.conf"
    path.write_text(path.read_text() + "KeepAlve On\n")
    # -k parses the config first, as apachectl's configtest: a broken edit is reported, nothing sent.
    res = mpmd("-f", str(path), "-k", "graceful")
    assert res.returncode == 1 and "KeepAlve" in res.stderr, res
    # Signalled directly, the master cannot load the new config and keeps the running one.
    server.signal(signal.SIGUSR1)
    wait_for(lambda: "MPMD0004" in server.error_log_text(), 20, message="the reload failure logged")
    assert server.proc.poll() is None
    assert request_once(server.port, get("/index.html")).status == 200
