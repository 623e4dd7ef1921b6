"""WordPress's rewrite rules on a pretty permalink: mpmd against Apache event, in the same run.

    python3 benchmarks/rewrite_wordpress.py [--seconds 5] [--connections 32] [--rounds 3]
                                            [--mpms event,nginx] [--chart PNG] [--json]

Every server gets the same document root: WordPress's stock ``.htaccess`` (the
``# BEGIN WordPress ... # END WordPress`` block, verbatim) and its front controller
``index.php``, here a static file of WordPress's page size served as a plain file (no PHP
anywhere, ``AddType text/html .php``), so each server does the same work per request: the
directory walk, reading the ``.htaccess`` (``AllowOverride All``), the rewrite of
``/2026/12/hello-world/`` to ``/index.php`` (``-f`` and ``-d`` tests on the way), then a static
file.  Apache is a standalone ``apache2`` with the event MPM and the lab's
sizing as in the other benchmarks (StartServers 2, ThreadsPerChild 32, MaxRequestWorkers 128);
mpmd runs the same configuration text (it reads httpd's) with its event MPM, sized the same,
and with its nginx MPM (one worker process).  No access log; ``KeepAlive On`` with no
request limit.

Each server is checked first (the permalink answers 200 with index.php's bytes, ``/index.php``
itself too, and an existing file is served as itself), then loaded with
``wrk -t1 -cN -dS --latency`` (the exact command is printed); servers take turns, ``--rounds``
times, so they never share the two cores with each other, and the median of the rounds is
kept.  Prints progress on stderr, a Markdown table and the mpmd/Apache ratios on stdout.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mpmd.bench.wrk import parse_wrk  # noqa: E402

APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
PERMALINK = "/2026/12/hello-world/"

# WordPress 6.x's block, as wp-admin/includes/misc.php writes it (save_mod_rewrite_rules)
WORDPRESS_HTACCESS = """\
# BEGIN WordPress
# The directives (lines) between "BEGIN WordPress" and "END WordPress" are
# dynamically generated, and should only be modified via WordPress filters.
# Any changes to the directives between these markers will be overwritten.
<IfModule mod_rewrite.c>
RewriteEngine On
RewriteRule .* - [E=HTTP_AUTHORIZATION:%{HTTP:Authorization}]
RewriteBase /
RewriteRule ^index\\.php$ - [L]
RewriteCond %{REQUEST_FILENAME} !-f
RewriteCond %{REQUEST_FILENAME} !-d
RewriteRule . /index.php [L]
</IfModule>

# END WordPress
"""


def front_controller(size: int = 24 * 1024) -> bytes:
    """index.php's stand-in: an HTML page of a WordPress post's size (about 24 KiB)."""
    head = b"<!DOCTYPE html>\n<html><head><title>Hello world!</title></head><body>\n"
    tail = b"</body></html>\n"
    para = b"<p>Welcome to WordPress. This is your first post. Edit or delete it.</p>\n"
    body = head + para * ((size - len(head) - len(tail)) // len(para))
    return body + tail


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def site_conf(work: Path, docroot: Path, port: int, mpm_lines: str, modules: str) -> str:
    """The configuration both servers read: httpd's syntax, differing only in the MPM and in
    the LoadModule lines (apache2 needs them for its shared modules; mpmd accepts them)."""
    return f"""ServerRoot "{work}"
ServerName bench.local
Listen 127.0.0.1:{port}
{mpm_lines}
{modules}
ErrorLog "{work}/error.log"
LogLevel warn
PidFile "{work}/server.pid"
KeepAlive On
KeepAliveTimeout 30
MaxKeepAliveRequests 0
TypesConfig /etc/mime.types
AddType text/html .php
DirectoryIndex index.php index.html
AccessFileName .htaccess
DocumentRoot "{docroot}"
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory "{docroot}">
    Options FollowSymLinks
    AllowOverride All
    Require all granted
</Directory>
<FilesMatch "^\\.ht">
    Require all denied
</FilesMatch>
"""


APACHE_LOADS = "\n".join(
    f"LoadModule {name}_module {APACHE_MODULES}/mod_{name}.so"
    for name in ("authz_core", "authz_host", "dir", "mime", "rewrite"))
# the lab's sizing (docs/benchmarks.md, mpmd.bench.configs.Sizing), the same for both servers
EVENT_SIZING = ("<IfModule mpm_event_module>\n    StartServers 2\n    ThreadsPerChild 32\n"
                "    MaxRequestWorkers 128\n</IfModule>")
RUN_AS = "User www-data\nGroup www-data" if os.geteuid() == 0 else ""   # apache2 as root
SERVERS = {
    "apache-event": f"LoadModule mpm_event_module {APACHE_MODULES}/mod_mpm_event.so\n{EVENT_SIZING}\n{RUN_AS}",
    "mpmd-event": f"LoadModule mpm_event_module modules/mod_mpm_event.so\n{EVENT_SIZING}",
    "mpmd-nginx": "LoadModule mpm_nginx_module modules/mod_mpm_nginx.so\n"
                  "<IfModule mpm_nginx_module>\n    WorkerProcesses 1\n</IfModule>",
}


class Site:
    """One server on its own port and document root (removed at stop)."""

    def __init__(self, name: str, page: bytes) -> None:
        self.name = name
        self.work = Path(tempfile.mkdtemp(prefix=f"wpbench-{name}-"))
        os.chmod(self.work, 0o755)
        self.docroot = self.work / "htdocs"
        self.docroot.mkdir()
        (self.docroot / "index.php").write_bytes(page)
        (self.docroot / ".htaccess").write_text(WORDPRESS_HTACCESS)
        (self.docroot / "wp-content").mkdir()
        (self.docroot / "wp-content" / "style.css").write_text("body { color: #111 }\n")
        past = time.time() - 3600               # settled files (strong validators)
        for p in self.docroot.rglob("*"):
            os.utime(p, (past, past))
        self.port = free_port()
        self.conf = self.work / "site.conf"
        modules = APACHE_LOADS if name.startswith("apache") else ""
        self.conf.write_text(site_conf(self.work, self.docroot, self.port, SERVERS[name], modules))
        self.proc: subprocess.Popen | None = None

    def argv(self, *extra: str) -> list[str]:
        if self.name.startswith("apache"):
            return [APACHE, "-f", str(self.conf), *extra]
        return [sys.executable, "-m", "mpmd", "-f", str(self.conf), *extra]

    def env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=str(ROOT / "src"))

    def check_config(self) -> str | None:
        """None, or what ``-t`` refused (the server cannot be measured)."""
        r = subprocess.run(self.argv("-t"), capture_output=True, text=True, env=self.env(),
                           timeout=120)
        return None if r.returncode == 0 else (r.stderr or r.stdout).strip()

    def start(self) -> None:
        out = open(self.work / "server.out", "wb")
        self.proc = subprocess.Popen(self.argv("-DFOREGROUND"), stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=self.env())
        out.close()
        try:
            wait_port(self.port, self.proc)
        except RuntimeError as exc:
            raise RuntimeError(f"{self.name}: {exc}\n{self.diagnostics()}") from None

    def diagnostics(self) -> str:
        texts = []
        for name in ("server.out", "error.log"):
            p = self.work / name
            if p.exists():
                texts.append(f"--- {name} ---\n{p.read_text(errors='replace')[-2000:]}")
        return "\n".join(texts)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.work, ignore_errors=True)


def get(port: int, path: str) -> tuple[int, bytes]:
    req = f"GET {path} HTTP/1.1\r\nHost: bench.local\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(req)
        data = b""
        while piece := s.recv(1 << 16):
            data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


def verify(site: Site, page: bytes) -> None:
    """The rules do their work on this server: else its figures would mean nothing."""
    for path, want in ((PERMALINK, page), ("/index.php", page), ("/", page),
                       ("/wp-content/style.css", b"body { color: #111 }\n")):
        status, body = get(site.port, path)
        if status != 200 or body != want:
            raise RuntimeError(f"{site.name}: GET {path} gave {status} ({len(body)} bytes), "
                               f"not 200 with {len(want)} bytes\n{site.diagnostics()}")
    status, _ = get(site.port, "/.htaccess")
    if status != 403:
        raise RuntimeError(f"{site.name}: GET /.htaccess gave {status}, not 403")


def wrk_argv(port: int, connections: int, seconds: int) -> list[str]:
    return ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
            f"http://127.0.0.1:{port}{PERMALINK}"]


def run_wrk(site: Site, connections: int, seconds: int) -> dict:
    out = subprocess.run(wrk_argv(site.port, connections, seconds), capture_output=True, text=True,
                         timeout=seconds + 60, check=True).stdout
    result = parse_wrk(out)
    if result.non_2xx_3xx or result.socket_errors:
        raise RuntimeError(f"{site.name}: errors under load:\n{out}")
    return {"rps": result.rps, "p50_ms": result.latency_pct_s.get("50", 0) * 1000,
            "p99_ms": (result.p99_s or 0) * 1000}


def chart(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [r["server"] for r in rows]
    med = [r["rps"] for r in rows]
    low = [r["rps"] - min(r["rounds"]) for r in rows]
    high = [max(r["rounds"]) - r["rps"] for r in rows]
    colours = ["#55a868" if n.startswith("apache") else "#4c72b0" for n in names]
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    bars = ax.bar(names, med, yerr=[low, high], capsize=4, color=colours)
    apache = next((r["rps"] for r in rows if r["server"].startswith("apache")), None)
    for bar, r in zip(bars, rows):
        label = f"{r['rps']:.0f}"
        if apache and not r["server"].startswith("apache"):
            label += f"\n{r['rps'] / apache:.2f}x"
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, max(r["rounds"])),   # above the whisker
                    ha="center", va="bottom", fontsize=8, xytext=(0, 3), textcoords="offset points")
    ax.set_ylabel("req/s (median of rounds; bars: min-max)")
    ax.set_title(title, fontsize=9)
    ax.margins(y=0.2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mpms", default="event,nginx", help="mpmd's MPMs to run (event, nginx)")
    ap.add_argument("--no-apache", action="store_true", help="mpmd only (profiling)")
    ap.add_argument("--chart", type=Path)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    page = front_controller()
    names = ([] if args.no_apache else ["apache-event"]) + \
        [f"mpmd-{m}" for m in args.mpms.split(",") if m]
    refused: dict[str, str] = {}
    rounds: dict[str, list[dict]] = {n: [] for n in names}
    for n in range(1, args.rounds + 1):
        for name in names:
            if name in refused:
                continue
            site = Site(name, page)
            try:
                problem = site.check_config()
                if problem:
                    refused[name] = problem
                    log(f"[{name}] cannot run this configuration:\n{problem}")
                    continue
                site.start()
                verify(site, page)
                log(f"[round {n}/{args.rounds}] {name}: wrk -c{args.connections} "
                    f"{args.seconds}s on {PERMALINK} ...")
                row = run_wrk(site, args.connections, args.seconds)
                rounds[name].append(row)
                log(f"[round {n}/{args.rounds}] {name}: {row['rps']:.0f} req/s, "
                    f"p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms")
            finally:
                site.stop()
    rows = []
    for name in names:
        if not rounds[name]:
            continue
        rps = [r["rps"] for r in rounds[name]]
        rows.append({"server": name, "rps": statistics.median(rps), "rounds": rps,
                     "p50_ms": statistics.median(r["p50_ms"] for r in rounds[name]),
                     "p99_ms": statistics.median(r["p99_ms"] for r in rounds[name])})
    apache = next((r["rps"] for r in rows if r["server"] == "apache-event"), None)
    print(f"request: GET {PERMALINK} -> /index.php ({len(page)} bytes) by WordPress's .htaccess")
    print(f"wrk: {' '.join(wrk_argv(0, args.connections, args.seconds)).replace(':0/', ':PORT/')}"
          f" ({args.rounds} rounds, median)")
    print()
    print("| server | req/s (median) | rounds | p50 (ms) | p99 (ms) | vs Apache event |")
    print("|---|---:|---|---:|---:|---:|")
    for r in rows:
        ratio = f"{r['rps'] / apache:.2f}x" if apache else "-"
        print(f"| {r['server']} | {r['rps']:.0f} | {', '.join(f'{x:.0f}' for x in r['rounds'])} "
              f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {ratio} |")
    for name, problem in refused.items():
        print(f"| {name} | not run: `-t` refused the configuration | | | | |")
    if args.json:
        print(json.dumps({"rows": rows, "refused": refused}, indent=2))
    if args.chart and rows:
        chart(rows, args.chart, f"WordPress .htaccess, GET {PERMALINK} -> index.php (static), "
                                f"wrk -t1 -c{args.connections} {args.seconds}s")
        log(f"chart: {args.chart}")
    return 1 if refused else 0


if __name__ == "__main__":
    raise SystemExit(main())
