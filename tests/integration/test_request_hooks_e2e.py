"""The two hooks that run on every request, its route cached or not (core/request.py Rule 6):
``header_parser`` once the route is known, and ``output_filter`` over every answer, errors
included, in ``output_order``.  A user's module uses them on every MPM, for static files, WSGI
and ASGI answers alike; a filter that raises is a 500 the later filters still see.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx
import pytest

from tests.integration.wsgi_support import APPS

MODULE = textwrap.dedent('''
    from mpmd.core.exchange import Response
    from mpmd.core.modules import Module


    class Parser(Module):
        name = "parser_module"

        def header_parser(self, ctx):
            agent = ctx.request.header(b"user-agent") or b""
            if agent.startswith(b"blocked"):
                return Response(403, [("Content-Type", "text/plain")], b"go away\\n")
            ctx.env["agent"] = agent.decode("latin-1")


    class Late(Module):
        name = "late_module"
        output_order = 90

        def output_filter(self, ctx, resp):
            seen = resp.header("X-Order") or ""
            headers = [h for h in resp.headers if h[0] != "X-Order"]
            return Response(resp.status, headers + [("X-Order", seen + "late"),
                                                    ("X-Agent", ctx.env.get("agent", "-"))],
                            resp.body, resp.close_connection, resp.on_close)


    class Early(Module):
        name = "early_module"
        output_order = 10

        def output_filter(self, ctx, resp):
            if ctx.uri_path == "/explode.html":
                raise RuntimeError("a filter bug")
            return Response(resp.status, list(resp.headers) + [("X-Order", "early,")],
                            resp.body, resp.close_connection, resp.on_close)
''')


@pytest.fixture
def hooks_conf(conf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "hooks_mod.py").write_text(MODULE)
    (conf.htdocs / "explode.html").write_text("boom\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    # Late is loaded before Early: output_order, not load order, decides.
    return conf.add(textwrap.dedent(f'''
        LoadModule parser_module hooks_mod:Parser
        LoadModule late_module hooks_mod:Late
        LoadModule early_module hooks_mod:Early
        WSGIScriptAlias /wsgi "{APPS / "echo_app.py"}"
        ASGIApp /asgi tests.apps.asgi_apps:echo
    '''))


def test_every_answer_goes_through_the_filters_in_order(hooks_conf, make_server) -> None:
    server = make_server(hooks_conf)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for path, status in [("/index.html", 200), ("/index.html", 200), ("/missing", 404),
                             ("/wsgi", 200), ("/asgi", 200)]:
            r = client.get(path, headers={"User-Agent": f"ua-{path}"})
            assert r.status_code == status, (path, r.text, server.diagnostics())
            assert r.headers["X-Order"] == "early,late", (path, r.headers)
            # header_parser ran for this request, the second /index.html (a cached route) too
            assert r.headers["X-Agent"] == f"ua-{path}", (path, r.headers)
        head = client.head("/index.html", headers={"User-Agent": "h"})
        assert head.headers["X-Order"] == "early,late" and head.content == b""


def test_a_header_parser_may_answer(hooks_conf, make_server) -> None:
    server = make_server(hooks_conf)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/index.html").status_code == 200
        r = client.get("/index.html", headers={"User-Agent": "blocked/1"})
        assert r.status_code == 403 and r.text == "go away\n"
        assert r.headers["X-Order"] == "early,late"


def test_a_filter_that_raises_is_a_500_the_later_filters_see(hooks_conf, make_server) -> None:
    server = make_server(hooks_conf)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        r = client.get("/explode.html")
        assert r.status_code == 500
        assert r.headers["X-Order"] == "late"            # Early failed; Late still ran
        assert client.get("/index.html").status_code == 200
    assert "MPMD0306" in server.error_log_text()


def test_setenvif_before_the_access_check_and_per_request(conf, make_server) -> None:
    """header_parser runs before access_checker (Require env sees SetEnvIf, SetEnv it does
    not) and on every request of a cached route: one request's variables never reach the
    next request of the same URL."""
    conf.add(textwrap.dedent(f'''
        SetEnvIf X-Flag . flag=1
        SetEnv fixed yes
        WSGIScriptAlias /wsgi "{APPS / "echo_app.py"}"
        WSGIScriptAlias /gated "{APPS / "echo_app.py"}"
        <Location /gated>
            Require env flag
        </Location>
        <Location /setenv-gated>
            Require env fixed
        </Location>
    '''))
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(3):                                  # cached route from the second on
            flagged = client.get("/wsgi", headers={"X-Flag": "x"}).json()
            assert flagged.get("flag") == "1" and flagged.get("fixed") == "yes", flagged
            plain = client.get("/wsgi").json()
            assert "flag" not in plain and plain.get("fixed") == "yes", plain
            assert client.get("/gated", headers={"X-Flag": "x"}).status_code == 200
            assert client.get("/gated").status_code == 403
            assert client.get("/setenv-gated/index.html").status_code == 403
