"""Memory of an idle prefork child: mpmd prefork and Apache prefork, the same pool, the same site.

For each pool size a server is started with that many children (StartServers = MinSpareServers
= the pool, MaxSpareServers above it, so maintenance neither adds nor retires one), left idle
for ``--idle`` seconds, and every process's ``/proc/PID/smaps_rollup`` is read:

* PSS: the process's share of every page it maps (a page shared by n processes counts 1/n);
  summed over the tree it is the tree's real footprint.
* private: Private_Clean + Private_Dirty, the pages only this process maps: what one more
  child costs, whatever the pool size.

The table gives the median over the children, the master's PSS and the tree's.  ``--tree DIR``
measures the mpmd source tree under ``DIR/src`` instead of this checkout's (a before/after).

    python3 benchmarks/prefork_memory.py --pools 5 20 --idle 5
    python3 benchmarks/prefork_memory.py --floor python3.11 python3.12 python3.13
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.support import apache, harness  # noqa: E402
from tests.support.confbuilder import ConfBuilder  # noqa: E402
from tests.support.harness import Server, children_of, wait_for  # noqa: E402

FIELDS = ("Pss", "Private_Clean", "Private_Dirty")
PAGE = b"<h1>hello</h1>\n"


def rollup(pid: int) -> dict[str, int]:
    """The KiB fields of /proc/PID/smaps_rollup."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        out[key] = int(value.split()[0])
    return out


def measure_tree(master: int, pool: int, idle_s: float) -> dict[str, float]:
    wait_for(lambda: len(children_of(master)) >= pool, timeout=30, message=f"{pool} children")
    time.sleep(idle_s)
    kids = children_of(master)
    rolls = [rollup(pid) for pid in kids]
    top = rollup(master)
    return {
        "children": len(kids),
        "child_pss": statistics.median(r["Pss"] for r in rolls),
        "child_private": statistics.median(r["Private_Clean"] + r["Private_Dirty"] for r in rolls),
        "child_private_dirty": statistics.median(r["Private_Dirty"] for r in rolls),
        "master_pss": top["Pss"],
        "tree_pss": top["Pss"] + sum(r["Pss"] for r in rolls),
    }


def mpmd_prefork(pool: int, idle_s: float) -> dict[str, float]:
    conf = ConfBuilder(Path(tempfile.mkdtemp(prefix="mpmd-memory-")), mpm="prefork")
    conf.htdocs.mkdir(parents=True, exist_ok=True)
    (conf.htdocs / "index.html").write_bytes(PAGE)
    for name, value in {"StartServers": pool, "MinSpareServers": pool,
                        "MaxSpareServers": pool + 10, "MaxRequestWorkers": max(256, pool),
                        "LogLevel": "warn"}.items():
        conf.set(name, value)
    with Server(conf) as server:
        return measure_tree(server.pid, pool, idle_s)


def apache_prefork(pool: int, idle_s: float) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="apache-memory-"))
    htdocs = root / "htdocs"
    htdocs.mkdir()
    (htdocs / "index.html").write_bytes(PAGE)
    port = apache.free_port()
    extra = [f"StartServers {pool}", f"MinSpareServers {pool}", f"MaxSpareServers {pool + 10}",
             f"MaxRequestWorkers {max(256, pool)}"]
    if os.geteuid() == 0:           # as root, children switch to User; httpd's default has no name
        extra += ["User www-data", "Group www-data"]
    root.chmod(0o755)               # the children (www-data) read the site
    text = apache.config(root, port, htdocs, mpm="prefork", extra="\n".join(extra))
    conf = root / "httpd.conf"
    conf.write_text(text)
    with apache.running(conf, [("127.0.0.1", port)]):
        master = int(wait_for(lambda: _pid(root / "httpd.pid"), message="apache2's pid file"))
        return measure_tree(master, pool, idle_s)


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# --floor: a forked child of a plain interpreter that runs a few lines of the standard library
# (signals, an epoll, a log call, json, re), then sleeps; its private memory is what any child
# of that interpreter costs once it runs code, before a server does anything of its own.
FLOOR_CHILD = """
import gc, json, logging, os, re, select, signal, sys, time
gc.freeze()
r, w = os.pipe()                 # the parent wakes the child
ready_r, ready_w = os.pipe()     # the child says it has run its lines
pid = os.fork()
if pid == 0:
    for signo in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signo, signal.SIG_IGN)
    ep = select.epoll()
    ep.register(r, select.EPOLLIN)
    logging.getLogger("floor").debug("nothing %s", 1)
    json.dumps({"a": [1, 2, 3]}), re.match("a+", "aaa")
    os.write(ready_w, b"!")
    ep.poll(30)
    os._exit(0)
os.read(ready_r, 1)
time.sleep(0.5)
fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/smaps_rollup").read().splitlines()[1:])
print(sum(int(fields[k].split()[0]) for k in ("Private_Clean", "Private_Dirty")))
os.write(w, b"!")
os.waitpid(pid, 0)
"""


def floor(python: str) -> tuple[str, int]:
    out = subprocess.run([python, "-c", FLOOR_CHILD], capture_output=True, text=True, check=True)
    version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()
    return version, int(out.stdout.strip())


def row(name: str, pool: int, m: dict[str, float]) -> str:
    return (f"| {name} | {pool} | {m['children']:.0f} | {m['child_pss']:.0f} | "
            f"{m['child_private']:.0f} | {m['child_private_dirty']:.0f} | {m['master_pss']:.0f} | "
            f"{m['tree_pss'] / 1024:.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pools", type=int, nargs="+", default=[5, 20], help="children per run")
    ap.add_argument("--idle", type=float, default=5.0, help="seconds idle before reading")
    ap.add_argument("--tree", type=Path, default=None,
                    help="measure the mpmd under TREE/src (default: this checkout)")
    ap.add_argument("--label", default="mpmd prefork", help="the mpmd rows' name")
    ap.add_argument("--no-apache", action="store_true", help="mpmd only")
    ap.add_argument("--floor", nargs="+", metavar="PYTHON", default=None,
                    help="instead: the private KiB of a plain forked child of each interpreter")
    args = ap.parse_args()
    if args.floor:
        print("| interpreter | forked child running a few stdlib calls: private KiB |")
        print("|---|---|")
        for python in args.floor:
            version, kib = floor(python)
            print(f"| CPython {version} | {kib} |", flush=True)
        return 0
    if args.tree is not None:
        harness.SRC = args.tree.resolve() / "src"
    print("| server | pool | children | child PSS KiB (median) | child private KiB | "
          "child Private_Dirty KiB | master PSS KiB | tree PSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for pool in args.pools:
        print(row(args.label, pool, mpmd_prefork(pool, args.idle)), flush=True)
        if not args.no_apache:
            print(row("Apache prefork", pool, apache_prefork(pool, args.idle)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
