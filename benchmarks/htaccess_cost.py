"""What .htaccess files cost a static file: the same 1 KiB file served by the event MPM (one
child) under ``AllowOverride None``, under ``AllowOverride None`` with the .htaccess's three
lines in its <Directory> section instead, and under ``AllowOverride All`` with a 3-line
.htaccess in its directory; wrk, the variants alternating round by round; prints req/s and
latency.

    python3 benchmarks/htaccess_cost.py --seconds 5 --rounds 2
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.support.confbuilder import ConfBuilder  # noqa: E402
from tests.support.harness import Server  # noqa: E402

HTACCESS = "Header set X-Frame-Options SAMEORIGIN\nExpiresActive On\nExpiresDefault A3600\n"
VARIANTS = {"AllowOverride None": ("None", ""),
            "AllowOverride None, the 3 lines in <Directory>": ("None", HTACCESS),
            "AllowOverride All, 3-line .htaccess": ("All", "")}


def server_for(allow: str, lines: str) -> Server:
    conf = ConfBuilder(Path(tempfile.mkdtemp(prefix="mpmd-htaccess-")), mpm="event")
    site = conf.htdocs / "site"
    site.mkdir(parents=True)
    (site / "1k.html").write_bytes(b"x" * 1024)
    (site / ".htaccess").write_text(HTACCESS)
    conf.set("LogLevel", "warn").set("StartServers", 1).set("ServerLimit", 1)
    conf.set("ThreadsPerChild", 16).set("MaxRequestWorkers", 16)
    conf.add(f'<Directory "{conf.htdocs}">\n    AllowOverride {allow}\n    Require all granted\n'
             f"{lines}</Directory>")
    return Server(conf)


def wrk(port: int, seconds: int) -> tuple[float, str, str]:
    cmd = ["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/site/1k.html"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+(\S+)", out).group(1)
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    return rate, p50, p99


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--only-none", action="store_true",
                   help="only AllowOverride None (to run in a checkout from before .htaccess)")
    args = p.parse_args()
    if args.only_none:
        for label in list(VARIANTS)[1:]:
            del VARIANTS[label]
    best: dict[str, tuple[float, str, str]] = {}
    for _ in range(args.rounds):
        for label, (allow, lines) in VARIANTS.items():
            with server_for(allow, lines) as server:
                wrk(server.port, 1)                       # warm-up: caches, first requests
                result = wrk(server.port, args.seconds)
            if label not in best or result[0] > best[label][0]:
                best[label] = result
    base = best["AllowOverride None"][0]
    print("| variant | req/s | p50 | p99 | vs None |\n|---|---:|---:|---:|---:|")
    for label, (rate, p50, p99) in best.items():
        print(f"| {label} | {rate:.0f} | {p50} | {p99} | {rate / base:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
