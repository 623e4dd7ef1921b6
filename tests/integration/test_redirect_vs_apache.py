"""mod_alias's Redirect family (Redirect, RedirectMatch, RedirectPermanent, RedirectTemp) at
server level, in <Directory>, <Location> (with and without its URL-path) and .htaccess,
checked against apache2 itself: the same config and requests give the same status and
Location (the port of each server's own URLs written as PORT)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.apache import config, free_port, needs_apache, running

EXTRA = '''
Redirect 301 /moved https://example.com/new
RedirectMatch 302 ^/match/(\\w+)\\.html$ http://example.com/m/$1?from=match
RedirectMatch gone ^/deadpat/
Redirect permanent /srvpath /local/x
<Directory "{htdocs}/dir">
    Redirect permanent /dir/old http://example.com/dir-new
    Redirect 303 /dir/old/inner http://example.com/never-first
    RedirectTemp /dir/temp /local/temp
    Redirect seeother /dir/see http://example.com/see
    Redirect 301 /dir/sub/y http://example.com/outer
</Directory>
<Directory "{htdocs}/dir/sub">
    Redirect 307 /dir/sub/y http://example.com/inner
</Directory>
<Location /loc>
    Redirect 308 https://example.com/loc-target
</Location>
<Directory "{htdocs}/ht">
    AllowOverride FileInfo
</Directory>
<Directory "{htdocs}/noht">
    AllowOverride None
</Directory>
'''
HTACCESS = '''Redirect 301 /ht/a http://example.com/ht-a
RedirectMatch 410 ^/ht/gone
RedirectPermanent /ht/p /elsewhere
RewriteEngine On
RewriteRule ^both$ http://example.com/from-rewrite [R=301,L]
RewriteRule ^internal$ keep.txt [L]
Redirect 302 /ht/both http://example.com/from-alias
Redirect 302 /ht/internal http://example.com/alias-internal
'''
PATHS = ["/srvpath/a?b=c", "/moved", "/moved/x/y?q=1", "/movedx", "/match/abc.html", "/match/abc.html?z=2",
         "/match/a-b.html", "/deadpat/x", "/dir/old", "/dir/old/inner", "/dir/old/x?k=v",
         "/dir/sub/x", "/dir/sub/y/z", "/dir/see/1", "/dir/temp/t", "/dir/keep.txt", "/loc", "/loc/deeper?x=1", "/locx",
         "/ht/a", "/ht/a/b", "/ht/gone", "/ht/p/q", "/ht/keep.txt", "/ht/both", "/ht/internal", "/noht/a"]


def _site(htdocs: Path) -> None:
    for d in ("dir/sub", "ht", "noht", "loc"):
        (htdocs / d).mkdir(parents=True, exist_ok=True)
    (htdocs / "dir" / "keep.txt").write_text("keep\n")
    (htdocs / "ht" / "keep.txt").write_text("keep\n")
    (htdocs / "ht" / ".htaccess").write_text(HTACCESS)
    (htdocs / "noht" / ".htaccess").write_text(HTACCESS.replace("/ht/", "/noht/"))


def _answers(port: int) -> list[tuple]:
    out = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
        for path in PATHS:
            r = client.get(path)
            loc = (r.headers.get("location") or "").replace(f":{port}", ":PORT")
            out.append((path, r.status_code, loc))
    return out


@pytest.fixture(scope="module")
def apache_answers(tmp_path_factory):
    root = tmp_path_factory.mktemp("apache")
    htdocs = root / "htdocs"
    _site(htdocs)
    port = free_port()
    (root / "httpd.conf").write_text(config(root, port, htdocs, modules=("alias", "rewrite"),
                                            extra=EXTRA.format(htdocs=htdocs)))
    with running(root / "httpd.conf", [("127.0.0.1", port)]):
        return _answers(port)


@needs_apache("mod_alias.so", "mod_rewrite.so")
def test_redirects_as_apache(apache_answers, conf, make_server):
    _site(conf.htdocs)
    server = make_server(conf.add(EXTRA.format(htdocs=conf.htdocs)))
    ours = _answers(server.port)
    diff = [(a, b) for a, b in zip(apache_answers, ours) if a != b]
    assert not diff, "\n".join(f"apache {a}\n  mpmd {b}" for a, b in diff)
    assert {200, 301, 302, 303, 307, 308, 410, 404} <= {a[1] for a in ours}
    assert ("/dir/sub/y/z", 307, "http://example.com/inner/z") in ours    # innermost first


@pytest.mark.parametrize("line, words", [
    ("Redirect https://example.com/", "outside <Location>"),
    ("RedirectMatch 301 ^/(x http://example.com/", "Regular expression could not be compiled"),
    ("RedirectTemp /only", "RedirectTemp takes a URL-path and a URL"),
])
def test_refused_at_t_with_line(conf, tmp_path, line, words):
    import subprocess
    import sys
    path = conf.add(line).write()
    r = subprocess.run([sys.executable, "-m", "mpmd", "-t", "-f", str(path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0
    assert words in r.stdout + r.stderr and "line" in r.stdout + r.stderr
