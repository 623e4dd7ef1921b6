"""Acceptance: Debian's /etc/apache2, exactly as the apache2 package installs it, run by
``mpmd -d /etc/apache2 -f apache2.conf`` (docs/porting.md "Running Debian's tree").

What the command line changes, and nothing else:
- the environment is /etc/apache2/envvars sourced, as apache2ctl does;
- ``-C 'ListenRemap 80 127.0.0.1:0'`` (and 443 with TLS) binds an ephemeral loopback port
  for ports.conf's ``Listen 80``, its connections still seen as port 80's, so the
  ``<VirtualHost *:80>`` of 000-default.conf answers;
- ``-C 'Define APACHE_LOG_DIR ...'`` (and the run, lock and pid names) puts the files the
  server writes in the test's directory: ${NAME} is a Define before the environment, as in
  httpd, so /var/log/apache2 and /run/apache2 are not touched.

The MPM and default-ssl variants run a copy of the tree with the symlinks a2enmod/a2dismod/
a2ensite make; their files are the package's, unchanged.  apache2 itself runs a copy whose
ports.conf says 127.0.0.1:PORT (httpd has no ListenRemap), and answers as mpmd does.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.apache import APACHE, answers, free_port
from tests.support.harness import SRC, group_pids, wait_for

TREE = Path("/etc/apache2")
INDEX = Path("/var/www/html/index.html")
SNAKEOIL = (Path("/etc/ssl/certs/ssl-cert-snakeoil.pem"), Path("/etc/ssl/private/ssl-cert-snakeoil.key"))

pytestmark = pytest.mark.skipif(
    not (TREE / "apache2.conf").exists() or not (TREE / "envvars").exists() or not INDEX.exists(),
    reason="Debian's apache2 package is not installed")


def envvars(confdir: Path) -> dict[str, str]:
    """The environment apache2ctl gives apache2: APACHE_CONFDIR, then its envvars sourced."""
    script = f"APACHE_CONFDIR={shlex.quote(str(confdir))}; set -a; . ./envvars; env -0"
    out = subprocess.run(["sh", "-c", script], cwd=confdir, capture_output=True, check=True).stdout
    env = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def state_defines(state: Path) -> list[str]:
    """-C lines that move what the server writes under ``state`` (not /var/log, /run)."""
    for sub in ("log", "run", "lock"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    return ["-C", f"Define APACHE_LOG_DIR {state / 'log'}",
            "-C", f"Define APACHE_RUN_DIR {state / 'run'}",
            "-C", f"Define APACHE_LOCK_DIR {state / 'lock'}",
            "-C", f"Define APACHE_PID_FILE {state / 'run' / 'apache2.pid'}"]


def command(confdir: Path, state: Path, *ports: int) -> list[str]:
    remaps = [arg for port in ports for arg in ("-C", f"ListenRemap {port} 127.0.0.1:0")]
    return [sys.executable, "-m", "mpmd", "-d", str(confdir), "-f", "apache2.conf",
            *state_defines(state), *remaps]


def syntax_check(confdir: Path, state: Path, *ports: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command(confdir, state, *ports), "-t"], capture_output=True, text=True,
                          env=envvars(confdir), cwd=state, timeout=120)


class Running:
    """``mpmd ... -D FOREGROUND`` with a ready file; stopped (TERM) and checked gone on exit."""

    def __init__(self, confdir: Path, state: Path, *ports: int) -> None:
        self.state = state
        state.mkdir(parents=True, exist_ok=True)
        self.ready_file = state / "ready.json"
        self.out = state / "server.out"
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(
                [*command(confdir, state, *ports), "-D", "FOREGROUND", "--ready-file", str(self.ready_file)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=envvars(confdir),
                cwd=state)
        try:
            self.ready = wait_for(self._ready, 30, message="the ready file")
        except AssertionError:
            self.stop()
            raise AssertionError(self.diagnostics()) from None

    def _ready(self) -> dict | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"mpmd exited with {self.proc.returncode}\n{self.diagnostics()}")
        try:
            return json.loads(self.ready_file.read_text())
        except (OSError, ValueError):
            return None

    def port(self, n: int = 0) -> int:
        return int(self.ready["listeners"][n][1])

    def diagnostics(self) -> str:
        logs = "".join(f"--- {p.name} ---\n{p.read_text(errors='replace')[-3000:]}\n"
                       for p in sorted((self.state / "log").glob("*")))
        return f"--- server output ---\n{self.out.read_text(errors='replace')[-3000:]}\n{logs}"

    def stop(self) -> None:
        pgid = self.proc.pid
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                self.proc.wait(5)
        try:
            wait_for(lambda: not group_pids(pgid), 10.0, message="no process left")
        except AssertionError:
            os.killpg(pgid, signal.SIGKILL)
            raise

    def __enter__(self) -> "Running":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def enabled_modules(confdir: Path) -> list[str]:
    """The module names of mods-enabled/*.load's LoadModule lines."""
    names = []
    for load in sorted((confdir / "mods-enabled").glob("*.load")):
        names += re.findall(r"^\s*LoadModule\s+(\w+)", load.read_text(), re.M)
    return names


def copy_tree(tmp: Path) -> Path:
    """A copy of /etc/apache2 (symlinks kept) for a2enmod/a2ensite-style variants."""
    copy = tmp / "apache2"
    shutil.copytree(TREE, copy, symlinks=True)
    return copy


def enable(confdir: Path, kind: str, name: str) -> None:
    """What a2enmod/a2ensite do: a relative symlink in *-enabled to *-available."""
    for path in sorted((confdir / f"{kind}-available").glob(f"{name}.*")):
        link = confdir / f"{kind}-enabled" / path.name
        if not link.exists():
            link.symlink_to(f"../{kind}-available/{path.name}")


def disable(confdir: Path, kind: str, name: str) -> None:
    for link in (confdir / f"{kind}-enabled").glob(f"{name}.*"):
        link.unlink()


def assert_serves_default_site(server: Running, scheme: str = "http", port_index: int = 0) -> None:
    url = f"{scheme}://127.0.0.1:{server.port(port_index)}"
    with httpx.Client(verify=False, timeout=10) as client:
        r = client.get(url + "/")
        assert r.status_code == 200, server.diagnostics()
        assert r.content == INDEX.read_bytes()
        assert r.headers["content-type"] == "text/html"
        assert client.get(url + "/.htaccess").status_code == 403     # <FilesMatch "^\.ht">
        assert client.get(url + "/no-such-page").status_code == 404
    # 000-default.conf's CustomLog (the vhost's), not other_vhosts_access.log (the main server's)
    access = server.state / "log" / "access.log"
    wait_for(lambda: '"GET / HTTP/1.1" 200' in access.read_text(), 10, message="the vhost's access log")


def test_stock_tree_passes_t(tmp_path):
    r = syntax_check(TREE, tmp_path, 80)
    assert "Traceback" not in r.stderr
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[-1] == "Syntax OK"
    assert "Syntax error" not in r.stderr


def test_stock_tree_loads_every_enabled_module(tmp_path):
    r = subprocess.run([*command(TREE, tmp_path, 80), "-M"], capture_output=True, text=True,
                       env=envvars(TREE), cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    listed = set(re.findall(r"^\s*(\w+) \(", r.stdout, re.M))
    wanted = enabled_modules(TREE)
    assert "mpm_event_module" in wanted
    assert set(wanted) <= listed, set(wanted) - listed


def test_stock_tree_serves_the_default_site(tmp_path):
    with Running(TREE, tmp_path, 80) as server:
        assert len(server.ready["listeners"]) == 1          # no 443 without a2enmod ssl
        assert server.ready["mpm"] == "event"               # mods-enabled/mpm_event.load
        assert_serves_default_site(server)
        # User ${APACHE_RUN_USER}: the children are www-data's, the master root's
        if os.geteuid() == 0:
            children = [p for p in group_pids(server.proc.pid) if p != server.ready["pid"]]
            assert children
            owners = {pwd.getpwuid(os.stat(f"/proc/{p}").st_uid).pw_name for p in children}
            assert owners == {envvars(TREE)["APACHE_RUN_USER"]}
        pid_file = tmp_path / "run" / "apache2.pid"
        assert pid_file.read_text().strip() == str(server.ready["pid"])
        # the one error line is the denied /.htaccess, worded as httpd's (AH01630)
        errors = [line for line in (tmp_path / "log" / "error.log").read_text().splitlines()
                  if re.search(r":(error|crit|alert|emerg)\]", line)]
        assert all("AH01630: client denied by server configuration: /var/www/html/.htaccess" in line
                   for line in errors), errors
    assert not pid_file.exists()                             # removed at stop, as httpd


@pytest.mark.parametrize("mpm", ["prefork", "worker"])
def test_other_mpm_by_a2dismod_a2enmod(tmp_path, mpm):
    confdir = copy_tree(tmp_path)
    disable(confdir, "mods", "mpm_event")
    enable(confdir, "mods", f"mpm_{mpm}")
    state = tmp_path / "state"
    r = syntax_check(confdir, state, 80)
    assert r.returncode == 0, r.stderr
    with Running(confdir, state, 80) as server:
        assert server.ready["mpm"] == mpm
        assert_serves_default_site(server)


@pytest.mark.skipif(not all(p.exists() for p in SNAKEOIL),
                    reason="ssl-cert's snakeoil certificate is missing: "
                           "make-ssl-cert generate-default-snakeoil (scripts/test runs it)")
def test_default_ssl_by_a2enmod_a2ensite(tmp_path):
    confdir = copy_tree(tmp_path)
    for dep in ("setenvif", "mime", "socache_shmcb", "ssl"):   # ssl.load's "Depends:" line
        enable(confdir, "mods", dep)
    enable(confdir, "sites", "default-ssl")
    state = tmp_path / "state"
    r = syntax_check(confdir, state, 80, 443)
    assert r.returncode == 0, r.stderr
    with Running(confdir, state, 80, 443) as server:
        assert len(server.ready["listeners"]) == 2           # ports.conf: Listen 80, then 443
        assert_serves_default_site(server, "http", 0)
        assert_serves_default_site(server, "https", 1)
        context = ssl.create_default_context(cafile=str(SNAKEOIL[0]))
        context.check_hostname = False                        # snakeoil is for this host's name
        with httpx.Client(verify=context, timeout=10) as client:
            r = client.get(f"https://127.0.0.1:{server.port(1)}/")
            assert r.status_code == 200
        # plain HTTP on the 443 listener is the TLS vhost's 400, as httpd's
        r = httpx.get(f"http://127.0.0.1:{server.port(1)}/", timeout=10)
        assert r.status_code == 400


# what Debian's tree serves besides the default page: its /icons/ alias (no Indexes there),
# mod_status for local clients, and what it refuses
COMPARED = ["/", "/index.html", "/.htaccess", "/.ht-anything", "/nope", "/icons/",
            "/icons/apache_pb.png", "/icons/a.gif", "/server-status?auto", "/manual/"]


def _answers(port: int) -> list[tuple]:
    out = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for path in COMPARED:
            r = client.get(path)
            body = r.content if r.status_code == 200 and "server-status" not in path else b""
            out.append((path, r.status_code, r.headers.get("content-type"), body))
    return out


@pytest.mark.skipif(not Path(APACHE).exists(), reason="apache2 is not installed")
def test_stock_tree_answers_as_apache(tmp_path):
    confdir = copy_tree(tmp_path)
    port = free_port()
    ports = confdir / "ports.conf"
    ports.write_text(ports.read_text().replace("\nListen 80\n", f"\nListen 127.0.0.1:{port}\n"))
    state = tmp_path / "apache-state"
    proc = subprocess.Popen([APACHE, "-d", str(confdir), "-f", "apache2.conf", *state_defines(state),
                             "-DFOREGROUND"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            env=envvars(confdir), start_new_session=True)
    try:
        wait_for(lambda: answers([("127.0.0.1", port)]), 15, message="apache2 to listen")
        expected = _answers(port)
    finally:
        proc.terminate()
        proc.wait(15)
    with Running(TREE, tmp_path / "mpmd-state", 80) as server:
        ours = _answers(server.port())
    diff = [(a, b) for a, b in zip(expected, ours) if a != b]
    assert not diff, "\n".join(f"apache {a[:3]}\nmpmd   {b[:3]}" for a, b in diff)
    assert [a[1] for a in expected] == [200, 200, 403, 403, 404, 403, 200, 200, 200, 404]
