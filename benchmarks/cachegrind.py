#!/usr/bin/env python3
"""Instructions and cache misses of one request, counted by valgrind: the same every run.

wrk's figures on this shared 2-CPU host move by 10-30% from one run to the next; cachegrind's
counts do not move at all, so a change to the hot path can be judged by them first.  Each
driver of ``inprocess.py`` serves N1 and then N2 keep-alive GETs of a 1 KiB file under
``valgrind --tool=cachegrind``; the difference divided by N2 - N1 is one request, without
start-up and warm-up.

  blocking  the ConnectionDriver of prefork/worker/event (a fake socket, a real scoreboard slot)
  nginx     the nginx MPM's HttpProtocol on uvloop (a fake transport)
  lean      floor_servers.py's prefork-lean request path (see floors.py)

``--cold`` models prefork under ``wrk -c64``: before each request the fake socket streams
through 2 MiB, as the 31 other children that ran on the core since would have, so the
simulated 1 MiB L2 holds none of the request's data.  The data misses of a run that only
streams (no server) are taken off: what is left is the number of distinct data cache lines
the request path touches, the cost that grows with the number of processes.

    python3 benchmarks/cachegrind.py [--driver blocking,nginx,lean] [--cold]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EVENTS = ("Ir", "I1mr", "ILmr", "Dr", "D1mr", "DLmr", "Dw", "D1mw", "DLmw")
CACHES = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=1048576,16,64")   # a Zen core's L1/L2
STREAM_BYTES = 2 << 20
COLD_DRIVERS = ("blocking", "lean")     # the drivers that read from a (fake) socket
REQUEST = b"GET /1k.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


# -- the child: runs under valgrind ----------------------------------------------------------
def child(driver: str, n: int, cold: bool) -> None:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent / "src"))
    import inprocess

    stream = bytearray(STREAM_BYTES)

    class Socket(inprocess.FakeSocket):
        def recv_into(self, buf) -> int:          # type: ignore[no-untyped-def]
            if cold:
                stream[::64]                        # one read per cache line
            return super().recv_into(buf)

    root = inprocess.make_root(Path(tempfile.mkdtemp()))
    try:
        if driver == "stream":                      # the baseline of --cold: no server
            sock, buf = Socket(REQUEST, n), bytearray(65536)
            while sock.recv_into(buf):
                sock.sendall(REQUEST)
        elif driver == "blocking":
            inprocess.FakeSocket = Socket           # run_blocking builds its sockets by name
            inprocess.run_blocking(root, "/1k.bin", n, scoreboard=True)
        elif driver == "nginx":
            inprocess.run_nginx(root, "/1k.bin", n)
        elif driver == "lean":
            import mmap

            import floor_servers
            lean = floor_servers.LeanStatic(str(root / "htdocs"), 0, mmap.mmap(-1, 64))
            lean.serve(Socket(REQUEST, 200))
            lean.serve(Socket(REQUEST, n))
        else:
            raise SystemExit(f"unknown driver {driver!r}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- the parent: runs valgrind twice per driver ------------------------------------------------
def totals(path: Path) -> dict[str, int]:
    for line in path.read_text().splitlines():
        if line.startswith("summary:"):
            return dict(zip(EVENTS, map(int, line.split()[1:])))
    raise RuntimeError(f"no summary in {path}")


def per_request(driver: str, cold: bool, n1: int, n2: int, work: Path) -> dict[str, float]:
    """Cachegrind's counts of (n2 - n1) requests, divided by their number."""
    runs = []
    for n in (n1, n2):
        out = work / f"{driver}.{n}.out"
        cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=yes", *CACHES,
               f"--cachegrind-out-file={out}", sys.executable, str(Path(__file__).resolve()),
               "--child", driver, str(n)] + (["--cold"] if cold else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"{driver}: valgrind failed: {proc.stderr[-800:]}")
        runs.append(totals(out))
    return {e: (runs[1][e] - runs[0][e]) / (n2 - n1) for e in EVENTS}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--driver", default="blocking,nginx,lean")
    p.add_argument("--cold", action="store_true", help="stream 2 MiB before each request")
    p.add_argument("--requests", default=None, help="N1,N2 (default 1000,3000; cold 300,900)")
    p.add_argument("--child", nargs=2, metavar=("DRIVER", "N"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]), args.cold)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    n1, n2 = map(int, (args.requests or ("300,900" if args.cold else "1000,3000")).split(","))
    drivers = args.driver.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = per_request("stream", True, n1, n2, work) if args.cold else None
        print(f"{'driver':<9} {'instructions':>12} {'data reads':>10} {'data writes':>11} "
              f"{'L2 data misses':>14}   (per request; {n2 - n1} requests, "
              f"{'cold: 2 MiB streamed before each, its own misses taken off' if args.cold else 'warm'})")
        for i, driver in enumerate(drivers, 1):
            if args.cold and driver not in COLD_DRIVERS:
                # One event loop serves every connection: no other process runs between its
                # requests, so there is no cold case to model (and no socket to stream from).
                print(f"{driver:<9} {'(--cold models a process per connection: not this one)':>50}")
                continue
            print(f"[{i}/{len(drivers)}] {driver} ...", end="\r", file=sys.stderr, flush=True)
            r = per_request(driver, args.cold, n1, n2, work)
            if base is not None:
                r = {e: r[e] - base[e] for e in EVENTS}
            print(f"{driver:<9} {r['Ir']:>12,.0f} {r['Dr']:>10,.0f} {r['Dw']:>11,.0f} "
                  f"{r['DLmr'] + r['DLmw']:>14,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")    # the same dict layouts in every run
    raise SystemExit(main())
