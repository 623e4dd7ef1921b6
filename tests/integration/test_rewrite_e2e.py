"""mod_rewrite on the real server, what the apache2 comparison does not show: the route cache
keeps a path-only outcome but decides a header-, query- or file-dependent one per request,
``LogLevel rewrite:traceN`` writes httpd's trace lines to the ErrorLog, H= picks the
handler, END holds across the internal redirect, and a config error names file and line."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.integration.test_route_cache_e2e import ONE_PROCESS, status_from
from tests.support.harness import SRC, wait_for


def test_cache_and_per_request_decisions(conf, make_server):
    (conf.htdocs / "a.html").write_text("A\n")
    (conf.htdocs / "b.html").write_text("B\n")
    conf.add(ONE_PROCESS)          # every request meets the same per-process route cache
    conf.add("""RewriteEngine On
RewriteRule ^/path$ /a.html [L]
RewriteCond %{REMOTE_ADDR} =127.0.0.2
RewriteRule ^/client$ /b.html [L]
RewriteRule ^/client$ /a.html [L]
RewriteCond %{HTTP_USER_AGENT} bot
RewriteRule ^/ua$ /b.html [L]
RewriteRule ^/ua$ /a.html [L]
RewriteCond %{QUERY_STRING} b
RewriteRule ^/q$ /b.html [L]
RewriteRule ^/q$ /a.html [L]
RewriteCond %{DOCUMENT_ROOT}/flag -f
RewriteRule ^/file$ /b.html [L]
RewriteRule ^/file$ /a.html [L]
RewriteRule ^/qsa$ /a.html?x=1 [QSA,R,L]
""")
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=20) as c:
        for _ in range(3):
            assert c.get("/path").text == "A\n"
            assert c.get("/ua", headers={"User-Agent": "a bot"}).text == "B\n"
            assert c.get("/ua", headers={"User-Agent": "human"}).text == "A\n"
            assert c.get("/q?b").text == "B\n"
            assert c.get("/q?a").text == "A\n"
            assert c.get("/file").text == "A\n"
            assert c.get("/qsa?y=2").headers["location"].endswith("/a.html?x=1&y=2")
            assert c.get("/qsa").headers["location"].endswith("/a.html?x=1")
        (conf.htdocs / "flag").write_text("")
        assert c.get("/file").text == "B\n"
    for _ in range(2):
        assert status_from(server.port, "127.0.0.2", "/client") == (200, b"B\n")
        assert status_from(server.port, "127.0.0.1", "/client") == (200, b"A\n")


def test_trace_lines_handler_and_end(conf, make_server):
    (conf.htdocs / "d").mkdir()
    (conf.htdocs / "d" / "x.html").write_text("X\n")
    (conf.htdocs / "d" / "y.html").write_text("Y\n")
    (conf.htdocs / "d" / "z.html").write_text("Z\n")
    conf.set("LogLevel", "info rewrite:trace4")
    conf.add(f"""RewriteEngine On
RewriteRule ^/status$ - [H=server-status,L]
<IfModule status_module>
ExtendedStatus On
</IfModule>
<Directory "{conf.htdocs / 'd'}">
RewriteRule ^end$ y.html [END]
RewriteRule ^y\\.html$ z.html [L]
RewriteRule ^last$ y.html [L]
</Directory>
""")
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=20) as c:
        assert c.get("/d/end").text == "Y\n"          # END: no rule on the redirected request
        assert c.get("/d/last").text == "Z\n"         # L: the next round rewrites again
        r = c.get("/status?auto")
        assert r.status_code == 200 and "Total Accesses" in r.text
    log = conf.error_log
    wait_for(lambda: "INTERNAL REDIRECT" in log.read_text(), timeout=10, message="trace lines")
    text = log.read_text()
    assert "[rewrite:trace3]" in text and "applying pattern '^end$' to uri 'end'" in text
    assert "[rewrite:trace2]" in text and "rewrite 'end' -> 'y.html'" in text
    assert "[rewrite:trace1]" in text and "internal redirect with /d/y.html [INTERNAL REDIRECT]" in text


def test_config_error_names_file_and_line(tmp_path):
    conf = tmp_path / "httpd.conf"
    conf.write_text("Listen 127.0.0.1:0\nRewriteEngine On\nRewriteRule ^/a /b [L,Zap]\n")
    r = subprocess.run([sys.executable, "-m", "mpmd", "-t", "-f", str(conf)], capture_output=True,
                       text=True, timeout=60, env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1
    assert f"line 3 of {conf}" in r.stderr and "RewriteRule: unknown flag 'Zap'" in r.stderr
