"""Static files end to end on every MPM: DirectoryIndex, the trailing-slash 301, 403 without
Indexes, the autoindex listing, MIME types, Require, methods, and sendfile on/off byte identity.
"""

from __future__ import annotations

import hashlib
import subprocess
from email.utils import parsedate_to_datetime

import httpx
import pytest

from tests.integration.e2e_support import exchange, is_html_error
from tests.support.rawclient import RawConn, get, request_once

FILES = {
    "style.css": b"body{}\n",
    "data.json": b'{"a": 1}\n',
    "pic.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 32,
    "notes.txt": b"plain\n",
    "logo.svg": b"<svg/>\n",
    "thing.mpmdx": b"custom\n",
    "page.htm": b"<p>htm</p>\n",
    "space name.txt": b"spaced\n",
    "sub/index.html": b"<p>sub index</p>\n",
    "sub/other.txt": b"other\n",
    "both/home.htm": b"<p>home wins</p>\n",
    "both/index.html": b"<p>index loses</p>\n",
    "noindex/a.txt": b"a\n",
    "listing/a.txt": b"aaa\n",
    "listing/<script>.html": b"x\n",
    "listing/inner/z.txt": b"z\n",
    "denied/file.txt": b"denied\n",
    "private.cfg": b"private\n",
}


@pytest.fixture
def site(conf):
    for name, data in FILES.items():
        path = conf.htdocs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    conf.set("DirectoryIndex", "home.htm index.html")
    conf.add("AddType application/x-mpmd-test .mpmdx")
    conf.add(f'<Directory "{conf.htdocs}/listing">\n  Options Indexes\n'
             '  IndexOptions FancyIndexing FoldersFirst\n</Directory>')
    conf.add(f'<Directory "{conf.htdocs}/denied">\n  Require all denied\n</Directory>')
    conf.add('<Files "*.cfg">\n  Require all denied\n</Files>')
    return conf


def test_directory_index_served_for_slash_urls(site, make_server):
    server = make_server(site)
    assert request_once(server.port, get("/")).body == b"<h1>hello</h1>\n"
    assert request_once(server.port, get("/sub/")).body == b"<p>sub index</p>\n"
    # The DirectoryIndex list is tried in order.
    assert request_once(server.port, get("/both/")).body == b"<p>home wins</p>\n"


def test_directory_without_slash_is_301_with_query_kept(site, make_server):
    server = make_server(site)
    resp = request_once(server.port, get("/sub"))
    assert resp.status == 301, server.diagnostics()
    assert (resp.header("location") or "").endswith("/sub/")
    with_query = request_once(server.port, get("/sub?x=1&y=2"))
    assert with_query.status == 301 and (with_query.header("location") or "").endswith("/sub/?x=1&y=2")
    with httpx.Client(timeout=10, follow_redirects=True) as client:
        r = client.get(server.url + "/sub")
    assert r.status_code == 200 and r.content == b"<p>sub index</p>\n"
    assert str(r.url).endswith("/sub/")


def test_directory_without_index_is_403_without_indexes(site, make_server):
    server = make_server(site)
    resp = request_once(server.port, get("/noindex/"))
    assert resp.status == 403 and is_html_error(resp)
    assert b"a.txt" not in resp.body
    assert request_once(server.port, get("/noindex/a.txt")).status == 200


def test_autoindex_listing_with_options_indexes(site, make_server):
    server = make_server(site)
    resp = request_once(server.port, get("/listing/"))
    assert resp.status == 200, server.diagnostics()
    assert (resp.header("content-type") or "").startswith("text/html")
    body = resp.body.decode()
    assert 'href="a.txt"' in body and 'href="inner/"' in body
    assert "<script>" not in body and "&lt;script&gt;.html" in body     # names are escaped
    assert body.index("inner/") < body.index("a.txt")                     # FoldersFirst
    # The listing's links work.
    assert request_once(server.port, get("/listing/inner/z.txt")).body == b"z\n"
    # Indexes is per directory: a subdirectory of listing/ inherits it, noindex/ does not.
    assert request_once(server.port, get("/listing/inner/")).status == 200
    assert request_once(server.port, get("/noindex/")).status == 403


MIME = {
    "/index.html": "text/html",
    "/page.htm": "text/html",
    "/style.css": "text/css",
    "/data.json": "application/json",
    "/pic.png": "image/png",
    "/notes.txt": "text/plain",
    "/logo.svg": "image/svg+xml",
    "/thing.mpmdx": "application/x-mpmd-test",
}


def test_content_types_from_mime_types_and_addtype(site, make_server):
    server = make_server(site)
    with RawConn(server.port) as c:
        for path, ctype in MIME.items():
            c.send(get(path))
            resp = c.read_response()
            assert resp.status == 200, (path, server.diagnostics())
            got = (resp.header("content-type") or "").split(";")[0].strip()
            assert got == ctype, f"{path}: {got!r} != {ctype!r}"
            assert int(resp.header("content-length") or -1) == len(resp.body)


def test_standard_headers_on_a_file(site, make_server):
    server = make_server(site)
    resp = request_once(server.port, get("/notes.txt"))
    assert resp.body == b"plain\n"
    assert parsedate_to_datetime(resp.header("date") or "").tzinfo is not None
    assert parsedate_to_datetime(resp.header("last-modified") or "") is not None
    assert (resp.header("etag") or "").startswith('"')
    assert resp.header("accept-ranges") == "bytes"


def test_a_cached_file_keeps_a_current_date_and_its_new_content(site, make_server):
    """The static cache hands out one shared answer per file, its head kept for the second
    (core/respond.py Rule 5): a later second gets a new Date, a rewritten file new bytes and
    validators, on one kept-alive connection."""
    import os
    import time
    from datetime import datetime, timezone

    server = make_server(site)
    path = site.htdocs / "notes.txt"
    with RawConn(server.port) as c:
        c.send(get("/notes.txt"))
        first = c.read_response()
        time.sleep(1.2)
        c.send(get("/notes.txt"))
        second = c.read_response()
        assert first.body == second.body == b"plain\n"
        assert first.header("date") != second.header("date"), server.diagnostics()
        now = datetime.now(timezone.utc)
        assert abs((now - parsedate_to_datetime(second.header("date") or "")).total_seconds()) < 3
        path.write_bytes(b"rewritten, longer\n")
        os.utime(path, (time.time() + 5, time.time() + 5))
        c.send(get("/notes.txt"))
        third = c.read_response()
        assert third.body == b"rewritten, longer\n", server.diagnostics()
        assert third.header("content-length") == str(len(b"rewritten, longer\n"))
        assert third.header("etag") != second.header("etag")


def test_percent_encoded_names(site, make_server):
    server = make_server(site)
    assert request_once(server.port, get("/space%20name.txt")).body == b"spaced\n"
    assert request_once(server.port, get("/sub/%6fther.txt")).body == b"other\n"


def test_require_all_denied_in_directory_and_files(site, make_server):
    server = make_server(site)
    assert request_once(server.port, get("/denied/file.txt")).status == 403
    resp = request_once(server.port, get("/private.cfg"))
    assert resp.status == 403 and b"private\n" not in resp.body
    assert request_once(server.port, get("/notes.txt")).status == 200


def test_methods_on_static_files(site, make_server):
    server = make_server(site)
    resp, closed, _ = exchange(server.port, b"DELETE /notes.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert resp.status == 405 and "GET" in (resp.header("allow") or "")
    assert (site.htdocs / "notes.txt").exists()
    opts = request_once(server.port, b"OPTIONS /notes.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    assert opts.status == 200 and "HEAD" in (opts.header("allow") or "")


def _fetch_all(server, path: str) -> list[bytes]:
    """The same file through three clients: raw socket, httpx, curl."""
    raw = request_once(server.port, get(path)).body
    with httpx.Client(timeout=30) as client:
        via_httpx = client.get(server.url + path).content
    via_curl = subprocess.run(["curl", "-s", "--max-time", "30", server.url + path],
                              capture_output=True, check=True, timeout=40).stdout
    return [raw, via_httpx, via_curl]


def test_sendfile_on_and_off_give_identical_bytes(conf, tmp_path, make_server):
    data = hashlib.shake_256(b"mpmd").digest(5 * 1024 * 1024)
    (conf.htdocs / "big.bin").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    for flag in ("On", "Off"):
        server = make_server(conf.set("EnableSendfile", flag))
        bodies = _fetch_all(server, "/big.bin")
        assert [hashlib.sha256(b).hexdigest() for b in bodies] == [digest] * 3, f"EnableSendfile {flag}"
        # A range of the big file, across the sendfile path too.
        part = request_once(server.port, get("/big.bin", extra="Range: bytes=1000000-1999999\r\n"))
        assert part.status == 206 and part.body == data[1000000:2000000]
        server.stop()
