"""User/Group: a master started as root does what needs root before its children drop to the
User (httpd opens logs, loads modules and reads mime.types in the parent).

Run as root only.  The server is this interpreter (``sys.executable``), which here lives under
a home that only root may read, so a child that imported the HTTP core after dropping to
``nobody`` could not find httptools.  Every file the children must read lives in a 0755
directory of /tmp, not pytest's 0700 tmp_path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.confbuilder import ConfBuilder
from tests.support.harness import wait_for
from tests.support.rawclient import get, request_once

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (User/Group)")


@pytest.fixture
def world_root():
    root = Path(tempfile.mkdtemp(prefix="mpmd-user-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def user_conf(root: Path, user: str = "nobody", group: str = "nogroup",
              mpm: str = "prefork") -> ConfBuilder:
    conf = ConfBuilder(root, mpm=mpm).set("User", user).set("Group", group)
    if mpm == "prefork":
        conf.set("StartServers", 1).set("MinSpareServers", 1).set("MaxSpareServers", 2)
    conf.htdocs.mkdir(parents=True, exist_ok=True)
    conf.htdocs.chmod(0o755)
    (conf.htdocs / "index.html").write_bytes(b"<h1>hello</h1>\n")
    (conf.htdocs / "index.html").chmod(0o644)
    return conf


def test_a_child_under_user_nobody_answers_with_this_interpreter(world_root, make_server, mpm):
    """The request path is imported in the master, before the child drops privileges."""
    conf = user_conf(world_root, mpm=mpm)
    conf.add("<Location /server-status>\n    SetHandler server-status\n</Location>")
    server = make_server(conf)
    child = wait_for(lambda: server.children(), message="a child")[0]
    wait_for(lambda: "Uid:\t65534" in Path(f"/proc/{child}/status").read_text(),
             message="the child to run as nobody")
    for _ in range(3):
        assert request_once(server.port, get("/index.html")).status == 200
    assert request_once(server.port, get("/missing")).status == 404
    assert request_once(server.port, get("/server-status?auto")).status == 200
    assert "ModuleNotFoundError" not in server.diagnostics()


def test_the_master_opens_custom_log_in_a_root_only_directory(world_root, make_server):
    logs = world_root / "logs"
    logs.mkdir(mode=0o755)                       # root's: nobody may not create files in it
    conf = user_conf(world_root).add(f'CustomLog "{logs / "access.log"}" common')
    server = make_server(conf)
    assert request_once(server.port, get("/index.html")).status == 200
    log = logs / "access.log"
    line = wait_for(lambda: log.exists() and log.read_text(), message="the access log line")
    assert '"GET /index.html HTTP/1.1" 200' in line
    assert "PermissionError" not in server.diagnostics()


SUPP_GROUP = "mpmdtestsupp"
SUPP_USER = "mpmdtestuser"


@pytest.fixture
def user_with_supplementary_group():
    if shutil.which("useradd") is None or shutil.which("groupadd") is None:
        pytest.skip("no useradd/groupadd")
    subprocess.run(["userdel", SUPP_USER], capture_output=True)
    subprocess.run(["groupdel", SUPP_GROUP], capture_output=True)
    subprocess.run(["groupadd", SUPP_GROUP], check=True)
    try:
        subprocess.run(["useradd", "-M", "-N", "-g", "nogroup", "-G", SUPP_GROUP,
                        "-s", "/usr/sbin/nologin", SUPP_USER], check=True)
        import grp
        yield SUPP_USER, grp.getgrnam(SUPP_GROUP).gr_gid
    finally:
        subprocess.run(["userdel", SUPP_USER], capture_output=True)
        subprocess.run(["groupdel", SUPP_GROUP], capture_output=True)
    assert subprocess.run(["id", SUPP_USER], capture_output=True).returncode != 0, "user left"


def test_a_child_keeps_the_users_supplementary_groups(world_root, user_with_supplementary_group,
                                                      make_server):
    """httpd calls initgroups(User, Group), not setgroups([Group]).  (The user fixture comes
    before make_server: it is removed after the server has stopped.)"""
    user, supp_gid = user_with_supplementary_group
    server = make_server(user_conf(world_root, user=user))
    child = wait_for(lambda: server.children(), message="a child")[0]
    status = wait_for(lambda: (t := Path(f"/proc/{child}/status").read_text()) and
                      f"Uid:\t{os.getuid()}" not in t and t, message="the child to drop privileges")
    groups = next(line for line in status.splitlines() if line.startswith("Groups:")).split()[1:]
    assert str(supp_gid) in groups, groups
    assert request_once(server.port, get("/index.html")).status == 200


def test_types_config_only_root_may_read_is_read_by_the_master(world_root, make_server):
    private = world_root / "private"
    private.mkdir(mode=0o700)
    (private / "mime.types").write_text("text/x-mpmd-test mpmdt\n")
    conf = user_conf(world_root).set("TypesConfig", f'"{private / "mime.types"}"')
    (conf.htdocs / "a.mpmdt").write_bytes(b"x\n")
    (conf.htdocs / "a.mpmdt").chmod(0o644)
    server = make_server(conf)
    resp = request_once(server.port, get("/a.mpmdt"))
    assert resp.status == 200 and resp.header("Content-Type") == "text/x-mpmd-test"
