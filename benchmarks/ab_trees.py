"""Two source trees of mpmd side by side under the same load: a change's cost with the host's
drift taken out.

For each MPM, the lab's config (``mpmd.bench.configs``, the static-file sizing) is started
twice at the same time, once from each tree (``PYTHONPATH=<tree>/src``), on two loopback
ports; wrk then alternates between them, round after round, with keep-alive on and off, so
both see the same machine.  Prints each MPM's median req/s per tree and the change.

    git worktree add /tmp/before <commit>
    python3 benchmarks/ab_trees.py /tmp/before . --path /1k.bin --rounds 5

Needs wrk on PATH.  Runs 2 x rounds x 2 x len(MPMs) wrk runs of --duration seconds each.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mpmd.bench.configs import reference_configs  # noqa: E402

CONFIG_OF = {"prefork": "mpmd-prefork.conf", "worker": "mpmd-worker.conf",
             "event": "mpmd-event.conf", "nginx": "mpmd-nginx-static.conf"}
FILES = {"1k.bin": 1024, "1m.bin": 1 << 20}


def wrk_rps(port: int, path: str, keep_alive: bool, duration: float) -> float:
    args = ["wrk", "-t1", "-c64", f"-d{duration:g}s", f"http://127.0.0.1:{port}{path}"]
    if not keep_alive:
        args[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=duration + 30).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    return float(found.group(1))


def start(tree: Path, conf_text: str, run: Path, port: int) -> subprocess.Popen[bytes]:
    run.mkdir(parents=True, exist_ok=True)
    text = conf_text.replace("/srv/bench/run", str(run)).replace("127.0.0.1:8080",
                                                                  f"127.0.0.1:{port}")
    text = "\n".join(line for line in text.splitlines() if "WSGIScriptAlias" not in line)
    (run / "httpd.conf").write_text(text.replace("/srv/bench/htdocs", str(run.parent / "htdocs")))
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    return subprocess.Popen([sys.executable, "-m", "mpmd", "-f", str(run / "httpd.conf")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def wait_listening(port: int, timeout: float = 20.0) -> None:
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path, help="the tree before the change (a checkout)")
    ap.add_argument("after", type=Path, help="the tree after the change")
    ap.add_argument("--path", default="/1k.bin", help="/1k.bin or /1m.bin")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--mpm", default="prefork,worker,event,nginx")
    opts = ap.parse_args()
    configs = reference_configs()
    trees = {"before": opts.before.resolve(), "after": opts.after.resolve()}
    with tempfile.TemporaryDirectory(prefix="mpmd-ab-") as tmp:
        htdocs = Path(tmp) / "htdocs"
        htdocs.mkdir()
        for name, size in FILES.items():
            (htdocs / name).write_bytes(os.urandom(size))
        for mpm in opts.mpm.split(","):
            procs = {name: start(tree, configs[CONFIG_OF[mpm]], Path(tmp) / f"{mpm}-{name}",
                                 18100 + i)
                     for i, (name, tree) in enumerate(trees.items())}
            ports = {name: 18100 + i for i, name in enumerate(trees)}
            try:
                for port in ports.values():
                    wait_listening(port)
                rates: dict[tuple[str, bool], list[float]] = {}
                for rnd in range(opts.rounds):
                    order = list(trees) if rnd % 2 == 0 else list(reversed(trees))
                    for ka in (True, False):
                        for name in order:
                            rates.setdefault((name, ka), []).append(
                                wrk_rps(ports[name], opts.path, ka, opts.duration))
                for ka in (True, False):
                    b, a = (statistics.median(rates[(n, ka)]) for n in ("before", "after"))
                    span = {n: f"{min(rates[(n, ka)]):.0f}-{max(rates[(n, ka)]):.0f}"
                            for n in trees}
                    print(f"| {mpm} | {'on' if ka else 'off'} | {b:.0f} ({span['before']}) | "
                          f"{a:.0f} ({span['after']}) | {100 * (a / b - 1):+.1f}% |", flush=True)
            finally:
                for proc in procs.values():
                    os.killpg(proc.pid, signal.SIGTERM)
                for proc in procs.values():
                    proc.wait(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
