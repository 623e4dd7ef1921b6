"""gzip of a 100 KiB HTML page: mpmd's mod_deflate against nginx's gzip, in the same run.

    python3 benchmarks/gzip_vs_nginx.py [--level 6] [--seconds 5] [--connections 16]
                                         [--rounds 2] [--mpms nginx,event] [--chart PNG]

Each server serves the same page (``page.html``, 100 KiB of generated HTML) from its own
document root, on a loopback port, with gzip at the same level (nginx ``gzip_comp_level``,
mpmd ``DeflateCompressionLevel``), access logs off, one worker process for nginx and for
mpmd's nginx MPM (mpmd's event MPM: one child).  Per server:

* **first request**: the server freshly started, one GET with ``Accept-Encoding: gzip`` on a
  new connection, timed by the client (mpmd compresses the page here and keeps the result;
  nginx compresses every answer), then the second one, on a new connection too;
* **repeated requests**: ``wrk -t1 -cN -dS --timeout 10s --latency -H 'Accept-Encoding: gzip'`` over
  keep-alive connections (the exact command is printed).

The servers run one after another, ``--rounds`` times (the best round of each is kept), so
they never share the two cores with each other; wrk shares them with the server it loads.
Prints a Markdown table (and JSON with ``--json``); ``--chart`` writes a PNG.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mpmd.bench.wrk import parse_wrk  # noqa: E402

PAGE_BYTES = 100 * 1024
WORDS = ("the server answers request header field content encoding compression level "
         "apache nginx module filter stream chunk client cache version file static page "
         "python process thread event loop worker connection keep alive timeout").split()


def make_page(size: int = PAGE_BYTES, seed: int = 19) -> bytes:
    """Deterministic HTML of ``size`` bytes: paragraphs, lists and links of common words
    (gzip -6 makes it about a fifth of its size, as real pages)."""
    rnd = random.Random(seed)
    parts = ["<!DOCTYPE html>\n<html><head><title>gzip benchmark</title></head><body>\n"]
    n = 0
    while sum(map(len, parts)) < size - 64:
        n += 1
        words = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(20, 60)))
        if n % 5 == 0:
            items = "".join(f'<li><a href="/doc/{rnd.randint(1, 9999)}.html">{rnd.choice(WORDS)}'
                            f"</a></li>" for _ in range(5))
            parts.append(f"<ul class=\"nav-{n % 7}\">{items}</ul>\n")
        parts.append(f'<p id="p{n}" class="c{n % 11}">{words} {rnd.randint(0, 10**6)}.</p>\n')
    body = "".join(parts)
    tail = "</body></html>\n"
    body = body[: size - len(tail)]
    return (body + tail).encode()


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


def nginx_conf(work: Path, docroot: Path, port: int, level: int) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    keepalive_timeout 30s;
    keepalive_requests 100000;
    types {{ text/html html; }}
    client_body_temp_path {work}/cb; proxy_temp_path {work}/px; fastcgi_temp_path {work}/fc;
    uwsgi_temp_path {work}/uw; scgi_temp_path {work}/sc;
    gzip on;
    gzip_comp_level {level};
    gzip_types text/html;
    gzip_vary on;
    server {{ listen 127.0.0.1:{port}; root {docroot}; }}
}}
"""


def mpmd_conf(work: Path, docroot: Path, port: int, level: int, mpm: str) -> str:
    block = ("<IfModule mpm_nginx_module>\n    WorkerProcesses 1\n</IfModule>" if mpm == "nginx"
             else f"<IfModule mpm_{mpm}_module>\n    StartServers 1\n    ThreadsPerChild 16\n"
                  f"    MaxRequestWorkers 16\n</IfModule>")
    return f"""ServerRoot "{work}"
Listen 127.0.0.1:{port}
LoadModule mpm_{mpm}_module modules/mod_mpm_{mpm}.so
{block}
DocumentRoot "{docroot}"
KeepAlive On
KeepAliveTimeout 30
MaxKeepAliveRequests 100000
EnableSendfile On
ErrorLog "{work}/error.log"
PidFile "{work}/mpmd.pid"
AddOutputFilterByType DEFLATE text/html
DeflateCompressionLevel {level}
"""


def one_get(port: int) -> tuple[float, int]:
    """(seconds, body bytes) of one GET with gzip accepted, on a new connection."""
    req = (b"GET /page.html HTTP/1.1\r\nHost: bench\r\nAccept-Encoding: gzip\r\n"
           b"Connection: close\r\n\r\n")
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(req)
        data = b""
        while True:
            piece = s.recv(1 << 16)
            if not piece:
                break
            data += piece
    took = time.perf_counter() - start
    head, _, body = data.partition(b"\r\n\r\n")
    if b"content-encoding: gzip" not in head.lower():
        raise RuntimeError(f"not gzip: {head!r}")
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return took, len(gzip.decompress(body))


def _unchunk(data: bytes) -> bytes:
    out = b""
    while True:
        line, _, data = data.partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        if size == 0:
            return out
        out, data = out + data[:size], data[size + 2:]


def start(name: str, work: Path, docroot: Path, port: int, level: int) -> subprocess.Popen:
    if name == "nginx":
        conf = work / "nginx.conf"
        conf.write_text(nginx_conf(work, docroot, port, level))
        argv = [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-g",
                "daemon off;"]
    else:
        conf = work / "httpd.conf"
        conf.write_text(mpmd_conf(work, docroot, port, level, name.split("-", 1)[1]))
        argv = [sys.executable, "-m", "mpmd", "-f", str(conf)]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)
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
            "-H", "Accept-Encoding: gzip", f"http://127.0.0.1:{port}/page.html"]


def measure(name: str, page: bytes, level: int, connections: int, seconds: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"gzipbench-{name}-"))
    docroot = work / "htdocs"
    docroot.mkdir()
    (docroot / "page.html").write_bytes(page)
    past = time.time() - 3600                 # a settled file (strong validators)
    os.utime(docroot / "page.html", (past, past))
    port = free_port()
    proc = start(name, work, docroot, port, level)
    try:
        first_s, size = one_get(port)
        second_s, _ = one_get(port)
        if size != len(page):
            raise RuntimeError(f"{name}: decoded {size} bytes, not {len(page)}")
        out = subprocess.run(wrk_argv(port, connections, seconds), capture_output=True,
                             text=True, timeout=seconds + 60, check=True).stdout
        result = parse_wrk(out)
        if result.non_2xx_3xx:
            raise RuntimeError(f"{name}: errors under load:\n{out}")
        gz_len = len(gzip.compress(page, compresslevel=level))
        return {"server": name, "first_ms": first_s * 1000, "second_ms": second_s * 1000,
                "rps": result.rps, "p50_ms": result.latency_pct_s.get("50", 0) * 1000,
                "p99_ms": (result.p99_s or 0) * 1000, "gzip_bytes": gz_len,
                "socket_errors": result.socket_errors}
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)


def chart(rows: list[dict], path: Path, level: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [r["server"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    a.bar(names, [r["rps"] for r in rows], color=["#4c72b0" if n != "nginx" else "#55a868"
                                                 for n in names])
    a.set_title("repeated requests (keep-alive), req/s")
    b.bar([f"{n}\n1st" for n in names], [r["first_ms"] for r in rows], color="#c44e52")
    b.bar([f"{n}\n2nd" for n in names], [r["second_ms"] for r in rows], color="#dd8452")
    b.set_title("first and second request, ms")
    a.tick_params(axis="x", labelsize=8)
    b.tick_params(axis="x", labelsize=7, labelrotation=30)
    fig.suptitle(f"gzip -{level} of a 100 KiB HTML page: mpmd mod_deflate vs nginx gzip")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--level", type=int, default=6)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--mpms", default="nginx,event")
    ap.add_argument("--chart", type=Path)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    page = make_page()
    names = ["nginx"] + [f"mpmd-{m}" for m in args.mpms.split(",") if m]
    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for name in names:
            row = measure(name, page, args.level, args.connections, args.seconds)
            if name not in best or row["rps"] > best[name]["rps"]:
                best[name] = row
    rows = [best[n] for n in names]
    nginx_rps = best["nginx"]["rps"]
    print(f"page: {len(page)} bytes, gzip -{args.level}: {rows[0]['gzip_bytes']} bytes")
    print(f"wrk: {' '.join(wrk_argv(0, args.connections, args.seconds)).replace(':0/', ':PORT/')}")
    print()
    print("| server | first request (ms) | second request (ms) | repeated: req/s | p50 (ms) "
          "| p99 (ms) | vs nginx |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['server']} | {r['first_ms']:.2f} | {r['second_ms']:.2f} | {r['rps']:.0f} "
              f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['rps'] / nginx_rps:.2f}x |")
    if args.json:
        print(json.dumps(rows, indent=2))
    if args.chart:
        chart(rows, args.chart, args.level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
