"""mod_rewrite's configuration: what is refused at -t (with file and line), and the merge of
scopes as httpd's (server, <VirtualHost>, nested <Directory>)."""

from __future__ import annotations

import pytest

from mpmd.config.loader import load_config
from mpmd.config.model import ConfigError
from mpmd.modules import rewrite_rules as rr

HEAD = "Listen 127.0.0.1:0\nDocumentRoot /srv/www\n"


def _load(text: str):
    return load_config("/etc/test.conf", text=HEAD + text)


@pytest.mark.parametrize("line, words", [
    ("RewriteRule ^/a /b [L,Bogus]", "RewriteRule: unknown flag 'Bogus'"),
    ("RewriteRule ^/a /b L", "RewriteRule: bad flag delimiters"),
    ("RewriteRule ^/a /b [P]", "P (proxy) flag is not offered"),
    ("RewriteRule ^/a /b [CO=a:b:c]", "CO (cookie)"),
    ("RewriteRule ^/a(  /b", "RewriteRule: cannot compile regular expression '^/a('"),
    ("RewriteRule ^/a", "RewriteRule: bad argument line"),
    ("RewriteRule ^/a /b [R=999]", "invalid HTTP response code '999'"),
    ("RewriteCond %{HTTP_HOST} ^x [NC,Zap]", "RewriteCond: unknown flag 'Zap'"),
    ("RewriteCond %{REQUEST_URI} -U", "-U test"),
    ("RewriteMap m prg:/bin/cat", "map type prg"),
    ("RewriteMap m dbm:/x.db", "map type dbm"),
    ("RewriteMap m int:nosuch", "internal map not found:nosuch"),
    ("RewriteMap m txt:/nonexistent/map.txt", "RewriteMap: file for map m not found:/nonexistent/map.txt"),
    ("RewriteOptions MergeBase", "'MergeBase' is not supported"),
    ("RewriteOptions Sideways", "RewriteOptions: unknown option 'Sideways'"),
    ("RewriteEngine maybe", "RewriteEngine must be On or Off"),
    ("RewriteBase /x", "only valid in per-directory config files"),
    ("<Location /x>\nRewriteRule ^a b\n</Location>", "not supported in <Location>"),
    ("<Files x>\nRewriteEngine On\n</Files>", "not supported in <Files>"),
    ("<Directory /srv>\nRewriteBase x\n</Directory>", "RewriteBase: argument is not a valid URL"),
    ("<Directory /srv>\nRewriteOptions InheritDown\n</Directory>", "are server options"),
])
def test_refused_with_file_and_line(line, words):
    with pytest.raises(ConfigError) as info:
        _load("ServerName x\n" + line + "\n")
    err = info.value
    assert err.file == "/etc/test.conf"
    assert err.line == 4 + line.count("\n") - (1 if line.startswith("<") else 0)
    assert words in str(err), str(err)


def _dir(cfg, path):
    return cfg.dir_config(path, "/").rewrite.dir


def test_scopes_merge_as_httpd():
    cfg = _load("""RewriteEngine On
RewriteRule ^/s1 /x
<Directory /srv/www/a>
RewriteCond %{HTTP_HOST} h
RewriteRule ^one /x
RewriteBase /a/
</Directory>
<Directory /srv/www/a/b>
RewriteRule ^two /y
</Directory>
<Directory /srv/www/a/c>
RewriteOptions Inherit
RewriteRule ^three /z
</Directory>
<Directory /srv/www/a/d>
RewriteOptions InheritBefore
RewriteRule ^four /z
</Directory>
<VirtualHost *:80>
RewriteRule ^/v /w
</VirtualHost>
""")
    server = cfg.default_dir.rewrite.server
    assert server.engine and [r.pattern for r in server.rules] == ["^/s1"]
    a = _dir(cfg, "/srv/www/a/f")
    assert a.engine and a.directory == "/srv/www/a/" and a.base == "/a/"
    assert [r.pattern for r in a.rules] == ["^one"] and len(a.rules[0].conds) == 1
    b = _dir(cfg, "/srv/www/a/b/f")
    assert b.directory == "/srv/www/a/b/" and b.base == "/a/" and b.engine
    assert [r.pattern for r in b.rules] == ["^two"]
    assert [r.pattern for r in _dir(cfg, "/srv/www/a/c/f").rules] == ["^three", "^one"]
    assert [r.pattern for r in _dir(cfg, "/srv/www/a/d/f").rules] == ["^one", "^four"]
    vhost = cfg.vhosts.vhosts[0]
    vs = vhost.default_dir.rewrite.server
    assert vs.engine and [r.pattern for r in vs.rules] == ["^/v"]     # state inherited, rules not


def test_flags_and_conditions_parse():
    rule = rr.parse_rule(["^/(a)$", "/b?x=$1", "[nocase,R=permanent,QSA,E=A:1,env=B:2,S=2,T=text/x]"])
    assert rule.regex.flags & 2 and rule.redirect == 301 and rule.qsa and rule.skip == 2
    assert rule.env == ("A:1", "B:2") and rule.mime == "text/x"
    assert rr.parse_rule(["^", "-", "[F]"]).status == 403
    assert rr.parse_rule(["^", "/x", "[R=410]"]).status == 410
    cond = rr.parse_cond(["%{QUERY_STRING}", "-ne5"])
    assert (cond.kind, cond.pattern, cond.negate) == ("-eq", "5", True)
    assert rr.parse_cond(["%{X}", '=""']).pattern == ""
    assert rr.parse_cond(["%{X}", "!-d", "[OR]"]).kind == "-d"
    assert rr.parse_cond(["%{X}", "-F"]).kind == "-f"
    assert rr.parse_cond(["%{X}", ">=b", "[NC]"]).nocase


def test_no_hooks_without_rewrite_lines():
    cfg = _load("ServerName x\n")
    by = cfg.hooks.by_hook
    assert not any(getattr(fn, "__self__", None).__class__.__name__ == "RewriteModule"
                   for hook in ("translate_name", "fixups") for fn in by[hook])


def test_route_cache_keeps_path_rules_only(tmp_path):
    """core/modules.py "Route cache": a path-only outcome is kept, one that read a header is
    kept with a check (reused only for the same header values: mod_rewrite Rule 5), one that
    read the query, or changed it, is decided per request."""
    from mpmd.core import request as pipeline
    from tests.modules.static_support import config, context, get, make_site
    make_site(tmp_path)
    cfg = config(tmp_path, """RewriteEngine On
RewriteRule ^/p$ /a.txt [L]
RewriteCond %{HTTP:X-A} y
RewriteRule ^/h$ /a.txt [L]
RewriteRule ^/q$ /a.txt?z=1 [L]
""")
    for target in (b"/p", b"/h", b"/q"):
        pipeline.prepare(context(cfg, "GET", target, {"X-A": "y"}))
    kept = {path for path, _ in cfg.hooks.routes}
    assert b"/p" in kept and b"/h" in kept and b"/q" not in kept
    assert cfg.hooks.routes[(b"/p", "GET")][8] is None
    checks = cfg.hooks.routes[(b"/h", "GET")][8]
    same = context(cfg, "GET", b"/h", {"X-A": "y"}).request
    other = context(cfg, "GET", b"/h", {"X-A": "n"}).request
    assert all(check(same) for check in checks)
    assert not all(check(other) for check in checks)
    assert get(cfg, "/p").status == 200
