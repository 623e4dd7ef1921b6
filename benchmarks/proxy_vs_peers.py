"""Reverse proxy throughput: mpmd's mod_proxy (nginx MPM) against nginx proxy_pass and Apache
event with mod_proxy, in the same run.

    python3 benchmarks/proxy_vs_peers.py [--seconds 5] [--connections 32] [--rounds 3]
                                          [--chart PNG] [--json]

One backend (nginx, one worker, keep-alive) serves a 1 KiB file.  In front of it, one at a
time:

* **mpmd**, nginx MPM, one worker process: ``ProxyPass / http://127.0.0.1:B/`` (its pool keeps
  backend connections alive);
* **nginx**, one worker: ``proxy_pass`` to an ``upstream`` with ``keepalive 64``,
  ``proxy_http_version 1.1`` and ``proxy_set_header Connection ""`` (its keep-alive pool);
* **Apache** event, one child of 32 threads: ``ProxyPass / http://127.0.0.1:B/`` (mod_proxy
  reuses backend connections by default).

Access logs off everywhere.  A non-2xx answer under load aborts the run; wrk's socket errors
(read errors: connections a server closed, counted when wrk stops) are printed per round.
Each is loaded with ``wrk -t1 -cN -dS --latency`` (the command is
printed), ``--rounds`` times in turn; the median of each is kept and compared with nginx and
Apache.  Prints a Markdown table; ``--chart`` writes a PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from mpmd.bench.wrk import parse_wrk  # noqa: E402

APACHE_MODULES = Path("/usr/lib/apache2/modules")
BODY = bytes(range(256)) * 4           # 1 KiB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def _nginx_head(work: Path) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
"""


def _nginx_http(work: Path) -> str:
    return f"""    access_log off;
    keepalive_timeout 30s;
    keepalive_requests 1000000;
    client_body_temp_path {work}/cb; proxy_temp_path {work}/px; fastcgi_temp_path {work}/fc;
    uwsgi_temp_path {work}/uw; scgi_temp_path {work}/sc;
"""


def backend_conf(work: Path, port: int) -> str:
    return _nginx_head(work) + f"""http {{
{_nginx_http(work)}    server {{ listen 127.0.0.1:{port}; root {work}/htdocs; }}
}}
"""


def nginx_proxy_conf(work: Path, port: int, backend: int) -> str:
    return _nginx_head(work) + f"""http {{
{_nginx_http(work)}    upstream app {{ server 127.0.0.1:{backend}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def mpmd_conf(work: Path, port: int, backend: int) -> str:
    return f"""ServerRoot "{work}"
Listen 127.0.0.1:{port}
LoadModule mpm_nginx_module modules/mod_mpm_nginx.so
WorkerProcesses 1
ServerName localhost
KeepAlive On
KeepAliveTimeout 30
MaxKeepAliveRequests 1000000
ErrorLog "{work}/error.log"
PidFile "{work}/mpmd.pid"
ProxyPass / http://127.0.0.1:{backend}/
"""


def apache_conf(work: Path, port: int, backend: int) -> str:
    mods = "\n".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so"
                     for m in ("mpm_event", "authz_core", "proxy", "proxy_http"))
    return f"""ServerRoot "{work}"
ServerName localhost
Listen 127.0.0.1:{port}
{mods}
PidFile "{work}/httpd.pid"
ErrorLog "{work}/error.log"
ServerLimit 1
StartServers 1
ThreadsPerChild 32
MaxRequestWorkers 32
KeepAlive On
KeepAliveTimeout 30
MaxKeepAliveRequests 0
ProxyPass / http://127.0.0.1:{backend}/
"""


def start(name: str, work: Path, port: int, backend: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    if name in ("nginx", "backend"):
        conf = work / f"{name}.conf"
        conf.write_text(backend_conf(work, port) if name == "backend"
                        else nginx_proxy_conf(work, port, backend))
        argv = [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-g", "daemon off;"]
    elif name == "apache":
        conf = work / "httpd.conf"
        conf.write_text(apache_conf(work, port, backend))
        argv = [shutil.which("apache2") or "/usr/sbin/apache2", "-f", str(conf), "-DFOREGROUND"]
    else:
        conf = work / "mpmd.conf"
        conf.write_text(mpmd_conf(work, port, backend))
        argv = [sys.executable, "-m", "mpmd", "-f", str(conf)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True, env=env, cwd=work)
    wait_port(port)
    return proc


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wrk_argv(port: int, connections: int, seconds: int) -> list[str]:
    return ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
            f"http://127.0.0.1:{port}/1k.bin"]


def measure(name: str, work: Path, backend: int, connections: int, seconds: int) -> dict:
    port = free_port()
    (work / name).mkdir(exist_ok=True)
    proc = start(name, work / name, port, backend)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/1k.bin", timeout=10) as r:
            if r.read() != BODY:
                raise RuntimeError(f"{name}: wrong body through the proxy")
        out = subprocess.run(wrk_argv(port, connections, seconds), capture_output=True,
                             text=True, timeout=seconds + 60, check=True).stdout
        res = parse_wrk(out)
        if res.non_2xx_3xx:
            raise RuntimeError(f"{name}: errors under load:\n{out}")
        return {"server": name, "rps": res.rps, "p50_ms": res.latency_pct_s.get("50", 0) * 1000,
                "p99_ms": (res.p99_s or 0) * 1000, "socket_errors": res.socket_errors}
    finally:
        stop(proc)


def chart(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [r["server"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.4))
    a.bar(names, [r["rps"] for r in rows], color=["#4c72b0", "#55a868", "#c44e52"])
    a.set_title("req/s (median of rounds)")
    b.bar(names, [r["p99_ms"] for r in rows], color=["#4c72b0", "#55a868", "#c44e52"])
    b.set_title("p99 latency, ms")
    fig.suptitle("Reverse proxy to a keep-alive backend serving 1 KiB")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--chart", type=Path)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    for tool in ("wrk", "nginx", "apache2"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            print(f"{tool} is not installed", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="proxybench-"))
    (work / "htdocs").mkdir()
    (work / "htdocs" / "1k.bin").write_bytes(BODY)
    bport = free_port()
    backend = start("backend", work, bport, 0)
    print("# " + " ".join(wrk_argv(0, args.connections, args.seconds)).replace(":0/", ":PORT/"))
    names = ("mpmd", "nginx", "apache")
    runs: dict[str, list[dict]] = {n: [] for n in names}
    try:
        for _ in range(args.rounds):
            for name in names:
                runs[name].append(measure(name, work, bport, args.connections, args.seconds))
    finally:
        stop(backend)
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for name in names:
        rows.append({"server": name,
                     "rps": statistics.median(r["rps"] for r in runs[name]),
                     "p50_ms": statistics.median(r["p50_ms"] for r in runs[name]),
                     "p99_ms": statistics.median(r["p99_ms"] for r in runs[name]),
                     "rounds": [round(r["rps"]) for r in runs[name]],
                     "socket_errors": [r["socket_errors"] for r in runs[name]]})
    base = {r["server"]: r["rps"] for r in rows}
    print("| proxy | req/s (median) | rounds | p50 (ms) | p99 (ms) | vs nginx | vs Apache | "
          "wrk socket errors |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['server']} | {r['rps']:.0f} | {', '.join(map(str, r['rounds']))} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['rps'] / base['nginx']:.2f}x | "
              f"{r['rps'] / base['apache']:.2f}x | {r['socket_errors']} |")
    if args.json:
        print(json.dumps(rows))
    if args.chart:
        chart(rows, args.chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
