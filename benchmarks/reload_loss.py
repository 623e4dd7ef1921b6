"""Requests lost to graceful restarts under wrk load, per MPM (issue 18's harness).

    python3 benchmarks/reload_loss.py [--mpm prefork,worker,event,nginx] [--reloads 5]

For each MPM: a 1 KiB file, `wrk -t1 -c32 -d20s` with keep-alive (or `--close`), and a graceful
restart (SIGUSR1 to the master) every 3 s from the third second on.  A lost request is a
socket error wrk counts (connect, read, write) or a non-2xx answer; wrk's "timeout" (an answer
slower than 2 s: a prefork pool still growing to 32 processes) is shown apart.  Prints one
markdown row per MPM.  Loopback only; every server is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
TOTAL = re.compile(r"(\d+) requests in")


def start(mpm: str, root: Path) -> tuple[subprocess.Popen[bytes], int]:
    (root / "htdocs").mkdir(parents=True, exist_ok=True)
    (root / "htdocs" / "1k.bin").write_bytes(b"x" * 1024)
    conf = root / "httpd.conf"
    conf.write_text(f"""LoadModule mpm_{mpm}_module x.so
Listen 127.0.0.1:0
ServerName localhost
DocumentRoot "{root}/htdocs"
ErrorLog "{root}/error.log"
PidFile "{root}/mpmd.pid"
KeepAlive On
MaxKeepAliveRequests 0
""")
    ready = root / "ready.json"
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.Popen([sys.executable, "-m", "mpmd", "-f", str(conf), "--ready-file",
                             str(ready)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            data = json.loads(ready.read_text())
            return proc, int(data["listeners"][0][1])
        except (OSError, ValueError, KeyError):
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{mpm}: the server did not start")


def run(mpm: str, reloads: int, close: bool) -> tuple[int, int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start(mpm, Path(tmp))
        try:
            args = ["wrk", "-t1", "-c32", "-d20s", f"http://127.0.0.1:{port}/1k.bin"]
            if close:
                args[4:4] = ["-H", "Connection: close"]
            wrk = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
            time.sleep(3)
            for _ in range(reloads):
                os.kill(proc.pid, signal.SIGUSR1)
                time.sleep(3)
            out = wrk.communicate(timeout=60)[0]
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
    errors = ERRORS.search(out)
    connect, read, write, slow = (int(n) for n in errors.groups()) if errors else (0, 0, 0, 0)
    non_2xx = NON_2XX.search(out)
    lost = connect + read + write + (int(non_2xx.group(1)) if non_2xx else 0)
    total = TOTAL.search(out)
    return lost, slow, int(total.group(1)) if total else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mpm", default="prefork,worker,event,nginx")
    p.add_argument("--reloads", type=int, default=5)
    p.add_argument("--close", action="store_true", help="Connection: close on every request")
    opts = p.parse_args()
    print("| MPM | requests | lost | slower than 2 s |\n|---|---|---|---|")
    for mpm in opts.mpm.split(","):
        lost, slow, total = run(mpm, opts.reloads, opts.close)
        print(f"| {mpm} | {total} | {lost} | {slow} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
