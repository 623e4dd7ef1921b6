"""Aggregation, tables and claims from synthetic results (no servers)."""

from mpmd.bench.lab import plan_steps, rotated, Options
from mpmd.bench.report import aggregate, idle_per_conn, render_markdown


def _sample(target, workload, ka, rnd, rps, **extra):
    return {"target": target, "workload": workload, "keep_alive": ka, "round": rnd,
            "rps": rps, "p99_s": 0.002, "socket_errors": 0, "non_2xx_3xx": 0,
            "usage": {"pss_bytes": 10 << 20, "processes": 2, "threads": 2}, **extra}


def _data():
    samples = []
    for rnd, (n_on, n_off, p_on, p_off) in enumerate([(100, 60, 50, 20), (110, 70, 40, 30),
                                                      (90, 65, 45, 25)]):
        samples += [_sample("nginx", "static-1k", True, rnd, n_on),
                    _sample("nginx", "static-1k", False, rnd, n_off),
                    _sample("mpmd-prefork", "static-1k", True, rnd, p_on),
                    _sample("mpmd-prefork", "static-1k", False, rnd, p_off)]
    curve = [{"idle": 0, "pss_bytes": 8 << 20, "processes": 2, "threads": 2},
             {"idle": 100, "held": 100, "pss_bytes": (8 << 20) + 100 * 1024, "processes": 2,
              "threads": 2}]
    samples.append(_sample("nginx", "idle", True, 0, 95.0, curve=curve, held=100,
                           idle_target=100))
    samples.append({"target": "mpmd-prefork", "workload": "static-1m", "keep_alive": True,
                    "round": 0, "error": "server died before the run"})
    return {"options": {"targets": ["mpmd-prefork", "nginx"], "connections": 64, "threads": 1,
                        "duration_s": 1.0, "repeat": 3,
                        "workloads": ["static-1k", "static-1m", "idle", "faults"]},
            "samples": samples,
            "unavailable": {"mpmd-worker": {"static-1k": "mpmd-worker exited with 1: boom"}}}


def test_aggregate_takes_medians_per_cell():
    cells = aggregate(_data())
    assert cells[("static-1k", "nginx", True)].rps.median == 100
    assert cells[("static-1k", "mpmd-prefork", False)].rps.low == 20
    assert cells[("static-1m", "mpmd-prefork", True)].failed_runs == ["server died before the run"]


def test_idle_cost_per_connection():
    cells = aggregate(_data())
    assert idle_per_conn(cells[("idle", "nginx", True)]) == 1024


def test_report_has_ratios_claims_and_unavailable_reasons():
    md = render_markdown(_data(), ["rps.png"])
    assert "| mpmd-prefork | 45 (40–50) | 0.45 | 25 (20–30) | 0.38 | +80% |" in md
    assert "nginx +54%" in md          # keep-alive claim: 100 / 65
    assert "mpmd-worker / static-1k: unavailable: mpmd-worker exited with 1: boom" in md
    assert "server died before the run" in md
    assert "Not measured: no fault-mix run succeeded." in md
    assert "![rps.png](rps.png)" in md


def _data_with_cpu_split():
    data = _data()
    for s in data["samples"]:
        if s["workload"] == "static-1k" and s["keep_alive"] and "rps" in s:
            s["requests"] = 1000
            fast = s["target"] == "nginx"
            # µs per request: server user 2 / 30, server system 6 / 20, wrk 1+5 / 2+18
            s.update(server_user_s=0.002 if fast else 0.030, server_sys_s=0.006 if fast else 0.020,
                     cpu_user_s=0.001 if fast else 0.002, cpu_sys_s=0.005 if fast else 0.018)
    return data


def test_cpu_table_splits_each_request_and_sums_the_parts():
    md = render_markdown(_data_with_cpu_split(), [])
    assert "Where the CPU goes, keep-alive on" in md
    assert "| mpmd-prefork | 30.0 | 20.0 | 2.0 | 18.0 | 70.0 | 5.00 |" in md
    assert "| nginx | 2.0 | 6.0 | 1.0 | 5.0 | 14.0 | 1.00 |" in md


def test_no_cpu_table_without_the_split():
    assert "Where the CPU goes" not in render_markdown(_data(), [])


def test_interleaving_rotates_the_order_each_round():
    assert [rotated(["a", "b", "c"], k) for k in range(3)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    assert rotated([], 3) == []


def test_plan_counts_only_targets_that_serve_the_workload():
    opts = Options(targets=["nginx", "gunicorn-sync"], workloads=["static-1k", "faults", "idle"],
                   repeat=3)
    assert plan_steps(opts) == 3 * 2 + 3 * 2 + 3 * 1


def test_charts_are_written_for_the_data_present(tmp_path):
    from mpmd.bench.charts import write_charts
    names = write_charts(_data(), tmp_path)
    assert {"rps.png", "keepalive_speedup.png", "p99_latency.png",
            "idle_connections.png"} <= set(names)
    assert "faults.png" not in names          # no fault samples -> no empty chart
    assert "cpu_per_request.png" not in names  # no CPU split in these samples
    assert all((tmp_path / n).stat().st_size > 1000 for n in names)


def test_cpu_chart_is_written_when_the_split_was_measured(tmp_path):
    from mpmd.bench.charts import write_charts
    assert "cpu_per_request.png" in write_charts(_data_with_cpu_split(), tmp_path)
    assert (tmp_path / "cpu_per_request.png").stat().st_size > 1000


def _goal_data(prefork, apache, nginx_mpm=None):
    data = _data()
    data["samples"] = [s for s in data["samples"] if s["workload"] == "static-1k"]
    for rnd in range(3):
        data["samples"] += [_sample("apache-prefork", "static-1k", True, rnd, apache)]
        if nginx_mpm is not None:
            data["samples"] += [_sample("mpmd-nginx", "static-1k", True, rnd, nginx_mpm)]
    for s in data["samples"]:
        if s["target"] == "mpmd-prefork" and s["keep_alive"]:
            s["rps"] = prefork
    data["options"]["targets"] += ["apache-prefork", "mpmd-nginx"]
    return data


def test_goals_are_judged_from_the_run_with_the_reference_beside_them():
    md = render_markdown(_goal_data(prefork=30, apache=60, nginx_mpm=50), [])
    assert "## The issues' speed goals in this run" in md
    # nginx's keep-alive medians are 100: prefork 0.30x (< 0.35), Apache 0.60x, ratio 0.50x
    assert ("| #2 mpmd prefork ≥ 0.35x nginx | 0.30x (30 vs 100 req/s) | apache-prefork 0.60x "
            "nginx; mpmd-prefork at 0.50x apache-prefork | no |") in md
    assert "| #4 nginx MPM ≥ 0.5x nginx, one process each | 0.50x (50 vs 100 req/s) | – | yes |" in md
    assert "#3 event" not in md          # mpmd-event did not run: no row, no guess
    assert "| #2 mpmd prefork ≥ 0.35x nginx | 0.35x (35 vs 100 req/s)" in render_markdown(
        _goal_data(prefork=35, apache=60), [])
    assert "| yes |" in render_markdown(_goal_data(prefork=35, apache=60), []).split(
        "#2 mpmd prefork")[1].splitlines()[0]


def test_no_goals_section_when_no_goal_can_be_judged():
    data = _data()
    data["samples"] = [s for s in data["samples"] if s["target"] != "nginx"]
    assert "speed goals" not in render_markdown(data, [])


# ---- the https workloads -----------------------------------------------------------------

def _https_data():
    full = {"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "status": "HTTP/1.1 200 OK",
            "resumed": False}
    rows = [("nginx", "tls-static-1k", 200, 10, full),
            ("mpmd-nginx", "tls-static-1k", 130, 12, full),
            ("uvicorn", "tls-asgi-hello", 100, 9, full),
            ("granian", "tls-asgi-hello", 180, 20, {**full, "resumed": True})]
    samples = [_sample(t, w, ka, rnd, (on if ka else off) + rnd, tls=facts)
               for rnd in range(3) for t, w, on, off, facts in rows for ka in (True, False)]
    return {"options": {"targets": ["mpmd-nginx", "nginx", "uvicorn", "granian"],
                        "connections": 64, "threads": 1, "duration_s": 1.0, "repeat": 3,
                        "workloads": ["tls-static-1k", "tls-asgi-hello"]},
            "samples": samples, "unavailable": {}}


def test_https_table_puts_every_server_beside_nginx_with_its_tls_facts():
    md = render_markdown(_https_data(), [])
    assert md.count("## HTTPS: keep-alive, and a new TLS connection per request") == 1
    assert md.index("## HTTPS: keep-alive") < md.index("## HTTPS, static file, 1 KiB")
    assert ("| mpmd-nginx | static 1 KiB | 131 (130–132) | 0.65 | 13 (12–14) | 1.18 | 0 | "
            "TLSv1.3 TLS_AES_256_GCM_SHA384, no resumption |") in md
    assert "| uvicorn | ASGI hello | 101 (100–102) | 0.50 | 10 (9–11) | 0.91 |" in md
    assert "| granian | ASGI hello |" in md and "resumes sessions |" in md
    assert "## HTTPS, ASGI hello world" in md          # the per-workload table, uvicorn's ratio


def test_issue_17_goals_are_judged_on_the_https_runs():
    md = render_markdown(_https_data(), [])
    assert ("| #17 nginx MPM ≥ 0.6x nginx, https keep-alive | 0.65x (131 vs 201 req/s) | "
            "uvicorn 0.50x nginx; mpmd-nginx at 1.30x uvicorn | yes |") in md
    assert ("| #17 nginx MPM ≥ 1.0x nginx, new TLS connections per second | 1.18x (13 vs 11 "
            "req/s) | – | yes |") in md
    assert "#4 nginx MPM" not in md                     # no plain static-1k run


def test_a_new_connection_goal_is_not_judged_when_only_one_side_resumes_sessions():
    data = _https_data()
    for s in data["samples"]:
        if s["target"] == "mpmd-nginx":
            s["tls"] = {**s["tls"], "resumed": True}
    md = render_markdown(data, [])
    assert ("| #17 nginx MPM ≥ 1.0x nginx, new TLS connections per second | 1.18x (13 vs 11 "
            "req/s) | – | not judged: mpmd-nginx resumes sessions |") in md
    assert "https keep-alive | 0.65x (131 vs 201 req/s) |" in md and \
        "mpmd-nginx at 1.30x uvicorn | yes |" in md          # keep-alive: one handshake, judged


def test_https_chart_is_written(tmp_path):
    from mpmd.bench.charts import write_charts
    names = write_charts(_https_data(), tmp_path)
    assert "https.png" in names and (tmp_path / "https.png").stat().st_size > 1000
    plain = tmp_path / "plain"
    plain.mkdir()
    assert "https.png" not in write_charts(_data(), plain)     # no https run, no empty chart


def test_https_workloads_run_nginx_and_event_unless_mpm_is_given():
    import mpmd.bench
    from mpmd.bench import build_parser
    opts = mpmd.bench._options(build_parser().parse_args(
        ["--workloads", "static-1k,tls-static-1k", "--peers", "nginx,uvicorn"]))
    assert opts.targets_for("static-1k") == ["mpmd-prefork", "mpmd-worker", "mpmd-event",
                                             "mpmd-nginx", "nginx"]
    assert opts.targets_for("tls-static-1k") == ["mpmd-event", "mpmd-nginx", "nginx"]
    assert opts.targets_for("tls-asgi-hello") == ["mpmd-event", "mpmd-nginx", "uvicorn"]
    assert plan_steps(opts) == 3 * 2 * 5 + 3 * 2 * 3
    asked = mpmd.bench._options(build_parser().parse_args(
        ["--workloads", "tls-static-1k", "--mpm", "prefork,nginx", "--peers", "none"]))
    assert asked.targets_for("tls-static-1k") == ["mpmd-prefork", "mpmd-nginx"]


def test_conditions_name_the_cpu_used_outside_the_lab_and_the_waits():
    data = _data()
    for i, s in enumerate(data["samples"]):
        s.update(loadavg_1m=1.0, foreign_cpu_s=0.1 * i, waited_quiet_s=1.0)
    data["options"]["wait_quiet_s"] = 30
    data["environment"] = {"cpus": 2}
    md = render_markdown(data, [])
    assert "CPU used by processes outside the lab during a 1 s run (of the 2 CPU seconds" in md
    assert "median 0.65 s, max 1.30 s" in md and "2).  CPU" not in md
    assert "waited for a quiet second (up to 30 s): median 1.0 s, max 1.0 s." in md
