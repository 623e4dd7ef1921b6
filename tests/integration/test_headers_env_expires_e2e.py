"""mod_headers, mod_env/mod_setenvif, mod_expires and ErrorDocument on a real server, every MPM,
for static files, WSGI and ASGI answers (docs/modules.md)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests.integration.wsgi_support import APPS

ERROR_APP = textwrap.dedent('''
    import json

    def application(environ, start_response):
        keys = {k: v for k, v in environ.items() if k.startswith("REDIRECT_") or k == "REQUEST_METHOD"}
        body = json.dumps(keys, sort_keys=True).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]


    def own404(environ, start_response):
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("X-App", "1")])
        return [b"the app's own 404\\n"]
''')


@pytest.fixture
def site(conf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "errpages.py").write_text(ERROR_APP)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    (conf.htdocs / "errors").mkdir()
    (conf.htdocs / "errors" / "404.html").write_text("custom 404 page\n")
    (conf.htdocs / "style.css").write_text("body {}\n")
    (conf.htdocs / "sec").mkdir()
    (conf.htdocs / "sec" / "a.html").write_text("secret\n")
    log = tmp_path / "env_access.log"
    return conf.add(textwrap.dedent(f'''
        LoadModule headers_module /usr/lib/apache2/modules/mod_headers.so
        <IfModule mod_headers.c>
            Header always set Strict-Transport-Security "max-age=63072000"
        </IfModule>
        Header set X-Frame-Options DENY
        Header set X-Env "%{{GREETING}}e %{{curl}}e"
        Header set X-Curl yes env=curl
        Header always set X-Not-Curl yes env=!curl
        Header unset X-App
        RequestHeader set X-Added "from-config"
        RequestHeader unset X-Drop
        SetEnv GREETING hello
        BrowserMatch ^curl curl
        SetEnvIf Request_URI "^/wsgi/(\\w+)" SECTION=$1
        ExpiresActive On
        ExpiresByType text/css "access plus 1 day"
        ExpiresByType application/json A60
        LogFormat "%U %{{GREETING}}e %{{curl}}e" envfmt
        CustomLog "{log}" envfmt env=curl
        ErrorDocument 404 /errors/404.html
        ErrorDocument 403 "no entry here"
        ErrorDocument 410 http://example.com/gone
        ErrorDocument 500 /errpage/
        Redirect gone /old
        <Location /sec>
            Require all denied
        </Location>
        <Location /wsgi>
            Header always set X-Wsgi-Scope yes
        </Location>
        WSGIScriptAlias /wsgi "{APPS / "echo_app.py"}"
        WSGIApp /errpage errpages:application
        WSGIApp /own404 errpages:own404
        WSGIApp /broken tests.apps.wsgi_apps:error
        ASGIApp /asgi tests.apps.asgi_apps:echo
        ASGIApp /abroken tests.apps.asgi_apps:error
        <Location /missing-wsgi>
            ErrorDocument 404 /errpage/x?from=missing
        </Location>
    ''')), log


def test_headers_on_static_wsgi_asgi_and_errors(site, make_server) -> None:
    conf, _ = site
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=10, headers={"User-Agent": "curl/8"}) as c:
        for path in ("/index.html", "/index.html", "/wsgi/x", "/asgi"):
            r = c.get(path)
            assert r.status_code == 200, (path, server.diagnostics())
            assert r.headers["X-Frame-Options"] == "DENY"
            assert r.headers["Strict-Transport-Security"] == "max-age=63072000"
            assert r.headers["X-Env"] == "hello 1" and r.headers["X-Curl"] == "yes"
            assert "X-Not-Curl" not in r.headers
        # the server's own error pages: the always lines only (httpd's err_headers_out)
        for path, status in (("/sec/a.html", 403), ("/nothing-here", 404), ("/broken", 500),
                             ("/old", 302)):
            r = c.get(path, follow_redirects=False)
            assert r.status_code == status, (path, r.text)
            assert r.headers["Strict-Transport-Security"] == "max-age=63072000", path
        r = c.get("/sec/a.html")
        assert "X-Frame-Options" not in r.headers and r.text == "no entry here"
        # an app's own 404 is a handler's answer: onsuccess lines apply, no ErrorDocument
        r = c.get("/own404")
        assert r.status_code == 404 and r.text == "the app's own 404\n"
        assert r.headers["X-Frame-Options"] == "DENY" and "X-App" not in r.headers
        r = c.get("/wsgi/y", headers={"User-Agent": "other"})
        assert r.headers["X-Not-Curl"] == "yes" and r.headers["X-Wsgi-Scope"] == "yes"
        assert r.headers["X-Env"] == "hello (null)"


def test_env_and_request_headers_reach_wsgi(site, make_server) -> None:
    conf, _ = site
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=10) as c:
        env = c.get("/wsgi/books", headers={"User-Agent": "curl/8", "X-Drop": "1"}).json()
    assert env["GREETING"] == "hello" and env["curl"] == "1" and env["SECTION"] == "books"
    assert env["HTTP_X_ADDED"] == "from-config" and "HTTP_X_DROP" not in env


def test_env_conditions_and_fields_in_the_access_log(site, make_server) -> None:
    conf, log = site
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=10) as c:
        c.get("/index.html", headers={"User-Agent": "curl/8"})
        c.get("/index.html", headers={"User-Agent": "firefox"})     # env=curl: not logged
    server.stop()
    assert log.read_text().splitlines() == ["/index.html hello 1"]


def test_expires(site, make_server) -> None:
    conf, _ = site
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for _ in range(2):                                   # the second: a cached file
            r = c.get("/style.css")
            assert r.headers.get("Cache-Control") == "max-age=86400", (r.headers, conf.text())
            assert "Expires" in r.headers
        etag = r.headers["ETag"]
        r = c.get("/style.css", headers={"If-None-Match": etag})
        assert r.status_code == 304 and r.headers["Cache-Control"] == "max-age=86400"
        assert c.get("/wsgi/x").headers["Cache-Control"] == "max-age=60"
        assert "Expires" not in c.get("/index.html").headers          # no line for text/html
        assert "Expires" not in c.get("/nothing-here").headers        # an error page


def test_error_documents(site, make_server) -> None:
    conf, _ = site
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=10) as c:
        r = c.get("/nothing-here")
        assert (r.status_code, r.text) == (404, "custom 404 page\n")
        assert c.head("/nothing-here").status_code == 404
        r = c.get("/old", follow_redirects=False)                   # Redirect gone -> 410 -> URL
        assert r.status_code == 302 and r.headers["Location"] == "http://example.com/gone"
        r = c.post("/broken?q=1", content=b"x")                      # a WSGI app that raised
        assert r.status_code == 500, server.diagnostics()
        env = r.json()
        assert env["REDIRECT_STATUS"] == "500" and env["REDIRECT_URL"] == "/broken"
        assert env["REDIRECT_QUERY_STRING"] == "q=1" and env["REDIRECT_REQUEST_METHOD"] == "POST"
        assert env["REQUEST_METHOD"] == "GET" and env["REDIRECT_GREETING"] == "hello"
        r = c.get("/abroken")                                        # an ASGI app that raised
        assert r.status_code == 500 and r.json()["REDIRECT_URL"] == "/abroken", r.text
        r = c.get("/missing-wsgi/page")
        assert r.status_code == 404 and r.json()["REDIRECT_URL"] == "/missing-wsgi/page"


def test_config_errors_name_their_line(tmp_path: Path) -> None:
    from mpmd.config.loader import load_config
    from mpmd.config.model import ConfigError
    for line, words in (("Header set X %{HOST}i", "not supported"),
                        ('Header set X y "expr=%{REQUEST_URI} =~ m#x(#"', "Can't parse envclause/expression"),
                        ('Header set X "expr=%{REQUEST_URI}"', "not supported"),
                        ("Header frob X y", "first argument must be"),
                        ("RequestHeader echo X", "only valid on Header directives"),
                        ("ErrorDocument 999 /x", "Unsupported HTTP response code"),
                        ("ErrorDocument 404 /e/%{REQUEST_URI}", "ap_expr"),
                        ("ExpiresDefault \"access plus 3 fortnights\"", "unrecognised <type>"),
                        ("SetEnvIf User-Agent x", "Missing envariable expression"),
                        ("CustomLog x.log common expr=%{NOPE}", "Cannot parse condition clause")):
        path = tmp_path / "httpd.conf"
        path.write_text(f"Listen 127.0.0.1:0\n{line}\n")
        with pytest.raises(ConfigError) as err:
            load_config(str(path))
        assert err.value.line == 2 and words in str(err.value), (line, str(err.value))


def test_unused_modules_make_no_call() -> None:
    from mpmd.config.loader import load_config
    cfg = load_config(text="Listen 127.0.0.1:0\n")
    names = {fn.__self__.name for hook in ("header_parser", "request_fixups", "output_filter")
             for fn in cfg.hooks.by_hook[hook] if hasattr(fn, "__self__")}
    assert not names & {"headers_module", "env_module", "setenvif_module", "expires_module"}
    cfg = load_config(text="Listen 127.0.0.1:0\n<Location /x>\nHeader set A b\n</Location>\n")
    assert any(getattr(fn, "__self__", None).name == "headers_module"
               for fn in cfg.hooks.by_hook["output_filter"] if hasattr(fn, "__self__"))


def test_a_cached_file_keeps_its_plan() -> None:
    """mod_headers Rule 5: the edited copy of a shared answer is itself shared."""
    from mpmd.config.loader import load_config
    from mpmd.core.exchange import Response
    from mpmd.modules.mod_headers import HeadersModule
    cfg = load_config(text="Listen 127.0.0.1:0\nHeader set X-A b\n")
    module = next(m for m in cfg.modules if isinstance(m, HeadersModule))
    shared = Response(200, (("Content-Type", "text/plain"),), b"x", memo=())

    class Ctx:
        dir_config = cfg.default_dir
        server = cfg
        env: dict = {}
        request = SimpleNamespace(headers=())
    one = module.output_filter(Ctx, shared)
    assert one is module.output_filter(Ctx, shared) and one.memo == ()
    assert ("X-A", "b") in one.headers


def test_an_early_line_in_a_section_is_named_at_t(tmp_path: Path) -> None:
    """httpd accepts ``early`` in a section and never applies it: mpmd says so, with the line."""
    from mpmd.config.loader import load_config
    path = tmp_path / "httpd.conf"
    path.write_text("Listen 127.0.0.1:0\nHeader set A b early\n<Location /x>\n"
                    "RequestHeader set C d early\n</Location>\n")
    found = [p for p in load_config(str(path)).problems if p.id == "MPMD0515"]
    assert [(p.file, p.line) for p in found] == [(str(path), 4)]
    assert "RequestHeader has no effect" in found[0].text
