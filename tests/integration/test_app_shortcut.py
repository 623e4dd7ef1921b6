"""`mpmd package.module:app` serves a WSGI or an ASGI app with the embedded config, as gunicorn
and uvicorn do (cli.py Rule 5); an app that cannot be imported stops it, naming the argument."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.harness import wait_for

ROOT = Path(__file__).resolve().parents[2]

WSGI_APP = (
    "def app(environ, start_response):\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
    "    return [b'from myapp ' + environ['PATH_INFO'].encode()]\n")

ASGI_FUNCTION = (
    "async def app(scope, receive, send):\n"
    "    assert scope['type'] in ('http', 'lifespan')\n"
    "    if scope['type'] == 'lifespan':\n"
    "        return\n"
    "    await send({'type': 'http.response.start', 'status': 200,\n"
    "                'headers': [(b'content-type', b'text/plain')]})\n"
    "    await send({'type': 'http.response.body', 'body': b'asgi ' + scope['path'].encode()})\n")

# An instance whose __call__ is the coroutine function (Starlette's, Django's ASGIHandler).
ASGI_INSTANCE = ASGI_FUNCTION.replace("async def app(", "async def _app(") + (
    "class App:\n"
    "    async def __call__(self, scope, receive, send):\n"
    "        await _app(scope, receive, send)\n"
    "app = App()\n")


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT / "src"))


def start(cwd: Path, rundir: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    ready = rundir / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mpmd", "-b", "127.0.0.1:0", "-D", f"MPMD_RUNDIR={rundir}",
         "--ready-file", str(ready), *args],
        cwd=cwd, env=env(), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return proc, ready


def get(ready: Path, path: str) -> tuple[int, bytes]:
    host, port = json.loads(ready.read_text())["listeners"][0]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp.status, resp.read()


def serve_and_get(cwd: Path, rundir: Path, spec: str, path: str) -> tuple[int, bytes]:
    proc, ready = start(cwd, rundir, spec)
    try:
        wait_for(lambda: ready.exists() and ready.read_text().strip() or proc.poll() is not None,
                 timeout=30)
        assert proc.poll() is None, proc.communicate()[0].decode()
        return get(ready, path)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=15)[0].decode()
        assert proc.returncode == 0, out


def test_app_shortcut_serves_wsgi_app_from_current_directory(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(WSGI_APP)
    assert serve_and_get(tmp_path, tmp_path, "myapp:app", "/hello") == (200, b"from myapp /hello")


@pytest.mark.parametrize("source", [ASGI_FUNCTION, ASGI_INSTANCE], ids=["function", "instance"])
def test_app_shortcut_serves_asgi_app(tmp_path: Path, source: str) -> None:
    (tmp_path / "myasgi.py").write_text(source)
    assert serve_and_get(tmp_path, tmp_path, "myasgi:app", "/x/y") == (200, b"asgi /x/y")


def test_app_shortcut_serves_a_fastapi_app(tmp_path: Path) -> None:
    status, body = serve_and_get(ROOT, tmp_path, "tests.apps.starlette_app:app", "/items/7?q=a")
    assert status == 200 and json.loads(body) == {"item_id": 7, "q": "a"}


BROKEN = "import os\n\nvalue = 1 / 0\n"


def test_t_names_the_import_error_of_the_shortcut(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(BROKEN)
    r = subprocess.run([sys.executable, "-m", "mpmd", "-t", "broken:app"], cwd=tmp_path, env=env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "Syntax OK" not in r.stderr
    assert r.stderr == (f"mpmd: cannot load the application broken:app (from {tmp_path}): "
                        f"ZeroDivisionError: division by zero (at {tmp_path / 'broken.py'}:3)\n")


def test_t_names_a_missing_module_and_a_missing_attribute(tmp_path: Path) -> None:
    (tmp_path / "there.py").write_text(WSGI_APP)
    for spec, error in [("nothere:app", "ModuleNotFoundError: No module named 'nothere'"),
                        ("there:nope", "AttributeError: module 'there' has no attribute 'nope'")]:
        r = subprocess.run([sys.executable, "-m", "mpmd", "-t", spec], cwd=tmp_path, env=env(),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, r.stderr
        assert r.stderr == f"mpmd: cannot load the application {spec} (from {tmp_path}): {error}\n"


def test_start_with_an_app_that_cannot_be_imported_fails_at_once(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(BROKEN)
    proc, ready = start(tmp_path, tmp_path, "broken:app")
    try:
        out = proc.communicate(timeout=60)[0].decode()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, out
    assert "ZeroDivisionError: division by zero" in out and not ready.exists()
