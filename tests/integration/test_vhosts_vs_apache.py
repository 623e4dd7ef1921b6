"""Virtual hosts as Apache httpd 2.4 chooses them, checked against apache2 itself.

One configuration (config/vhosts.py Rules 1 and 2: name-based vhosts with ServerName and
ServerAlias wildcards, two exact-IP vhosts on 127.0.0.2, a ``_default_`` one, a port with no
vhost, per-vhost <Directory>/<Location>/Alias/Redirect over the main server's, CustomLog with
%v and %V) is given to a standalone apache2 (event MPM) and to mpmd on every MPM, each on its
own free ports.  The same requests go to both; the status, the site that answered (each
DocumentRoot's files name their site), the Location of a redirect and the access log lines
must match.  ``mpmd -S`` and ``apache2 -S`` must print the same vhost table.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from tests.support.confbuilder import ConfBuilder
from tests.support.apache import APACHE, MODULES, needs_apache, running
from tests.support.harness import SRC, wait_for
from tests.support.rawclient import RawConn

LOG_FORMAT = '"%v %V %>s %U"'

pytestmark = needs_apache()

SITES = ("main", "first", "a", "b", "noname", "ip2", "ip2b", "ip2any", "dflt",
         "shared", "main-al", "a-al")

# {p1} and {p2} are served on 127.0.0.1 and 127.0.0.2, {p3} on 127.0.0.1.
VHOSTS = '''
ServerName main.test
DocumentRoot "{sites}/main"
CustomLog "{logs}/access.log" {fmt}
<Directory "{sites}">
    Require all granted
</Directory>
<Directory "{sites}/shared">
    Require all denied
</Directory>
<Location "/locked">
    Require all denied
</Location>
Alias /shared "{sites}/shared"
Alias /al "{sites}/main-al"

<VirtualHost *:{p1}>
    ServerName first.test
    DocumentRoot "{sites}/first"
</VirtualHost>
<VirtualHost *:{p1}>
    ServerName a.test
    ServerAlias www.a.test a2.test
    ServerAlias *.wild.test q?.test
    DocumentRoot "{sites}/a"
    Alias /al "{sites}/a-al"
    <Directory "{sites}/shared">
        Require all granted
    </Directory>
    <Location "/locked">
        Require all granted
    </Location>
    Redirect /old http://a.test/new
</VirtualHost>
<VirtualHost *:{p1}>
    ServerName B.test
    DocumentRoot "{sites}/b"
    CustomLog "{logs}/b_access.log" {fmt}
    <Directory "{sites}/main-al">
        Require all denied
    </Directory>
</VirtualHost>
<VirtualHost *:{p1}>
    DocumentRoot "{sites}/noname"
</VirtualHost>
<VirtualHost 127.0.0.2>
    ServerName ip2any.test
    DocumentRoot "{sites}/ip2any"
</VirtualHost>
<VirtualHost 127.0.0.2:{p1}>
    ServerName ip2.test
    DocumentRoot "{sites}/ip2"
</VirtualHost>
<VirtualHost 127.0.0.2:{p1}>
    ServerName ip2b.test
    DocumentRoot "{sites}/ip2b"
</VirtualHost>
<VirtualHost _default_:{p2}>
    ServerName dflt.test:8080
    DocumentRoot "{sites}/dflt"
</VirtualHost>
'''


def config_text(root: Path, ports: tuple[int, int, int], mpm_module: str) -> str:
    p1, p2, p3 = ports
    head = textwrap.dedent(f'''\
        {mpm_module}
        LoadModule authz_core_module {MODULES}/mod_authz_core.so
        LoadModule alias_module {MODULES}/mod_alias.so
        ServerRoot "{root}"
        Listen 127.0.0.1:{p1}
        Listen 127.0.0.2:{p1}
        Listen 127.0.0.1:{p2}
        Listen 127.0.0.2:{p2}
        Listen 127.0.0.1:{p3}
        PidFile "{root}/httpd.pid"
        ErrorLog "{root}/error_log"
        LogLevel info
    ''')
    return head + VHOSTS.format(sites=root / "sites", logs=root / "logs", fmt=LOG_FORMAT,
                                p1=p1, p2=p2, p3=p3)


def make_sites(root: Path) -> None:
    (root / "logs").mkdir(parents=True, exist_ok=True)
    for name in SITES:
        (root / "sites" / name / "locked").mkdir(parents=True, exist_ok=True)
        (root / "sites" / name / "index.html").write_text(f"{name}\n")
        (root / "sites" / name / "locked" / "index.html").write_text(f"{name} locked\n")


def _bindable(addr: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((addr, port))
        except OSError:
            return False
        return True


def free_ports() -> tuple[int, int, int]:
    """Three free ports; the first two also free on 127.0.0.2."""
    ports: list[int] = []
    while len(ports) < 3:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in ports and (len(ports) == 2 or _bindable("127.0.0.2", port)):
            ports.append(port)
    return ports[0], ports[1], ports[2]


# -- the requests ---------------------------------------------------------------------------
# (local address, port index, request-target, Host or None for an HTTP/1.0 request without one)
Case = tuple[str, int, str, "str | None"]


def _hosts(*hosts: str | None, addr: str = "127.0.0.1", port: int = 0,
           target: str = "/index.html") -> list[Case]:
    return [(addr, port, target, host) for host in hosts]


NAME_BASED = _hosts(
    "a.test", "A.TEST", "a.test:80", "a.test.", "A.Test.:123",     # case, port, trailing dot
    "www.a.test", "a2.test",                                        # aliases, two lines
    "x.wild.test", "y.z.wild.test", "wild.test",                    # *.wild.test
    "q1.test", "q12.test", "q.test",                                # q?.test
    "b.test", "B.TEST", "b.test.:8080",                             # ServerName B.test
    "main.test",                          # the vhost without ServerName goes by the main's
    "unknown.test", "127.0.0.1", "[::1]:80", "ip2.test",            # no match: first vhost
    None)                                                           # no Host: first vhost
ADDRESS_BASED = (
    _hosts("a.test", "ip2b.test", "IP2B.TEST", "unknown.test", None, addr="127.0.0.2")
    + _hosts("a.test", "dflt.test", None, port=1)                  # _default_:p2
    + _hosts("dflt.test", "ip2.test", addr="127.0.0.2", port=1)    # 127.0.0.2:* over it
    + _hosts("a.test", "main.test", None, port=2))                 # no vhost: main server
ABSOLUTE_FORM = [
    ("127.0.0.1", 0, "http://b.test/index.html", "a.test"),
    ("127.0.0.1", 0, "http://B.TEST:1234/index.html", "a.test"),
    ("127.0.0.1", 0, "HTTP://x.wild.test./index.html", "b.test"),
    ("127.0.0.1", 0, "http://a.test/index.html", None),
    ("127.0.0.1", 0, "http://unknown.test/index.html", "b.test"),
    ("127.0.0.2", 0, "http://ip2b.test/index.html", "ip2.test"),
]
SECTIONS = [("127.0.0.1", 0, path, host)
            for host in ("a.test", "b.test", "first.test")
            for path in ("/shared/index.html", "/locked/index.html", "/al/index.html",
                         "/old", "/old/page")]
# malformed Host values (Apache: 400) and a target whose scheme is not the server's
# (Apache: the Host header decides, not the target's authority)
MALFORMED = _hosts("a.test..", "a.test:", "") + [
    ("127.0.0.1", 0, "https://b.test/index.html", "a.test"),
    ("127.0.0.1", 0, "https://b.test/index.html", None),
]
COMPARED = NAME_BASED + ADDRESS_BASED + ABSOLUTE_FORM + SECTIONS


def ask(case: Case, ports: tuple[int, int, int]) -> tuple[int, str, str | None]:
    """(status, the body of a 200 -- the site --, Location)."""
    addr, port, target, host = case
    if host is None:
        head = f"GET {target} HTTP/1.0\r\n"
    else:
        head = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    with RawConn(ports[port], host=addr) as conn:
        conn.send((head + "\r\n").encode("latin-1"))
        resp = conn.read_response()
    body = resp.body.decode("latin-1").strip() if resp.status == 200 else ""
    return resp.status, body, resp.header("location")


def ask_all(cases: list[Case], ports: tuple[int, int, int]) -> list[tuple[int, str, str | None]]:
    return [ask(case, ports) for case in cases]


def log_lines(root: Path, count: int) -> dict[str, Counter]:
    """Each access log's lines (order aside: a server may log after the client has read)."""
    def read() -> dict[str, Counter] | None:
        logs = {name: Counter(_read(root / "logs" / name))
                for name in ("access.log", "b_access.log")}
        return logs if sum(sum(c.values()) for c in logs.values()) >= count else None
    return wait_for(read, timeout=10, message="the access log lines")  # type: ignore[return-value]


def _read(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


# -- apache2 ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def apache(tmp_path_factory):
    """apache2's answers to every case (COMPARED, then MALFORMED) and its log lines."""
    root = tmp_path_factory.mktemp("apache")
    make_sites(root)
    ports = free_ports()
    conf = root / "httpd.conf"
    conf.write_text(config_text(root, ports, f"LoadModule mpm_event_module "
                                             f"{MODULES}/mod_mpm_event.so"))
    listening = [("127.0.0.1", ports[0]), ("127.0.0.2", ports[0]), ("127.0.0.1", ports[1]),
                 ("127.0.0.2", ports[1]), ("127.0.0.1", ports[2])]
    with running(conf, listening):
        answers = ask_all(COMPARED, ports)
        logs = log_lines(root, len(COMPARED))
        malformed = ask_all(MALFORMED, ports)
        yield {"answers": answers, "logs": logs, "malformed": malformed}


class VerbatimConf(ConfBuilder):
    """A ConfBuilder whose text is given whole (the harness writes it and starts mpmd)."""

    def __init__(self, root: Path, text: str) -> None:
        super().__init__(root)
        self._text = text

    def text(self) -> str:
        return self._text


@pytest.fixture
def mpmd(mpm, tmp_path, make_server):
    """mpmd on ``mpm`` with the same vhosts on its own free ports: (ports, root)."""
    root = tmp_path / "mpmd"
    make_sites(root)
    ports = free_ports()
    make_server(VerbatimConf(root, config_text(
        root, ports, f"LoadModule mpm_{mpm}_module modules/mod_mpm_{mpm}.so")))
    return ports, root


def _compare(cases: list[Case], theirs: list, ours: list) -> None:
    diff = [(case, t, o) for case, t, o in zip(cases, theirs, ours) if t != o]
    assert not diff, "\n".join(f"{c}: apache {t} mpmd {o}" for c, t, o in diff)


def _slice(apache: dict, cases: list[Case]) -> list:
    start = COMPARED.index(cases[0])
    return apache["answers"][start:start + len(cases)]


def test_name_based_as_apache(apache, mpmd):
    ports, _ = mpmd
    theirs = _slice(apache, NAME_BASED)
    _compare(NAME_BASED, theirs, ask_all(NAME_BASED, ports))
    sites = Counter(body for _, body, _ in theirs)
    assert set(sites) == {"first", "a", "b", "noname"}, sites      # each rule chose a site
    assert sites["first"] >= 5 and sites["a"] >= 8, sites


def test_address_based_as_apache(apache, mpmd):
    ports, _ = mpmd
    theirs = _slice(apache, ADDRESS_BASED)
    _compare(ADDRESS_BASED, theirs, ask_all(ADDRESS_BASED, ports))
    # 127.0.0.2:p1's vhosts take a.test from the *:p1 ones, and 127.0.0.2:* (written first)
    # has no part in them; _default_; 127.0.0.2:* over _default_:p2; the main server
    assert [body for _, body, _ in theirs] == ["ip2", "ip2b", "ip2b", "ip2", "ip2",
                                               "dflt", "dflt", "dflt", "ip2any", "ip2any",
                                               "main", "main", "main"]


def test_absolute_form_as_apache(apache, mpmd):
    ports, _ = mpmd
    theirs = _slice(apache, ABSOLUTE_FORM)
    _compare(ABSOLUTE_FORM, theirs, ask_all(ABSOLUTE_FORM, ports))
    assert [body for _, body, _ in theirs] == ["b", "b", "a", "a", "first", "ip2b"]


def test_sections_alias_redirect_as_apache(apache, mpmd):
    ports, _ = mpmd
    theirs = _slice(apache, SECTIONS)
    _compare(SECTIONS, theirs, ask_all(SECTIONS, ports))
    statuses = Counter(status for status, _, _ in theirs)
    assert statuses == {200: 4, 403: 5, 302: 2, 404: 4}, theirs
    assert ("http://a.test/new/page" in {loc for _, _, loc in theirs}
            and {"shared", "a locked", "a-al", "main-al"} <= {b for _, b, _ in theirs}), theirs


def _ipv6_host(line: str) -> bool:
    return ":" in line.split()[1]              # %V of "Host: [::1]:80"


def _logs_of(logs: dict[str, Counter], ipv6: bool) -> dict[str, Counter]:
    return {name: Counter({line: n for line, n in lines.items() if _ipv6_host(line) == ipv6})
            for name, lines in logs.items()}


def test_access_log_v_and_V_as_apache(apache, mpmd):
    ports, root = mpmd
    ask_all(COMPARED, ports)
    ours = _logs_of(log_lines(root, len(COMPARED)), ipv6=False)
    for name, theirs in _logs_of(apache["logs"], ipv6=False).items():
        assert ours[name] == theirs, (name, sorted((theirs - ours[name]).elements()),
                                      sorted((ours[name] - theirs).elements()))
    v_names = {line.split()[0] for line in apache["logs"]["access.log"]}
    assert v_names == {"first.test", "a.test", "main.test", "ip2.test", "ip2b.test",
                       "ip2any.test", "dflt.test"}, v_names
    assert {line.split()[0] for line in apache["logs"]["b_access.log"]} == {"B.test"}


def test_access_log_V_of_an_ipv6_host_as_apache(apache, mpmd):
    ports, root = mpmd
    ask_all(COMPARED, ports)
    theirs = _logs_of(apache["logs"], ipv6=True)["access.log"]
    assert theirs == Counter({"first.test ::1 200 /index.html": 1}), theirs
    assert _logs_of(log_lines(root, len(COMPARED)), ipv6=True)["access.log"] == theirs


def test_malformed_host_as_apache(apache, mpmd):
    ports, _ = mpmd
    theirs = apache["malformed"][:3]
    assert [status for status, _, _ in theirs] == [400, 400, 400]
    _compare(MALFORMED[:3], theirs, ask_all(MALFORMED[:3], ports))


@pytest.mark.xfail(strict=True, reason=(
    "Apache takes an absolute-form target's authority only when its scheme is the server's "
    "(http here), else the Host header; mpmd's sans-I/O core does not know the connection's "
    "scheme and takes any http(s) authority"))
def test_foreign_scheme_as_apache(apache, mpmd):
    ports, _ = mpmd
    theirs = apache["malformed"][3:]
    assert [status for status, _, _ in theirs] == [200, 200]
    _compare(MALFORMED[3:], theirs, ask_all(MALFORMED[3:], ports))


# -- -S ---------------------------------------------------------------------------------------
def vhost_section(text: str, conf: Path) -> list[str]:
    """The lines from "VirtualHost configuration:" up to the first main-server line."""
    lines = text.replace(str(conf), "CONF").splitlines()
    start = lines.index("VirtualHost configuration:")
    end = next(i for i, line in enumerate(lines) if line.startswith("ServerRoot:"))
    return lines[start:end]


def dump_both(tmp_path: Path, text: str) -> tuple[list[str], list[str]]:
    theirs_conf, ours_conf = tmp_path / "apache.conf", tmp_path / "mpmd.conf"
    theirs_conf.write_text(text)
    ours_conf.write_text(text)
    theirs = subprocess.run([APACHE, "-f", str(theirs_conf), "-S"], capture_output=True,
                            text=True, timeout=30)
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    ours = subprocess.run([sys.executable, "-m", "mpmd", "-f", str(ours_conf), "-S"],
                          capture_output=True, text=True, timeout=30, env=env)
    assert theirs.returncode == 0 and ours.returncode == 0, (theirs.stderr, ours.stderr)
    return vhost_section(theirs.stdout, theirs_conf), vhost_section(ours.stdout, ours_conf)


def test_dash_S_as_apache(tmp_path):
    make_sites(tmp_path)
    text = config_text(tmp_path, (8081, 8082, 8083),
                       f"LoadModule mpm_event_module {MODULES}/mod_mpm_event.so")
    theirs, ours = dump_both(tmp_path, text)
    assert ours == theirs
    assert "                 wild alias q?.test" in theirs and len(theirs) == 17, theirs


def test_dash_S_order_of_address_sets_as_apache(tmp_path):
    """Apache lists exact-IP sets by its hash of the address, then wildcard ones; each list in
    the order its building from the last vhost backwards leaves."""
    def vhost(addrs: str, name: str) -> str:
        return f"<VirtualHost {addrs}>\n    ServerName {name}\n</VirtualHost>\n"
    text = textwrap.dedent(f'''\
        LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
        ServerRoot "{tmp_path}"
        Listen 127.0.0.1:8081
        PidFile "{tmp_path}/httpd.pid"
        ErrorLog "{tmp_path}/error_log"
        ServerName main.test
        DocumentRoot "{tmp_path}"
    ''') + "".join(vhost(*args) for args in [
        ("127.0.0.2:8083", "c1"), ("*:8090", "w1"), ("127.0.0.2:8081", "c2"),
        ("127.0.0.1:8081", "o1"), ("_default_:8070", "w2"), ("127.0.0.2:8082", "c3"),
        ("127.0.0.2:8081", "c2b"), ("[::2]:8081", "v6a"), ("[::1]:8081", "v6b"),
        ("127.0.0.2", "c4"), ("*:8090", "w1b"), ("127.1.0.2:8081", "h1"), ("*", "w3"),
        ("127.0.0.3:8084 127.0.0.3:8085", "two")])
    theirs, ours = dump_both(tmp_path, text)
    assert ours == theirs
    assert len(theirs) > 15 and theirs[1].startswith("[::1]:8081"), theirs
