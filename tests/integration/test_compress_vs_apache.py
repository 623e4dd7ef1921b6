"""mod_deflate and mod_brotli as Debian's apache2 2.4 runs them, checked against apache2 itself.

The same document root and the same filter lines go to a standalone apache2 (event MPM,
mod_mime, mod_filter, mod_deflate, mod_brotli) and to mpmd on every MPM; the same requests
go to both.  Status, every header field but Date, Server, Connection and Keep-Alive, and the
body once decoded by its Content-Encoding must match.  The named exceptions (docs/compression.md,
"Differences from Apache") are asserted as differences, so a change on either side shows:

* a Range request of a client that accepts gzip: apache2 answers a 206 of the gzip bytes
  (its byterange filter runs after DEFLATE), mpmd a 206 of the identity bytes;
* If-None-Match with the ``-gzip`` tag: apache2 answers 200 (its bug 45023), mpmd 304;
* a 304: mpmd also sends Vary (RFC 9110 15.4.5), apache2 does not.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import brotli
import pytest

from tests.support import apache
from tests.support.rawclient import RawConn, RawResponse

pytestmark = apache.needs_apache("mod_mime.so", "mod_filter.so", "mod_deflate.so",
                                 "mod_brotli.so")

IGNORED = {"date", "server", "connection", "keep-alive"}
PAGE = b"".join(b"<p>paragraph %05d: lorem ipsum dolor sit amet, %d</p>\n" % (i, i * i)
                for i in range(2500))
TEXT = b"".join(b"line %04d of a text file\n" % i for i in range(300))
FILES = {"page.html": PAGE, "notes.txt": TEXT, "style.css": b"p { margin: 0 }\n" * 40,
         "edge68.html": b"e" * 68, "edge69.html": b"f" * 69, "pic.png": b"\x89PNG" + bytes(3000),
         "empty.html": b""}

DEFLATE_ONLY = "AddOutputFilterByType DEFLATE text/html text/plain text/css\n"
BOTH = ("AddOutputFilterByType BROTLI_COMPRESS;DEFLATE text/html text/plain text/css\n"
        "DeflateCompressionLevel 6\nBrotliCompressionQuality 5\n")

# (method, path, Accept-Encoding or None, extra header lines)
COMMON = [
    ("GET", "/page.html", "gzip", ()), ("GET", "/page.html", None, ()),
    ("GET", "/page.html", "gzip;q=0", ()), ("GET", "/page.html", "identity", ()),
    ("GET", "/page.html", "*", ()), ("GET", "/page.html", "x-gzip", ()),
    ("GET", "/notes.txt", "gzip", ()), ("GET", "/style.css", "deflate, gzip", ()),
    ("GET", "/pic.png", "gzip", ()), ("GET", "/edge69.html", "gzip", ()),
    ("HEAD", "/page.html", "gzip", ()), ("HEAD", "/notes.txt", "gzip", ()),
    ("GET", "/page.html", None, ("Range: bytes=0-99",)),
    ("GET", "/missing.html", "gzip", ()),
]
DEFLATE_CASES = COMMON + [
    ("GET", "/edge68.html", "gzip", ()), ("GET", "/empty.html", "gzip", ()),
    ("GET", "/page.html", "br", ()), ("HEAD", "/edge68.html", "gzip", ()),
]
BOTH_CASES = COMMON + [
    ("GET", "/page.html", "br", ()), ("GET", "/page.html", "gzip, br", ()),
    ("GET", "/page.html", "br;q=0, gzip", ()), ("GET", "/page.html", "gzip;q=0.5, br;q=0.1", ()),
    ("GET", "/notes.txt", "br", ()), ("HEAD", "/page.html", "br", ()),
    ("GET", "/page.html", "br;q=0.0", ()),
]


def request(port: int, method: str, path: str, ae: str | None, extra: tuple[str, ...]) -> RawResponse:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close"]
    if ae is not None:
        lines.append(f"Accept-Encoding: {ae}")
    lines += extra
    with RawConn(port) as conn:
        conn.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        return conn.read_response(head_only=method == "HEAD")


def decoded(resp: RawResponse) -> bytes:
    coding = resp.header("Content-Encoding")
    if not resp.body:                            # HEAD
        return b""
    if coding == "gzip":
        return gzip.decompress(resp.body)
    if coding == "br":
        return brotli.decompress(resp.body)
    return resp.body


def fields(resp: RawResponse) -> dict[str, str]:
    return {k.lower(): v for k, v in resp.headers if k.lower() not in IGNORED}


@pytest.fixture
def docroot(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    for name, data in FILES.items():
        (root / name).write_bytes(data)
    past = 1_700_000_000                         # settled files: strong ETags on both sides
    for path in [root, *root.iterdir()]:
        os.utime(path, (past, past))
    return root


def both(conf, make_server, tmp_path: Path, docroot: Path, lines: str):
    conf.set("DocumentRoot", f'"{docroot}"').add(f'<Directory "{docroot}">\n'
                                                  "    Require all granted\n</Directory>\n" + lines)
    server = make_server(conf)
    aroot = tmp_path / "apache"
    aroot.mkdir()
    port = apache.free_port()
    text = apache.config(aroot, port, docroot, modules=("mime", "filter", "deflate", "brotli"),
                         extra="TypesConfig /etc/mime.types\n" + lines)
    (aroot / "httpd.conf").write_text(text)
    return server, aroot / "httpd.conf", port


def compare(server_port: int, apache_port: int, cases: list) -> None:
    for method, path, ae, extra in cases:
        ours = request(server_port, method, path, ae, extra)
        theirs = request(apache_port, method, path, ae, extra)
        what = (method, path, ae, extra)
        assert ours.status == theirs.status, what
        if ours.status == 404:                   # the page's wording is the core's business
            assert fields(ours).get("content-encoding") == fields(theirs).get("content-encoding")
            continue
        assert fields(ours) == fields(theirs), what
        assert decoded(ours) == decoded(theirs), what


@pytest.mark.parametrize("lines, cases", [(DEFLATE_ONLY, DEFLATE_CASES), (BOTH, BOTH_CASES)],
                         ids=["deflate", "brotli+deflate"])
def test_same_answers_as_apache(conf, make_server, tmp_path, docroot, lines, cases) -> None:
    server, aconf, aport = both(conf, make_server, tmp_path, docroot, lines)
    with apache.running(aconf, [("127.0.0.1", aport)]):
        compare(server.port, aport, cases)


def test_named_differences(conf, make_server, tmp_path, docroot) -> None:
    server, aconf, aport = both(conf, make_server, tmp_path, docroot, DEFLATE_ONLY)
    with apache.running(aconf, [("127.0.0.1", aport)]):
        plain = request(aport, "GET", "/page.html", None, ()).header("ETag")
        assert plain == request(server.port, "GET", "/page.html", None, ()).header("ETag")
        gz = plain[:-1] + '-gzip"'
        # Range with gzip accepted: apache2 ranges the gzip bytes, mpmd the identity bytes
        rng = ("Range: bytes=0-99",)
        theirs = request(aport, "GET", "/page.html", "gzip", rng)
        ours = request(server.port, "GET", "/page.html", "gzip", rng)
        assert theirs.status == ours.status == 206
        assert theirs.header("Content-Encoding") == "gzip" and theirs.header("ETag") == gz
        assert ours.header("Content-Encoding") is None and ours.body == PAGE[:100]
        assert ours.header("ETag") == plain and ours.header("Vary") == "Accept-Encoding"
        # If-None-Match with the -gzip tag: apache2 200 (bug 45023), mpmd 304
        inm = (f"If-None-Match: {gz}",)
        theirs = request(aport, "GET", "/page.html", "gzip", inm)
        ours = request(server.port, "GET", "/page.html", "gzip", inm)
        assert theirs.status == 200 and ours.status == 304 and ours.header("ETag") == gz
        # a 304 for the identity tag: the same ETag; mpmd adds Vary
        inm = (f"If-None-Match: {plain}",)
        theirs = request(aport, "GET", "/page.html", "gzip", inm)
        ours = request(server.port, "GET", "/page.html", "gzip", inm)
        assert theirs.status == ours.status == 304
        assert theirs.header("ETag") == ours.header("ETag") == plain
        assert theirs.header("Vary") is None and ours.header("Vary") == "Accept-Encoding"

