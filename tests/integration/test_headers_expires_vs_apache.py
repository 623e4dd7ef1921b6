"""Header, ErrorDocument and Expires checked against apache2 itself.

One configuration goes to a standalone apache2 (event MPM, mod_headers, mod_expires, mod_env,
mod_setenvif, mod_alias) and to mpmd (event MPM); the same requests must give the same status,
the same header fields and the same body.  Fields left out of the comparison, by design:
Date and Server (the software and the second), Connection: Keep-Alive and Keep-Alive
(httpd's HTTP/1.0-style keep-alive fields on an HTTP/1.1 answer, which mpmd does not send,
RFC 9112 9.3); Expires is compared as Expires - Date (the
code's seconds), since the two servers answer at different times.
"""

from __future__ import annotations

import os
import textwrap
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from tests.support.apache import config, free_port, needs_apache, running
from tests.support.confbuilder import ConfBuilder

pytestmark = needs_apache("mod_headers.so", "mod_expires.so", "mod_env.so", "mod_setenvif.so",
                          "mod_alias.so", "mod_mime.so")

SITE = '''
TypesConfig /etc/mime.types
Header always set Strict-Transport-Security "max-age=63072000; includeSubDomains"
Header always set X-Always a
Header set X-Success s
Header append X-List one
Header append X-List two
Header merge Cache-Control no-transform
Header merge Cache-Control no-transform
Header add X-Twice 1
Header add X-Twice 2
Header setifempty X-Once first
Header setifempty X-Once second
Header set X-Edit "alpha beta alpha"
Header edit X-Edit alpha A
Header set X-EditAll "alpha beta alpha"
Header edit* X-EditAll "a(l)" "<$1>"
Header echo ^X-Echo
SetEnv GREETING hello
BrowserMatch ^probe PROBE
SetEnvIf Request_Method GET IS_GET=yes
Header set X-Env "%{GREETING}e %{PROBE}e %{IS_GET}e %{NOPE}e"
Header set X-Probe on env=PROBE
Header set X-NoProbe on env=!PROBE
RequestHeader set X-Req r
Header set X-Pct "100%% sure"
Header set X-Early t early
Header unset X-Early
ExpiresActive On
ExpiresByType text/css "access plus 1 month"
ExpiresByType image/* A3600
ExpiresDefault "access plus 2 hours"
ErrorDocument 404 /errors/404.html
ErrorDocument 403 "no entry here"
ErrorDocument 410 http://example.com/gone-away
ErrorDocument 405 Oops
Redirect /moved http://example.com/new
Redirect gone /old
<Location /locked>
    Require all denied
</Location>
<Location /plain>
    ErrorDocument 404 default
    Header unset X-Success
    ExpiresActive Off
</Location>
<Location /noexp>
    ExpiresActive Off
    Header set X-Early-In-Section e early
    Header set Cache-Control "public"
</Location>
<Location /mod>
    ExpiresDefault "modification plus 1 day"
    Header unset Content-Type
    Header unset ETag
    Header append Content-Type extra
    Header edit Last-Modified "2020" "1999"
</Location>
<Location /rec>
    ErrorDocument 404 /errors/also-missing.html
</Location>
<Location /quoted>
    ErrorDocument 404 "say \\"what\\" \\\\ now"
</Location>
<Location /alw>
    Header always unset ETag
    Header always append X-Success more
    Header always set X-RS "%{REDIRECT_STATUS}e %{REDIRECT_REQUEST_METHOD}e"
    ErrorDocument 404 /alw/page.html
</Location>
<Location /typed>
    Header set Content-Type "text/x-special"
</Location>
'''

REQUESTS = [
    ("GET", "/index.html", {}),
    ("GET", "/index.html", {"User-Agent": "probe/1", "X-Echo-One": "e1"}),
    ("HEAD", "/index.html", {}),
    ("GET", "/style.css", {}),
    ("GET", "/pic.png", {}),
    ("GET", "/noexp/page.html", {}),
    ("GET", "/missing", {}),
    ("HEAD", "/missing", {}),
    ("GET", "/plain/missing", {}),
    ("GET", "/locked/x.html", {}),
    ("GET", "/moved", {}),
    ("GET", "/old", {}),
    ("GET", "/index.html", {"If-Modified-Since": "Wed, 01 Jan 2025 00:00:00 GMT"}),
    ("GET", "/index.html", {"Range": "bytes=0-3"}),
    ("GET", "/mod/page.html", {}),
    ("GET", "/rec/missing", {}),
    ("GET", "/quoted/missing", {}),
    ("GET", "/typed/page.html", {}),
    ("GET", "/alw/page.html", {}),
    ("GET", "/alw/missing", {}),
]

# Fields compared apart (see the module docstring).
APART = {"date", "server", "expires", "connection", "keep-alive"}


def _tree(root: Path) -> Path:
    htdocs = root / "htdocs"
    for rel, text in (("index.html", "<h1>hi</h1>\n"), ("style.css", "body {}\n"),
                      ("pic.png", "png\n"), ("noexp/page.html", "no expiry\n"),
                      ("plain/x.html", "plain\n"), ("mod/page.html", "mod\n"), ("typed/page.html", "typed\n"), ("alw/page.html", "alw\n"), ("errors/404.html", "custom 404 page\n")):
        path = htdocs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.utime(path, (1577836800, 1577836800))          # settled: 2020-01-01
    return htdocs


def _answers(url: str) -> list[tuple[int, list[tuple[str, str]], bytes, str | None]]:
    out = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for method, path, headers in REQUESTS:
            r = client.request(method, path, headers={"User-Agent": "test", **headers})
            fields = sorted((k.lower(), v) for k, v in r.headers.multi_items()
                            if k.lower() not in APART)
            expires = r.headers.get("expires")
            if expires is not None:                  # Expires - Date: the code's seconds
                expires = str(parsedate_to_datetime(expires).timestamp()
                              - parsedate_to_datetime(r.headers["date"]).timestamp())
            out.append((r.status_code, fields, r.content, expires))
    return out


@pytest.fixture(scope="module")
def apache_answers(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("apache")
    htdocs = _tree(root)
    port = free_port()
    conf = root / "httpd.conf"
    conf.write_text(config(root, port, htdocs,
                           modules=("mime", "alias", "headers", "expires", "env", "setenvif"),
                           extra=SITE))
    with running(conf, [("127.0.0.1", port)]):
        yield _answers(f"http://127.0.0.1:{port}")


def test_same_answers_as_apache(apache_answers, tmp_path: Path, make_server) -> None:
    conf = ConfBuilder(tmp_path, mpm="event")
    htdocs = _tree(tmp_path)
    assert htdocs == conf.htdocs
    conf.add(f'<Directory "{htdocs}">\n    Require all granted\n</Directory>')
    conf.add(textwrap.dedent(SITE))
    server = make_server(conf)
    ours = _answers(server.url)
    for (method, path, headers), theirs, mine in zip(REQUESTS, apache_answers, ours):
        what = f"{method} {path} {headers}"
        assert mine[0] == theirs[0], (what, mine, theirs)
        want = theirs[1]
        if theirs[0] == 304:                 # httpd repeats Accept-Ranges on a 304, mpmd not
            want = [f for f in want if f[0] != "accept-ranges"]
        assert mine[1] == want, (what, mine[1], want)
        assert mine[2] == theirs[2], (what, mine[2], theirs[2])
        assert mine[3] == theirs[3], (what, "Expires - Date", mine[3], theirs[3])
