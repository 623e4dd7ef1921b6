"""`mpmd package.module:app` serves a WSGI app with the embedded config, as gunicorn does."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.harness import wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_app_shortcut_serves_app_from_current_directory(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'from myapp ' + environ['PATH_INFO'].encode()]\n")
    ready = tmp_path / "ready.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mpmd", "-D", "MPMD_LISTEN=127.0.0.1:0", "-D", f"MPMD_RUNDIR={tmp_path}",
         "--ready-file", str(ready), "myapp:app"],
        cwd=tmp_path, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: ready.exists() and ready.read_text().strip(), timeout=20)
        host, port = json.loads(ready.read_text())["listeners"][0]
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", "/hello")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read() == b"from myapp /hello"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, proc.stdout.read().decode() if proc.stdout else ""
