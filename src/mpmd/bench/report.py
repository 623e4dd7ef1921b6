"""results.json -> aggregated summaries -> report.md (tables and the seed's claims checked).

Rule 1: ``aggregate`` is the only place that turns samples into numbers; tables, claims and
charts read its output, so a figure in the report and in a chart cannot disagree.
Rule 2: each claim of the seed is one function in ``CLAIMS`` that states what was measured
and what it shows; when the data it needs is missing it says "not measured" and why --
it never guesses.
Rule 3: the https workloads get one table of their own (``https_table``), every server
against nginx's static 1 KiB file over TLS, with what each server's TLS probe found.
Rule 4: the reliability workloads get one section (``reliability_section``): a table with a
row per scenario and a column per server, as issue 18 laid it out (each round's figure, not
a median: a single lost request matters), the soak's table, and issue 18's goals judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from mpmd.bench.stats import Summary, fmt, fmt_summary, ratio, speedup_pct, summarize
from mpmd.bench.tls import describe

# The peer each workload's ratio column divides by.
BASELINES: dict[str, str] = {"static-1k": "nginx", "static-1m": "nginx", "idle": "nginx",
                             "wsgi-hello": "gunicorn-gthread", "asgi-hello": "uvicorn",
                             "faults": "gunicorn-sync", "tls-static-1k": "nginx",
                             "tls-asgi-hello": "uvicorn"}
WORKLOAD_TITLES: dict[str, str] = {
    "static-1k": "Static file, 1 KiB", "static-1m": "Static file, 1 MiB",
    "wsgi-hello": "WSGI hello world", "asgi-hello": "ASGI hello world",
    "idle": "Idle keep-alive connections held while a second client measures",
    "faults": "Fault mix: a crashing request every 100 ms among normal requests",
    "tls-static-1k": "HTTPS, static file, 1 KiB", "tls-asgi-hello": "HTTPS, ASGI hello world",
    "reload": "Graceful reloads under load", "kill": "Killed children under load",
    "slowloris": "Slow headers (slowloris)", "slowbody": "Slow bodies",
    "soak": "Soak: memory and descriptors over many requests",
}
RELIABILITY = ("reload", "kill", "slowloris", "slowbody", "soak")
# What the https table says each https workload serves.
HTTPS_SERVES: dict[str, str] = {"tls-static-1k": "static 1 KiB", "tls-asgi-hello": "ASGI hello"}
MIB = 1024 * 1024


@dataclass
class Cell:
    """Summaries of one (workload, target, keep_alive) combination."""

    rps: Summary | None = None
    p99_s: Summary | None = None
    errors: int = 0
    failed_runs: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _key(s: dict[str, Any]) -> tuple[str, str, bool]:
    return (s["workload"], s["target"], bool(s["keep_alive"]))


def aggregate(data: dict[str, Any]) -> dict[tuple[str, str, bool], Cell]:
    """Group samples by (workload, target, keep_alive) and summarise them."""
    groups: dict[tuple[str, str, bool], list[dict[str, Any]]] = {}
    for s in data["samples"]:
        groups.setdefault(_key(s), []).append(s)
    cells = {}
    for key, samples in groups.items():
        good = [s for s in samples if "error" not in s]
        cell = Cell(rps=summarize(s.get("rps") for s in good),
                    p99_s=summarize(s.get("p99_s") for s in good),
                    errors=sum(s.get("socket_errors", 0) + s.get("non_2xx_3xx", 0)
                               for s in good),
                    failed_runs=[s["error"] for s in samples if "error" in s])
        cell.extra = _extra(key[0], good)
        cells[key] = cell
    return cells


def _extra(workload: str, good: list[dict[str, Any]]) -> dict[str, Any]:
    """Workload-specific summaries (idle curve, fault counts, process counts)."""
    out: dict[str, Any] = {
        "cpu_us_per_req": summarize(s["server_cpu_s"] / s["requests"] * 1e6 for s in good
                                    if s.get("server_cpu_s") is not None and s.get("requests")),
        **{f"{key}_us_per_req": _per_request(good, key) for key in CPU_PARTS},
        "others_cpu_s": summarize(s.get("others_cpu_s") for s in good),
        "loadavg_1m": summarize(s.get("loadavg_1m") for s in good),
        "pss": summarize(s.get("usage", {}).get("pss_bytes") for s in good),
        "processes": summarize(s.get("usage", {}).get("processes") for s in good),
        "threads": summarize(s.get("usage", {}).get("threads") for s in good),
    }
    if workload == "idle" and good:
        out["held"] = summarize(s.get("held") for s in good)
        out["idle_target"] = good[0].get("idle_target")
        out["curve"] = _median_curve([s["curve"] for s in good if s.get("curve")])
    if workload == "faults":
        for k in ("ok", "failed", "crashes_sent", "failed_pct", "failed_per_crash"):
            out[k] = summarize(s.get(k) for s in good)
    probes = [s["tls"] for s in good if s.get("tls")]
    if probes:
        out["tls"] = probes[0]
    if workload in RELIABILITY:
        out.update(_reliability_extra(workload, sorted(good, key=lambda s: s.get("round", 0))))
    return out


def _reliability_extra(workload: str, good: list[dict[str, Any]]) -> dict[str, Any]:
    """Each round's figure (in round order) and summaries, for the reliability tables."""
    out: dict[str, Any] = {}
    if workload in ("reload", "kill"):
        out["failed_rounds"] = [s.get("failed") for s in good]
        out["timeouts_rounds"] = [s.get("timeouts", 0) for s in good]
        out["requests"] = summarize(s.get("requests") for s in good)
        out["events"] = summarize(len(s.get("events", [])) for s in good)
    if workload == "kill":
        times = [e.get("replaced_s") for s in good for e in s.get("events", [])]
        out["replaced_s"] = summarize(times)
        out["kills"], out["replaced_n"] = len(times), sum(x is not None for x in times)
    if workload in ("slowloris", "slowbody"):
        out["answered_rounds"] = [(s.get("answered"), s.get("probes_sent")) for s in good]
        out["max_connected"] = summarize(s.get("max_connected") for s in good)
    if workload == "soak":
        for key in ("requests", "failed", "timeouts", "pss_warm", "pss_end", "pss_change_pct",
                    "fds_warm", "fds_end", "fds_max", "processes_warm", "processes_end",
                    "threads_warm", "threads_end"):
            out[key] = summarize(s.get(key) for s in good)
        out["curves"] = [s.get("curve") or [] for s in good]
        out["warm_index"] = good[0].get("warm_index") if good else None
    return out


# Where a run's CPU went, per sample: the server's own code, the kernel working for it, and
# the load generator, which shares the machine (wrk's system time grows with the number of
# processes it has to wake: one per request under prefork, few under an event loop).
CPU_PARTS = {"server_user_s": "server user", "server_sys_s": "server system",
             "cpu_user_s": "wrk user", "cpu_sys_s": "wrk system"}


def _per_request(good: list[dict[str, Any]], key: str) -> Summary | None:
    return summarize(s[key] / s["requests"] * 1e6 for s in good
                     if s.get(key) is not None and s.get("requests"))


def _median_curve(curves: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Point-wise medians of the idle curves of several rounds."""
    if not curves:
        return []
    points = []
    for i, point in enumerate(curves[0]):
        same = [c[i] for c in curves if len(c) > i]
        row: dict[str, Any] = {"idle": point["idle"]}
        for k in ("held", "pss_bytes", "processes", "threads"):
            s = summarize(p.get(k) for p in same)
            row[k] = None if s is None else s.median
        points.append(row)
    return points


def targets_in(data: dict[str, Any], workload: str) -> list[str]:
    """Targets that ran (or tried to run) a workload, in the order of the options."""
    ran = {s["target"] for s in data["samples"] if s["workload"] == workload}
    return [t for t in data["options"]["targets"] if t in ran]


def _rps(cells: dict[tuple[str, str, bool], Cell], w: str, t: str, ka: bool) -> float | None:
    c = cells.get((w, t, ka))
    return c.rps.median if c and c.rps else None


def throughput_table(data: dict[str, Any], cells: dict[tuple[str, str, bool], Cell],
                     workload: str) -> str:
    base = BASELINES.get(workload, "nginx")
    rows = ["| server | req/s keep-alive on | ratio to " + base + " | req/s keep-alive off "
            "| ratio to " + base + " | keep-alive speedup | p99 on (ms) | p99 off (ms) | errors "
            "| server CPU µs/req (on) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for t in targets_in(data, workload):
        on, off = cells.get((workload, t, True)), cells.get((workload, t, False))
        rows.append("| " + " | ".join([
            t, fmt_summary(on.rps if on else None),
            fmt(ratio(_rps(cells, workload, t, True), _rps(cells, workload, base, True)), ".2f"),
            fmt_summary(off.rps if off else None),
            fmt(ratio(_rps(cells, workload, t, False), _rps(cells, workload, base, False)), ".2f"),
            fmt(speedup_pct(_rps(cells, workload, t, True), _rps(cells, workload, t, False)),
                "+.0f", "%"),
            fmt_summary(on.p99_s if on else None, ".1f", 1000),
            fmt_summary(off.p99_s if off else None, ".1f", 1000),
            str((on.errors if on else 0) + (off.errors if off else 0)),
            fmt_summary(on.extra.get("cpu_us_per_req") if on else None, ".1f"),
        ]) + " |")
    return "\n".join(rows)


def https_table(data: dict[str, Any], cells: Cells) -> str:
    """The https workloads in one table: keep-alive req/s and new TLS connections per second
    (``Connection: close``: a connection, a handshake and a request each), both against
    nginx's static 1 KiB over TLS, and what each server's TLS probe found."""
    base = "nginx"
    rows = ["| server | serves | https keep-alive req/s | × nginx | new TLS connections/s "
            "| × nginx | errors | TLS (probe) |", "|---|---|---|---|---|---|---|---|"]
    for w, serves in HTTPS_SERVES.items():
        for t in targets_in(data, w):
            on, off = cells.get((w, t, True)), cells.get((w, t, False))
            facts = next((c.extra.get("tls") for c in (on, off) if c and c.extra.get("tls")),
                         None)
            rows.append("| " + " | ".join([
                t, serves, fmt_summary(on.rps if on else None),
                fmt(ratio(_rps(cells, w, t, True), _rps(cells, "tls-static-1k", base, True)),
                    ".2f"),
                fmt_summary(off.rps if off else None),
                fmt(ratio(_rps(cells, w, t, False), _rps(cells, "tls-static-1k", base, False)),
                    ".2f"),
                str((on.errors if on else 0) + (off.errors if off else 0)),
                describe(facts)]) + " |")
    return "\n".join(rows)


HTTPS_NOTE = (
    "Each server's figures are medians of its own runs; × nginx divides by nginx's static "
    "1 KiB over TLS in this run. A new TLS connection per request is wrk with `Connection: "
    "close`: one TCP connection, one handshake and one request each. wrk offers the previous "
    "connection's session on the next one, so a server that resumes sessions (TLS column) "
    "does abbreviated handshakes in that column; the others do full ones.")


def cpu_table(data: dict[str, Any], cells: dict[tuple[str, str, bool], Cell],
                workload: str, keep_alive: bool = True) -> str:
    """Microseconds of CPU per request, keep-alive on (or off), split as ``CPU_PARTS``: the
    machine's two cores are shared, so a server's rate is 2 s over the sum of all four (when
    both are busy); '–' where a run did not measure a part."""
    base = BASELINES.get(workload, "nginx")
    rows = ["| server | " + " | ".join(f"{name} µs/req" for name in CPU_PARTS.values())
            + " | all µs/req | all, × " + base + "'s |",
            "|---|" + "---|" * (len(CPU_PARTS) + 2)]

    def parts(t: str) -> list[float | None]:
        cell = cells.get((workload, t, keep_alive))
        found = [cell.extra.get(f"{key}_us_per_req") if cell else None for key in CPU_PARTS]
        return [None if part is None else part.median for part in found]

    def total(t: str) -> float | None:
        values = parts(t)
        return None if None in values else sum(v for v in values if v is not None)

    for t in targets_in(data, workload):
        if (workload, t, keep_alive) not in cells:
            continue
        rows.append("| " + " | ".join(
            [t] + [fmt(v, ".1f") for v in parts(t)]
            + [fmt(total(t), ".1f"), fmt(ratio(total(t), total(base)), ".2f")]) + " |")
    return "\n".join(rows)


def idle_per_conn(cell: Cell) -> float | None:
    """Extra PSS per held idle connection (bytes), from the first and last curve points."""
    curve = cell.extra.get("curve") or []
    if len(curve) < 2 or not curve[-1].get("held"):
        return None
    first, last = curve[0], curve[-1]
    if first.get("pss_bytes") is None or last.get("pss_bytes") is None:
        return None
    return (last["pss_bytes"] - first["pss_bytes"]) / last["held"]


def idle_table(data: dict[str, Any], cells: dict[tuple[str, str, bool], Cell]) -> str:
    rows = ["| server | held / asked | PSS idle=0 (MiB) | PSS all held (MiB) | PSS per held conn "
            "(KiB) | processes | threads | req/s while held | p99 (ms) | errors |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for t in targets_in(data, "idle"):
        c = cells.get(("idle", t, True))
        if c is None:
            continue
        curve = c.extra.get("curve") or [{}]
        per = idle_per_conn(c)
        held = c.extra.get("held")
        rows.append("| " + " | ".join([
            t, f"{fmt(held.median if held else None)} / {c.extra.get('idle_target')}",
            fmt(_div(curve[0].get("pss_bytes"), MIB), ".1f"),
            fmt(_div(curve[-1].get("pss_bytes"), MIB), ".1f"),
            fmt(_div(per, 1024), ".1f"),
            fmt(curve[-1].get("processes")), fmt(curve[-1].get("threads")),
            fmt_summary(c.rps), fmt_summary(c.p99_s, ".1f", 1000), str(c.errors),
        ]) + " |")
    return "\n".join(rows)


def _div(v: float | None, d: float) -> float | None:
    return None if v is None else v / d


def fault_table(data: dict[str, Any], cells: dict[tuple[str, str, bool], Cell]) -> str:
    rows = ["| server | keep-alive | normal ok | normal failed | crash requests | failed per "
            "crash | failed % |", "|---|---|---|---|---|---|---|"]
    for t in targets_in(data, "faults"):
        for ka in (True, False):
            c = cells.get(("faults", t, ka))
            if c is None:
                continue
            e = c.extra
            rows.append("| " + " | ".join([
                t, "on" if ka else "off", fmt_summary(e.get("ok")), fmt_summary(e.get("failed")),
                fmt_summary(e.get("crashes_sent")), fmt_summary(e.get("failed_per_crash"), ".2f"),
                fmt_summary(e.get("failed_pct"), ".2f")]) + " |")
    return "\n".join(rows)


# ---- reliability (issue 18) ---------------------------------------------------------------

def _spread(s: Summary | None, spec: str = ".0f", scale: float = 1.0) -> str:
    """fmt_summary, without a range when every sample gave the same figure."""
    if s is not None and s.low == s.high:
        return f"{s.median * scale:{spec}}"
    return fmt_summary(s, spec, scale)


def _rounds(values: list[Any]) -> str:
    return ", ".join(fmt(v) for v in values) if values else "–"


def _event_cell(c: Cell) -> str:
    e = c.extra
    text = _rounds(e.get("failed_rounds") or [])
    slow = sum(x or 0 for x in e.get("timeouts_rounds") or [])
    return text + (f" (+{slow} slower than 2 s)" if slow else "")


def _kill_time_cell(c: Cell) -> str:
    e = c.extra
    if not e.get("kills"):
        return "–"
    text = _spread(e.get("replaced_s"), ".0f", 1000) + " ms" if e.get("replaced_s") else "none"
    if e.get("replaced_n") != e.get("kills"):
        text += f" ({e.get('replaced_n')} of {e.get('kills')} kills)"
    return text


def _probe_cell(c: Cell) -> str:
    pairs = c.extra.get("answered_rounds") or []
    return ", ".join(f"{a}/{n}" for a, n in pairs) if pairs else "–"


def reliability_targets(data: dict[str, Any]) -> list[str]:
    """Targets that ran (or tried) a reliability workload other than the soak."""
    ran = {s["target"] for s in data["samples"]
           if s["workload"] in RELIABILITY and s["workload"] != "soak"}
    ran |= {t for t, ws in data.get("unavailable", {}).items()
            if any(w in RELIABILITY and w != "soak" for w in ws)}
    return [t for t in data["options"]["targets"] if t in ran]


def reliability_rows(data: dict[str, Any]) -> list[tuple[str, str, bool, Callable[[Cell], str]]]:
    """(row title, workload, keep_alive, cell formatter) of the reliability table."""
    plan = data["options"].get("reliability") or {}
    n, gap = plan.get("events", 5), plan.get("event_interval_s", 3)
    conns = plan.get("slow_connections", 500)
    return [
        (f"{n} graceful reloads, keep-alive clients: failed requests", "reload", True,
         _event_cell),
        (f"{n} graceful reloads, `Connection: close`: failed requests", "reload", False,
         _event_cell),
        (f"{n} SIGKILLs of a random child: failed requests", "kill", True, _event_cell),
        (f"kill → a new child of the master (median, min–max, within {gap:g} s)", "kill", True,
         _kill_time_cell),
        (f"slowloris, {conns} connections (`slowhttptest -H`): probes answered within 1 s",
         "slowloris", True, _probe_cell),
        (f"slow bodies, {conns} connections (`slowhttptest -B`): probes answered within 1 s",
         "slowbody", True, _probe_cell),
    ]


def reliability_table(data: dict[str, Any], cells: Cells) -> str:
    """A row per scenario, a column per server; each round's figure in a cell."""
    ts = reliability_targets(data)
    rows = ["| scenario | " + " | ".join(ts) + " |", "|---|" + "---|" * len(ts)]
    unavailable = data.get("unavailable", {})
    for title, w, ka, cell_text in reliability_rows(data):
        if w not in data["options"]["workloads"]:
            continue
        if ka not in _modes_run(data, w):
            continue
        cols = []
        for t in ts:
            c = cells.get((w, t, ka))
            if w in unavailable.get(t, {}):
                cols.append("n/a")
            elif c is None:
                cols.append("–")
            elif c.failed_runs and not c.extra.get("failed_rounds") and \
                    not c.extra.get("answered_rounds"):
                cols.append("run failed")
            else:
                cols.append(cell_text(c))
        rows.append(f"| {title} | " + " | ".join(cols) + " |")
    return "\n".join(rows)


def _modes_run(data: dict[str, Any], workload: str) -> set[bool]:
    return {bool(s["keep_alive"]) for s in data["samples"] if s["workload"] == workload}


def soak_table(data: dict[str, Any], cells: Cells) -> str:
    rows = ["| server | requests | failed | PSS after warm-up (MiB) | PSS at the end (MiB) "
            "| change | processes / threads, warm-up → end | descriptors after warm-up "
            "| at the end | most after warm-up |", "|---|" + "---|" * 9]
    for t in targets_in(data, "soak"):
        c = cells.get(("soak", t, True))
        if c is None or c.extra.get("requests") is None:
            continue
        e = c.extra

        def med(key: str, scale: float = 1.0, spec: str = ".0f") -> str:
            return _spread(e.get(key), spec, scale)
        rows.append("| " + " | ".join([
            t, med("requests"), med("failed"), med("pss_warm", 1 / MIB, ".1f"),
            med("pss_end", 1 / MIB, ".1f"), med("pss_change_pct", 1, "+.1f") + "%",
            f"{med('processes_warm')} / {med('threads_warm')} → {med('processes_end')} / "
            f"{med('threads_end')}", med("fds_warm"), med("fds_end"), med("fds_max")]) + " |")
    return "\n".join(rows)


SOAK_PSS_GOAL_PCT = 10.0


def fds_flat(warm: float, end: float) -> bool:
    """A tree's descriptor count is flat when at the end it is within 5% (or 4 descriptors)
    of the warm-up count: a leak grows with the requests served and stays; a connection
    still closing when a point was read (the table's "most") does not."""
    return end - warm <= max(4.0, 0.05 * warm)


def reliability_goals(data: dict[str, Any], cells: Cells) -> str | None:
    """Issue 18's goals for mpmd's MPMs, judged from this run: no failed request in any
    reload row; over the soak, PSS within 10% of its warm-up value, descriptors flat."""
    rows = []
    mpms = [t for t in data["options"]["targets"] if t.startswith("mpmd-")]
    for ka in (True, False):
        found = [(t, cells[("reload", t, ka)].extra.get("failed_rounds") or [])
                 for t in mpms if ("reload", t, ka) in cells]
        found = [(t, f) for t, f in found if f]
        if not found:
            continue
        lost = [(t, sum(x or 0 for x in f)) for t, f in found]
        rows.append(f"| #18 0 failed requests over graceful reloads, "
                    f"{'keep-alive' if ka else '`Connection: close`'}, every MPM | "
                    + "; ".join(f"{t} {_rounds(f)}" for t, f in found) + " | "
                    + ("yes" if all(n == 0 for _, n in lost) else
                       "no: " + ", ".join(t for t, n in lost if n)) + " |")
    for t in mpms:
        c = cells.get(("soak", t, True))
        if c is None or c.extra.get("pss_change_pct") is None:
            continue
        e = c.extra
        change, worst = e["pss_change_pct"].median, max(abs(e["pss_change_pct"].low),
                                                       abs(e["pss_change_pct"].high))
        rows.append(f"| #18 soak: PSS within {SOAK_PSS_GOAL_PCT:.0f}% of warm-up, {t} | "
                    f"{change:+.1f}% | {'yes' if worst <= SOAK_PSS_GOAL_PCT else 'no'} |")
        warm, most, end = e["fds_warm"].median, e["fds_max"].high, e["fds_end"].median
        rows.append(f"| #18 soak: descriptors flat, {t} | {warm:.0f} after warm-up, "
                    f"{end:.0f} at the end (at most {most:.0f} in between) | "
                    f"{'yes' if fds_flat(warm, end) else 'no'} |")
    if not rows:
        return None
    return "\n".join(["| goal | this run | met? |", "|---|---|---|"] + rows)


def reliability_section(data: dict[str, Any], cells: Cells) -> list[str]:
    """The reliability workloads' part of report.md (empty when none ran)."""
    if not any(targets_in(data, w) for w in RELIABILITY):
        return []
    plan = data["options"].get("reliability") or {}
    sizing = data["options"].get("reliability_sizing") or {}
    out = ["## Reliability: reloads, killed children, slow clients, soak", "",
           f"Load: `wrk -t1 -c{plan.get('connections')} -d{plan.get('load_s', 0):g}s` on the "
           f"1 KiB file (gunicorn: the hello app); {plan.get('events')} events "
           f"{plan.get('event_interval_s', 0):g} s apart from second "
           f"{plan.get('first_event_s', 0):g} on: the server's graceful reload (mpmd "
           "and Apache SIGUSR1, nginx and gunicorn SIGHUP) or SIGKILL to a random child of "
           "its master. A failed request is a connect, read or write error or a non-2xx "
           "answer. Slow clients: slowhttptest's connections held while a normal client "
           "sends a GET on a new connection once a second. Pools: Debian's defaults "
           f"(prefork StartServers {sizing.get('prefork_start')}, worker/event "
           f"{sizing.get('thread_start_servers')} x {sizing.get('threads_per_child')} threads, "
           f"MaxRequestWorkers {sizing.get('prefork_max')}; nginx and the nginx MPM "
           f"{sizing.get('loop_processes')} processes; gunicorn {sizing.get('gunicorn_workers')}"
           f" x {sizing.get('gunicorn_threads')} threads). Each cell lists every round.", ""]
    if any(targets_in(data, w) for w in RELIABILITY if w != "soak"):
        out += [reliability_table(data, cells), ""]
    if targets_in(data, "soak"):
        out += [f"Soak: about {plan.get('soak_requests', 0):,} requests per MPM in "
                f"{plan.get('soak_slice_s', 0):g} s wrk slices rotating over the 1 KiB file "
                "and the WSGI hello app, keep-alive and `Connection: close`; PSS and open "
                "descriptors of the whole tree after each slice; warm-up is the first pass "
                "over the four.", "", soak_table(data, cells), ""]
    goals = reliability_goals(data, cells)
    if goals:
        out += ["Issue 18's goals in this run:", "", goals, ""]
    return out


# ---- the seed's claims -------------------------------------------------------------------

Cells = dict[tuple[str, str, bool], Cell]


def claim_keepalive(data: dict[str, Any], cells: Cells) -> str:
    parts = []
    for t in targets_in(data, "static-1k"):
        sp = speedup_pct(_rps(cells, "static-1k", t, True), _rps(cells, "static-1k", t, False))
        if sp is not None:
            parts.append(f"{t} {sp:+.0f}%")
    if not parts:
        return "Not measured: no static-1k run with both keep-alive modes succeeded."
    return ("Measured as median req/s with keep-alive on over off, static 1 KiB file, wrk "
            f"-c{data['options']['connections']}: " + ", ".join(parts) + ". On loopback the "
            "connection set-up cost is small compared to a real network, so the speedup "
            "here is a lower bound for the TCP handshake part and an upper bound only for "
            "servers whose per-connection cost is high (process hand-off, Python accept path).")


def claim_prefork_memory(data: dict[str, Any], cells: Cells) -> str:
    parts = []
    for t in targets_in(data, "idle"):
        c = cells.get(("idle", t, True))
        if c is None:
            continue
        per = idle_per_conn(c)
        held = c.extra.get("held")
        curve = c.extra.get("curve") or [{}]
        parts.append(f"{t}: held {fmt(held.median if held else None)}/"
                     f"{c.extra.get('idle_target')}, {fmt(_div(per, 1024), '.1f')} KiB PSS per "
                     f"held connection, {fmt(curve[-1].get('processes'))} processes / "
                     f"{fmt(curve[-1].get('threads'))} threads")
    if not parts:
        return "Not measured: no idle-connection run succeeded."
    return ("Measured with the idle workload (PSS summed over the process tree before and "
            "after opening the idle keep-alive connections): " + "; ".join(parts) + ". A "
            "prefork server can hold at most MaxRequestWorkers connections (one process "
            "each); connections beyond that wait in the listen backlog and are not held.")


def claim_event_cheap(data: dict[str, Any], cells: Cells) -> str:
    parts = []
    for t in targets_in(data, "idle"):
        c = cells.get(("idle", t, True))
        alone = _rps(cells, "static-1k", t, True)
        if c is None or c.rps is None:
            continue
        note = f" ({c.rps.median / alone * 100:.0f}% of its rate without idle connections)" \
            if alone else ""
        parts.append(f"{t}: {c.rps.median:.0f} req/s{note}")
    if not parts:
        return "Not measured: no idle-connection run succeeded."
    return ("Throughput of a 64-connection wrk client while the idle connections are held: "
            + "; ".join(parts) + ". See the table above for how many were actually held.")


def claim_blast_radius(data: dict[str, Any], cells: Cells) -> str:
    parts = []
    for t in targets_in(data, "faults"):
        c = cells.get(("faults", t, True))
        if c and c.extra.get("failed_per_crash"):
            parts.append(f"{t}: {c.extra['failed_per_crash'].median:.2f} failed normal "
                         "requests per crash")
    if not parts:
        return "Not measured: no fault-mix run succeeded."
    return ("A crash request (os._exit in the app) every 100 ms among 16 clients sending "
            "normal requests, keep-alive on: " + "; ".join(parts) + ". In a process-per-"
            "connection model only the crashing request is lost; in a threaded child every "
            "request in flight in that process is lost with it.")


def claim_nginx_vs_apache_event(data: dict[str, Any], cells: Cells) -> str:
    parts = []
    for w in ("static-1k", "static-1m"):
        for ka in (True, False):
            r = ratio(_rps(cells, w, "apache-event", ka), _rps(cells, w, "nginx", ka))
            if r is not None:
                parts.append(f"{w} keep-alive {'on' if ka else 'off'}: Apache event at "
                             f"{r:.2f}x nginx")
    if not parts:
        return "Not measured: Apache event or nginx did not run."
    return "Median req/s ratios: " + "; ".join(parts) + "."


@dataclass(frozen=True)
class Goal:
    """An issue's speed goal on one workload (the static 1 KiB file unless it says otherwise)
    and keep-alive mode: target's req/s over base's, in the same run, at least ``at_least``.
    ``reference`` is a peer whose own ratio to base is printed beside it: the goal was set on
    another host, and the reference shows what this host's ratios are like (issue 2's came
    with "Apache prefork reaches 0.67x")."""

    issue: int
    text: str
    target: str
    base: str
    at_least: float
    reference: str | None = None
    workload: str = "static-1k"
    keep_alive: bool = True
    reference_workload: str | None = None     # when the reference serves another workload


GOALS: list[Goal] = [
    Goal(2, "mpmd prefork ≥ 0.35x nginx", "mpmd-prefork", "nginx", 0.35, "apache-prefork"),
    Goal(3, "event keep-alive throughput ≥ prefork's", "mpmd-event", "mpmd-prefork", 1.0),
    Goal(4, "nginx MPM ≥ 0.5x nginx, one process each", "mpmd-nginx", "nginx", 0.5),
    Goal(17, "nginx MPM ≥ 0.6x nginx, https keep-alive", "mpmd-nginx", "nginx", 0.6,
         "uvicorn", workload="tls-static-1k", reference_workload="tls-asgi-hello"),
    Goal(17, "nginx MPM ≥ 1.0x nginx, new TLS connections per second", "mpmd-nginx",
         "nginx", 1.0, workload="tls-static-1k", keep_alive=False),
]


def _resumes(cells: Cells, workload: str, target: str) -> bool:
    """Whether the target's TLS probe in this workload found it resuming sessions."""
    found = [c.extra.get("tls") for ka in (True, False)
             if (c := cells.get((workload, target, ka))) is not None]
    return any(f and f.get("resumed") for f in found)


def goals_table(cells: Cells) -> str | None:
    """One row per goal whose target and base both ran; None when no goal could be judged."""
    rows = []
    for g in GOALS:
        w, ka = g.workload, g.keep_alive
        got, base = _rps(cells, w, g.target, ka), _rps(cells, w, g.base, ka)
        r = ratio(got, base)
        if r is None or got is None or base is None:
            continue
        measured = f"{r:.2f}x ({got:,.0f} vs {base:,.0f} req/s)"
        ref = None
        if g.reference:
            ref = ratio(_rps(cells, g.reference_workload or w, g.reference, ka), base)
        context = "–"
        if ref is not None:
            context = (f"{g.reference} {ref:.2f}x {g.base}; {g.target} at {r / ref:.2f}x "
                       f"{g.reference}")
        verdict = "yes" if r >= g.at_least else "no"
        resumes = [x for x in (g.target, g.base) if _resumes(cells, w, x)]
        if not ka and len(resumes) == 1:    # abbreviated handshakes against full ones
            verdict = f"not judged: {resumes[0]} resumes sessions"
        rows.append(f"| #{g.issue} {g.text} | {measured} | {context} | {verdict} |")
    if not rows:
        return None
    return "\n".join(["| goal | this run | beside it | met? |", "|---|---|---|---|"] + rows)


CLAIMS: list[tuple[str, Callable[[dict[str, Any], Cells], str]]] = [
    ("Keep-alive speeds up requests by about 50%", claim_keepalive),
    ("Prefork uses more memory per connection than worker/event", claim_prefork_memory),
    ("Event and nginx hold many keep-alive connections cheaply", claim_event_cheap),
    ("A crash in prefork takes down one request; in worker, a process's worth",
     claim_blast_radius),
    ("nginx vs Apache event: not a big difference", claim_nginx_vs_apache_event),
]


def render_markdown(data: dict[str, Any], charts: list[str]) -> str:
    """The whole report.md."""
    cells = aggregate(data)
    o, env = data["options"], data.get("environment", {})
    out = ["# mpmd benchmark report", "",
           f"Run {env.get('time', '?')} on {env.get('platform', '?')}, {env.get('cpus')} CPUs, "
           f"Python {env.get('python')}; {env.get('nginx')}; {env.get('apache2')}; "
           f"{env.get('wrk')}.", "",
           f"wrk -t{o['threads']} -c{o['connections']} -d{o['duration_s']}s, "
           f"{o['repeat']} interleaved round(s); figures are medians (min–max). Keep-alive off "
           "means every request carries `Connection: close`.", ""]
    https_done = False
    for w in o["workloads"]:
        if not targets_in(data, w) or w in RELIABILITY:
            continue
        if w in HTTPS_SERVES and not https_done:
            https_done = True
            out += ["## HTTPS: keep-alive, and a new TLS connection per request", "",
                    HTTPS_NOTE, "", https_table(data, cells), ""]
        out += [f"## {WORKLOAD_TITLES.get(w, w)}", ""]
        out += [{"idle": lambda: idle_table(data, cells),
                 "faults": lambda: fault_table(data, cells)}.get(
            w, lambda: throughput_table(data, cells, w))(), ""]
        if w not in ("idle", "faults") and _has_cpu_split(cells, w):
            out += ["Where the CPU goes, keep-alive on (medians of each part; their sum is "
                    "the CPU the whole machine spent per request):", "",
                    cpu_table(data, cells, w), ""]
        if w in HTTPS_SERVES and _has_cpu_split(cells, w, keep_alive=False):
            out += ["Where the CPU goes with a new TLS connection per request (keep-alive "
                    "off: each request is a handshake for wrk too, and wrk -t1 does its part "
                    "on one core):", "", cpu_table(data, cells, w, keep_alive=False), ""]
    out += reliability_section(data, cells)
    goals = goals_table(cells)
    if goals:
        out += ["## The issues' speed goals in this run", "",
                "Static file, 1 KiB, keep-alive on, unless a goal names another workload; each "
                "ratio is of medians in this run.", "",
                goals, ""]
    out += _conditions(data, cells)
    out += ["## The seed's claims, as measured", ""]
    for title, fn in CLAIMS:
        out += [f"**{title}.** {fn(data, cells)}", ""]
    out += _unavailable_section(data) + _failed_runs(cells)
    out += [f"![{c}]({c})" for c in charts]
    return "\n".join(out) + "\n"


def _has_cpu_split(cells: Cells, workload: str, keep_alive: bool = True) -> bool:
    return any(w == workload and ka == keep_alive and cell.extra.get("server_user_s_us_per_req")
               for (w, _, ka), cell in cells.items())


def _conditions(data: dict[str, Any], cells: Cells) -> list[str]:
    """How busy the machine was: load average and CPU burnt by the idle servers."""
    loads = summarize(s.get("loadavg_1m") for s in data["samples"])
    others = summarize(s.get("others_cpu_s") for s in data["samples"])
    foreign = summarize(s.get("foreign_cpu_s") for s in data["samples"])
    waited = summarize(s.get("waited_quiet_s") for s in data["samples"])
    if loads is None:
        return []
    dur = data["options"]["duration_s"]
    cpus = data.get("environment", {}).get("cpus") or 1
    outside = []
    if foreign:
        outside.append(f"CPU used by processes outside the lab during a {dur:.0f} s run (of "
                       f"the {cpus * dur:.0f} CPU seconds the machine has): median "
                       f"{foreign.median:.2f} s, max {foreign.high:.2f} s.")
    if waited and data["options"].get("wait_quiet_s"):
        outside.append(f"Before each run the lab waited for a quiet second (up to "
                       f"{data['options']['wait_quiet_s']:.0f} s): median {waited.median:.1f} s, "
                       f"max {waited.high:.1f} s.")
    parts = [f"1-minute load average during the runs: median {loads.median:.1f} "
             f"(min {loads.low:.1f}, max {loads.high:.1f}) on "
             f"{data.get('environment', {}).get('cpus')} CPUs (wrk and the server under test "
             "alone account for about 2)."]
    if others:
        parts.append(f"CPU used by the other, idle servers of the same workload during a "
                     f"{dur:.0f} s run: median {others.median:.2f} s, max {others.high:.2f} s.")
    return ["## Measurement conditions", "", " ".join(parts + outside), ""]


def _unavailable_section(data: dict[str, Any]) -> list[str]:
    rows = [f"- {t} / {w}: unavailable: {why}" for t, ws in sorted(data["unavailable"].items())
            for w, why in sorted(ws.items())]
    return (["## Not measured", ""] + rows + [""]) if rows else []


def _failed_runs(cells: Cells) -> list[str]:
    rows = [f"- {w} / {t} / keep-alive {'on' if ka else 'off'}: {err}"
            for (w, t, ka), c in sorted(cells.items()) for err in c.failed_runs[:1]]
    return (["## Runs that failed", ""] + rows + [""]) if rows else []
