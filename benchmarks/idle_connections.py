#!/usr/bin/env python3
"""2,000 idle keep-alive connections held while wrk measures; PSS, processes, threads.

    PYTHONPATH=src python3 benchmarks/idle_connections.py --out bench-results/idle
"""

import sys

from mpmd.bench import main

PRESET = ["--workloads", "idle", "--idle", "2000", "--repeat", "3",
          "--peers", "nginx,apache-prefork,apache-worker,apache-event",
          "--out", "bench-results/idle"]

if __name__ == "__main__":
    raise SystemExit(main(PRESET + sys.argv[1:]))
