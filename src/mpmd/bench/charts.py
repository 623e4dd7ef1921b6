"""PNG charts from the aggregated results (matplotlib, Agg backend, no display needed).

Rule 1: one function per chart in ``CHARTS``; each takes (data, cells) and returns a figure
or None when it has nothing to plot, so a partial run still yields the charts it can.
Rule 2: bars are medians, error bars span min-max -- the same numbers as report.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from mpmd.bench.report import (CPU_PARTS, HTTPS_SERVES, MIB, Cells, aggregate,
                               idle_per_conn, targets_in)
from mpmd.bench.stats import Summary, speedup_pct


def _plt() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _bars(ax: Any, labels: list[str], series: dict[str, list[Summary | None]],
          scale: float = 1.0) -> None:
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [x + i * width for x in range(len(labels))]
        med = [v.median * scale if v else 0 for v in values]
        err = [[(v.median - v.low) * scale if v else 0 for v in values],
               [(v.high - v.median) * scale if v else 0 for v in values]]
        ax.bar(xs, med, width, yerr=err, label=name, capsize=2)
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(labels))])
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.legend(fontsize=8)


def chart_rps(data: dict[str, Any], cells: Cells) -> Any:
    plt = _plt()
    workloads = [w for w in ("static-1k", "static-1m", "wsgi-hello", "asgi-hello")
                 if targets_in(data, w)]
    if not workloads:
        return None
    fig, axes = plt.subplots(1, len(workloads), figsize=(5 * len(workloads), 4.5), squeeze=False)
    for ax, w in zip(axes[0], workloads):
        ts = targets_in(data, w)
        _bars(ax, ts, {f"keep-alive {m}": [getattr(cells.get((w, t, ka)), "rps", None)
                                           for t in ts]
                       for m, ka in (("on", True), ("off", False))})
        ax.set_title(w)
        ax.set_ylabel("requests/s (median, min–max)")
    fig.tight_layout()
    return fig


def chart_https(data: dict[str, Any], cells: Cells) -> Any:
    """The https workloads: keep-alive req/s and new TLS connections per second, every
    server in one panel each, with nginx's figure as a dashed line."""
    rows = [(w, t) for w in HTTPS_SERVES for t in targets_in(data, w)]
    if not rows:
        return None
    plt = _plt()
    def label(w: str, t: str) -> str:
        facts = next((c.extra.get("tls") for c in (cells.get((w, t, ka)) for ka in (True, False))
                      if c and c.extra.get("tls")), None) or {}
        return f"{t}\n({HTTPS_SERVES[w]})" + ("\nresumes sessions" if facts.get("resumed") else "")
    labels = [label(w, t) for w, t in rows]
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 1.3 * len(rows)), 8.5))
    for ax, (title, ka) in zip(axes, (("https, keep-alive: req/s", True),
                                      ("new TLS connection per request: conn/s", False))):
        values = [getattr(cells.get((w, t, ka)), "rps", None) for w, t in rows]
        _bars(ax, labels, {"median (min–max)": values})
        nginx = getattr(cells.get(("tls-static-1k", "nginx", ka)), "rps", None)
        if nginx:
            ax.axhline(nginx.median, linestyle="--", color="grey", label="nginx")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("median, min–max")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def chart_cpu(data: dict[str, Any], cells: Cells) -> Any:
    """CPU per request of the 1 KiB keep-alive runs, stacked as ``CPU_PARTS``."""
    ts = [t for t in targets_in(data, "static-1k")
          if all(getattr(cells.get(("static-1k", t, True)), "extra", {}).get(f"{k}_us_per_req")
                 for k in CPU_PARTS)]
    if not ts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(ts)), 4.5))
    bottom = [0.0] * len(ts)
    for key, name in CPU_PARTS.items():
        values = [cells[("static-1k", t, True)].extra[f"{key}_us_per_req"].median for t in ts]
        ax.bar(ts, values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xticks(range(len(ts)))
    ax.set_xticklabels(ts, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("CPU µs per request (median of each part)")
    ax.set_title("static-1k, keep-alive on: where the CPU goes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def chart_keepalive(data: dict[str, Any], cells: Cells) -> Any:
    plt = _plt()
    ts = targets_in(data, "static-1k")
    vals = [speedup_pct(getattr(cells.get(("static-1k", t, True)), "rps", None) and
                        cells[("static-1k", t, True)].rps.median,
                        getattr(cells.get(("static-1k", t, False)), "rps", None) and
                        cells[("static-1k", t, False)].rps.median) for t in ts]
    if not any(v is not None for v in vals):
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(ts, [v or 0 for v in vals])
    ax.axhline(50, linestyle="--", color="grey", label="claimed +50%")
    ax.set_ylabel("keep-alive on vs off, static 1 KiB (%)")
    ax.tick_params(axis="x", rotation=30)
    ax.legend()
    fig.tight_layout()
    return fig


def chart_p99(data: dict[str, Any], cells: Cells) -> Any:
    plt = _plt()
    ts = targets_in(data, "static-1k")
    if not ts:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    _bars(ax, ts, {f"keep-alive {m}": [getattr(cells.get(("static-1k", t, ka)), "p99_s", None)
                                       for t in ts]
                   for m, ka in (("on", True), ("off", False))}, scale=1000)
    ax.set_ylabel("p99 latency, static 1 KiB (ms)")
    fig.tight_layout()
    return fig


def chart_idle(data: dict[str, Any], cells: Cells) -> Any:
    plt = _plt()
    ts = [t for t in targets_in(data, "idle") if cells.get(("idle", t, True))]
    if not ts:
        return None
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(15, 4.5))
    colors = plt.get_cmap("tab10")
    for i, t in enumerate(ts):
        curve = cells[("idle", t, True)].extra.get("curve") or []
        xs = [p.get("held", p["idle"]) or 0 for p in curve]
        style = {"marker": "o", "color": colors(i % 10), "label": t}
        a1.plot(xs, [(p["pss_bytes"] or 0) / MIB for p in curve], **style)
        a2.plot(xs, [p["processes"] or 0 for p in curve], **style)
        a3.plot(xs, [p["threads"] or 0 for p in curve], **style)
    for ax, label in ((a1, "PSS of the process tree (MiB)"), (a2, "processes"),
                      (a3, "threads")):
        ax.set_xlabel("idle keep-alive connections held")
        ax.set_ylabel(label + ", log scale")
        ax.set_yscale("log")
    a1.legend(fontsize=7)
    fig.tight_layout()
    return fig


def chart_faults(data: dict[str, Any], cells: Cells) -> Any:
    plt = _plt()
    ts = targets_in(data, "faults")
    if not ts:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    _bars(ax, ts, {f"keep-alive {m}": [cells.get(("faults", t, ka)).extra.get("failed_per_crash")
                                       if cells.get(("faults", t, ka)) else None for t in ts]
                   for m, ka in (("on", True), ("off", False))})
    ax.set_ylabel("failed normal requests per crash")
    fig.tight_layout()
    return fig


CHARTS: dict[str, Callable[[dict[str, Any], Cells], Any]] = {
    "rps.png": chart_rps,
    "https.png": chart_https,
    "keepalive_speedup.png": chart_keepalive,
    "p99_latency.png": chart_p99,
    "cpu_per_request.png": chart_cpu,
    "idle_connections.png": chart_idle,
    "faults.png": chart_faults,
}


def write_charts(data: dict[str, Any], out: Path) -> list[str]:
    """Write every chart that has data; returns the file names written."""
    cells = aggregate(data)
    plt = _plt()
    written = []
    for name, fn in CHARTS.items():
        fig = fn(data, cells)
        if fig is None:
            continue
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        written.append(name)
    return written


def per_conn_kib(cells: Cells, target: str) -> float | None:
    c = cells.get(("idle", target, True))
    v = idle_per_conn(c) if c else None
    return None if v is None else v / 1024
