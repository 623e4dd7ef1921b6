"""mod_remoteip on a real server, every MPM: the client behind a trusted proxy is what the
access log (%a, %h), Require ip, WSGI's REMOTE_ADDR and ASGI's ``client`` see; the header keeps
what was not taken; a cached route (the second request for a URL) gets its client too."""

from __future__ import annotations

import textwrap

import httpx

from tests.integration.wsgi_support import REPO
from tests.support.harness import wait_for


def _conf(conf, log, proxies: str = "RemoteIPTrustedProxy 127.0.0.1"):
    (conf.htdocs / "private").mkdir()
    (conf.htdocs / "private" / "x.txt").write_text("inside\n")
    return conf.add(textwrap.dedent(f'''
        RemoteIPHeader X-Forwarded-For
        RemoteIPProxiesHeader X-Forwarded-By
        {proxies}
        CustomLog "{log}" "%a %{{c}}a %h %{{c}}h %U"
        WSGIPythonPath "{REPO / "tests" / "apps"}"
        WSGIApp /wsgi client_apps:wsgi
        ASGIApp /asgi client_apps:asgi
        <Location /private>
            Require ip 203.0.113.0/24
        </Location>
    '''))


def test_the_client_behind_a_trusted_proxy(conf, make_server, tmp_path):
    log = tmp_path / "access.log"
    server = make_server(_conf(conf, log))
    xff = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(2):                       # the second: the route cache's
            assert client.get("/index.html", headers=xff).status_code == 200
        for app in ("/wsgi", "/asgi"):
            r = client.get(app, headers=xff)
            addr, port, forwarded, by = r.text.split(" ")
            # only the peer (127.0.0.1) is trusted: 203.0.113.9 is the client, the rest stays
            assert (addr, forwarded, by) == ("203.0.113.9", "198.51.100.7", "127.0.0.1"), r.text
            assert int(port) > 0
            r = client.get(app)                  # no header: the peer
            assert r.text.split(" ")[0] == "127.0.0.1" and r.text.split(" ")[2] == "-", r.text
        for _ in range(2):
            assert client.get("/private/x.txt", headers=xff).status_code == 200
            assert client.get("/private/x.txt").status_code == 403
            assert client.get("/private/x.txt",
                              headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 403
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 12, timeout=10,
             message="the access log lines")
    lines = log.read_text().splitlines()
    assert lines[:2] == ["203.0.113.9 127.0.0.1 203.0.113.9 127.0.0.1 /index.html"] * 2, lines
    assert "127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 /private/x.txt" in lines


def test_an_internal_proxy_may_present_a_private_address(conf, make_server, tmp_path):
    log = tmp_path / "access.log"
    server = make_server(_conf(conf, log, "RemoteIPInternalProxy 127.0.0.0/8 10.0.0.0/8"))
    with httpx.Client(base_url=server.url, timeout=10) as client:
        r = client.get("/wsgi", headers={"X-Forwarded-For": "203.0.113.4, 10.1.2.3"})
        # both hops internal: no trusted proxy to record, the header is used up
        assert r.text.split(" ")[0::2] == ["203.0.113.4", "-"], r.text
        assert r.text.split(" ")[3] == "-", r.text
        r = client.get("/wsgi", headers={"X-Forwarded-For": "192.168.0.1, not-an-ip, 10.1.2.3"})
        assert r.text.split(" ")[0] == "10.1.2.3" and " 192.168.0.1, not-an-ip " in r.text, r.text


def test_the_status_page_shows_the_client(conf, make_server, tmp_path):
    log = tmp_path / "access.log"
    conf = _conf(conf, log).add("ExtendedStatus On\n<Location /server-status>\n"
                                "    SetHandler server-status\n</Location>")
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        page = client.get("/server-status", headers={"X-Forwarded-For": "203.0.113.77"}).text
    # the row of the worker answering it: its client is the one behind the proxy
    assert "<td>203.0.113.77</td>" in page, page
