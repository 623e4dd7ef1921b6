#!/usr/bin/env python3
"""How far can Python go here?  mpmd beside nginx and beside servers that do less.

The goals of issues 2 and 4 are fractions of nginx's speed (1 KiB file, keep-alive, wrk -t1
-c64).  This run puts mpmd's prefork and nginx MPMs next to nginx (worker_processes 1), Apache
httpd's prefork MPM (when apache2 is installed) and the floors of ``floor_servers.py``, Python
servers that skip most of what a web server must do, so the ratios say what is left to gain
and what no Python server gets.  Each run also splits the CPU spent per request into the
server's user and system time and wrk's own: wrk and the server share the two cores.
Every server is started in a session of its own; rounds are interleaved; figures are medians.

    python3 benchmarks/floors.py [--rounds 3] [--duration 4] [--out DIR]

Writes DIR/floors.json, DIR/floors.png and DIR/floors-cpu.png (default DIR:
bench-results/floors).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from mpmd.bench import configs, procs  # noqa: E402
from mpmd.bench.servers import free_port, http_ready  # noqa: E402
from mpmd.bench.stats import summarize  # noqa: E402
from mpmd.bench.wrk import run_wrk  # noqa: E402

PROCESSES = 64            # prefork children: one per wrk connection
APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
CPU_PARTS = ("server user", "server system", "wrk user", "wrk system")
FLOORS = ("uvloop-fixed", "uvloop-core", "prefork-fixed", "prefork-lean")


def launch(name: str, root: Path, docroot: Path, port: int) -> subprocess.Popen[bytes]:
    """Start one server on ``port`` in its own session (the lab's rule)."""
    work = root / name
    work.mkdir()
    paths = configs.Paths(work, docroot, root)
    if name == "nginx":
        (work / "nginx.conf").write_text(configs.render_nginx(paths, configs.Sizing(), port))
        argv = [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(work / "nginx.conf"),
                "-g", "daemon off;"]
    elif name == "apache-prefork":
        (work / "httpd.conf").write_text(configs.render_apache(
            "prefork", paths, configs.Sizing(prefork_start=PROCESSES), port))
        argv = [APACHE, "-f", str(work / "httpd.conf"), "-DFOREGROUND"]
    elif name.startswith("mpmd-"):
        mpm = name[len("mpmd-"):]
        sizing = configs.Sizing(prefork_start=PROCESSES)
        (work / "httpd.conf").write_text(configs.render_mpmd(mpm, "static-1k", paths, sizing,
                                                             port))
        argv = [sys.executable, "-m", "mpmd", "-f", str(work / "httpd.conf")]
    else:
        argv = [sys.executable, str(HERE / "floor_servers.py"), name, str(port), str(docroot),
                str(PROCESSES)]
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    return subprocess.Popen(argv, cwd=work, start_new_session=True, env=env,
                            stdout=subprocess.DEVNULL, stderr=(work / "stderr").open("wb"))


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def chart(results: dict[str, dict[str, float]], out: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no chart")
        return
    names = list(results)
    values = [results[n]["median"] for n in names]
    colors = ["#888888" if n == "nginx" else "#1f77b4" if n.startswith("mpmd") else "#bbbbbb"
              for n in names]
    fig, ax = plt.subplots(figsize=(8, 4))
    bars = ax.barh(names[::-1], values[::-1], color=colors[::-1])
    for bar, name in zip(bars, names[::-1]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                f" {results[name]['ratio']:.2f}x", va="center", fontsize=9)
    ax.set_xlabel("requests/s, 1 KiB file, keep-alive, wrk -t1 -c64 (median)")
    ax.set_title("mpmd, nginx, and Python servers that do less (ratio to nginx)")
    ax.set_xlim(0, max(values) * 1.15)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"chart: {out}")


def chart_cpu(cpu: dict[str, dict[str, float]], out: Path) -> None:
    """CPU per request, stacked: the server's user and system time, then wrk's."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    names = list(cpu)
    fig, ax = plt.subplots(figsize=(8, 4))
    left = [0.0] * len(names)
    for part in CPU_PARTS:
        values = [cpu[n][part] for n in names]
        ax.barh(names[::-1], values[::-1], left=left[::-1], label=part)
        left = [a + b for a, b in zip(left, values)]
    ax.set_xlabel("CPU µs per request (median of each part), 1 KiB file, keep-alive, -c64")
    ax.set_title("Where the CPU goes: the server's code, its kernel work, and wrk's")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"chart: {out}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--out", type=Path, default=Path("bench-results/floors"))
    args = ap.parse_args(argv)
    names = ["nginx", "mpmd-nginx", "mpmd-prefork",
             *(["apache-prefork"] if os.path.exists(APACHE) else []), *FLOORS]
    samples: dict[str, list[float]] = {n: [] for n in names}
    cpu_samples: dict[str, dict[str, list[float]]] = {n: {p: [] for p in CPU_PARTS}
                                                      for n in names}
    with tempfile.TemporaryDirectory(prefix="mpmd-floors-") as tmp:
        root = Path(tmp)
        docroot = root / "htdocs"
        docroot.mkdir()
        (docroot / "1k.bin").write_bytes(bytes(range(256)) * 4)
        ports = {n: free_port() for n in names}
        servers = {n: launch(n, root, docroot, ports[n]) for n in names}
        try:
            for name in names:
                deadline = time.monotonic() + 20
                while not http_ready(ports[name], "/1k.bin"):
                    if time.monotonic() > deadline or servers[name].poll() is not None:
                        raise SystemExit(f"{name} did not start: see {root / name / 'stderr'}")
                    time.sleep(0.2)
                run_wrk(f"http://127.0.0.1:{ports[name]}/1k.bin", duration_s=1)   # warm up
            total = args.rounds * len(names)
            for r in range(args.rounds):
                for i, name in enumerate(names):
                    done = r * len(names) + i + 1
                    user0, sys0 = procs.tree_cpu_split(servers[name].pid)
                    res = run_wrk(f"http://127.0.0.1:{ports[name]}/1k.bin",
                                  duration_s=args.duration)
                    user1, sys1 = procs.tree_cpu_split(servers[name].pid)
                    samples[name].append(res.rps)
                    per_req = 1e6 / max(1, res.requests)
                    for part, seconds in zip(CPU_PARTS, (user1 - user0, sys1 - sys0,
                                                         res.cpu_user_s, res.cpu_sys_s)):
                        cpu_samples[name][part].append((seconds or 0.0) * per_req)
                    if res.non_2xx_3xx or res.socket_errors:
                        print(f"  warning: {name}: {res.non_2xx_3xx} non-2xx/3xx answers, "
                              f"{res.socket_errors} socket errors")
                    print(f"[{done}/{total}] round {r + 1} {name:<14} "
                          f"{res.rps:>10,.0f} req/s", flush=True)
        finally:
            for proc in servers.values():
                stop(proc)
    base = summarize(samples["nginx"])
    results: dict[str, dict[str, float]] = {}
    cpu: dict[str, dict[str, float]] = {}
    print(f"\n{'server':<14} {'req/s (median)':>15} {'min-max':>19} {'ratio to nginx':>15}"
          "   CPU µs/req: server user + system, wrk user + system")
    for name in names:
        s = summarize(samples[name])
        assert s is not None and base is not None
        cpu[name] = {p: median(v) for p, v in cpu_samples[name].items()}
        results[name] = {"median": s.median, "low": s.low, "high": s.high,
                         "ratio": s.median / base.median, "cpu_us_per_req": cpu[name]}
        print(f"{name:<14} {s.median:>15,.0f} {s.low:>9,.0f}-{s.high:<9,.0f} "
              f"{s.median / base.median:>15.2f}   " + " + ".join(
                  f"{cpu[name][p]:.1f}" for p in CPU_PARTS))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "floors.json").write_text(json.dumps(
        {"command": "python3 benchmarks/floors.py " + " ".join(argv or sys.argv[1:]),
         "rounds": args.rounds, "duration_s": args.duration, "samples": samples,
         "cpu_samples_us_per_req": cpu_samples, "results": results}, indent=2))
    chart(results, args.out / "floors.png")
    chart_cpu(cpu, args.out / "floors-cpu.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
