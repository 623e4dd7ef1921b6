"""The reliability workloads' pure parts: the timeline, slowhttptest's report, failed-request
counting, the soak's summary, the configs with Debian's pools, the report's rows and the
chart, from synthetic samples and captured output (no servers, except a stdlib one for the
probe)."""

import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.bench.conftest import stub_server

from mpmd import bench
from mpmd.bench import configs, lab, reliability
from mpmd.bench.clients import probe_once, probe_steadily
from mpmd.bench.configs import Paths, Sizing
from mpmd.bench.report import aggregate, fds_flat, render_markdown, reliability_goals

DATA = Path(__file__).parent / "data"


def test_events_happen_inside_the_load_three_seconds_apart():
    assert reliability.event_times(reliability.Plan()) == [3.0, 6.0, 9.0, 12.0, 15.0]
    assert reliability.event_times(reliability.Plan.quick())[-1] < reliability.Plan.quick().load_s
    with pytest.raises(ValueError):
        reliability.event_times(reliability.Plan(load_s=10, events=5))


def test_failed_requests_are_socket_errors_and_non_2xx_but_not_timeouts():
    sample = {"errors_connect": 1, "errors_read": 2, "errors_write": 3, "errors_timeout": 40,
              "non_2xx_3xx": 4}
    assert reliability.failed_requests(sample) == 10
    assert reliability.failed_requests({}) == 0


def test_slowhttptest_report_is_parsed_through_its_colour_codes():
    report = reliability.parse_slowhttptest((DATA / "slowhttptest_headers.txt").read_text())
    assert [s["second"] for s in report["statuses"]] == [0, 5]
    assert report["statuses"][0] == {"second": 0, "initializing": 0, "pending": 1,
                                     "connected": 0, "error": 0, "closed": 0,
                                     "service_available": True}
    assert report["max_connected"] == 20
    assert report["last"]["connected"] == 20
    assert report["exit_status"] == "Hit test time limit"


def test_slowhttptest_without_a_status_block():
    report = reliability.parse_slowhttptest("garbage\n")
    assert report == {"statuses": [], "max_connected": 0, "last": {}, "exit_status": None}


def test_slowhttptest_command_holds_its_connections_past_the_last_probe():
    plan = reliability.Plan()
    argv = reliability.slowhttptest_command("slowloris", "http://127.0.0.1:1/1k.bin", plan)
    assert argv[:2] == ["slowhttptest", "-H"]
    assert argv[argv.index("-c") + 1] == "500" and "-u" in argv
    length = int(argv[argv.index("-l") + 1])
    assert length >= reliability.slow_ramp_s(plan) + plan.probes + plan.probe_timeout_s
    body = reliability.slowhttptest_command("slowbody", "http://127.0.0.1:1/app/", plan)
    assert body[1] == "-B" and body[body.index("-s") + 1] == "8192"


def _curve(pss, fds):
    return [{"requests": 1000 * (i + 1), "pss_bytes": p, "fds": f, "processes": 3,
             "threads": 60} for i, (p, f) in enumerate(zip(pss, fds))]


def test_soak_summary_compares_the_end_with_the_end_of_warm_up():
    curve = _curve([50, 80, 90, 100, 104, 105], [20, 30, 31, 30, 33, 31])
    s = reliability.soak_summary(curve, warm_index=3)
    assert (s["pss_warm"], s["pss_end"], s["pss_change_pct"]) == (100, 105, 5.0)
    assert (s["fds_warm"], s["fds_end"], s["fds_max"]) == (30, 31, 33)
    assert reliability.soak_summary([], 3) == {}
    assert reliability.soak_summary(curve[:2], 3)["pss_warm"] == 80   # short: its last point


def test_descriptors_are_flat_unless_they_end_above_the_warm_up_count():
    assert fds_flat(100, 104) and fds_flat(100, 105)
    assert not fds_flat(100, 106)
    assert fds_flat(20, 24) and not fds_flat(20, 25)


@pytest.fixture
def paths(tmp_path):
    for d in ("work", "htdocs", "apps"):
        (tmp_path / d).mkdir()
    os.chmod(tmp_path, 0o755)
    return Paths(tmp_path / "work", tmp_path / "htdocs", tmp_path / "apps")


def test_reliability_workloads_get_debians_pools_for_mpmd_and_apache(paths):
    s = configs.sizing_for("reload", Sizing.for_connections(64))
    assert s == Sizing.debian() and configs.sizing_for("static-1k", Sizing()) == Sizing()
    for text in (configs.render_mpmd("prefork", "reload", paths, s),
                 configs.render_apache("prefork", paths, s, 0)):
        assert ("StartServers 5\n    MinSpareServers 5\n    MaxSpareServers 10\n"
                "    ServerLimit 150\n    MaxRequestWorkers 150") in text
    for mpm in ("worker", "event"):
        text = configs.render_apache(mpm, paths, s, 0)
        assert ("StartServers 2\n    ThreadsPerChild 25\n    MinSpareThreads 25\n"
                "    MaxSpareThreads 75\n    MaxRequestWorkers 150") in text
    assert "WorkerProcesses 2" in configs.render_mpmd("nginx", "kill", paths, s)
    assert "MinSpareThreads" not in configs.render_mpmd("event", "static-1k", paths, Sizing())


def test_slow_bodies_go_to_an_app_that_reads_them_or_to_the_file(paths):
    text = configs.render_mpmd("event", "slowbody", paths, Sizing.debian())
    assert f'WSGIScriptAlias /app "{paths.appdir / "body_wsgi.py"}"' in text
    assert configs.workload_path("slowbody", "mpmd") == "/app/"
    assert configs.workload_path("slowbody", "nginx") == "/1k.bin"
    assert configs.workload_path("slowbody", "apache") == "/1k.bin"
    assert configs.workload_path("reload", "gunicorn") == "/1k.bin"


def test_the_body_app_reads_the_whole_body(tmp_path):
    from mpmd.bench import apps
    apps.write_apps(tmp_path)
    namespace: dict = {}
    exec((tmp_path / "body_wsgi.py").read_text(), namespace)
    import io
    out = namespace["application"]({"CONTENT_LENGTH": "70000",
                                    "wsgi.input": io.BytesIO(b"x" * 70000)},
                                   lambda status, headers: None)
    assert out == [b"70000\n"]


@pytest.mark.skipif(not shutil.which("apache2"), reason="apache2 not installed")
@pytest.mark.parametrize("mpm", ["prefork", "event"])
def test_apache_accepts_its_reliability_config(paths, mpm):
    conf = paths.workdir / "apache2.conf"
    conf.write_text(configs.render_apache(mpm, paths, Sizing.debian(), 18080, reqtimeout=True))
    assert "mod_reqtimeout.so" in conf.read_text()
    proc = subprocess.run(["apache2", "-t", "-d", str(paths.workdir), "-f", str(conf)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_the_reliability_group_names_every_reliability_workload():
    args = bench.build_parser().parse_args(["--workloads", "reliability,reload",
                                            "--peers", "nginx"])
    opts = bench._options(args)
    assert opts.workloads == list(lab.RELIABILITY)
    assert opts.reliability == reliability.Plan()
    default = bench._options(bench.build_parser().parse_args([]))
    assert not set(lab.RELIABILITY) & set(default.workloads)
    quick = bench._options(bench.build_parser().parse_args(["--quick", "--workloads", "soak"]))
    assert quick.reliability == reliability.Plan.quick()


def test_plan_counts_both_modes_of_reload_and_one_of_the_others():
    opts = lab.Options(targets=["mpmd-event", "nginx"], workloads=["reload", "kill", "soak"],
                       repeat=2)
    assert lab.plan_steps(opts) == 2 * 2 * 2 + 2 * 2 + 2 * 1


# ---- the report -----------------------------------------------------------------------------

def _event(target, workload, ka, rnd, failed, timeouts=0, replaced=(0.012, 0.020)):
    events = [{"at_s": 3.0 * (i + 1), "victim": 100 + i, "replaced_s": r}
              for i, r in enumerate(replaced)] if workload == "kill" else [{"at_s": 3.0}]
    return {"target": target, "workload": workload, "keep_alive": ka, "round": rnd,
            "requests": 100000, "rps": 5000.0, "p99_s": 0.01, "socket_errors": failed,
            "non_2xx_3xx": 0, "failed": failed, "timeouts": timeouts, "events": events}


def _slow(target, workload, rnd, answered, probes=25):
    return {"target": target, "workload": workload, "keep_alive": True, "round": rnd,
            "answered": answered, "probes_sent": probes, "max_connected": 500,
            "probes": [0.01] * answered + [None] * (probes - answered)}


def _soak(target, rnd, pss_end):
    curve = _curve([40 << 20, 45 << 20, 48 << 20, 50 << 20, pss_end], [30, 31, 30, 30, 31])
    return {"target": target, "workload": "soak", "keep_alive": True, "round": rnd,
            "requests": 200500, "failed": 0, "timeouts": 0, "curve": curve, "warm_index": 3,
            **reliability.soak_summary(curve, 3)}


def _data():
    samples = []
    for rnd in range(2):
        samples += [_event("mpmd-event", "reload", True, rnd, 0),
                    _event("mpmd-event", "reload", False, rnd, 0),
                    _event("nginx", "reload", True, rnd, 150 + rnd, timeouts=3),
                    _event("nginx", "reload", False, rnd, 0),
                    _event("mpmd-event", "kill", True, rnd, 40 + rnd),
                    _event("nginx", "kill", True, rnd, 70, replaced=(0.010, None)),
                    _slow("mpmd-event", "slowloris", rnd, 25),
                    _slow("nginx", "slowloris", rnd, 24 + rnd),
                    _soak("mpmd-event", rnd, (52 << 20) + rnd * (1 << 20))]
    samples.append({"target": "mpmd-event", "workload": "slowbody", "keep_alive": True,
                    "round": 0, "error": "slowhttptest failed"})
    return {"options": {"targets": ["mpmd-event", "nginx", "apache-event"], "connections": 64,
                        "threads": 1, "duration_s": 5.0, "repeat": 2,
                        "workloads": list(lab.RELIABILITY),
                        "reliability": reliability.Plan().to_dict(),
                        "reliability_sizing": vars(Sizing.debian())},
            "samples": samples,
            "unavailable": {"apache-event": {"slowloris": "slowhttptest not found on PATH"}}}


def test_reliability_table_lists_every_round_per_server():
    md = render_markdown(_data(), [])
    assert "## Reliability: reloads, killed children, slow clients, soak" in md
    assert "| scenario | mpmd-event | nginx | apache-event |" in md
    assert ("| 5 graceful reloads, keep-alive clients: failed requests | 0, 0 | "
            "150, 151 (+6 slower than 2 s) | – |") in md
    assert "| 5 graceful reloads, `Connection: close`: failed requests | 0, 0 | 0, 0 | – |" in md
    assert "| 5 SIGKILLs of a random child: failed requests | 40, 41 | 70, 70 | – |" in md
    assert ("| kill → a new child of the master (median, min–max, within 3 s) | "
            "16 (12–20) ms | 10 ms (2 of 4 kills) | – |") in md
    assert ("| slowloris, 500 connections (`slowhttptest -H`): probes answered within 1 s | "
            "25/25, 25/25 | 24/25, 25/25 | n/a |") in md
    assert "| slow bodies, 500 connections (`slowhttptest -B`): probes answered within 1 s | " \
           "run failed | – | – |" in md
    assert "Graceful reloads under load" not in md      # no per-workload throughput table


def test_soak_table_and_issue_18_goals_are_judged_from_the_run():
    md = render_markdown(_data(), [])
    assert ("| mpmd-event | 200500 | 0 | 50.0 | 52.5 (52.0–53.0) | +5.0 (+4.0–+6.0)% | "
            "3 / 60 → 3 / 60 | 30 | 31 | 31 |") in md
    cells = aggregate(_data())
    goals = reliability_goals(_data(), cells)
    assert ("| #18 0 failed requests over graceful reloads, keep-alive, every MPM | "
            "mpmd-event 0, 0 | yes |") in goals
    assert "| #18 soak: PSS within 10% of warm-up, mpmd-event | +5.0% | yes |" in goals
    assert ("| #18 soak: descriptors flat, mpmd-event | 30 after warm-up, 31 at the end "
            "(at most 31 in between) | yes |") in goals
    data = _data()
    data["samples"][0]["failed"] = 3
    assert "| no: mpmd-event |" in reliability_goals(data, aggregate(data))


def test_reliability_chart_is_written(tmp_path):
    from mpmd.bench.charts import write_charts
    names = write_charts(_data(), tmp_path)
    assert "reliability.png" in names
    assert (tmp_path / "reliability.png").stat().st_size > 1000
    assert "rps.png" not in names


# ---- the probe ------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/slow":
            threading.Event().wait(0.5)
        body = b"ok\n"
        self.send_response(404 if self.path == "/missing" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    with stub_server(_Handler) as port:
        yield port


def test_a_probe_counts_only_a_2xx_answered_within_its_deadline(server):
    assert probe_once(server, "/", 1.0) is not None
    assert probe_once(server, "/missing", 1.0) is None
    assert probe_once(server, "/slow", 0.2) is None
    with __import__("socket").socket() as s:          # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert probe_once(port, "/", 0.5) is None


def test_probes_are_paced(server):
    results = probe_steadily(server, "/", 3, interval_s=0.05, timeout_s=1.0)
    assert len(results) == 3 and all(r is not None for r in results)


# ---- a killed child and its replacement, on a stand-in master ---------------------------------

MASTER = """
import os, sys, time
def spawn():
    if os.fork() == 0:
        time.sleep(30)
        os._exit(0)
for _ in range(2):
    spawn()
print("ready", flush=True)
end = time.time() + 30
while time.time() < end:
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        pid = 0
    if pid:
        spawn()
    time.sleep(0.01)
"""


def test_kill_child_kills_one_child_of_the_master_and_times_the_new_one():
    import random
    import signal
    import sys
    from mpmd.bench import procs
    master = subprocess.Popen([sys.executable, "-c", MASTER], stdout=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        assert master.stdout.readline().strip() == "ready"
        before = procs.children(master.pid)
        assert len(before) == 2
        event = reliability.kill_child(master.pid, random.Random(1), wait_s=5.0)
        assert event["victim"] in before
        assert event["replaced_s"] is not None and 0 < event["replaced_s"] < 5
        after = procs.children(master.pid)
        assert event["victim"] not in after and len(after) == 2
        assert procs.tree_fds(master.pid) >= 3
        assert reliability.kill_child(os.getpid() + 10**6, random.Random(1), 0.1) == {
            "victim": None, "replaced_s": None}
    finally:
        os.killpg(master.pid, signal.SIGKILL)
        master.wait()
