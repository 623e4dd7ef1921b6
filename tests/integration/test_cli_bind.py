"""The quick start's address (cli.py Rule 4): `mpmd -b ADDR` listens on ADDR instead of the
embedded config's 127.0.0.1:8080, and so does a Listen given with -C/-c; with -f, -b is refused."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.harness import SRC, wait_for


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(SRC))


def listeners_of(tmp_path: Path, *args: str) -> list[list]:
    """Start `mpmd ARGS` on the embedded config, GET / on each listener, stop it; the listeners."""
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen([sys.executable, "-m", "mpmd", "-D", f"MPMD_RUNDIR={tmp_path}",
                             "--ready-file", str(ready), *args],
                            cwd=tmp_path, env=env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (ready.exists() and ready.read_text().strip()) or proc.poll() is not None,
                 timeout=30)
        assert proc.poll() is None, proc.communicate()[0].decode()
        listeners = json.loads(ready.read_text())["listeners"]
        for host, port in listeners:
            conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", "/")
            resp = conn.getresponse()
            assert resp.status == 200 and b"<html" in resp.read().lower()
        return listeners
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=15)[0].decode()
        assert proc.returncode == 0, out


@pytest.fixture
def port_8080_taken():
    """Hold 127.0.0.1:8080 (when free), so a server that still binds it fails to start."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", 8080))
        s.listen(1)
    except OSError:
        pass                      # something else holds it: the same for the test
    yield
    s.close()


def test_bind_replaces_the_default_address(tmp_path, port_8080_taken):
    listeners = listeners_of(tmp_path, "-b", "127.0.0.1:0")
    assert len(listeners) == 1 and listeners[0][0] == "127.0.0.1" and listeners[0][1] != 8080


def test_long_bind_repeated_gives_one_listener_each(tmp_path, port_8080_taken):
    listeners = listeners_of(tmp_path, "--bind", "127.0.0.1:0", "--bind", "127.0.0.1:0")
    assert len(listeners) == 2 and all(port != 8080 for _, port in listeners)


@pytest.mark.parametrize("flag", ["-C", "-c"])
def test_a_listen_given_on_the_command_line_replaces_the_default(tmp_path, port_8080_taken, flag):
    listeners = listeners_of(tmp_path, flag, "Listen 127.0.0.1:0")
    assert len(listeners) == 1 and listeners[0][1] != 8080


def test_bind_with_f_is_refused_and_says_what_to_do(tmp_path):
    conf = tmp_path / "httpd.conf"
    conf.write_text("Listen 127.0.0.1:0\n")
    r = subprocess.run([sys.executable, "-m", "mpmd", "-t", "-f", str(conf), "-b", "127.0.0.1:0"],
                       env=env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.splitlines()[-1] == ("mpmd: error: -b/--bind sets the embedded config's address; "
                                         "with -f, set Listen in the file (or add one with -C 'Listen ADDR')")


def test_a_bad_address_is_named_as_bind_s(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mpmd", "-t", "-b", "localhost"],
                       env=env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.splitlines()[-1] == ("mpmd: error: argument -b/--bind: must be [host:]port, "
                                         "[ipv6]:port or *:port, not 'localhost'")


def test_help_documents_bind():
    r = subprocess.run([sys.executable, "-m", "mpmd", "--help"], env=env(), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0
    assert "-b ADDR, --bind ADDR" in r.stdout and "127.0.0.1:8080" in r.stdout
