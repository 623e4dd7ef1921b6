#!/usr/bin/env python3
"""The issues' speed goals as ratios, before and after tuning, from saved lab results.

Each goal is mpmd's median req/s (keep-alive on) over its peer's median *in the same run*;
"before" and "after" are two runs on the same machine (docs/benchmarks.md says which).

    PYTHONPATH=src python3 benchmarks/goals_chart.py \\
        --before docs/img/before-tuning/static-1k.json docs/img/before-tuning/wsgi-asgi.json \\
        --after docs/img/results-session4-efed66b.json docs/img/results-gunicorn-workloads.json \
        --out docs/img/goals.png

A goal measured in several files takes the last one's ratio.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mpmd.bench.report import aggregate

# (label, workload, mpmd targets (the best counts), baseline peer, goal ratio)
GOALS = (
    ("issue 2: prefork / nginx\nstatic 1 KiB", "static-1k", ("mpmd-prefork",), "nginx", 0.35),
    ("issue 4: nginx MPM / nginx\nstatic 1 KiB", "static-1k", ("mpmd-nginx",), "nginx", 0.5),
    ("issue 5: best MPM / gunicorn gthread\nWSGI hello", "wsgi-hello",
     ("mpmd-prefork", "mpmd-worker", "mpmd-event", "mpmd-nginx"), "gunicorn-gthread", 3.0),
    ("issue 5: nginx MPM / uvicorn\nASGI hello", "asgi-hello", ("mpmd-nginx",), "uvicorn", 1.0),
)


def ratios(paths: list[Path]) -> dict[str, float | None]:
    """Goal label -> ratio, from whichever of the result files measured both sides."""
    out: dict[str, float | None] = {label: None for label, *_ in GOALS}
    for path in paths:
        cells = aggregate(json.loads(path.read_text()))
        for label, workload, targets, peer, _ in GOALS:
            base = cells.get((workload, peer, True))
            best = max((cells[(workload, t, True)].rps.median for t in targets
                        if (workload, t, True) in cells and cells[(workload, t, True)].rps),
                       default=None)
            if base is not None and base.rps and best is not None:
                out[label] = best / base.rps.median
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", nargs="+", type=Path, required=True)
    p.add_argument("--after", nargs="+", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("goals.png"))
    args = p.parse_args(argv)
    before, after = ratios(args.before), ratios(args.after)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(GOALS), figsize=(4 * len(GOALS), 3.6))
    for ax, (label, *_, goal) in zip(axes, GOALS):
        values = [before[label] or 0, after[label] or 0]
        bars = ax.bar(["before", "after"], values, color=["#9aa5b1", "#1f77b4"])
        ax.axhline(goal, color="#d62728", linestyle="--", label=f"goal {goal:g}x")
        for bar, v in zip(bars, values):
            ax.text(bar.get_x() + bar.get_width() / 2, v, f"{v:.2f}x", ha="center", va="bottom")
        ax.set_title(label, fontsize=9)
        ax.set_ylim(0, max(goal, *values) * 1.25)
        ax.legend(fontsize=8, loc="upper left")
    axes[0].set_ylabel("median req/s ratio, same run")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    for label, *_ in GOALS:
        name = label.replace("\n", ", ")
        print(f"{name}: before {before[label] or 0:.2f}x, after {after[label] or 0:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
