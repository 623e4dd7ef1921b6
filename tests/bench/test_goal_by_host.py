"""benchmarks/goal_by_host.py: reads mpmd bench results, skips other files, and draws."""

import importlib.util
import json
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "benchmarks" / "goal_by_host.py"


def _tool():
    spec = importlib.util.spec_from_file_location("goal_by_host", TOOL)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod        # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def _results(path, rps):
    samples = [{"target": t, "workload": "static-1k", "keep_alive": True, "round": r,
                "rps": v * (1 + 0.1 * r), "p99_s": 0.001, "socket_errors": 0, "non_2xx_3xx": 0}
               for t, v in rps.items() for r in range(3)]
    path.write_text(json.dumps({"options": {"targets": list(rps)}, "samples": samples}))
    return path


def test_runs_are_read_judged_and_drawn(tmp_path):
    tool = _tool()
    slow = _results(tmp_path / "slow.json", {"nginx": 50_000, "mpmd-prefork": 19_000,
                                             "apache-prefork": 25_000})
    fast = _results(tmp_path / "fast.json", {"nginx": 120_000, "mpmd-prefork": 27_600,
                                             "apache-prefork": 40_000})
    no_apache = _results(tmp_path / "no-apache.json", {"nginx": 1, "mpmd-prefork": 1})
    floors = tmp_path / "floors.json"
    floors.write_text(json.dumps({"samples": {"nginx": [1, 2]}}))  # floors.py's own layout
    runs = [tool.read_run(p) for p in (slow, fast, no_apache, floors)]
    assert runs[2] is None and runs[3] is None
    assert round(runs[0].prefork_ratio, 6) == 0.38 and round(runs[1].prefork_ratio, 6) == 0.23
    text = tool.table([r for r in runs if r])
    assert f"| {tmp_path.name}/slow.json | 55,000 | 0.38x | 0.50x | 0.76x | yes |" in text
    assert f"| {tmp_path.name}/fast.json | 132,000 | 0.23x | 0.33x | 0.69x | no |" in text
    assert text.index("slow.json") < text.index("fast.json")   # ordered by nginx's speed
    out = tmp_path / "chart.png"
    assert tool.main([str(slow), str(fast), str(floors), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_usable_file_is_an_error(tmp_path):
    assert _tool().main([str(_results(tmp_path / "x.json", {"nginx": 1})),
                         "--out", str(tmp_path / "c.png")]) == 1
