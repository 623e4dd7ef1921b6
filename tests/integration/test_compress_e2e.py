"""mod_deflate and mod_brotli on every MPM (modules/compress.py rules): negotiation by
Accept-Encoding, Vary, the ETag suffix and conditional requests on it, ranges and HEAD,
answers left alone, streamed WSGI and ASGI bodies, and the static variant cache."""

from __future__ import annotations

import gzip
import os
import textwrap
import zlib
from pathlib import Path

import brotli
import httpx
import pytest

from tests.apps.compress_apps import CHUNKS, TEXT
from tests.support.harness import wait_for
from tests.support.rawclient import RawConn

PAGE = b"".join(b"<p>paragraph %05d: lorem ipsum dolor sit amet</p>\n" % i for i in range(2000))
DROP = {"date", "server", "transfer-encoding"}     # framing: the core's, not the filter's


def decoded(r: httpx.Response) -> bytes:
    """The body as sent, decoded by its Content-Encoding (httpx's own decoding bypassed)."""
    raw = r.raw_bytes  # type: ignore[attr-defined]
    coding = r.headers.get("content-encoding")
    if coding == "gzip":
        return gzip.decompress(raw)
    if coding == "br":
        return brotli.decompress(raw)
    return raw


def fields(r: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in r.headers.items() if k not in DROP}


@pytest.fixture
def site(conf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    htdocs = conf.htdocs
    (htdocs / "page.html").write_bytes(PAGE)
    (htdocs / "small.html").write_bytes(b"x" * 68)
    (htdocs / "just.html").write_bytes(b"y" * 69)
    (htdocs / "pic.png").write_bytes(b"\x89PNG" + bytes(2000))
    (tmp_path / "env_mod.py").write_text(textwrap.dedent('''
        from mpmd.core.modules import Module

        class Env(Module):
            name = "compress_env_module"
            route_pure = True

            def header_parser(self, ctx):
                for word in (ctx.request.header(b"x-env") or b"").decode().split():
                    ctx.env[word] = "1"
    '''))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return conf.add(textwrap.dedent(f'''
        LoadModule compress_env_module env_mod:Env
        LoadModule filter_module /usr/lib/apache2/modules/mod_filter.so
        LoadModule deflate_module /usr/lib/apache2/modules/mod_deflate.so
        LoadModule brotli_module /usr/lib/apache2/modules/mod_brotli.so
        <IfModule mod_deflate.c>
            <IfModule mod_filter.c>
                AddOutputFilterByType BROTLI_COMPRESS;DEFLATE text/html text/plain
                AddOutputFilterByType BROTLI_COMPRESS;DEFLATE text/event-stream
            </IfModule>
        </IfModule>
        DeflateCompressionLevel 6
        BrotliCompressionQuality 5
        LogFormat "%r %>s %{{mpmd-compress}}n" compress
        CustomLog "{tmp_path}/compress_log" compress
        DeflateFilterNote Input in
        DeflateFilterNote Output out
        DeflateFilterNote Ratio ratio
        BrotliFilterNote Ratio ratio
        CustomLog "{tmp_path}/notes_log" "%U %{{in}}n %{{out}}n %{{ratio}}n"
        WSGIApp /text tests.apps.compress_apps:text
        WSGIApp /stream tests.apps.compress_apps:stream
        WSGIApp /encoded tests.apps.compress_apps:encoded
        WSGIApp /no-transform tests.apps.compress_apps:no_transform
        ASGIApp /astream tests.apps.compress_apps:astream
        ASGIApp /atext tests.apps.compress_apps:atext
    '''))


def get(client: httpx.Client, path: str, ae: str | None, **headers: str) -> httpx.Response:
    hdrs = {"Accept-Encoding": ae} if ae is not None else {}
    hdrs.update({k.replace("_", "-"): v for k, v in headers.items()})
    req = client.build_request("GET", path, headers=hdrs)
    if ae is None:
        del req.headers["Accept-Encoding"]
    r = client.send(req, stream=True)
    r.raw_bytes = b"".join(r.iter_raw())  # type: ignore[attr-defined]
    r.close()
    return r


@pytest.mark.parametrize("ae, coding", [
    ("gzip", "gzip"), ("br", "br"), ("gzip, br", "br"), ("br;q=0, gzip", "gzip"),
    ("gzip;q=0.5, br;q=0.1", "br"), ("GZIP", "gzip"), ("gzip;q=0", None), ("br;q=0.000", None),
    ("identity", None), ("*", None), ("x-gzip", None), (None, None)])
def test_negotiation(site, make_server, ae, coding) -> None:
    server = make_server(site)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for path, body in [("/page.html", PAGE), ("/text", TEXT), ("/atext", TEXT)]:
            r = get(client, path, ae)
            assert r.status_code == 200
            assert r.headers.get("content-encoding") == coding, (path, ae, r.headers)
            assert r.headers["vary"] == "Accept-Encoding"
            assert decoded(r) == body
            if coding is not None:
                assert int(r.headers["content-length"]) == len(r.raw_bytes) < len(body)


def test_etag_suffix_and_conditionals(site, make_server) -> None:
    server = make_server(site)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        plain = get(client, "/page.html", None).headers["etag"]
        gz = get(client, "/page.html", "gzip").headers["etag"]
        br = get(client, "/page.html", "br").headers["etag"]
        assert gz == plain[:-1] + '-gzip"' and br == plain[:-1] + '-br"'
        # If-None-Match with the encoded tag: 304 carrying it, and Vary (RFC 9110 15.4.5)
        r = get(client, "/page.html", "gzip", If_None_Match=gz)
        assert r.status_code == 304 and r.headers["etag"] == gz
        assert r.headers["vary"] == "Accept-Encoding" and "content-encoding" not in r.headers
        # the identity tag still matches (the cache holds that one): 304 with that tag
        r = get(client, "/page.html", "gzip", If_None_Match=plain)
        assert r.status_code == 304 and r.headers["etag"] == plain
        r = get(client, "/page.html", "br", If_None_Match=f'"other", {br}')
        assert r.status_code == 304 and r.headers["etag"] == br
        assert get(client, "/page.html", "gzip", If_None_Match='"other"').status_code == 200
        # If-Match takes the encoded tags as the file's
        for tag in (gz, br, plain):
            r = get(client, "/page.html", "gzip", If_Match=tag)
            assert r.status_code == 200 and decoded(r) == PAGE
        assert get(client, "/page.html", "gzip", If_Match='"nope"').status_code == 412
        # If-Range: the ranged answer is identity, so only the identity tag keeps the Range
        r = get(client, "/page.html", "gzip", Range="bytes=0-99", If_Range=plain)
        assert r.status_code == 206 and r.raw_bytes == PAGE[:100]
        r = get(client, "/page.html", "gzip", Range="bytes=0-99", If_Range=gz)
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
        assert decoded(r) == PAGE


def test_ranges_get_identity_bytes(site, make_server) -> None:
    server = make_server(site)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        plain = get(client, "/page.html", None).headers["etag"]
        r = get(client, "/page.html", "gzip, br", Range="bytes=10-19")
        assert r.status_code == 206 and r.raw_bytes == PAGE[10:20]
        assert "content-encoding" not in r.headers and r.headers["etag"] == plain
        assert r.headers["content-range"] == f"bytes 10-19/{len(PAGE)}"
        r = get(client, "/page.html", "gzip", Range="bytes=0-1,5-6")
        assert r.status_code == 206 and "content-encoding" not in r.headers
        r = get(client, "/page.html", "gzip", Range=f"bytes={len(PAGE) + 5}-")
        assert r.status_code == 416 and "content-encoding" not in r.headers


@pytest.mark.parametrize("ae", ["gzip", "br", "identity"])
def test_head_gets_the_fields_of_get(site, make_server, ae) -> None:
    server = make_server(site)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for path in ("/page.html", "/just.html", "/small.html", "/text", "/atext", "/stream"):
            for first in ("HEAD", "GET"):          # a cold variant cache, then a warm one
                head = client.request("HEAD", path, headers={"Accept-Encoding": ae})
                got = get(client, path, ae)
                assert fields(head) == fields(got), (path, first)
                assert head.content == b""


def test_answers_left_alone(site, make_server) -> None:
    server = make_server(site)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        r = get(client, "/small.html", "gzip, br")          # 68 bytes: not worth it, no Vary
        assert "content-encoding" not in r.headers and "vary" not in r.headers
        r = get(client, "/just.html", "gzip")                # 69 bytes: compressed
        assert r.headers["content-encoding"] == "gzip" and decoded(r) == b"y" * 69
        r = get(client, "/pic.png", "gzip")                  # not a type of the filter
        assert "content-encoding" not in r.headers and "vary" not in r.headers
        r = get(client, "/encoded", "gzip, br")              # already gzip: passed through
        assert r.headers["content-encoding"] == "gzip" and decoded(r) == TEXT
        assert "vary" not in r.headers
        r = get(client, "/no-transform", "gzip")
        assert "content-encoding" not in r.headers and r.raw_bytes == TEXT
        r = get(client, "/missing.html", "gzip")             # the server's own error page
        assert r.status_code == 404 and "content-encoding" not in r.headers


def test_environment_variables(site, make_server) -> None:
    server = make_server(site)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        r = get(client, "/page.html", "gzip, br", X_Env="no-brotli")
        assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "Accept-Encoding"
        r = get(client, "/page.html", "gzip", X_Env="no-gzip no-brotli")
        assert "content-encoding" not in r.headers and "vary" not in r.headers
        r = get(client, "/page.html", "gzip", X_Env="dont-vary")
        assert r.headers["content-encoding"] == "gzip" and "vary" not in r.headers
        r = get(client, "/page.html", None, X_Env="force-gzip no-brotli")
        assert r.headers["content-encoding"] == "gzip" and decoded(r) == PAGE
        r = get(client, "/text", "gzip", X_Env="gzip-only-text/html no-brotli")
        assert "content-encoding" not in r.headers
        r = get(client, "/page.html", "gzip", X_Env="gzip-only-text/html no-brotli")
        assert r.headers["content-encoding"] == "gzip"


def _read_chunk(conn: RawConn) -> bytes:
    """One chunk of a chunked body (b"" for the last one)."""
    size = int(conn._line().split(b";")[0], 16)
    return conn._exact(size + 2)[:-2]


@pytest.mark.parametrize("path", ["/stream", "/astream"])
@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_streams_are_flushed_chunk_by_chunk(site, make_server, tmp_path, path, coding) -> None:
    """Each chunk the app yields arrives decodable before the app is let go on."""
    server = make_server(site)
    gate = tmp_path / f"gate-{coding}{path.strip('/')}"
    gate.mkdir()
    with RawConn(server.port) as conn:
        conn.send(f"GET {path}?d={gate} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: {coding}\r\n"
                  f"\r\n".encode())
        status, headers = _head(conn)
        assert b"200" in status
        assert headers[b"content-encoding"] == coding.encode()
        assert headers[b"transfer-encoding"] == b"chunked"
        dec = zlib.decompressobj(16 + 15) if coding == "gzip" else brotli.Decompressor()
        got = b""
        for i, chunk in enumerate(CHUNKS):
            while len(got) < sum(len(c) for c in CHUNKS[:i + 1]):
                piece = _read_chunk(conn)
                assert piece, "the stream ended early"
                got += dec.decompress(piece) if coding == "gzip" else dec.process(piece)
            assert got == b"".join(CHUNKS[:i + 1])
            if i + 1 < len(CHUNKS):
                (gate / f"go{i + 1}").touch()   # only now may the app send the next one
        while True:
            piece = _read_chunk(conn)
            if not piece:
                break
            got += dec.decompress(piece) if coding == "gzip" else dec.process(piece)
        assert got == b"".join(CHUNKS)


def _head(conn: RawConn) -> tuple[bytes, dict[bytes, bytes]]:
    status = conn._line()
    headers: dict[bytes, bytes] = {}
    while True:
        line = conn._line()
        if not line:
            return status, headers
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()


def _log_lines(path: Path, count: int) -> list[str]:
    """The log's lines once it has ``count``: a request's line is written after its answer."""
    return wait_for(lambda: path.exists() and len(lines := path.read_text().splitlines()) >= count
                    and lines, message=f"{count} lines in {path.name}")


def test_static_variant_made_once(site, make_server, tmp_path) -> None:
    """The second client of a file costs no compression: the log's %{mpmd-compress}n says
    "hit", and the bytes are the same (the same connection, so the same process)."""
    server = make_server(site)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        first = get(client, "/page.html", "gzip")
        again = [get(client, "/page.html", "gzip") for _ in range(3)]
        head = client.head("/page.html", headers={"Accept-Encoding": "gzip"})
        br = get(client, "/page.html", "br")
        text = get(client, "/text", "gzip")
    assert all(r.raw_bytes == first.raw_bytes and r.headers["etag"] == first.headers["etag"]
               for r in again)
    assert head.headers["content-length"] == first.headers["content-length"]
    assert br.headers["content-encoding"] == "br" and text.status_code == 200
    log = _log_lines(tmp_path / "compress_log", 7)
    assert log[:6] == ["GET /page.html HTTP/1.1 200 miss"] + ["GET /page.html HTTP/1.1 200 hit"] * 3 \
        + ["HEAD /page.html HTTP/1.1 200 hit", "GET /page.html HTTP/1.1 200 miss"], log
    assert log[6] == "GET /text HTTP/1.1 200 once"
    # a new version of the file is a new variant
    page = site.htdocs / "page.html"
    page.write_bytes(PAGE + b"<p>more</p>\n")
    st = page.stat()
    os.utime(page, (st.st_atime, st.st_mtime - 3600))
    with httpx.Client(base_url=server.url, timeout=10) as client:
        r = get(client, "/page.html", "gzip")
    assert decoded(r) == PAGE + b"<p>more</p>\n" and r.headers["etag"] != first.headers["etag"]


def test_filter_notes(site, make_server, tmp_path) -> None:
    """DeflateFilterNote / BrotliFilterNote: input and output bytes and the ratio, as httpd
    counts them (gzip's output without its 18 bytes of header and trailer)."""
    server = make_server(site)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        gz = get(client, "/page.html", "gzip")
        get(client, "/page.html", "gzip")                      # from the cache: the same notes
        br = get(client, "/page.html", "br")
        get(client, "/stream", "gzip")
    out = len(gz.raw_bytes) - 18
    lines = _log_lines(tmp_path / "notes_log", 4)
    assert lines[0] == lines[1] == f"/page.html {len(PAGE)} {out} {out * 100 // len(PAGE)}"
    assert lines[2] == f"/page.html - - {len(br.raw_bytes) * 100 // len(PAGE)}"
    path, size_in, size_out, ratio = lines[3].split()
    assert path == "/stream" and int(size_in) == sum(map(len, CHUNKS)) and int(size_out) > 0


def test_young_file_is_compressed_not_kept(site, make_server, tmp_path) -> None:
    """A file changed within the last second has a weak ETag (static_files Rule 5): its gzip
    answer is made for each request and not kept, so none outlives the file's second."""
    server = make_server(site)
    (site.htdocs / "young.html").write_bytes(PAGE)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        r = get(client, "/young.html", "gzip")
    assert r.headers["etag"].startswith('W/"') and r.headers["etag"].endswith('-gzip"')
    assert decoded(r) == PAGE
    assert _log_lines(tmp_path / "compress_log", 1)[-1] == "GET /young.html HTTP/1.1 200 once"


def test_environment_from_setenvif_and_browsermatch(conf, make_server) -> None:
    """The variables as a real config sets them: BrowserMatch and SetEnvIf (mod_setenvif)."""
    (conf.htdocs / "page.html").write_bytes(PAGE)
    conf.add(textwrap.dedent('''
        AddOutputFilterByType BROTLI_COMPRESS;DEFLATE text/html
        BrowserMatch "^OldBrowser" no-gzip no-brotli
        BrowserMatch "^GzipOnly" no-brotli
        SetEnvIf Request_URI "^/page" dont-vary
    '''))
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        r = get(client, "/page.html", "gzip, br", User_Agent="OldBrowser/1.0")
        assert "content-encoding" not in r.headers and r.raw_bytes == PAGE
        r = get(client, "/page.html", "gzip, br", User_Agent="GzipOnly/2.0")
        assert r.headers["content-encoding"] == "gzip" and "vary" not in r.headers
        r = get(client, "/page.html", "gzip, br", User_Agent="Modern/3.0")
        assert r.headers["content-encoding"] == "br" and "vary" not in r.headers
        assert decoded(r) == PAGE
