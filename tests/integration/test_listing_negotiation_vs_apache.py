"""Debian's autoindex.conf, mime.conf, negotiation.conf and alias.conf, served by mpmd (every
MPM) and by a standalone apache2 from the same files: the directory listings are the same
bytes, AddLanguage/AddEncoding/AddCharset give the same header fields, and MultiViews picks
the same variant (status, Content-Type, Content-Language, Content-Encoding, Vary, TCN,
Content-Location, body; for a 406 the Alternates field and the variant list too).

Type maps (Debian's ``AddHandler type-map var``) are compared the same way.  Then what has no
peer to compare with: the negotiation is never taken from the route cache, a 304 of a variant
keeps its Vary, and an AddHandler naming a handler mpmd lacks.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from tests.support.apache import config, free_port, needs_apache, running

MODS = Path("/etc/apache2/mods-available")
DEBIAN = [MODS / name for name in ("autoindex.conf", "mime.conf", "negotiation.conf",
                                   "alias.conf")]
APACHE_MODULES = ("autoindex", "mime", "alias", "dir", "negotiation")
pytestmark = [needs_apache(*(f"mod_{m}.so" for m in APACHE_MODULES)),
              pytest.mark.skipif(not all(p.exists() for p in DEBIAN),
                                 reason="Debian's mods-available/*.conf are not installed")]

FILES = {
    "listing/a.txt": b"aaa\n",
    "listing/b.html": b"<p>b</p>\n",
    "listing/big.bin": b"\0" * 5000,
    "listing/huge.iso": b"\0" * 200_000,
    "listing/file9.txt": b"9\n",
    "listing/file10.txt": b"10\n",
    "listing/File3.TXT": b"3\n",
    "listing/x.tar.gz": b"gz\n",
    "listing/README": b"readme\n",
    "listing/HEADER.html": b"<p>the header</p>\n",
    "listing/README.html": b"<p>the readme</p>\n",
    "listing/.hidden": b"h\n",
    "listing/backup~": b"old\n",
    "listing/a b&c<d>.txt": b"odd\n",
    "listing/img.png": b"\x89PNG\r\n",
    "listing/page.html": b"<html><head><title>My\n Page</title></head></html>\n",
    "listing/averyveryverylongfilenamethatislonger.txt": b"long\n",
    "listing/sub/q.txt": b"q\n",
    "listing/secret.txt": b"hidden by Require\n",
    "listing/sub/secret.txt": b"shown by ShowForbidden\n",
    "listing/sub/deeper/z.txt": b"z\n",
    "styled/a.txt": b"a\n",
    "styled/b.tar.gz": b"b\n",
    "styled/dir/c.txt": b"c\n",
    "mvhead/HEADER.html": b"<p>found by MultiViews</p>\n",
    "mvnone/data.foo.txt": b"foo\n",
    "mvany/data.foo.txt": b"foo\n",
    "mvhead/notes.txt": b"n\n",
    "plain/a.txt": b"a\n",
    "plain/HEADER.txt": b"a <plain> header\n",
    "plain/sub/b.txt": b"b\n",
    "mime/x.html.pt-br": b"pt\n",
    "mime/y.txt.utf8.fr": b"fr\n",
    "mime/z.tar.gz": b"gz\n",
    "mime/w.gz.txt": b"wz\n",
    "mime/v.es": b"es\n",
    "mime/.png": b"hidden\n",
    "mv/index.html.en": b"EN\n",
    "mv/index.html.fr": b"FR!\n",
    "mv/page.de.html": b"DE\n",
    "mv/page.en.html": b"EN2\n",
    "mv/data.txt.gz": b"gzdata\n",
    "mv/notes.txt": b"plain\n",
    "mv/only.fr.txt": b"zz\n",
    "mv/index.foo.html": b"never a variant of index\n",
    "mv/doc.html": b"<p>html</p>\n",
    "mv/mixed.en.html": b"open\n",
    "mv/se;mi x.en.html": b"odd name\n",
    "mv/mixed.fr.html": b"refused\n",
    "mv/doc.txt": b"text\n",
    "mv/strict/index.html.en": b"EN\n",
    "mv/strict/index.html.fr": b"FR\n",
    "mv/strict/index.html.de": b"DE\n",
    "tm/greet.en.html": b"hello\n",
    "tm/greet.de.html": b"hallo\n",
    "tm/greet.var": b"URI: greet\n\nURI: greet.en.html\nContent-Type: text/html\n"
                    b"Content-Language: en\n\nURI: greet.de.html\nContent-Type: text/html;qs=0.5\n"
                    b"Content-Language: de\n\nContent-Type: text/plain\nContent-Language: fr\n"
                    b"Body:--x--\nbonjour\n--x--\n",
    "tm/g2.en.html": b"hello\n",
    "tm/g2.de.html": b"hallo\n",
    "tm/g2.var": b"URI: g2.en.html\nContent-Type: text/html\nContent-Language: en\n\n"
                 b"URI: g2.de.html\nContent-Type: text/html\nContent-Language: de\n"
                 b"Description: (the German one)\n",
    "tm/mapped.var": b"URI: g2.de.html\nContent-Type: text/html\nContent-Language: de\n",
}
WHEN = time.time() - 86400 * 3          # settled files: strong validators, stable listings

SECTIONS = """
<Directory "{h}/listing">
    Options +Indexes
</Directory>
<Files "secret.txt">
    Require all denied
</Files>
<Files "mixed.fr.html">
    Require all denied
</Files>
<Directory "{h}/listing/sub">
    IndexOptions +FoldersFirst -VersionSort +ShowForbidden
    AddDescription "A <b>text</b> file" *.txt
    IndexOrderDefault Descending Name
</Directory>
<Directory "{h}/styled">
    Options +Indexes
    IndexStyleSheet "/css/list.css"
    IndexHeadInsert "<meta name=\\"robots\\" content=\\"noindex\\">"
    IndexOptions +AddAltClass +SuppressLastModified
</Directory>
<Directory "{h}/mvnone">
    Options +MultiViews
</Directory>
<Directory "{h}/mvany">
    Options +MultiViews
    MultiviewsMatch Any
</Directory>
<Directory "{h}/mvhead">
    Options +Indexes +MultiViews
    HeaderName HEADER
    ReadmeName /plain/HEADER.txt
</Directory>
<Directory "{h}/plain">
    Options +Indexes
    IndexOptions FancyIndexing NameWidth=12 SuppressSize IconsAreLinks
    IndexOptions SuppressDescription
    HeaderName HEADER.txt
    AddIcon /icons/special.gif .txt
    AddAlt "Text!" *.txt
</Directory>
<Directory "{h}/plain/sub">
    IndexOptions None
    IndexIgnoreReset On
    IndexIgnore b.txt
</Directory>
<Directory "{h}/tm">
    Options +MultiViews
</Directory>
<Directory "{h}/mv">
    Options +MultiViews
    AddEncoding x-gzip .gz
</Directory>
<Directory "{h}/mv/strict">
    ForceLanguagePriority None
</Directory>
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("debian-defaults")
    htdocs = root / "htdocs"
    for name, data in FILES.items():
        path = htdocs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for path in [htdocs, *htdocs.rglob("*")]:
        os.utime(path, (WHEN, WHEN))
    return root


def includes() -> str:
    return "\n".join(f'Include "{p}"' for p in DEBIAN)


@pytest.fixture(scope="module")
def apache(site: Path):
    port = free_port()
    root = site / "apache"
    root.mkdir()
    htdocs = site / "htdocs"
    extra = includes() + "\n" + SECTIONS.format(h=htdocs)
    (root / "httpd.conf").write_text(config(root, port, htdocs, modules=APACHE_MODULES,
                                            extra=extra))
    with running(root / "httpd.conf", [("127.0.0.1", port)]):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def mpmd(site: Path, conf, make_server):
    htdocs = site / "htdocs"
    conf.set("DocumentRoot", f'"{htdocs}"')
    conf.add(f'<Directory "{htdocs}">\n    Require all granted\n</Directory>')
    for name in APACHE_MODULES:
        conf.add(f"LoadModule {name}_module /usr/lib/apache2/modules/mod_{name}.so")
    conf.add(includes())
    conf.add(SECTIONS.format(h=htdocs))
    return make_server(conf)


class Answer:
    """An answer with its body as sent (httpx would decode a Content-Encoding)."""

    def __init__(self, resp: httpx.Response, raw: bytes) -> None:
        self.status_code, self.headers, self.content = resp.status_code, resp.headers, raw
        self.text = raw.decode("utf-8", "surrogateescape")


def fetch(base: str, path: str, headers: dict[str, str] | None = None,
          method: str = "GET") -> Answer:
    with httpx.Client(timeout=10) as client:
        with client.stream(method, base + path, headers=headers or {}) as resp:
            return Answer(resp, b"".join(resp.iter_raw()))


LISTINGS = ["/listing/", "/listing/?C=S;O=D", "/listing/?C=M;O=A", "/listing/?C=N;O=D;V=0",
            "/listing/?F=1", "/listing/?F=0", "/listing/?F=2;C=D;O=A", "/listing/?P=*.txt",
            "/listing/?P=f*;C=S&O=D", "/listing/sub/", "/listing/sub/?C=D;O=D",
            "/listing/sub/deeper/", "/plain/", "/plain/?C=N;O=D", "/plain/sub/", "/mvhead/",
            "/styled/", "/styled/?F=1"]


def test_listings_are_apache_s(apache, mpmd):
    for path in LISTINGS:
        theirs, ours = fetch(apache, path), fetch(mpmd.url, path)
        assert ours.status_code == theirs.status_code == 200, path
        assert ours.headers["content-type"] == theirs.headers["content-type"], path
        assert ours.text == theirs.text, f"{path}\n--- apache\n{theirs.text}\n--- mpmd\n{ours.text}"
    # HEAD: the head alone; the icons Debian's alias.conf maps are served
    head = fetch(mpmd.url, "/listing/", method="HEAD")
    assert head.status_code == 200 and head.content == b""
    for icon in ("/icons/blank.gif", "/icons/folder.gif", "/icons/text.gif"):
        theirs, ours = fetch(apache, icon), fetch(mpmd.url, icon)
        assert ours.status_code == theirs.status_code == 200, icon
        assert ours.content == theirs.content and ours.headers["content-type"] == "image/gif"


MIME_FILES = ["/mime/x.html.pt-br", "/mime/y.txt.utf8.fr", "/mime/z.tar.gz", "/mime/w.gz.txt",
              "/mime/v.es", "/mime/.png", "/mv/data.txt.gz", "/listing/x.tar.gz"]
FIELDS = ("content-type", "content-language", "content-encoding")


def test_mime_fields_are_apache_s(apache, mpmd):
    for path in MIME_FILES:
        theirs, ours = fetch(apache, path), fetch(mpmd.url, path)
        assert ours.status_code == theirs.status_code == 200, path
        for name in FIELDS:
            assert ours.headers.get(name) == theirs.headers.get(name), (path, name)
        assert ours.content == theirs.content


NEGOTIATED = [
    ("/mv/index", {}),
    ("/mv/index", {"Accept-Language": "fr"}),
    ("/mv/index", {"Accept-Language": "fr;q=0.5, en;q=0.9"}),
    ("/mv/index", {"Accept-Language": "de"}),                  # Fallback: LanguagePriority
    ("/mv/index", {"Accept-Language": "en-US"}),
    ("/mv/index.html", {"Accept-Language": "fr"}),
    ("/mv/", {"Accept-Language": "fr"}),                       # DirectoryIndex index.html
    ("/mv/page", {"Accept-Language": "de, fr"}),
    ("/mv/page", {"Accept-Language": "*"}),
    ("/mv/page.html", {}),                                     # page.en.html is no variant
    ("/mv/data", {}),
    ("/mv/data", {"Accept-Encoding": "gzip"}),
    ("/mv/data", {"Accept-Encoding": "identity"}),
    ("/mv/only", {"Accept-Language": "en"}),
    ("/mv/notes", {}),
    ("/mv/doc", {}),
    ("/mv/doc", {"Accept": "text/plain"}),
    ("/mv/doc", {"Accept": "text/html;q=0.5, text/plain;q=0.4"}),
    ("/mv/doc", {"Accept": "image/png"}),                      # 406
    ("/mv/nothing", {}),
    ("/mv/mixed", {"Accept-Language": "fr"}),                  # a refused file is no variant
    ("/mv/mixed.fr.html", {}),
    ("/mv/se%3Bmi%20x", {}),                                   # Content-Location escaped
    ("/mv/strict/index", {"Accept-Language": "ja"}),           # 406 without Fallback
    ("/mv/strict/index", {"Accept-Language": "ja;q=0.5, *;q=0.1"}),
    ("/mv/strict/index", {"Accept-Language": "de;q=0.8, fr;q=0.8"}),
    ("/mv/strict/index", {"Accept": "image/*"}),
    ("/mvnone/data", {}),                                      # foo: unknown, no variant
    ("/mvany/data", {}),                                       # MultiviewsMatch Any
    ("/tm/greet.var", {}),                                     # type maps (AddHandler type-map)
    ("/tm/greet.var", {"Accept-Language": "de"}),
    ("/tm/greet.var", {"Accept-Language": "fr"}),
    ("/tm/greet.var", {"Accept": "image/png"}),
    ("/tm/g2.var", {"Accept-Language": "de"}),
    ("/tm/g2.var", {"Accept-Language": "ja", "Accept": "text/plain"}),
    ("/tm/mapped", {}),                                        # MultiViews finds the map
]
NEG_FIELDS = FIELDS + ("vary", "tcn", "content-location", "alternates")


def test_multiviews_choose_as_apache(apache, mpmd):
    for path, headers in NEGOTIATED:
        for method in ("GET", "HEAD"):
            theirs = fetch(apache, path, headers, method)
            ours = fetch(mpmd.url, path, headers, method)
            where = (method, path, headers)
            assert ours.status_code == theirs.status_code, where
            for name in NEG_FIELDS:
                assert ours.headers.get(name) == theirs.headers.get(name), (where, name)
            if theirs.status_code in (200, 406):
                assert ours.content == theirs.content, where


def test_negotiation_is_never_cached(mpmd):
    """The route cache keeps no negotiated outcome: the same URL alternates with the
    client's Accept-Language, while a file outside MultiViews is unaffected."""
    with httpx.Client(timeout=10) as client:
        for _ in range(5):
            for lang, body in (("fr", b"FR!\n"), ("en", b"EN\n")):
                resp = client.get(mpmd.url + "/mv/index", headers={"Accept-Language": lang})
                assert resp.content == body and resp.headers["content-language"] == lang
            assert client.get(mpmd.url + "/listing/a.txt").content == b"aaa\n"


def test_a_variant_s_304_keeps_vary_and_content_location(mpmd):
    with httpx.Client(timeout=10) as client:
        first = client.get(mpmd.url + "/mv/index", headers={"Accept-Language": "fr"})
        again = client.get(mpmd.url + "/mv/index", headers={
            "Accept-Language": "fr", "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["vary"] == "negotiate,accept-language"
    assert again.headers["content-location"] == "index.html.fr"


@pytest.fixture
def extra_site(conf):
    (conf.htdocs / "script.cgi").write_bytes(b"#!/bin/sh\necho secret\n")
    conf.add("AddHandler cgi-script .cgi")
    return conf


def test_addhandler_without_the_module_serves_the_file_as_apache_does(extra_site, make_server):
    server = make_server(extra_site)
    resp = fetch(server.url, "/script.cgi")
    assert resp.status_code == 200 and resp.content == b"#!/bin/sh\necho secret\n"
    from tests.support.harness import wait_for
    wait_for(lambda: 'handler "cgi-script" not found' in server.error_log_text(),
             message="the error log's line about cgi-script")
