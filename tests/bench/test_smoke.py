"""`mpmd bench --quick` end to end, restricted to a fast subset (marker: bench_smoke).

Real servers on 127.0.0.1; asserts only that the lab produces its outputs, records what
could not run, and leaves no server process behind. No speed assertions.
"""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

import mpmd.bench

pytestmark = [pytest.mark.bench_smoke, pytest.mark.timeout(120),
              pytest.mark.skipif(not (shutil.which("wrk") and shutil.which("nginx")),
                                 reason="needs wrk and nginx")]


def _lab_processes() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"mpmd-bench-" in cmdline:
                found.append(int(entry.name))
    return found


def test_quick_static_against_nginx_and_mpmd_prefork(tmp_path):
    out = tmp_path / "out"
    rc = mpmd.bench.main(["--quick", "--mpm", "prefork", "--peers", "nginx",
                          "--workloads", "static-1k", "--out", str(out)])
    assert rc == 0
    data = json.loads((out / "results.json").read_text())
    nginx = [s for s in data["samples"] if s["target"] == "nginx"]
    assert {s["keep_alive"] for s in nginx} == {True, False}
    assert all(s["rps"] > 0 and s["requests"] > 0 for s in nginx)
    # where the CPU went: the server's user and system time, and wrk's own
    assert all(s["server_user_s"] + s["server_sys_s"] > 0 for s in nginx)
    assert all(s["cpu_user_s"] + s["cpu_sys_s"] > 0 for s in nginx)
    ran = any(s["target"] == "mpmd-prefork" for s in data["samples"])
    assert ran or "static-1k" in data["unavailable"]["mpmd-prefork"]
    report = (out / "report.md").read_text()
    assert "## Static file, 1 KiB" in report and "| nginx |" in report
    assert "Where the CPU goes" in report and "wrk system µs/req" in report
    assert (out / "rps.png").stat().st_size > 0
    assert (out / "cpu_per_request.png").stat().st_size > 0
    assert _lab_processes() == []


@pytest.mark.skipif(importlib.util.find_spec("granian") is None, reason="granian not installed")
def test_quick_granian_serves_wsgi_and_asgi(tmp_path):
    out = tmp_path / "out"
    rc = mpmd.bench.main(["--quick", "--mpm", "none", "--peers", "granian", "--workloads",
                          "wsgi-hello,asgi-hello", "--no-charts", "--out", str(out)])
    assert rc == 0
    data = json.loads((out / "results.json").read_text())
    assert data["unavailable"] == {}
    for workload in ("wsgi-hello", "asgi-hello"):
        got = [s for s in data["samples"] if s["workload"] == workload]
        assert {s["keep_alive"] for s in got} == {True, False}
        assert all(s["rps"] > 0 and s["non_2xx_3xx"] == 0 for s in got), got
    report = (out / "report.md").read_text()
    assert "## WSGI hello world" in report and "| granian |" in report
    assert _lab_processes() == []


def test_quick_https_against_nginx_and_the_nginx_mpm(tmp_path):
    out = tmp_path / "out"
    rc = mpmd.bench.main(["--quick", "--mpm", "nginx", "--peers", "nginx", "--workloads",
                          "tls-static-1k", "--out", str(out)])
    assert rc == 0
    data = json.loads((out / "results.json").read_text())
    nginx = [s for s in data["samples"] if s["target"] == "nginx"]
    assert {s["keep_alive"] for s in nginx} == {True, False}
    assert all(s["rps"] > 0 and s["socket_errors"] == 0 for s in nginx), nginx
    assert all(s["tls"]["version"] == "TLSv1.3" and not s["tls"]["resumed"] for s in nginx)
    # mpmd ran over TLS, or is recorded as unavailable with its reason (no TLS yet)
    ran = any(s["target"] == "mpmd-nginx" for s in data["samples"])
    assert ran or "tls-static-1k" in data["unavailable"]["mpmd-nginx"]
    report = (out / "report.md").read_text()
    assert "## HTTPS: keep-alive, and a new TLS connection per request" in report
    assert "| nginx | static 1 KiB |" in report
    assert (out / "https.png").stat().st_size > 0
    assert _lab_processes() == []


def test_unknown_names_are_rejected(tmp_path):
    with pytest.raises(SystemExit):
        mpmd.bench.main(["--peers", "lighttpd", "--out", str(tmp_path)])


def test_missing_wrk_is_explained(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert mpmd.bench.main(["--quick", "--out", str(tmp_path)]) == 2
    assert "apt-get install wrk" in capsys.readouterr().err
