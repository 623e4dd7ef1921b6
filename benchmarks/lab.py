#!/usr/bin/env python3
"""The full comparison lab (same as `mpmd bench`): every MPM x workload x keep-alive.

    PYTHONPATH=src python3 benchmarks/lab.py --out bench-results/lab        # ~25 minutes
    PYTHONPATH=src python3 benchmarks/lab.py --quick --out /tmp/lab-quick   # < 2 minutes
"""

import sys

from mpmd.bench import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
