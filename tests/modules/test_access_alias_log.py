"""Require (mod_authz_core), Alias/Redirect (mod_alias), access log lines (mod_log_config),
and the generated mime.types files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mpmd.config.model import ConfigError
from mpmd.core import request as pipeline
from tests.modules import mime_types_gen
from tests.modules.static_support import body_bytes, config, context, get, make_site

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path):
    make_site(tmp_path)
    return tmp_path


# -- Require -----------------------------------------------------------------------------

REQUIRE = [
    ("", "GET", "127.0.0.1", 200),
    ("Require all granted", "GET", "127.0.0.1", 200),
    ("Require all denied", "GET", "127.0.0.1", 403),
    ("Require method GET HEAD", "GET", "127.0.0.1", 200),
    ("Require method GET HEAD", "HEAD", "127.0.0.1", 200),
    ("Require method GET", "HEAD", "127.0.0.1", 200),          # HEAD is GET (apache2)
    ("Require method HEAD", "GET", "127.0.0.1", 200),
    ("Require method POST", "HEAD", "127.0.0.1", 403),
    ("Require ip 127.0.0.1", "GET", "127.0.0.1", 200),
    ("Require ip 127.0.0.1", "GET", "10.1.2.3", 403),
    ("Require ip 10.0.0.0/8 ::1", "GET", "10.1.2.3", 200),
    ("Require ip 10.0.0.0/8 ::1", "GET", "::1", 200),
    ("Require ip 127.0.0.1", "GET", "::ffff:127.0.0.1", 200),
    ("Require local", "GET", "192.168.1.1", 403),
    ("<RequireAll>\nRequire all granted\nRequire not ip 10.0.0.0/8\n</RequireAll>", "GET",
     "10.9.9.9", 403),
    ("<RequireAll>\nRequire all granted\nRequire not ip 10.0.0.0/8\n</RequireAll>", "GET",
     "192.0.2.1", 200),
    ("<RequireAny>\nRequire ip 10.0.0.0/8\n<RequireAll>\nRequire method GET\n"
     "Require not ip 192.0.2.0/24\n</RequireAll>\n</RequireAny>", "GET", "198.51.100.1", 200),
    ("<RequireAny>\nRequire ip 10.0.0.0/8\n<RequireAll>\nRequire method GET\n"
     "Require not ip 192.0.2.0/24\n</RequireAll>\n</RequireAny>", "GET", "192.0.2.1", 403),
    ("<RequireAll>\nRequire all granted\n<RequireNone>\nRequire ip 192.0.2.0/24\n"
     "Require ip 10.0.0.0/8\n</RequireNone>\n</RequireAll>", "GET", "10.1.1.1", 403),
    ("<RequireAll>\nRequire all granted\n<RequireNone>\nRequire ip 192.0.2.0/24\n"
     "Require ip 10.0.0.0/8\n</RequireNone>\n</RequireAll>", "GET", "127.0.0.1", 200),
    ("<Limit POST>\nRequire all denied\n</Limit>", "GET", "127.0.0.1", 200),
    ("<Limit POST>\nRequire all denied\n</Limit>", "POST", "127.0.0.1", 403),
    ("<LimitExcept GET>\nRequire all denied\n</LimitExcept>", "HEAD", "127.0.0.1", 200),
    ("Order deny,allow\nDeny from 10.0.0.0/8", "GET", "10.1.2.3", 403),
    ("Order deny,allow\nDeny from 10", "GET", "127.0.0.1", 200),
    ("Order allow,deny\nAllow from 127.0.0.1/255.0.0.0", "GET", "127.0.0.1", 200),
    ("Order allow,deny\nAllow from 127.0.0.1/255.0.0.0", "GET", "10.0.0.1", 403),
    ("Order allow,deny", "GET", "127.0.0.1", 403),
    ("Order mutual-failure\nAllow from all\nDeny from 10.0.0.0/8", "GET", "10.0.0.1", 403),
    ("Order mutual-failure\nAllow from all\nDeny from 10.0.0.0/8", "GET", "127.0.0.1", 200),
    ("Satisfy Any\nOrder allow,deny\nAllow from 127.0.0.1\nRequire all denied", "GET",
     "127.0.0.1", 200),
    ("Satisfy All\nOrder allow,deny\nAllow from 127.0.0.1\nRequire all denied", "GET",
     "127.0.0.1", 403),
]


@pytest.mark.parametrize("line,method,client,want", REQUIRE)
def test_require(site, line: str, method: str, client: str, want: int) -> None:
    cfg = config(site, f"<Directory {site}/htdocs>\n{line}\n</Directory>")
    assert get(cfg, "/a.txt", method=method, client=client).status == want


def test_require_inner_section_overrides(site) -> None:
    cfg = config(site, f"<Directory />\nRequire all denied\n</Directory>\n"
                       f"<Directory {site}/htdocs/sub>\nRequire all granted\n</Directory>\n"
                       "<Location /sub/deeper>\nRequire all denied\n</Location>")
    assert get(cfg, "/a.txt").status == 403
    assert get(cfg, "/sub/index.html").status == 200
    assert get(cfg, "/sub/deeper/x.css").status == 403


def test_require_applies_to_directory_index(site) -> None:
    cfg = config(site, f"<Files index.html>\nRequire all denied\n</Files>")
    assert get(cfg, "/sub/").status == 403


@pytest.mark.parametrize("line", ["Require", "Require bogus x", "Require all maybe",
                                  "Require ip not-an-ip", "Require not all granted",
                                  "Require not ip 10.0.0.0/8", "<RequireAll>\n</RequireAll>",
                                  "<RequireNone>\nRequire ip 10.1\n</RequireNone>",
                                  "<Limit GET>\n<Limit POST>\nRequire all denied\n</Limit>\n</Limit>",
                                  "Allow from 10.1/33", "Order deny,allow,mutual"])
def test_require_bad_config(site, line: str) -> None:
    with pytest.raises(ConfigError):
        config(site, f"<Directory />\n{line}\n</Directory>")


# -- Alias / Redirect ----------------------------------------------------------------------

def test_alias(site) -> None:
    other = site / "other"
    other.mkdir()
    (other / "f.txt").write_text("aliased")
    cfg = config(site, f"Alias /files {other}\nAlias /slash/ {other}/")
    assert body_bytes(get(cfg, "/files/f.txt")) == b"aliased"
    assert body_bytes(get(cfg, "/slash/f.txt")) == b"aliased"
    assert get(cfg, "/filesx/f.txt").status == 404
    assert get(cfg, "/files").status == 301
    assert get(cfg, "/files/../secret.txt").status in (400, 404)


def test_alias_symlink_confined_to_target(site) -> None:
    other = site / "other"
    other.mkdir()
    (other / "out.txt").symlink_to(site / "secret.txt")
    cfg = config(site, f"Alias /files {other}\nOptions -FollowSymLinks")
    assert get(cfg, "/files/out.txt").status == 403


def test_alias_match(site) -> None:
    cfg = config(site, f"AliasMatch ^/img/(.*)\\.png$ {site}/htdocs/$1.txt")
    assert body_bytes(get(cfg, "/img/a.png")) == b"hello\n"


def test_redirect(site) -> None:
    cfg = config(site, "Redirect /old http://example.test/new\nRedirect permanent /p /q\n"
                       "Redirect gone /dead")
    resp = get(cfg, "/old/x?y=1")
    assert resp.status == 302 and resp.header("Location") == "http://example.test/new/x?y=1"
    assert get(cfg, "/p").status == 301 and get(cfg, "/p").header("Location") == "http://localhost/q"
    assert get(cfg, "/dead/a").status == 410
    assert get(cfg, "/older").status == 404


# -- access log --------------------------------------------------------------------------

COMMON = re.compile(r'^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
                    r'"GET /a\.txt\?q=1 HTTP/1\.1" 200 6$')


def _log_one(cfg, target: bytes, headers=None) -> None:
    ctx = context(cfg, "GET", target, headers)
    ctx.start_time = 1.0e9
    resp = pipeline.process(ctx)
    pipeline.log(ctx, resp, len(body_bytes(resp)))


def test_common_log(site) -> None:
    cfg = config(site, "CustomLog logs/access.log common")
    (site / "logs").mkdir()
    _log_one(cfg, b"/a.txt?q=1")
    _log_one(cfg, b"/nope")
    lines = (site / "logs" / "access.log").read_text().splitlines()
    assert COMMON.match(lines[0]), lines[0]
    assert lines[1].endswith('"GET /nope HTTP/1.1" 404 ' + lines[1].rsplit(" ", 1)[1])


def test_combined_and_custom(site) -> None:
    (site / "logs").mkdir()
    cfg = config(site, 'LogFormat "%h %>s %b %{Referer}i|%{User-agent}i %D %T %m %U%q" mine\n'
                       "CustomLog logs/c.log combined\nCustomLog logs/m.log mine")
    _log_one(cfg, b"/a.txt", {"Referer": "http://r/", "User-Agent": 'evil"\x01agent'})
    combined = (site / "logs" / "c.log").read_text()
    assert combined.rstrip("\n").endswith('"http://r/" "evil\\"\\x01agent"')
    mine = (site / "logs" / "m.log").read_text().rstrip("\n").split(" ")
    assert mine[:3] == ["127.0.0.1", "200", "6"] and mine[-1] == "/a.txt"
    assert int(mine[-4]) > 0 and mine[-2] == "GET"


def test_zero_bytes_is_dash(site) -> None:
    (site / "logs").mkdir()
    cfg = config(site, "CustomLog logs/a.log common")
    ctx = context(cfg, "HEAD", b"/a.txt")
    resp = pipeline.process(ctx)
    pipeline.log(ctx, resp, 0)
    assert (site / "logs" / "a.log").read_text().rstrip("\n").endswith(" 200 -")


def test_log_lines_whole_across_fork(site) -> None:
    (site / "logs").mkdir()
    cfg = config(site, "CustomLog logs/f.log common")
    _log_one(cfg, b"/a.txt")                      # opened in the parent, inherited
    pids = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            try:
                for _ in range(50):
                    _log_one(cfg, b"/a.txt?" + b"x" * 300)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    lines = (site / "logs" / "f.log").read_text().splitlines()
    assert len(lines) == 201 and all(line.endswith(" 200 6") for line in lines)


def test_bad_log_format(site) -> None:
    with pytest.raises(ConfigError):
        config(site, 'LogFormat "%h %J" bad')


# -- mime.types ----------------------------------------------------------------------------

def test_mime_types_files_are_generated() -> None:
    text = mime_types_gen.generate()
    for target in mime_types_gen.TARGETS:
        assert (REPO / target).read_text() == text, f"regenerate {target}"


def test_log_transaction_runs_only_when_a_custom_log_is_configured():
    from mpmd.core.modules import HookTable
    from mpmd.modules.mod_log_config import LogConfigModule

    module = LogConfigModule()
    quiet = HookTable([module], {"custom_log": []})
    logging = HookTable([module], {"custom_log": [("/tmp/access.log", "common", None)]})
    assert quiet.by_hook["log_transaction"] == []
    assert logging.by_hook["log_transaction"] == [module.log_transaction]
    assert quiet.by_hook["child_exit"] == [module.child_exit]     # logs are still closed
