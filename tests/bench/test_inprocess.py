"""benchmarks/inprocess.py runs every case against the real drivers and prints a figure each
(a smoke run: a few requests, no speed is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_case_prints_a_figure() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "inprocess.py"),
                          "--requests", "50", "--repeat", "1"],
                         capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows] == [("nginx", "/1k.bin"), ("nginx", "/asgi/"),
                                            ("blocking", "/1k.bin"), ("blocking", "/app/")]
    assert all(float(r[2]) > 0 for r in rows)
    assert "Traceback" not in out.stderr
