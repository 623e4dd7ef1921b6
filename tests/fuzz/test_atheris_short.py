"""A short coverage-guided run of tests/fuzz/atheris_http_core.py (a longer one is by hand)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")
TARGET = Path(__file__).with_name("atheris_http_core.py")


def test_short_atheris_run_finds_nothing(tmp_path):
    out = subprocess.run([sys.executable, str(TARGET), "-runs=20000", "-max_total_time=60",
                          f"-artifact_prefix={tmp_path}/"], capture_output=True, text=True,
                         timeout=180, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Done 20000 runs" in out.stderr or "max_total_time" in out.stderr or \
        "DONE" in out.stderr.upper(), out.stderr[-2000:]
