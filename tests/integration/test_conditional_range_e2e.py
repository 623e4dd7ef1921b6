"""Conditional and range requests end to end on every MPM (RFC 9110 sections 13 and 14).

ETag/Last-Modified validators, If-None-Match / If-Modified-Since -> 304, If-Match /
If-Unmodified-Since -> 412, single range -> 206, several -> multipart/byteranges, 416, If-Range,
and the 2011 "Range" DoS (many overlapping ranges) refused or merged.
"""

from __future__ import annotations

import os
import re
from email.utils import formatdate, parsedate_to_datetime

import pytest

from tests.support.rawclient import RawConn, get, request_once

DIGITS = b"0123456789" * 100        # 1000 bytes: byte i is str(i % 10)


@pytest.fixture
def server(conf, make_server):
    (conf.htdocs / "digits.txt").write_bytes(DIGITS)
    os.utime(conf.htdocs / "digits.txt", (1_700_000_000, 1_700_000_000))
    return make_server(conf)


def fetch(server, extra: str = "", path: str = "/digits.txt", method: str = "GET"):
    data = f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()
    return request_once(server.port, data, head_only=method == "HEAD")


def validators(server) -> tuple[str, str]:
    resp = fetch(server)
    etag, lm = resp.header("etag"), resp.header("last-modified")
    assert etag and lm, resp.headers
    return etag, lm


def test_validators_are_stable_and_follow_the_file(server, conf):
    etag, lm = validators(server)
    assert re.fullmatch(r'(W/)?"[^"]+"', etag)
    assert parsedate_to_datetime(lm).timestamp() == 1_700_000_000
    assert validators(server) == (etag, lm)
    (conf.htdocs / "digits.txt").write_bytes(DIGITS + b"!")
    os.utime(conf.htdocs / "digits.txt", (1_700_000_100, 1_700_000_100))
    etag2, lm2 = validators(server)
    assert etag2 != etag and lm2 != lm


def test_if_none_match_gives_304_without_body_and_connection_stays_usable(server):
    etag, _ = validators(server)
    with RawConn(server.port) as c:
        for value in (etag, f'"nope", {etag}', "*", f"W/{etag}" if not etag.startswith("W/") else etag):
            c.send(get("/digits.txt", extra=f"If-None-Match: {value}\r\n"))
            resp = c.read_response()            # a stray body would corrupt the next parse
            assert resp.status == 304, (value, resp.status)
            assert resp.header("etag") == etag
        c.send(get("/digits.txt"))
        assert c.read_response().body == DIGITS
    assert fetch(server, 'If-None-Match: "other"\r\n').status == 200


def test_if_modified_since(server):
    _, lm = validators(server)
    assert fetch(server, f"If-Modified-Since: {lm}\r\n").status == 304
    later = formatdate(1_750_000_000, usegmt=True)          # after the mtime, before now
    assert fetch(server, f"If-Modified-Since: {later}\r\n").status == 304
    earlier = formatdate(1_600_000_000, usegmt=True)
    resp = fetch(server, f"If-Modified-Since: {earlier}\r\n")
    assert resp.status == 200 and resp.body == DIGITS
    # If-None-Match takes precedence: a non-matching tag means 200 whatever the date says.
    assert fetch(server, f'If-None-Match: "other"\r\nIf-Modified-Since: {lm}\r\n').status == 200
    # An unparseable date is ignored.
    assert fetch(server, "If-Modified-Since: yesterday-ish\r\n").status == 200


def test_head_with_if_none_match(server):
    etag, _ = validators(server)
    assert fetch(server, f"If-None-Match: {etag}\r\n", method="HEAD").status == 304


def test_if_match_and_if_unmodified_since_give_412(server):
    etag, lm = validators(server)
    assert fetch(server, 'If-Match: "other"\r\n').status == 412
    assert fetch(server, f"If-Match: {etag}\r\n").status == 200
    assert fetch(server, "If-Match: *\r\n").status == 200
    earlier = formatdate(1_600_000_000, usegmt=True)
    assert fetch(server, f"If-Unmodified-Since: {earlier}\r\n").status == 412
    assert fetch(server, f"If-Unmodified-Since: {lm}\r\n").status == 200
    # If-Match takes precedence over If-Unmodified-Since.
    assert fetch(server, f"If-Match: {etag}\r\nIf-Unmodified-Since: {earlier}\r\n").status == 200
    # A missing file with If-Match: * is not a 412 on an existing representation.
    assert fetch(server, "If-Match: *\r\n", path="/nothing-here").status in (404, 412)


@pytest.mark.parametrize("spec,start,end", [
    ("0-9", 0, 9), ("990-", 990, 999), ("-5", 995, 999), ("500-500", 500, 500), ("995-5000", 995, 999),
])
def test_single_range_is_206(server, spec, start, end):
    resp = fetch(server, f"Range: bytes={spec}\r\n")
    assert resp.status == 206, resp
    assert resp.header("content-range") == f"bytes {start}-{end}/1000"
    assert resp.body == DIGITS[start:end + 1]
    assert int(resp.header("content-length") or -1) == end - start + 1


def parse_multipart(resp) -> list[tuple[str, bytes]]:
    ctype = resp.header("content-type") or ""
    m = re.match(r"multipart/byteranges;\s*boundary=\"?([^\";]+)\"?", ctype)
    assert m, ctype
    delim = b"--" + m.group(1).encode()
    body = resp.body
    assert body.rstrip(b"\r\n").endswith(delim + b"--"), body[-80:]
    parts = []
    for chunk in body.split(delim)[1:-1]:
        head, _, data = chunk.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().strip().split("\r\n"))
        lower = {k.lower(): v for k, v in headers.items()}
        assert lower.get("content-type", "").startswith("text/plain")
        assert data.endswith(b"\r\n")
        parts.append((lower["content-range"], data[:-2]))
    return parts


def test_multiple_ranges_give_multipart_byteranges(server):
    resp = fetch(server, "Range: bytes=0-4,100-104,-3\r\n")
    assert resp.status == 206
    assert int(resp.header("content-length") or -1) == len(resp.body)
    assert parse_multipart(resp) == [
        ("bytes 0-4/1000", DIGITS[0:5]), ("bytes 100-104/1000", DIGITS[100:105]),
        ("bytes 997-999/1000", DIGITS[997:1000])]


def test_unsatisfiable_range_is_416(server):
    resp = fetch(server, "Range: bytes=5000-6000\r\n")
    assert resp.status == 416
    assert resp.header("content-range") == "bytes */1000"
    assert DIGITS not in resp.body


def test_invalid_or_foreign_range_is_ignored(server):
    for value in ("bytes=abc", "items=0-5", "bytes=9-3"):
        resp = fetch(server, f"Range: {value}\r\n")
        assert resp.status in (200, 416), value
        if resp.status == 200:
            assert resp.body == DIGITS


def test_if_range(server):
    etag, lm = validators(server)
    assert fetch(server, f"Range: bytes=0-9\r\nIf-Range: {etag}\r\n").status == 206
    stale = fetch(server, 'Range: bytes=0-9\r\nIf-Range: "stale"\r\n')
    assert stale.status == 200 and stale.body == DIGITS
    assert fetch(server, f"Range: bytes=0-9\r\nIf-Range: {lm}\r\n").status == 206
    old = formatdate(1_600_000_000, usegmt=True)
    assert fetch(server, f"Range: bytes=0-9\r\nIf-Range: {old}\r\n").status == 200


def test_range_with_matching_if_none_match_is_304(server):
    etag, _ = validators(server)
    assert fetch(server, f"Range: bytes=0-9\r\nIf-None-Match: {etag}\r\n").status == 304


@pytest.mark.parametrize("spec", [
    ",".join(["0-"] * 300),                                    # the same whole range 300 times
    "0-," + ",".join(f"5-{i}" for i in range(600)),            # Apache CVE-2011-3192's shape
    ",".join(f"{i}-{i + 500}" for i in range(0, 400)),         # heavily overlapping windows
])
def test_range_dos_is_refused_or_merged(server, spec):
    with RawConn(server.port) as c:
        c.send(get("/digits.txt", extra=f"Range: bytes={spec}\r\n"))
        resp = c.read_response()
        assert resp.status in (200, 206, 416), resp.status
        # Never an amplification: at most a few times the file, whatever the range count.
        assert len(resp.body) <= 3 * len(DIGITS), f"{resp.status}: {len(resp.body)} bytes for a 1000-byte file"
        if resp.status == 206 and (resp.header("content-type") or "").startswith("multipart/"):
            assert len(parse_multipart(resp)) <= 10
        c.send(get("/index.html"))
        assert c.read_response().status == 200
