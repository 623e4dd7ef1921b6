"""Two runs side by side (`mpmd bench --compare BEFORE AFTER`), from synthetic results."""

import json

import mpmd.bench
from mpmd.bench.compare import compare_table


def _run(rps):
    """rps: {(workload, target, keep_alive): [one figure per round]}"""
    samples = [{"target": t, "workload": w, "keep_alive": ka, "round": r, "rps": v,
                "p99_s": 0.001, "socket_errors": 0, "non_2xx_3xx": 0}
               for (w, t, ka), values in rps.items() for r, v in enumerate(values)]
    targets = list(dict.fromkeys(t for _, t, _ in rps))
    return {"options": {"targets": targets}, "samples": samples, "unavailable": {}}


BEFORE = _run({("static-1k", "nginx", True): [100, 110, 90],
               ("static-1k", "mpmd-event", True): [50, 40, 45],
               ("static-1k", "mpmd-event", False): [20, 20, 20],
               ("wsgi-hello", "mpmd-worker", True): [30, 30, 30]})
AFTER = _run({("static-1k", "nginx", True): [200, 200, 200],
              ("static-1k", "mpmd-event", True): [60, 60, 60],
              ("static-1k", "mpmd-event", False): [18, 18, 18],
              ("asgi-hello", "mpmd-nginx", True): [10, 10, 10]})


def test_each_server_against_its_own_median_with_both_ratios():
    md = compare_table(BEFORE, AFTER)
    assert "| static-1k | on | mpmd-event | 45 | 60 | +33.3% | 0.45 | 0.30 |" in md
    assert "| static-1k | off | mpmd-event | 20 | 18 | **-10.0%** | – | – |" in md
    assert "Lost more than 5% against its own figure: static-1k / mpmd-event / keep-alive " \
           "off (-10.0%)." in md
    assert "- wsgi-hello / mpmd-worker / keep-alive on: only in the before run" in md
    assert "- asgi-hello / mpmd-nginx / keep-alive on: only in the after run" in md


def test_no_loss_is_said_so():
    assert "Lost more than 5% against its own figure: none." in compare_table(BEFORE, BEFORE)


def test_the_command_reads_files_or_their_directories(tmp_path, capsys):
    (tmp_path / "before").mkdir()
    (tmp_path / "before" / "results.json").write_text(json.dumps(BEFORE))
    (tmp_path / "after.json").write_text(json.dumps(AFTER))
    assert mpmd.bench.main(["--compare", str(tmp_path / "before"),
                            str(tmp_path / "after.json")]) == 0
    assert "| static-1k | on | nginx | 100 | 200 | +100.0% | 1.00 | 1.00 |" in capsys.readouterr().out


def test_the_chart_is_a_png_of_both_runs(tmp_path):
    (tmp_path / "before.json").write_text(json.dumps(BEFORE))
    (tmp_path / "after.json").write_text(json.dumps(AFTER))
    png = tmp_path / "compare.png"
    assert mpmd.bench.main(["--compare", str(tmp_path / "before.json"), str(tmp_path / "after.json"),
                            "--compare-chart", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
