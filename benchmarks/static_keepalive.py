#!/usr/bin/env python3
"""Issue 2: static 1 KiB file, keep-alive on and off, mpmd prefork next to nginx.

wrk -t1 -c64 -d5s (keep-alive off = -H "Connection: close"), 3 interleaved rounds, medians,
ratio mpmd/nginx (nginx with worker_processes 1). Extra arguments are passed to `mpmd bench`,
e.g. `--mpm prefork,event` or `--repeat 5`.

    PYTHONPATH=src python3 benchmarks/static_keepalive.py --out bench-results/static-keepalive
"""

import sys

from mpmd.bench import main

PRESET = ["--mpm", "prefork", "--peers", "nginx", "--workloads", "static-1k",
          "--connections", "64", "--duration", "5", "--repeat", "3",
          "--out", "bench-results/static-keepalive"]

if __name__ == "__main__":
    raise SystemExit(main(PRESET + sys.argv[1:]))
