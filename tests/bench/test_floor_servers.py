"""benchmarks/floor_servers.py: each floor answers keep-alive GETs with 200 and 1 KiB, so
benchmarks/floors.py measures answers, not errors (it also prints wrk's error counts)."""

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mpmd.bench.servers import free_port

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "floor_servers.py"


@pytest.mark.parametrize("kind", ["uvloop-fixed", "uvloop-core", "prefork-fixed",
                                  "prefork-lean"])
def test_floor_answers_keep_alive_gets(kind, tmp_path):
    (tmp_path / "1k.bin").write_bytes(bytes(range(256)) * 4)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SCRIPT), kind, str(port), str(tmp_path), "2"],
                            start_new_session=True, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                client = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                client.connect()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "floor server did not listen"
                time.sleep(0.1)
        for _ in range(3):                      # one connection: keep-alive answers
            client.request("GET", "/1k.bin")
            resp = client.getresponse()
            body = resp.read()
            assert resp.status == 200 and len(body) == 1024
            if kind == "prefork-lean":          # the file itself, with a validator
                assert body == bytes(range(256)) * 4 and resp.getheader("ETag")
        client.close()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
