"""Every error of a config in one run, end to end: `mpmd -t` and start-up print them all and
exit 1 with nothing left running; a restart into such a config logs each, one line apiece,
and keeps serving the running configuration."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx

from tests.support.confbuilder import ConfBuilder
from tests.support.harness import SRC, Server, wait_for

BAD = ("KeepAlve On", "LoadModule foo_module /usr/lib/apache2/modules/mod_foo.so",
       "<IfVersion >= 2.4>", "Timeout forever", "</IfVersion>")


def test_start_up_names_every_error_and_leaves_nothing(tmp_path):
    conf = ConfBuilder(tmp_path)
    for line in BAD:
        conf.add(line)
    path = conf.write()
    r = subprocess.run([sys.executable, "-m", "mpmd", "-f", str(path)], capture_output=True, text=True,
                       timeout=60, cwd=SRC)
    assert r.returncode == 1
    heads = [line for line in r.stderr.splitlines() if line.startswith("Syntax error on line ")]
    text = path.read_text().splitlines()
    assert heads == [f"Syntax error on line {text.index(line) + 1} of {path}:"
                     for line in ("KeepAlve On", BAD[1], "Timeout forever")]
    assert r.stderr.splitlines()[-1] == "MPMD0516: 3 errors in the configuration"
    assert not conf.pid_file.exists()


def test_a_restart_into_a_config_with_errors_logs_each_on_its_own_line(tmp_path):
    conf = ConfBuilder(tmp_path)
    (conf.htdocs).mkdir(parents=True, exist_ok=True)
    (conf.htdocs / "index.html").write_text("hi\n")
    with Server(conf) as server:
        assert httpx.get(server.url + "/index.html", timeout=20).status_code == 200
        for line in BAD:
            conf.add(line)
        path = conf.write()
        server.signal(signal.SIGHUP)
        wait_for(lambda: server.error_log_text().count("restart failed, keeping") >= 3, timeout=30,
                 message="the restart's three errors in the ErrorLog")
        lines = [line for line in server.error_log_text().splitlines() if "restart failed, keeping" in line]
        assert len(lines) == 3
        assert f"Syntax error on line {len(path.read_text().splitlines()) - 1} of {path}: Timeout" in lines[2]
        assert "LoadModule: mpmd has no module 'foo_module' (mod_foo.so)" in lines[1]
        assert httpx.get(server.url + "/index.html", timeout=20).status_code == 200
        assert server.wait_ready()["generation"] == 0
