"""Two lab runs side by side: each server's median req/s before and after, and the change.

Rule 1: pure: (results before, results after) -> markdown. The medians come from
``report.aggregate``, so they are the figures of each run's report.md.
Rule 2: the change is of one server against its own figure from before; the ratio to the
workload's baseline is shown for both runs, because the machine itself may have moved
between them (a ratio is taken within one run).
Rule 3: a row needs the cell in both runs; what only one run measured is listed under the
table, never guessed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mpmd.bench.report import BASELINES, Cells, aggregate, targets_in
from mpmd.bench.stats import fmt, ratio

WORKLOADS = ("static-1k", "static-1m", "wsgi-hello", "asgi-hello", "tls-static-1k",
             "tls-asgi-hello")


def load(path: Path) -> dict[str, Any]:
    """results.json at ``path``, or in the directory ``path``."""
    file = path / "results.json" if path.is_dir() else path
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"mpmd bench: cannot read {file}: {exc}") from exc


def _rps(cells: Cells, workload: str, target: str, keep_alive: bool) -> float | None:
    cell = cells.get((workload, target, keep_alive))
    return cell.rps.median if cell and cell.rps else None


def compare_table(before: dict[str, Any], after: dict[str, Any],
                  max_loss_pct: float = 5.0) -> str:
    """Markdown: one row per (workload, keep-alive, server) both runs measured; a change
    worse than ``-max_loss_pct`` is in bold and named again under the table."""
    cb, ca = aggregate(before), aggregate(after)
    rows = ["| workload | keep-alive | server | before req/s | after req/s | change "
            "| ratio to baseline before | after |", "|---|---|---|---|---|---|---|---|"]
    losses, missing = [], []
    for w in WORKLOADS:
        targets = list(dict.fromkeys(targets_in(before, w) + targets_in(after, w)))
        base = BASELINES.get(w, "nginx")
        for ka in (True, False):
            for t in targets:
                b, a = _rps(cb, w, t, ka), _rps(ca, w, t, ka)
                mode = "on" if ka else "off"
                if b is None or a is None:
                    if (b, a) != (None, None):
                        missing.append(f"{w} / {t} / keep-alive {mode}: only in the "
                                       f"{'before' if a is None else 'after'} run")
                    continue
                change = (a / b - 1) * 100
                text = f"{change:+.1f}%"
                if change < -max_loss_pct:
                    text = f"**{text}**"
                    losses.append(f"{w} / {t} / keep-alive {mode} ({change:+.1f}%)")
                rows.append("| " + " | ".join([
                    w, mode, t, f"{b:,.0f}", f"{a:,.0f}", text,
                    fmt(ratio(b, _rps(cb, w, base, ka)), ".2f"),
                    fmt(ratio(a, _rps(ca, w, base, ka)), ".2f")]) + " |")
    out = rows + [""]
    out.append(f"Lost more than {max_loss_pct:g}% against its own figure: "
               + ("; ".join(losses) if losses else "none") + ".")
    if missing:
        out += ["", "Measured in one run only:", ""] + [f"- {m}" for m in missing]
    return "\n".join(out) + "\n"


def chart_compare(before: dict[str, Any], after: dict[str, Any]) -> Any:
    """One panel per workload: each mpmd MPM's ratio to the workload's baseline in both runs,
    keep-alive on and off (a ratio is taken within one run, so host drift cancels)."""
    from mpmd.bench.charts import _plt
    plt = _plt()
    cb, ca = aggregate(before), aggregate(after)
    fig, axes = plt.subplots(1, len(WORKLOADS), figsize=(4 * len(WORKLOADS), 4), squeeze=False)
    for ax, w in zip(axes[0], WORKLOADS):
        base = BASELINES.get(w, "nginx")
        mpms = [t for t in targets_in(after, w) if t.startswith("mpmd-")]
        labels = [f"{t[5:]} {'on' if ka else 'off'}" for ka in (True, False) for t in mpms]
        width = 0.4
        for i, (name, cells) in enumerate((("before", cb), ("after", ca))):
            values = [ratio(_rps(cells, w, t, ka), _rps(cells, w, base, ka)) or 0
                      for ka in (True, False) for t in mpms]
            ax.bar([x + i * width for x in range(len(labels))], values, width, label=name)
        ax.set_xticks([x + width / 2 for x in range(len(labels))])
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{w}: x {base}", fontsize=9)
        ax.legend(fontsize=8)
    fig.suptitle("Each MPM's req/s as a ratio to the workload's baseline, before and after")
    fig.tight_layout()
    return fig
