#!/usr/bin/env python3
"""Issue 2's ratio (mpmd prefork / nginx) beside Apache prefork's, in every saved run.

The goal "mpmd prefork >= 0.35x nginx" was set on a host where Apache's prefork reached
0.67x. The saved runs come from several hosts; this chart puts each run's two ratios over
that run's nginx req/s, so one can see whether the goal follows the code or the host.

    PYTHONPATH=src python3 benchmarks/goal_by_host.py docs/img/**/*.json \\
        --out docs/img/goal-by-host.png

Files without a static-1k keep-alive run of nginx, mpmd prefork and Apache prefork are
skipped; the table printed lists the runs used.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from mpmd.bench.report import aggregate

GOAL = 0.35
WORKLOAD = "static-1k"


@dataclass(frozen=True)
class Run:
    name: str
    nginx: float
    prefork: float
    apache: float

    @property
    def prefork_ratio(self) -> float:
        return self.prefork / self.nginx

    @property
    def apache_ratio(self) -> float:
        return self.apache / self.nginx


def read_run(path: Path) -> Run | None:
    """The three medians of one results.json, or None when it lacks one of them."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    samples = data.get("samples") if isinstance(data, dict) else None
    # floors.py writes its own layout; only mpmd bench's results.json has these keys
    if not isinstance(samples, list) or not all(
            isinstance(s, dict) and {"workload", "target", "keep_alive"} <= s.keys()
            for s in samples):
        return None
    cells = aggregate(data)
    found = []
    for target in ("nginx", "mpmd-prefork", "apache-prefork"):
        cell = cells.get((WORKLOAD, target, True))
        if cell is None or cell.rps is None:
            return None
        found.append(cell.rps.median)
    return Run(path.name if path.parent.name == "img" else f"{path.parent.name}/{path.name}",
               *found)


def table(runs: list[Run]) -> str:
    rows = ["| run | nginx req/s | mpmd prefork / nginx | Apache prefork / nginx "
            "| mpmd prefork / Apache prefork | goal met? |", "|---|---|---|---|---|---|"]
    for r in sorted(runs, key=lambda r: r.nginx):
        rows.append(f"| {r.name} | {r.nginx:,.0f} | {r.prefork_ratio:.2f}x | "
                    f"{r.apache_ratio:.2f}x | {r.prefork / r.apache:.2f}x | "
                    f"{'yes' if r.prefork_ratio >= GOAL else 'no'} |")
    rows.append(f"\nmedian of mpmd prefork / Apache prefork over {len(runs)} runs: "
                f"{median(r.prefork / r.apache for r in runs):.2f}x")
    return "\n".join(rows)


def chart(runs: list[Run], out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.8))
    xs = [r.nginx / 1000 for r in runs]
    ax.scatter(xs, [r.apache_ratio for r in runs], marker="s", color="#b5651d",
               label="Apache prefork (C) / nginx")
    ax.scatter(xs, [r.prefork_ratio for r in runs], marker="o", color="#1f77b4",
               label="mpmd prefork / nginx")
    ax.axhline(GOAL, color="#2ca02c", linestyle="--", label=f"issue 2's goal, {GOAL}x")
    ax.axhline(0.67, color="#b5651d", linestyle=":",
               label="Apache prefork on the issue's host, 0.67x")
    ax.set_xlabel("nginx req/s in the same run (thousands): a faster host to the right")
    ax.set_ylabel("req/s over nginx's, same run")
    ax.set_ylim(0, 0.75)
    ax.set_title("Static 1 KiB, keep-alive on, wrk -t1 -c64: every saved run")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", type=Path, help="results.json files of mpmd bench")
    p.add_argument("--out", type=Path, default=Path("bench-results/goal-by-host.png"))
    args = p.parse_args(argv)
    runs = [r for r in map(read_run, args.results) if r is not None]
    if not runs:
        print("goal_by_host: no file has nginx, mpmd prefork and Apache prefork on static-1k")
        return 1
    print(table(runs))
    chart(runs, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
