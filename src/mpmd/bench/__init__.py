"""``mpmd bench``: the comparison lab, mpmd's MPMs beside nginx, Apache httpd, gunicorn,
uvicorn and granian.

Rule 1: ``main(argv) -> int`` is the whole public surface; the CLI's ``bench`` subcommand
calls it. Exit status 0 = a report was written (even if some targets were unavailable), or
configs written (``--write-configs``), or two runs compared (``--compare``); 2 = bad usage, or
wrk or the ``bench`` extra's modules missing (the message says how to install them);
130 = interrupted.
Rule 2: all servers run on 127.0.0.1 in their own process groups inside a ServerPool, and
SIGTERM is turned into KeyboardInterrupt, so every exit path stops them.
Modules: wrk (run/parse), stats (medians, ratios), procs (/proc PSS and counts), configs
(rendered configs), tls (the https workloads' certificate and handshake probe), servers
(targets and the pool), clients (idle holder, fault mix, probes), reliability (reloads,
kills, slow clients, soak), lab (the matrix), report (tables
and claims), charts (PNGs), compare (two runs side by side).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser"]

PEERS = ("nginx", "apache-prefork", "apache-worker", "apache-event", "gunicorn-sync",
         "gunicorn-gthread", "uvicorn", "granian")
# The MPMs the https workloads run when --mpm is not given (issue 17's comparison).
TLS_DEFAULT_MPMS = ("nginx", "event")


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip() and x.strip() != "none"]


def build_parser() -> argparse.ArgumentParser:
    from mpmd.bench.lab import ALL_WORKLOADS, RELIABILITY
    p = argparse.ArgumentParser(prog="mpmd bench", description=(
        "Benchmark mpmd's MPMs against nginx, Apache httpd, gunicorn, uvicorn and granian on "
        "127.0.0.1 and write results.json, report.md and PNG charts."))
    p.add_argument("--quick", action="store_true",
                   help="short runs (1 s, 1 round, 200 idle connections, no asgi-hello); < 2 minutes")
    p.add_argument("--out", default="bench-results", help="output directory")
    p.add_argument("--mpm", type=_csv, default=None,
                   help="mpmd MPMs to run, comma separated, or 'none' (default: all; for the "
                        f"https workloads {','.join(TLS_DEFAULT_MPMS)})")
    p.add_argument("--peers", type=_csv, default=list(PEERS),
                   help="peer servers, comma separated, or 'none' (default: all found)")
    p.add_argument("--workloads", type=_csv, default=None,
                   help=f"comma separated subset of {','.join(ALL_WORKLOADS)}; 'reliability' "
                        f"names {','.join(RELIABILITY)} (default: all but those)")
    p.add_argument("--app", default=None, help="WSGI app pkg.mod:callable for wsgi-hello")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (-c)")
    p.add_argument("--duration", type=float, default=None, help="seconds per wrk run")
    p.add_argument("--repeat", type=int, default=None, help="interleaved rounds (default 3)")
    p.add_argument("--idle", type=int, default=None, help="idle connections (default 2000)")
    p.add_argument("--keepalive", choices=("both", "on", "off"), default="both")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                   help="before each wrk run wait up to S seconds for a second in which "
                        "processes outside the lab use under 0.1 s of CPU (default 0: no wait)")
    p.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    p.add_argument("--write-configs", metavar="DIR", default=None,
                   help="write every config and command line the lab renders (placeholder "
                        "paths, port 8080) into DIR and exit; no server is started")
    p.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), default=None,
                   help="print each server's median req/s in two runs (results.json or its "
                        "directory) and the change, as a markdown table, and exit")
    p.add_argument("--compare-chart", metavar="PNG", default=None,
                   help="with --compare: also draw each MPM's ratio to the baseline in both "
                        "runs into this PNG")
    return p


def write_configs(out: Path) -> list[str]:
    """configs.reference_configs() into out; returns the file names."""
    from mpmd.bench.configs import reference_configs
    out.mkdir(parents=True, exist_ok=True)
    files = reference_configs()
    for name, text in files.items():
        (out / name).write_text(text)
    return list(files)


def _options(args: argparse.Namespace) -> Any:
    from mpmd.bench.configs import TLS_WORKLOADS
    from mpmd.bench.lab import (ALL_WORKLOADS, DEFAULT_WORKLOADS, QUICK_WORKLOADS,
                                WORKLOAD_GROUPS, Options)
    from mpmd.bench.reliability import Plan
    from mpmd.bench.servers import MPMD_MPMS, TARGETS
    mpms = list(MPMD_MPMS) if args.mpm is None else args.mpm
    named = [x for w in (args.workloads or []) for x in WORKLOAD_GROUPS.get(w, (w,))]
    unknown = [w for w in named if w not in ALL_WORKLOADS]
    unknown += [t for t in args.peers if t not in TARGETS]
    unknown += [m for m in mpms if f"mpmd-{m}" not in TARGETS]
    if unknown:
        raise SystemExit(f"mpmd bench: unknown name(s): {', '.join(unknown)}")
    quick = args.quick
    modes = {"both": (True, False), "on": (True,), "off": (False,)}[args.keepalive]
    targets = [f"mpmd-{m}" for m in mpms] + list(args.peers)
    only = {}
    if args.mpm is None:
        tls_targets = [f"mpmd-{m}" for m in TLS_DEFAULT_MPMS] + list(args.peers)
        only = {w: tls_targets for w in TLS_WORKLOADS}
    return Options(
        targets=targets,
        workloads=list(dict.fromkeys(named) if named else
                       (QUICK_WORKLOADS if quick else DEFAULT_WORKLOADS)),
        connections=args.connections,
        duration_s=args.duration or (1.0 if quick else 5.0),
        repeat=args.repeat or (1 if quick else 3),
        idle_connections=args.idle or (200 if quick else 2000),
        idle_steps=2 if quick else 4,
        keep_alive_modes=modes, only=only, wait_quiet_s=args.wait_quiet,
        reliability=Plan.quick() if quick else Plan())


# What the lab needs beyond mpmd: the `bench` extra's modules (its Python peers, gunicorn,
# uvicorn and granian, are skipped when missing), and wrk, nginx and Apache from the system.
EXTRA_HINT = "pip install 'mpmd[bench]'"
SYSTEM_HINT = "apt-get install wrk nginx apache2"


def missing_extra(args: argparse.Namespace) -> list[str]:
    """The bench extra's modules this command needs and cannot import."""
    if args.write_configs:
        return []
    need = ["matplotlib"] if args.compare_chart else []
    if not args.compare:
        need = ["rich"] + ([] if args.no_charts else ["matplotlib"])
    missing = []
    for name in need:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    return missing


def extra_hint(missing: list[str]) -> str:
    return (f"mpmd bench: the bench extra is not installed (no module {', '.join(missing)}); "
            f"install it with:\n    {EXTRA_HINT}\n"
            f"The lab drives wrk and compares against nginx and Apache httpd, system packages "
            f"(Debian/Ubuntu):\n    {SYSTEM_HINT}")


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run(opts: Any, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from mpmd.bench import apps, lab
    from mpmd.bench.configs import Sizing
    root = Path(tempfile.mkdtemp(prefix="mpmd-bench-"))
    os.chmod(root, 0o755)  # Apache/nginx children may run as another user when we are root
    try:
        apps.write_static(root / "htdocs")
        apps.write_apps(root / "apps", args.app)
        columns = (TextColumn("{task.description:<48}"), BarColumn(),
                   TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn())
        with Progress(*columns, transient=False) as progress:
            task = progress.add_task("starting", total=lab.plan_steps(opts))
            sizing = Sizing.for_connections(opts.connections)
            res = lab.run_lab(root, root / "htdocs", root / "apps", opts, sizing,
                              lambda what, advance=1: progress.update(
                                  task, advance=advance, description=what))
        return res.to_dict()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def write_outputs(data: dict[str, Any], out: Path, charts: bool = True) -> list[str]:
    """results.json, charts, report.md into out; returns chart file names."""
    from mpmd.bench import report
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(data, indent=1, default=str))
    names: list[str] = []
    if charts:
        from mpmd.bench.charts import write_charts
        names = write_charts(data, out)
    (out / "report.md").write_text(report.render_markdown(data, names))
    return names


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mpmd bench``; see build_parser() for the options."""
    from mpmd.bench.wrk import INSTALL_HINT, find_wrk
    args = build_parser().parse_args(argv)
    missing = missing_extra(args)
    if missing:
        print(extra_hint(missing), file=sys.stderr)
        return 2
    if args.write_configs:
        names = write_configs(Path(args.write_configs))
        print(f"mpmd bench: wrote {len(names)} files into {args.write_configs}")
        return 0
    if args.compare:
        from mpmd.bench.compare import compare_table, load
        runs = [load(Path(x)) for x in args.compare]
        print(compare_table(*runs), end="")
        if args.compare_chart:
            from mpmd.bench.compare import chart_compare
            chart_compare(*runs).savefig(args.compare_chart, dpi=110)
        return 0
    if find_wrk() is None:
        print(f"mpmd bench: {INSTALL_HINT}", file=sys.stderr)
        return 2
    opts = _options(args)
    out = Path(args.out)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        data = _run(opts, args, out)
    except KeyboardInterrupt:
        print("mpmd bench: interrupted; all servers stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    write_outputs(data, out, charts=not args.no_charts)
    print(f"mpmd bench: wrote {out / 'report.md'} and {out / 'results.json'}")
    return 0
