"""benchmarks/cachegrind.py: its drivers run the real request paths, and its counts are read
from cachegrind's summary line (valgrind itself is too slow for the suite)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "benchmarks" / "cachegrind.py"


def _tool():
    spec = importlib.util.spec_from_file_location("cachegrind_tool", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("driver,cold", [("blocking", False), ("blocking", True),
                                         ("nginx", False), ("lean", True), ("stream", True)])
def test_each_driver_serves_its_requests_outside_valgrind(driver, cold):
    cmd = [sys.executable, str(TOOL), "--child", driver, "5"] + (["--cold"] if cold else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_an_unknown_driver_is_refused():
    proc = subprocess.run([sys.executable, str(TOOL), "--child", "nope", "5"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "unknown driver" in proc.stderr


def test_the_summary_line_gives_every_event(tmp_path):
    out = tmp_path / "cg.out"
    out.write_text("desc: I1 cache: 32768 B, 64 B, 8-way associative\n"
                   "events: Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw\n"
                   "fl=x.c\nfn=f\n1 9 0 0 3 1 1 2 0 0\n"
                   "summary: 9 0 0 3 1 1 2 0 0\n")
    assert _tool().totals(out) == {"Ir": 9, "I1mr": 0, "ILmr": 0, "Dr": 3, "D1mr": 1,
                                   "DLmr": 1, "Dw": 2, "D1mw": 0, "DLmw": 0}


def test_cold_is_not_claimed_for_the_event_loop(monkeypatch, capsys):
    """--cold streams through the fake socket between requests: the nginx driver has none,
    and one loop serving every connection has no cold case; the tool says so instead of
    printing counts with the stream's baseline taken off (negative numbers)."""
    tool = _tool()
    monkeypatch.setattr(tool.shutil, "which", lambda name: "/usr/bin/valgrind")
    ran = []
    monkeypatch.setattr(tool, "per_request", lambda driver, *a: ran.append(driver) or
                        {e: 0.0 for e in tool.EVENTS})
    assert tool.main(["--driver", "nginx", "--cold"]) == 0
    assert ran == ["stream"]                                # the baseline only
    assert "not this one" in capsys.readouterr().out
