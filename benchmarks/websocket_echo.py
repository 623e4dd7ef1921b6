"""WebSocket echo: mpmd's nginx MPM against uvicorn, in the same run.

    python3 benchmarks/websocket_echo.py [--connections 100] [--messages 1000] [--size 64]
                                         [--rounds 3] [--mpms nginx] [--chart PNG] [--json]

Both servers run the same bare ASGI echo (``tests.apps.ws_apps:raw_echo``), one process each
(mpmd: ``WorkerProcesses 1``, no access log; uvicorn: one worker with uvloop and httptools,
``--no-access-log``, its default websocket implementation), permessage-deflate off on both
(``WebSocketCompression Off`` / ``--ws-per-message-deflate false``) so the framing path is
what is measured.  The client (the ``websockets`` library on uvloop, in a process of its own)
opens ``--connections`` connections at once; each sends ``--messages`` text messages of
``--size`` bytes one after the other, waiting for each echo.  The rate is messages echoed per
second over the whole run (connect to last close); the server's CPU time per 1,000 messages
(user + system of every process of the server, from /proc) is printed too, as the client and
other load share the cores and move the rate more than the CPU cost.  The servers run one after another,
``--rounds`` times; the median round of each is kept.  Prints progress, a Markdown table and
the ratio; ``--chart`` writes a PNG.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

APP = "tests.apps.ws_apps:raw_echo"

CLIENT = r"""
import asyncio, json, sys, time
import uvloop
from websockets.asyncio.client import connect

port, conns, messages, size = (int(a) for a in sys.argv[1:5])
payload = "x" * size

async def one():
    async with connect(f"ws://127.0.0.1:{port}/ws/", compression=None, max_queue=None) as ws:
        for _ in range(messages):
            await ws.send(payload)
            if await ws.recv() != payload:
                raise SystemExit("wrong echo")

async def main():
    began = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(conns)), return_exceptions=True)
    took = time.perf_counter() - began
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    print(json.dumps({"seconds": took, "errors": errors[:3], "failed": len(errors)}))

uvloop.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def mpmd_conf(work: Path, port: int, mpm: str) -> str:
    block = ("<IfModule mpm_nginx_module>\n    WorkerProcesses 1\n</IfModule>" if mpm == "nginx"
             else f"<IfModule mpm_{mpm}_module>\n    StartServers 1\n    ThreadsPerChild 128\n"
                  f"    MaxRequestWorkers 128\n</IfModule>")
    return f"""ServerRoot "{work}"
Listen 127.0.0.1:{port}
LoadModule mpm_{mpm}_module modules/mod_mpm_{mpm}.so
{block}
DocumentRoot "{work}"
ErrorLog "{work}/error.log"
PidFile "{work}/mpmd.pid"
WSGIPythonPath "{REPO}"
ASGIApp /ws {APP}
WebSocketCompression Off
"""


def start(name: str, work: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}{os.pathsep}{REPO}")
    if name == "uvicorn":
        argv = [sys.executable, "-m", "uvicorn", "--port", str(port), "--workers", "1",
                "--loop", "uvloop", "--http", "httptools", "--ws-per-message-deflate", "false",
                "--no-access-log", "--log-level", "warning", "--root-path", "", APP]
    else:
        conf = work / "httpd.conf"
        conf.write_text(mpmd_conf(work, port, name.split("-", 1)[1]))
        argv = [sys.executable, "-m", "mpmd", "-f", str(conf)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True, env=env, cwd=REPO)
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


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of the live processes of process group ``pgid``."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:                  # pgrp
            total += int(fields[11]) + int(fields[12])   # utime, stime
    return total / tick


def client_argv(port: int, conns: int, messages: int, size: int) -> list[str]:
    return [sys.executable, "-c", CLIENT, str(port), str(conns), str(messages), str(size)]


def measure(name: str, conns: int, messages: int, size: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"wsbench-{name}-"))
    port = free_port()
    proc = start(name, work, port)
    try:
        time.sleep(0.5)                               # lifespan startup, the worker settled
        cpu0 = group_cpu_s(proc.pid)
        out = subprocess.run(client_argv(port, conns, messages, size), capture_output=True,
                             text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"{name}: client failed:\n{out.stderr[-2000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result["failed"]:
            raise RuntimeError(f"{name}: {result['failed']} connections failed: {result['errors']}")
        total = conns * messages
        cpu = group_cpu_s(proc.pid) - cpu0
        return {"server": name, "seconds": result["seconds"], "rate": total / result["seconds"],
                "cpu_ms_per_1k": cpu * 1000 / (total / 1000)}
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)


def chart(rows: list[dict], path: Path, conns: int, messages: int, size: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [r["server"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.bar(names, [r["rate"] for r in rows],
           color=["#55a868" if n == "uvicorn" else "#4c72b0" for n in names])
    for i, r in enumerate(rows):
        ax.plot([i] * len(r["rounds"]), r["rounds"], "k.", markersize=4)
    ax.set_ylabel("messages echoed / s (median round; dots: rounds)")
    ax.set_title(f"WebSocket echo: {conns} connections x {messages} messages of {size} B",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mpms", default="nginx")
    ap.add_argument("--chart", type=Path)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    names = [f"mpmd-{m}" for m in args.mpms.split(",") if m] + ["uvicorn"]
    rounds: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    for k in range(args.rounds):
        for name in names:
            row = measure(name, args.connections, args.messages, args.size)
            rounds[name].append(row["rate"])
            cpus[name].append(row["cpu_ms_per_1k"])
            print(f"round {k + 1}/{args.rounds} {name}: {row['rate']:.0f} messages/s "
                  f"({row['seconds']:.2f} s), server CPU {row['cpu_ms_per_1k']:.1f} ms per "
                  f"1,000 messages", file=sys.stderr, flush=True)
    rows = [{"server": n, "rate": statistics.median(rounds[n]), "rounds": rounds[n],
             "cpu_ms_per_1k": statistics.median(cpus[n])} for n in names]
    uv = rows[-1]["rate"]
    print(f"client: {args.connections} connections x {args.messages} messages of {args.size} B, "
          f"send then wait for the echo; median of {args.rounds} rounds")
    print()
    uv_cpu = rows[-1]["cpu_ms_per_1k"]
    print("| server | messages/s (median) | rounds | vs uvicorn | server CPU ms per 1,000 "
          "messages (median) | CPU vs uvicorn |")
    print("|---|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['server']} | {r['rate']:.0f} | {', '.join(f'{x:.0f}' for x in r['rounds'])} "
              f"| {r['rate'] / uv:.2f}x | {r['cpu_ms_per_1k']:.1f} | "
              f"{r['cpu_ms_per_1k'] / uv_cpu:.2f}x |")
    if args.json:
        print(json.dumps(rows, indent=2))
    if args.chart:
        chart(rows, args.chart, args.connections, args.messages, args.size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
