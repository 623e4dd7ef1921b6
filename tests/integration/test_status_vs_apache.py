"""mod_status's ``?auto`` checked against apache2 itself, and read by Debian's
prometheus-apache-exporter: a standalone apache2 (event MPM, mod_status) and mpmd on every MPM
answer a few requests, then

* their ``/server-status?auto`` carry the same keys in the same order (CPULoad aside: both
  print it only once some CPU time was counted), each value of the shape Apache gives it;
* the exporter, run against each, reports the same metric families, and reads mpmd's
  ServerVersion as the Apache level mpmd follows (mod_status.py Rule 6).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
import time

import httpx
import pytest

from tests.support.apache import config, free_port, needs_apache, running
from tests.support.harness import wait_for

pytestmark = needs_apache("mod_status.so")

EXPORTER = shutil.which("prometheus-apache-exporter")
STATUS = textwrap.dedent("""
    <Location /server-status>
        SetHandler server-status
    </Location>
""")
NUMBER = r"-?(\d+|\d*\.\d+)(e[-+]\d+)?"          # APR's %g: ".6" for 0.6
HTTP_TIME = r"\w+day, \d\d-\w{3}-\d{4} \d\d:\d\d:\d\d \w+"
SHAPES = {
    "ServerVersion": r"Apache/\d+\.\d+\.\d+ .*", "ServerMPM": r"\w+",
    "Server Built": r".+", "CurrentTime": HTTP_TIME, "RestartTime": HTTP_TIME,
    "ServerUptime": r"(\d+ (day|hour|minute|second)s? ?)+", "Load1": r"-?\d+\.\d\d",
    "Load5": r"-?\d+\.\d\d", "Load15": r"-?\d+\.\d\d", "Scoreboard": r"[_SRWKDCLGI.]+",
}


def _auto(port: int) -> list[tuple[str, str]]:
    text = httpx.get(f"http://127.0.0.1:{port}/server-status?auto", timeout=10).text
    lines = text.splitlines()
    return [(key, value.strip()) for key, _, value in (line.partition(":") for line in lines[1:])]


def _traffic(port: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for _ in range(5):
            assert client.get("/index.html").status_code == 200
    time.sleep(1.1)                          # an uptime over 0: ReqPerSec and BytesPerSec


def _apache(tmp_path):
    port, root = free_port(), tmp_path / "apache"
    htdocs = root / "htdocs"
    htdocs.mkdir(parents=True)
    (htdocs / "index.html").write_text("<h1>hello</h1>\n")
    (root / "httpd.conf").write_text(config(root, port, htdocs, modules=("status",),
                                            extra=STATUS))
    return port, running(root / "httpd.conf", [("127.0.0.1", port)])


def _check_shapes(fields: list[tuple[str, str]], who: str) -> None:
    for key, value in fields:
        shape = SHAPES.get(key, NUMBER)
        assert re.fullmatch(shape, value), (who, key, value)


def test_auto_has_apaches_keys_in_apaches_order(conf, make_server, tmp_path):
    port, apache = _apache(tmp_path)
    with apache:
        _traffic(port)
        theirs = _auto(port)
    server = make_server(conf.add(STATUS))
    _traffic(server.port)
    ours = _auto(server.port)
    _check_shapes(theirs, "apache2")
    _check_shapes(ours, "mpmd")
    keys = [k for k, _ in ours if k != "CPULoad"]
    assert keys == [k for k, _ in theirs if k != "CPULoad"], (keys, theirs)
    fields = dict(ours)
    assert fields["ServerVersion"].startswith("Apache/2.4.") and "mpmd/" in fields["ServerVersion"]
    assert fields["ServerMPM"] == conf.mpm
    assert int(fields["Total Accesses"]) >= 5 and int(fields["Total Duration"]) >= 0
    assert (fields["ParentServerConfigGeneration"], fields["ParentServerMPMGeneration"]) == ("1", "0")
    assert float(fields["CPUUser"]) + float(fields["CPUSystem"]) > 0    # a Python server: some


def _families(exporter_port: int) -> dict[str, list[str]]:
    text = httpx.get(f"http://127.0.0.1:{exporter_port}/metrics", timeout=10).text
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            out.setdefault(line.split()[2], [])
        elif line and not line.startswith("#"):
            name = re.split(r"[{ ]", line, maxsplit=1)[0]
            out.setdefault(name, []).append(line)
    return {k: v for k, v in out.items() if k.startswith("apache_")}


def _export(port: int) -> dict[str, list[str]]:
    """The exporter's apache_* families for the server on ``port``, scraped once."""
    listen = free_port()
    proc = subprocess.Popen([EXPORTER, f"--scrape_uri=http://127.0.0.1:{port}/server-status?auto",
                             f"--telemetry.address=127.0.0.1:{listen}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def scraped():
            try:
                families = _families(listen)
            except httpx.HTTPError:
                return None
            return families if "apache_up" in families else None
        return wait_for(scraped, timeout=15, message="the exporter")  # type: ignore[return-value]
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.skipif(EXPORTER is None, reason="prometheus-apache-exporter is not installed "
                    "(apt-get install prometheus-apache-exporter)")
def test_the_exporter_reports_the_same_metric_families(conf, make_server, tmp_path):
    port, apache = _apache(tmp_path)
    with apache:
        _traffic(port)
        theirs = _export(port)
    server = make_server(conf.add(STATUS))
    _traffic(server.port)
    ours = _export(server.port)
    # CPULoad is a gauge the exporter always has; the rest, counters included, must match
    assert sorted(ours) == sorted(theirs), (sorted(ours), sorted(theirs))
    for family in ("apache_load", "apache_cpu_time_ms_total", "apache_duration_ms_total",
                   "apache_generation", "apache_version", "apache_info"):
        assert ours[family], (family, ours)
    assert ours["apache_up"] == ["apache_up 1"]
    [version] = ours["apache_version"]
    assert float(version.split()[-1]) == pytest.approx(2.04062), version
    [info] = ours["apache_info"]
    assert 'mpm="%s"' % conf.mpm in info and "mpmd/" in info, info
