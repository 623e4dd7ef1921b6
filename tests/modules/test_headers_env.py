"""mod_headers, mod_setenvif, mod_env, mod_expires and ErrorDocument's values, without sockets."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mpmd.config.loader import load_config
from mpmd.config.model import ConfigError
from mpmd.core.errordoc import error_document_value
from mpmd.core.exchange import ConnInfo, Response
from mpmd.modules.mod_env import EnvModule
from mpmd.modules.mod_expires import expires_code
from mpmd.modules.mod_headers import HeadersModule, _has_token
from mpmd.modules.mod_setenvif import SetEnvIfModule


def _ctx(cfg, headers=(), uri="/", method="GET"):
    request = SimpleNamespace(headers=tuple(headers), method=method, http_version="1.1",
                              query=b"", target=uri.encode(), path=uri.encode())
    return SimpleNamespace(dir_config=cfg.default_dir, server=cfg, env={}, notes={},
                           request=request, uri_path=uri, start_time=1_700_000_000.25,
                           conn=ConnInfo(("10.1.2.3", 5555), ("127.0.0.1", 80)), filename=None)


def _module(cfg, cls):
    return next(m for m in cfg.modules if isinstance(m, cls))


def _env_after(lines: str, headers=(), uri="/") -> dict:
    cfg = load_config(text="Listen 127.0.0.1:0\n" + lines)
    ctx = _ctx(cfg, headers, uri)
    _module(cfg, SetEnvIfModule).header_parser(ctx)
    _module(cfg, EnvModule).request_fixups(ctx)
    return ctx.env


def test_setenvif_attributes_and_values() -> None:
    ua = [(b"user-agent", b"Mozilla/5.0 Firefox/120"), (b"x-trace-id", b"abc")]
    env = _env_after('BrowserMatch "Firefox/(\\d+)" ff=$1 browser\n'
                     'BrowserMatchNoCase firefox lower\n'
                     'BrowserMatch Firefox !browser\n'
                     'SetEnvIf ^X-Trace.* . traced\n'
                     'SetEnvIf Remote_Addr ^10\\. internal\n'
                     'SetEnvIf Request_URI "^/app/(.*)" rest=$1\n'
                     'SetEnvIf X-Missing ^$ nofield\n'
                     'SetEnvIf traced 1 chained\n', ua, "/app/x/y")
    assert env == {"ff": "120", "lower": "1", "traced": "1", "internal": "1", "rest": "x/y",
                   "nofield": "1", "chained": "1"}


def test_the_remembered_outcome_is_per_value() -> None:
    cfg = load_config(text="Listen 127.0.0.1:0\nBrowserMatch ^curl/(\\d) curl=$1\n")
    module = _module(cfg, SetEnvIfModule)
    for agent, want in ((b"curl/8", {"curl": "8"}), (b"wget", {}), (b"curl/7", {"curl": "7"}),
                        (b"curl/8", {"curl": "8"})):
        ctx = _ctx(cfg, [(b"user-agent", agent)])
        module.header_parser(ctx)
        assert ctx.env == want


def test_setenv_merges_and_wins_over_setenvif(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPMD_TEST_PASSED", "from-env")
    text = ("Listen 127.0.0.1:0\nSetEnv A 1\nSetEnv B 2\nPassEnv MPMD_TEST_PASSED\n"
            "SetEnvIf Request_Method GET A=setenvif C=3\n<Location /x>\nUnsetEnv B\n"
            "SetEnv D\n</Location>\n")
    cfg = load_config(text=text)
    ctx = _ctx(cfg, uri="/x")
    ctx.dir_config = cfg.dir_config(None, "/x")
    _module(cfg, SetEnvIfModule).header_parser(ctx)
    _module(cfg, EnvModule).request_fixups(ctx)
    assert ctx.env == {"A": "1", "C": "3", "D": "", "MPMD_TEST_PASSED": "from-env"}


def _headers_after(lines: str, resp: Response, headers=(), env=None) -> list:
    cfg = load_config(text="Listen 127.0.0.1:0\n" + lines)
    ctx = _ctx(cfg, headers)
    ctx.env.update(env or {})
    return list(_module(cfg, HeadersModule).output_filter(ctx, resp).headers)


def test_header_actions() -> None:
    resp = Response(200, [("Cache-Control", "private, max-age=0"), ("X-Keep", "k"),
                          ("Set-Cookie", "a=1; secure"), ("Set-Cookie", "b=2")])
    out = _headers_after('Header merge Cache-Control private\nHeader merge Cache-Control no-store\n'
                         'Header append X-Keep more\nHeader add Set-Cookie c=3\n'
                         'Header edit* Set-Cookie "(?i); *secure" ""\n'
                         'Header setifempty X-Keep no\nHeader set X-T %t\nHeader set X-P "50%%"\n'
                         'Header echo ^X-Echo\nHeader note X-Keep kept\n', resp,
                         [(b"x-echo-me", b"e"), (b"x-other", b"o")])
    assert out == [("Cache-Control", "private, max-age=0, no-store"), ("X-Keep", "k, more"),
                   ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Set-Cookie", "c=3"),
                   ("X-T", "t=1700000000250000"), ("X-P", "50%"), ("X-Echo-Me", "e")]


def test_always_lines_alone_on_the_servers_own_answers() -> None:
    page = Response(404, [("Content-Type", "text/html")], b"page", local=True)
    out = _headers_after("Header set A 1\nHeader always set B 2\nHeader always unset Content-Type\n",
                         page)
    assert out == [("Content-Type", "text/html"), ("B", "2")]


def test_env_conditions() -> None:
    lines = "Header set On yes env=flag\nHeader set Off yes env=!flag\nHeader set V %{flag}e\n"
    assert _headers_after(lines, Response(200, []), env={"flag": ""}) == [("On", "yes"), ("V", "")]
    assert _headers_after(lines, Response(200, [])) == [("Off", "yes"), ("V", "(null)")]


def test_merge_tokens_as_httpd() -> None:
    assert _has_token('a, "b, c", d', "d") and _has_token('a, "b, c"', '"b, c"')
    assert not _has_token("ab, c", "a") and not _has_token("a ,b", "a")     # "a " is the token


def test_expires_codes() -> None:
    assert expires_code("access plus 1 month 2 weeks") == "A" + str(30 * 86400 + 14 * 86400)
    assert expires_code("now 3 hours") == "A10800" and expires_code("M60") == "M60"
    assert expires_code("modification plus 1 year") == "M31536000"


def test_expires_merges_cache_control() -> None:
    cfg = load_config(text="Listen 127.0.0.1:0\nExpiresActive On\nExpiresDefault A100\n")
    from mpmd.modules.mod_expires import ExpiresModule
    ctx = _ctx(cfg)
    out = _module(cfg, ExpiresModule).output_filter(
        ctx, Response(200, [("Cache-Control", "public"), ("Content-Type", "text/plain")]))
    assert ("Cache-Control", "public, max-age=100") in out.headers
    assert ("Expires", "Tue, 14 Nov 2023 22:15:00 GMT") in out.headers
    kept = Response(200, [("Expires", "0")])
    assert _module(cfg, ExpiresModule).output_filter(ctx, kept) is kept
    assert _module(cfg, ExpiresModule).output_filter(ctx, page := Response(
        500, [], b"", local=True)) is page


def test_error_document_values() -> None:
    assert error_document_value(["404", "/e.html"]) == (404, "local", "/e.html")
    assert error_document_value(["404", "Oops"]) == (404, "text", "Oops")
    assert error_document_value(["404", "/a b"]) == (404, "text", "/a b")
    assert error_document_value(["503", "https://x/"]) == (503, "url", "https://x/")
    assert error_document_value(["404", "DEFAULT"]) == (404, "default", "")
    for bad in (["401", "http://x/"], ["700", "x"], ["404", "/%{REQUEST_URI}"]):
        with pytest.raises(ValueError):
            error_document_value(bad)


@pytest.mark.parametrize("line", ["Header", "Header always", "Header set", "RequestHeader echo X",
                                  "Header set X y z w", "Header unset X y z",
                                  "Header set X y env=", "Header edit X only-regex"])
def test_bad_header_lines(line: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(text=f"Listen 127.0.0.1:0\n{line}\n")
    assert err.value.line == 2


def test_nokeepalive_closes_the_connection() -> None:
    cfg = load_config(text='Listen 127.0.0.1:0\nBrowserMatch "Mozilla/2" nokeepalive\n')
    module = _module(cfg, SetEnvIfModule)
    for agent, close in ((b"Mozilla/2.0", True), (b"Mozilla/5.0", False)):
        ctx = _ctx(cfg, [(b"user-agent", agent)])
        module.header_parser(ctx)
        assert module.output_filter(ctx, Response(200, [])).close_connection is close
