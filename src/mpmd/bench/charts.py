"""PNG charts from the aggregated results (matplotlib, Agg backend, no display needed).

Rule 1: one function per chart in ``CHARTS``; each takes (data, cells) and returns a figure
or None when it has nothing to plot, so a partial run still yields the charts it can.
Rule 2: bars are medians, error bars span min-max -- the same numbers as report.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from mpmd.bench.report import (CPU_PARTS, HTTPS_SERVES, MIB, Cells, aggregate,
                               idle_per_conn, reliability_targets, targets_in)
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


def _per_round_bars(ax: Any, ts: list[str], series: dict[str, list[list[float] | None]]) -> None:
    """Bars of each round's figure side by side (a lost request is not averaged away)."""
    width = 0.8 / max(1, len(series))
    for i, (name, per_target) in enumerate(series.items()):
        xs = [x + i * width for x in range(len(ts))]
        heights = [max(v) if v else 0 for v in per_target]
        bars = ax.bar(xs, heights, width, label=name)
        for bar, v in zip(bars, per_target):
            if v:
                ax.annotate(",".join(f"{x:.0f}" for x in v), (bar.get_x() + width / 2,
                            bar.get_height()), ha="center", va="bottom", fontsize=6)
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(ts))])
    ax.set_xticklabels(ts, rotation=30, ha="right", fontsize=8)
    ax.legend(fontsize=7)


def chart_reliability(data: dict[str, Any], cells: Cells) -> Any:
    """Issue 18's scenarios: failed requests over reloads and kills, the time to a new child,
    probes answered beside slow clients, and the soak's PSS and descriptors."""
    ts = reliability_targets(data)
    soak = [t for t in targets_in(data, "soak") if cells.get(("soak", t, True))]
    if not ts and not soak:
        return None
    plt = _plt()
    plan = data["options"].get("reliability") or {}
    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    (a_fail, a_kill, a_probe), (a_pss, a_fds, a_procs) = axes

    def extra(w: str, t: str, ka: bool, key: str) -> Any:
        c = cells.get((w, t, ka))
        return c.extra.get(key) if c else None
    if ts:
        _per_round_bars(a_fail, ts, {
            "reloads, keep-alive": [extra("reload", t, True, "failed_rounds") for t in ts],
            "reloads, Connection: close": [extra("reload", t, False, "failed_rounds")
                                           for t in ts],
            "kills": [extra("kill", t, True, "failed_rounds") for t in ts]})
        a_fail.set_yscale("symlog")
        a_fail.set_ylabel("failed requests per run (each round; symlog)")
        a_fail.set_title(f"requests lost to {plan.get('events')} reloads / kills under wrk "
                         f"-c{plan.get('connections')}", fontsize=10)
        _bars(a_kill, ts, {"kill → new child": [extra("kill", t, True, "replaced_s")
                                                for t in ts]}, scale=1000)
        a_kill.set_ylabel("ms (median, min–max)")
        a_kill.set_title("time from SIGKILL to a new child of the master", fontsize=10)
        for i, (w, name) in enumerate((("slowloris", "slowloris (-H)"),
                                       ("slowbody", "slow body (-B)"))):
            width = 0.4
            vals = []
            for t in ts:
                pairs = extra(w, t, True, "answered_rounds") or []
                got, sent = sum(a or 0 for a, _ in pairs), sum(n or 0 for _, n in pairs)
                vals.append(100.0 * got / sent if sent else 0)
            a_probe.bar([x + i * width for x in range(len(ts))], vals, width, label=name)
        a_probe.set_xticks([x + width / 2 for x in range(len(ts))])
        a_probe.set_xticklabels(ts, rotation=30, ha="right", fontsize=8)
        a_probe.set_ylim(0, 105)
        a_probe.set_ylabel("probes answered within 1 s (%)")
        a_probe.set_title(f"a normal client beside {plan.get('slow_connections')} slow "
                          "connections", fontsize=10)
        a_probe.legend(fontsize=7)
    else:
        for ax in (a_fail, a_kill, a_probe):
            ax.set_visible(False)
    colors = plt.get_cmap("tab10")
    for i, t in enumerate(soak):
        c = cells[("soak", t, True)]
        curve = (c.extra.get("curves") or [[]])[0]
        if not curve:
            continue
        xs = [p["requests"] / 1000 for p in curve]
        style = {"marker": ".", "color": colors(i % 10), "label": t}
        a_pss.plot(xs, [p["pss_bytes"] / MIB for p in curve], **style)
        a_fds.plot(xs, [p["fds"] for p in curve], **style)
        a_procs.plot(xs, [p["processes"] for p in curve], **style)
        warm = c.extra.get("warm_index")
        if warm is not None and warm < len(curve):
            for ax in (a_pss, a_fds, a_procs):
                ax.axvline(curve[warm]["requests"] / 1000, color=colors(i % 10),
                           linestyle=":", linewidth=0.8)
    for ax, label in ((a_pss, "PSS of the tree (MiB)"), (a_fds, "open descriptors of the tree"),
                      (a_procs, "processes")):
        ax.set_xlabel("requests served (thousands); dotted: end of warm-up")
        ax.set_ylabel(label)
        ax.set_title(f"soak: {label}", fontsize=10)
        if soak:
            ax.legend(fontsize=7)
        else:
            ax.set_visible(False)
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
    "reliability.png": chart_reliability,
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
