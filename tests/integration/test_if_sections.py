"""<If>, <ElseIf> and <Else> on a running server (every MPM), and against apache2 itself.

The sections' lines apply when their expression is true for the request, merged after
<Location> (config/model.py Rule 5); a request whose config evaluated one is never served
from the route cache, so the same path with another Host or query gets its own answer.

Compared with apache2 (status, fields, bodies of the 200s and of the ErrorDocument text),
leaving out Date, Server, ETag, Last-Modified and Content-Type (apache2 runs without
mod_mime here), and two known differences: httpd adds the request fields an <If> read
(User-Agent here) to Vary on a handler's answer, mpmd does not; and the core's 403 page
escapes the apostrophe of "don't" (so the error pages' Content-Length differs).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx
import pytest

from tests.support.apache import config, free_port, needs_apache, running
from tests.support.confbuilder import ConfBuilder

SITE = r'''
<If "%{HTTP_HOST} == 'blocked.example'">
    Require all denied
</If>
<If "%{REQUEST_URI} =~ m#^/tagged/(\w+)#">
    Header always set X-Tag "tagged"
</If>
<ElseIf "-f %{REQUEST_FILENAME}">
    Header always set X-File "file"
</ElseIf>
<ElseIf "-d %{REQUEST_FILENAME}">
    Header always set X-Dir "dir"
</ElseIf>
<Else>
    Header always set X-None "none"
</Else>
<Location /err>
    <If "%{QUERY_STRING} == 'custom' && %{REQUEST_METHOD} in {'GET', 'HEAD'}">
        ErrorDocument 404 "custom missing"
    </If>
    <Else>
        Header always set X-Err-Else "else"
    </Else>
</Location>
<If "tolower(%{HTTP_USER_AGENT}) =~ /bot/ || %{REMOTE_ADDR} -ipmatch '192.0.2.0/24'">
    Header always set X-Bot "yes"
</If>
<If "%{HTTPS} == 'on'">
    Header always set X-Secure "yes"
</If>
'''

REQUESTS = [
    ("GET", "/index.html", {}),
    ("GET", "/index.html", {"Host": "blocked.example"}),
    ("GET", "/index.html", {"Host": "other.example"}),
    ("GET", "/tagged/abc", {}),
    ("GET", "/missing", {}),
    ("GET", "/", {}),
    ("GET", "/err/nothing?custom", {}),
    ("GET", "/err/nothing?other", {}),
    ("GET", "/index.html", {"User-Agent": "Some-BOT/1"}),
    ("GET", "/index.html", {"User-Agent": "browser"}),
]

APART = {"date", "server", "connection", "keep-alive", "etag", "last-modified", "content-type"}


def _site(conf: ConfBuilder) -> ConfBuilder:
    (conf.htdocs / "index.html").write_text("<h1>hi</h1>\n")
    conf.add(f'<Directory "{conf.htdocs}">\n    Require all granted\n</Directory>')
    conf.add(textwrap.dedent(SITE))
    return conf


def _answers(url: str) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    out = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for method, path, headers in REQUESTS:
            r = client.request(method, path, headers={"User-Agent": "test", **headers})
            fields = sorted((k.lower(), v) for k, v in r.headers.multi_items()
                            if k.lower() not in APART)
            out.append((r.status_code, fields, r.content))
    return out


def test_if_sections_apply_per_request(conf: ConfBuilder, make_server) -> None:
    server = make_server(_site(conf))
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(2):                        # the second round: no route cache answer
            r = client.get("/index.html")
            assert r.status_code == 200 and r.headers["x-file"] == "file"
            assert "x-tag" not in r.headers and "x-none" not in r.headers
            assert client.get("/index.html", headers={"Host": "blocked.example"}).status_code == 403
            r = client.get("/tagged/abc")
            assert r.status_code == 404 and r.headers["x-tag"] == "tagged"
            assert "x-file" not in r.headers
            r = client.get("/")                   # the directory, or its index.html
            assert {"x-file", "x-dir"} & set(r.headers) and "x-none" not in r.headers
            assert client.get("/missing").headers["x-none"] == "none"
            r = client.get("/err/x?custom")
            assert r.status_code == 404 and r.text == "custom missing"
            assert "x-err-else" not in r.headers
            r = client.get("/err/x?other")
            assert r.status_code == 404 and r.text != "custom missing"
            assert r.headers["x-err-else"] == "else"
            assert client.get("/index.html", headers={"User-Agent": "a bot"}).headers["x-bot"] == "yes"
            assert "x-bot" not in client.get("/index.html").headers
            assert "x-secure" not in client.get("/index.html").headers


def test_expr_conditions_of_header_customlog_and_require(conf: ConfBuilder, make_server) -> None:
    (conf.htdocs / "index.html").write_text("hi\n")
    log = conf.root / "expr_log"
    conf.add(f'<Directory "{conf.htdocs}">\n    Require all granted\n</Directory>')
    conf.add('''Header always set X-Api yes "expr=%{REQUEST_URI} =~ m#^/api/#"''')
    conf.add('''Header set X-Not-Get yes "expr=%{REQUEST_METHOD} != 'GET'"''')
    conf.add(f'''CustomLog "{log}" "%U" "expr=%{{QUERY_STRING}} == 'log'"''')
    conf.add('''<Location /guarded>\n    Require expr "%{QUERY_STRING} == 'ok'"\n</Location>''')
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(2):
            assert client.get("/api/x").headers["x-api"] == "yes"
            r = client.get("/index.html?log")
            assert "x-api" not in r.headers and "x-not-get" not in r.headers
            assert client.head("/index.html").headers["x-not-get"] == "yes"
            assert client.get("/guarded/x?ok").status_code == 404          # granted, no file
            assert client.get("/guarded/x?no").status_code == 403
    server.stop()
    assert log.read_text().splitlines() == ["/index.html", "/index.html"]
    with pytest.raises(Exception) as info:
        from mpmd.config.loader import load_config
        load_config(text='Listen 127.0.0.1:0\n<Location /x>\n  Require expr "1 =="\n</Location>\n')
    assert info.value.line == 3 and "Cannot parse expression in require line" in str(info.value)


def test_a_condition_that_cannot_be_evaluated_is_a_500(conf: ConfBuilder, make_server) -> None:
    (conf.htdocs / "index.html").write_text("hi\n")
    conf.add(f'<Directory "{conf.htdocs}">\n    Require all granted\n</Directory>')
    conf.add('''<Location /num>\n    <If "%{QUERY_STRING} -lt 3">\n        Header set X-Small yes\n    </If>\n</Location>''')
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/num/index.html?2").status_code == 404
        assert client.get("/num/index.html?two").status_code == 500
        assert client.get("/index.html?two").status_code == 200
    server.stop()
    assert "MPMD0308" in conf.error_log.read_text()


def test_if_errors_at_check(tmp_path: Path) -> None:
    from mpmd.config.loader import load_config
    from mpmd.config.model import ConfigErrors
    text = ('<If "%{HTTP_HOST} ==">\n</If>\n'
            "<Else>\n</Else>\n"
            "<Else>\n</Else>\n"
            '<If "true">\n    Listen 8081\n</If>\n'
            '<If "true">\n    <Files x>\n    </Files>\n</If>\n')
    with pytest.raises(ConfigErrors) as info:
        load_config(text=text)
    where = [(e.line, e.message) for e in info.value.errors]
    assert where[0][0] == 1 and "Cannot parse expression in <If>" in where[0][1]
    assert (5, "<Else> or <ElseIf> section without previous <If> or <ElseIf> section in same scope") in where
    assert any(line == 8 and "Listen" in msg for line, msg in where)
    assert any(line == 11 and "<Files" in msg for line, msg in where)


@pytest.fixture(scope="module")
def apache_answers(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("apache")
    htdocs = root / "htdocs"
    htdocs.mkdir()
    (htdocs / "index.html").write_text("<h1>hi</h1>\n")
    port = free_port()
    conf = root / "httpd.conf"
    conf.write_text(config(root, port, htdocs, modules=("headers", "dir"), extra=SITE))
    with running(conf, [("127.0.0.1", port)]):
        yield _answers(f"http://127.0.0.1:{port}")


@needs_apache("mod_headers.so")
def test_same_answers_as_apache(apache_answers, tmp_path: Path, make_server) -> None:
    conf = ConfBuilder(tmp_path, mpm="event")
    conf.htdocs.mkdir(parents=True, exist_ok=True)
    server = make_server(_site(conf))
    ours = _answers(server.url)
    for (method, path, headers), theirs, mine in zip(REQUESTS, apache_answers, ours):
        what = f"{method} {path} {headers}"
        assert mine[0] == theirs[0], (what, mine, theirs)
        want = [f for f in theirs[1] if f[0] != "vary"]        # see the module docstring
        have, want = (mine[1], want) if theirs[0] == 200 else (
            [f for f in mine[1] if f[0] != "content-length"],
            [f for f in want if f[0] != "content-length"])
        assert have == want, (what, have, want)
        if theirs[0] == 200 or b"custom" in theirs[2]:
            assert mine[2] == theirs[2], (what, mine[2], theirs[2])
