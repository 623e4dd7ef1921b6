#!/usr/bin/env python3
"""Crash blast radius: a WSGI app that os._exit()s on /crash among normal requests.

    PYTHONPATH=src python3 benchmarks/faults.py --out bench-results/faults
"""

import sys

from mpmd.bench import main

PRESET = ["--workloads", "faults", "--repeat", "3", "--peers", "gunicorn-sync,gunicorn-gthread",
          "--out", "bench-results/faults"]

if __name__ == "__main__":
    raise SystemExit(main(PRESET + sys.argv[1:]))
