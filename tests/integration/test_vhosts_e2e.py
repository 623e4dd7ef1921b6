"""Virtual hosts on every MPM: a real server, real requests with Host headers and two local
addresses, and what each vhost's own directives do (DocumentRoot, sections, Alias, logs,
KeepAlive, ErrorLog, WSGI apps)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx
import pytest

from tests.support.harness import wait_for


def _site(root: Path, name: str) -> Path:
    docroot = root / name
    (docroot / "sub").mkdir(parents=True, exist_ok=True)
    (docroot / "index.html").write_text(f"{name}\n")
    (docroot / "sub" / "page.txt").write_text(f"{name} sub\n")
    return docroot


@pytest.fixture
def sites(tmp_path: Path) -> dict[str, Path]:
    return {name: _site(tmp_path / "sites", name) for name in ("main", "a", "b", "ip", "extra")}


def _get(server, path: str, host: str | None, addr: str = "127.0.0.1", port: int | None = None,
         **kw) -> httpx.Response:
    headers = {"Host": host} if host is not None else {}
    url = f"http://{addr}:{port or server.port}{path}"
    return httpx.get(url, headers=headers, timeout=10, **kw)


NAMED = '''
    <VirtualHost *>
        ServerName a.test
        ServerAlias www.a.test *.wild.test
        DocumentRoot "{a}"
        Alias /extra "{extra}"
        CustomLog "{logs}/a_access.log" "%v %V %>s %U"
        <Location /sub>
            SetHandler server-status
        </Location>
    </VirtualHost>
    <VirtualHost *>
        ServerName b.test
        DocumentRoot "{b}"
        KeepAlive Off
        ErrorLog "{logs}/b_error.log"
        <Location /broken>
            SetHandler no-such-handler
        </Location>
    </VirtualHost>
'''


def test_name_based_vhosts(conf, make_server, sites, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    conf.set("DocumentRoot", f'"{sites["main"]}"')
    conf.set("CustomLog", f'"{logs}/main_access.log" "%v %V %>s %U"')
    conf.add(textwrap.dedent(NAMED.format(a=sites["a"], b=sites["b"], extra=sites["extra"], logs=logs)))
    server = make_server(conf)
    body = {h: _get(server, "/", h).text for h in
            ("a.test", "WWW.A.TEST:80", "x.wild.test", "b.test", "b.test.", "other.test", None)}
    assert body == {"a.test": "a\n", "WWW.A.TEST:80": "a\n", "x.wild.test": "a\n",
                    "b.test": "b\n", "b.test.": "b\n",
                    "other.test": "a\n", None: "a\n"}           # the first vhost is the default
    # the vhost's <Location> and Alias are its own
    status = _get(server, "/sub/page.txt", "a.test")
    assert status.status_code == 200 and "Server Version" in status.text
    assert _get(server, "/sub/page.txt", "b.test").text == "b sub\n"
    assert _get(server, "/extra/index.html", "a.test").text == "extra\n"
    assert _get(server, "/extra/index.html", "b.test").status_code == 404
    # KeepAlive Off in b.test only
    assert _get(server, "/", "b.test").headers.get("connection") == "close"
    assert _get(server, "/", "a.test").headers.get("connection") != "close"
    # b.test's request errors go to its own ErrorLog
    assert _get(server, "/broken", "b.test").status_code == 500
    wait_for(lambda: "no-such-handler" in (logs / "b_error.log").read_text(), timeout=10)
    assert "no-such-handler" not in server.error_log_text()
    _get(server, "/missing", "b.test")
    # each vhost's access log: a.test has its own, b.test writes the main server's
    wait_for(lambda: (logs / "a_access.log").exists() and
             len((logs / "a_access.log").read_text().splitlines()) >= 7, timeout=10)
    a_lines = (logs / "a_access.log").read_text().splitlines()
    assert "a.test www.a.test 200 /" in a_lines
    assert "a.test x.wild.test 200 /" in a_lines
    assert "a.test other.test 200 /" in a_lines
    wait_for(lambda: "b.test b.test 404 /missing" in (logs / "main_access.log").read_text(),
             timeout=10)
    assert "a.test" not in (logs / "main_access.log").read_text()


def test_ip_based_vhost_and_main_server(conf, make_server, sites):
    conf.listen("127.0.0.1:0", "127.0.0.2:0")
    conf.set("DocumentRoot", f'"{sites["main"]}"')
    conf.add(textwrap.dedent(f'''
        <VirtualHost 127.0.0.2>
            ServerName ip.test
            DocumentRoot "{sites["ip"]}"
        </VirtualHost>
    '''))
    server = make_server(conf)
    second = int(server.ready["listeners"][1][1])
    assert _get(server, "/", "ip.test").text == "main\n"        # no vhost on 127.0.0.1
    assert _get(server, "/", "anything", addr="127.0.0.2", port=second).text == "ip\n"


def test_debian_default_site_layout(conf, make_server, sites, tmp_path):
    """Debian's apache2.conf includes sites-enabled/*.conf, each a <VirtualHost *:80> with its
    own DocumentRoot; here the same layout with the test's port."""
    enabled = tmp_path / "sites-enabled"
    enabled.mkdir()
    conf.set("DocumentRoot", '"/nonexistent"')
    conf.add(f"IncludeOptional {enabled}/*.conf")
    (enabled / "000-default.conf").write_text(textwrap.dedent(f'''
        <VirtualHost *>
            ServerAdmin webmaster@localhost
            DocumentRoot {sites["b"]}
            <Directory {sites["b"]}>
                Require all granted
            </Directory>
        </VirtualHost>
    '''))
    server = make_server(conf)
    resp = _get(server, "/", "localhost")
    assert resp.status_code == 200 and resp.text == "b\n"


def test_wsgi_app_per_vhost(conf, make_server, sites):
    conf.set("DocumentRoot", f'"{sites["main"]}"')
    conf.add(textwrap.dedent(f'''
        <VirtualHost *>
            ServerName app.test
            ServerAdmin admin@app.test
            DocumentRoot "{sites["a"]}"
            WSGIApp /app tests.apps.echo_app:application
        </VirtualHost>
        <VirtualHost *>
            ServerName static.test
            DocumentRoot "{sites["b"]}"
        </VirtualHost>
    '''))
    server = make_server(conf)
    env = _get(server, "/app/x", "app.test").json()
    assert env["SCRIPT_NAME"] == "/app" and env["SERVER_NAME"] == "app.test"
    assert env["SERVER_ADMIN"] == "admin@app.test"
    assert _get(server, "/app/x", "static.test").status_code == 404


def test_an_address_default_vhost_reads_heads_with_its_own_limits(conf, make_server, sites):
    """Timeout, KeepAliveTimeout and LimitRequestLine govern reading heads: a connection takes
    them from its address's default vhost (httpd's rule), here 127.0.0.2's."""
    import socket
    import time

    conf.listen("127.0.0.1:0", "127.0.0.2:0")
    conf.set("DocumentRoot", f'"{sites["main"]}"')
    conf.set("KeepAliveTimeout", "30")
    conf.add(textwrap.dedent(f'''
        <VirtualHost 127.0.0.2>
            ServerName ip.test
            DocumentRoot "{sites["ip"]}"
            LimitRequestLine 200
            KeepAliveTimeout 1
        </VirtualHost>
    '''))
    server = make_server(conf)
    second = int(server.ready["listeners"][1][1])
    long_path = "/" + "x" * 300
    assert _get(server, long_path, "ip.test").status_code == 404
    assert _get(server, long_path, "ip.test", addr="127.0.0.2", port=second).status_code == 414

    def idle_closes(addr: str, port: int) -> bool:
        with socket.create_connection((addr, port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            time.sleep(2.5)                      # past 1 s, well before 30 s
            sock.settimeout(3)
            try:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                return sock.recv(65536) == b""
            except OSError:
                return True
    assert idle_closes("127.0.0.2", second)
    assert not idle_closes("127.0.0.1", server.port)


def test_a_name_based_vhosts_timeout_governs_its_request_bodies(conf, make_server, sites):
    """Once the head names the vhost, its Timeout applies (httpd's ap_read_request): a body
    that stalls gets 408 after the vhost's 1 s, not the server's 30 s."""
    import socket
    import time

    conf.set("DocumentRoot", f'"{sites["main"]}"')
    conf.set("Timeout", "30")
    conf.add(textwrap.dedent(f'''
        <VirtualHost *>
            ServerName first.test
            DocumentRoot "{sites["a"]}"
        </VirtualHost>
        <VirtualHost *>
            ServerName quick.test
            DocumentRoot "{sites["b"]}"
            Timeout 1
            WSGIApp /echo tests.apps.echo_app:application
        </VirtualHost>
    '''))
    server = make_server(conf)
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: quick.test\r\nContent-Length: 10\r\n\r\n12345")
        started = time.monotonic()
        answer = sock.recv(65536)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408") and waited < 10, (answer[:100], waited)
