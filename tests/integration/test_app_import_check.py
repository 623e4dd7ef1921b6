"""An application that cannot be imported fails `mpmd -t` and start-up with the import error, at
the line of its WSGIApp / WSGIScriptAlias / ASGIApp (modules/app_probe.py); the master keeps
nothing of the import (WSGIPreload Off), and a restart into a broken app is refused."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.confbuilder import ConfBuilder
from tests.support.harness import SRC, Server, wait_for

WSGI_APP = (
    "import os\n"
    "with open(os.path.join(os.path.dirname(__file__), 'imported.txt'), 'a') as f:\n"
    "    f.write(f'{os.getpid()}\\n')\n"
    "def app(environ, start_response):\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
    "    return [str(os.getpid()).encode()]\n"
    "application = app\n")
BROKEN = "import os\n\n\nraise RuntimeError('no database here')\n"
ASGI_APP = "async def app(scope, receive, send):\n    pass\n"


def mpmd_t(conf: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "mpmd", "-t", "-f", str(conf)], env=env,
                          capture_output=True, text=True, timeout=60)


def conf_with(tmp_path: Path, *lines: str) -> tuple[ConfBuilder, Path]:
    conf = ConfBuilder(tmp_path).add(f'WSGIPythonPath "{tmp_path}"')
    for line in lines:
        conf.add(line)
    return conf, conf.write()


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize("directive, target, error", [
    ("WSGIApp /a", "broken:app", "RuntimeError: no database here (at {tmp}/broken.py:4)"),
    ("WSGIApp /a", "missing:app", "ModuleNotFoundError: No module named 'missing'"),
    ("ASGIApp /a", "broken:app", "RuntimeError: no database here (at {tmp}/broken.py:4)"),
    ("WSGIScriptAlias /a", "{tmp}/broken.py", "RuntimeError: no database here (at {tmp}/broken.py:4)"),
    ("WSGIScriptAlias /a", "{tmp}/gone.py",
     "FileNotFoundError: [Errno 2] No such file or directory: '{tmp}/gone.py'"),
    ("WSGIScriptAlias /a", "{tmp}/noapp.py",
     "AttributeError: WSGI script '{tmp}/noapp.py' does not contain a WSGI application 'application'"),
])
def test_t_fails_at_the_line_with_the_import_error(tmp_path, directive, target, error):
    (tmp_path / "broken.py").write_text(BROKEN)
    (tmp_path / "noapp.py").write_text("x = 1\n")
    target = target.format(tmp=tmp_path)
    _, path = conf_with(tmp_path, f"{directive} {target}", "KeepAlive On")
    r = mpmd_t(path)
    assert r.returncode == 1, r.stderr
    name = directive.split()[0]
    assert r.stderr == (f"Syntax error on line {line_of(path, name)} of {path}:\n"
                        f"{name}: cannot load {target}: {error.format(tmp=tmp_path)}\n")


def test_t_names_the_line_inside_a_virtual_host(tmp_path):
    (tmp_path / "good.py").write_text(WSGI_APP)
    (tmp_path / "broken.py").write_text(BROKEN)
    _, path = conf_with(tmp_path, "WSGIApp /ok good:app", "<VirtualHost *:80>",
                        "    ServerName other.example", "    WSGIApp /bad broken:app", "</VirtualHost>")
    r = mpmd_t(path)
    assert r.returncode == 1
    assert r.stderr.startswith(f"Syntax error on line {line_of(path, 'broken:app')} of {path}:\n")


def test_an_asgi_app_under_wsgiapp_is_refused_and_ok_under_asgiapp(tmp_path):
    (tmp_path / "aapp.py").write_text(ASGI_APP)
    _, path = conf_with(tmp_path, "WSGIApp /a aapp:app")
    r = mpmd_t(path)
    assert r.returncode == 1 and "serve it with ASGIApp" in r.stderr, r.stderr
    _, path = conf_with(tmp_path, "ASGIApp /a aapp:app")
    r = mpmd_t(path)
    assert r.returncode == 0 and r.stderr == "Syntax OK\n", r.stderr


def test_importable_apps_pass_t_and_the_check_imports_outside_the_master(tmp_path):
    (tmp_path / "good.py").write_text(WSGI_APP)
    conf, path = conf_with(tmp_path, "WSGIApp /a good:app", f'WSGIScriptAlias /s "{tmp_path}/good.py"')
    r = mpmd_t(path)
    assert r.returncode == 0 and r.stderr == "Syntax OK\n", r.stderr
    (tmp_path / "imported.txt").unlink()
    with Server(conf) as server:
        serving = int(httpx.get(server.url + "/a", timeout=20).text)
        importers = {int(x) for x in (tmp_path / "imported.txt").read_text().split()}
        assert server.pid not in importers          # WSGIPreload Off: never in the master
        assert serving in importers and len(importers) > 1     # the check's process, then a child


def test_start_up_fails_with_the_import_error_and_leaves_nothing(tmp_path):
    (tmp_path / "broken.py").write_text(BROKEN)
    conf, path = conf_with(tmp_path, "WSGIApp /a broken:app")
    server = Server(conf)
    with pytest.raises(AssertionError) as failed:
        server.start()
    assert server.proc is not None and server.proc.wait(10) == 1
    out = server.out_file.read_text()
    assert f"Syntax error on line {line_of(path, 'broken:app')} of {path}:" in out, out
    assert "RuntimeError: no database here" in out and "exited with 1" in str(failed.value)
    assert not server.ready_file.exists() and not conf.pid_file.exists()


def test_a_restart_into_an_app_that_cannot_be_imported_is_refused_with_the_error(tmp_path):
    (tmp_path / "good.py").write_text(WSGI_APP)
    conf, path = conf_with(tmp_path, "WSGIApp /a good:app")
    with Server(conf) as server:
        assert httpx.get(server.url + "/a", timeout=20).status_code == 200
        (tmp_path / "good.py").write_text(BROKEN)
        server.signal(signal.SIGHUP)
        wait_for(lambda: "restart failed, keeping the running configuration" in server.error_log_text(),
                 timeout=30, message="the restart's refusal in the ErrorLog")
        log = server.error_log_text()
        assert f"line {line_of(path, 'good:app')} of {path}" in log
        assert "RuntimeError: no database here" in log


@pytest.mark.parametrize("signo", [signal.SIGUSR1, signal.SIGHUP], ids=["graceful", "restart"])
def test_a_refused_restart_leaves_the_running_children_serving(tmp_path, mpm, signo):
    """The restart reads its config before any child retires: with the app broken on disk, the
    running children (which imported it when it was good) keep answering 200, and none of
    them is replaced by a child that would answer 500."""
    script = tmp_path / "site.py"
    script.write_text(WSGI_APP)
    conf = ConfBuilder(tmp_path, mpm=mpm).add(f'WSGIScriptAlias /a "{script}"')
    with Server(conf) as server:
        assert httpx.get(server.url + "/a", timeout=20).status_code == 200
        children = sorted(server.children())
        script.write_text(BROKEN)
        server.signal(signo)
        wait_for(lambda: "restart failed, keeping the running configuration" in server.error_log_text(),
                 timeout=30, message="the restart's refusal in the ErrorLog")
        for _ in range(5):
            assert httpx.get(server.url + "/a", timeout=20).status_code == 200
        assert sorted(server.children()) == children
        assert "Graceful restart" not in server.error_log_text()
        assert server.wait_ready()["generation"] == 0
