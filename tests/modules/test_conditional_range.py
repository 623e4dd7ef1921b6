"""Conditional requests (RFC 9110 13.2.2) and byte ranges (RFC 9110 14), incl. the Range DoS."""

from __future__ import annotations

import os
from email.utils import formatdate

import pytest

from mpmd.core.exchange import MultipartBody
from mpmd.modules import conditional, ranges
from tests.modules.static_support import body_bytes, config, get, make_site

OLD = "Sat, 01 Jan 2000 00:00:00 GMT"
FUTURE = "Fri, 01 Jan 2100 00:00:00 GMT"


@pytest.fixture
def site(tmp_path):
    make_site(tmp_path)
    cfg = config(tmp_path)
    first = get(cfg, "/index.html")
    return cfg, first.header("ETag"), first.header("Last-Modified"), tmp_path


def _cond_cases(etag: str, lm: str) -> list[tuple[dict[str, str], int]]:
    weak = "W/" + etag
    return [
        ({"If-Match": "*"}, 200),
        ({"If-Match": etag}, 200),
        ({"If-Match": '"nope", ' + etag}, 200),
        ({"If-Match": '"nope"'}, 412),
        ({"If-Match": weak}, 412),                                   # strong comparison
        ({"If-Unmodified-Since": OLD}, 412),
        ({"If-Unmodified-Since": lm}, 200),
        ({"If-Unmodified-Since": "garbage"}, 200),
        ({"If-Match": etag, "If-Unmodified-Since": OLD}, 200),       # IUS ignored with If-Match
        ({"If-None-Match": etag}, 304),
        ({"If-None-Match": weak}, 304),                              # weak comparison
        ({"If-None-Match": "*"}, 304),
        ({"If-None-Match": '"a", "b"'}, 200),
        ({"If-Modified-Since": lm}, 304),
        ({"If-Modified-Since": OLD}, 200),
        ({"If-Modified-Since": FUTURE}, 200),                        # future dates ignored
        ({"If-Modified-Since": "not a date"}, 200),
        ({"If-None-Match": '"no-such-etag"', "If-Modified-Since": lm}, 200),
        ({"If-Match": '"nope"', "If-None-Match": etag}, 412),
    ]


def test_conditional_table(site) -> None:
    cfg, etag, lm, _ = site
    for headers, want in _cond_cases(etag, lm):
        resp = get(cfg, "/index.html", headers=headers)
        assert resp.status == want, headers
        if want == 304:
            assert resp.body == b"" and resp.header("ETag") == etag


def test_if_none_match_on_head_and_unsafe(site) -> None:
    cfg, etag, _, _ = site
    assert get(cfg, "/index.html", method="HEAD", headers={"If-None-Match": etag}).status == 304
    assert conditional.evaluate({b"if-none-match": etag.encode()}, "PUT", etag, 0) == 412


def test_asctime_and_rfc850_dates() -> None:
    assert conditional.http_date_to_ts("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777
    assert conditional.http_date_to_ts("Sunday, 06-Nov-94 08:49:37 GMT") == 784111777
    assert conditional.http_date_to_ts("Sun Nov  6 08:49:37 1994") == 784111777


# -- ranges -------------------------------------------------------------------------------

PARSE = [
    ("bytes=0-4", 100, [(0, 4)]),
    ("bytes=90-", 100, [(90, 99)]),
    ("bytes=-10", 100, [(90, 99)]),
    ("bytes=-1000", 100, [(0, 99)]),
    ("bytes=95-200", 100, [(95, 99)]),
    ("bytes=0-4,10-14", 100, [(0, 4), (10, 14)]),
    ("bytes=10-14,0-4", 100, [(0, 4), (10, 14)]),
    ("bytes=0-4,3-9", 100, [(0, 9)]),
    ("bytes=0-4,5-9", 100, [(0, 9)]),
    ("Bytes = 0-4", 100, [(0, 4)]),
    ("bytes=0-4, 200-300", 100, [(0, 4)]),
    ("bytes=100-", 100, ranges.UNSATISFIABLE),
    ("bytes=-0", 100, ranges.UNSATISFIABLE),
    ("bytes=0-", 0, ranges.UNSATISFIABLE),
    ("bytes=abc", 100, None),
    ("bytes=5-2", 100, None),
    ("bytes=-", 100, None),
    ("bytes=1-2-3", 100, None),
    ("items=0-4", 100, None),
    ("bytes", 100, None),
    ("bytes=", 100, None),
    ("bytes=" + ",".join(["0-0"] * 201), 100, None),                       # too many ranges
    ("bytes=0-,0-,0-", 100, None),                                        # sum exceeds the file
    ("bytes=" + ",".join(f"{i}-{i}" for i in range(150)), 1000, [(0, 149)]),
]


@pytest.mark.parametrize("header,size,want", PARSE)
def test_parse_range(header: str, size: int, want) -> None:
    assert ranges.parse_range(header, size) == want


def test_single_range(site) -> None:
    cfg = site[0]
    resp = get(cfg, "/digits.txt", headers={"Range": "bytes=990-"})
    assert resp.status == 206 and body_bytes(resp) == b"0123456789"
    assert resp.header("Content-Range") == "bytes 990-999/1000" and resp.header("Content-Length") == "10"


def test_single_range_big_file(site) -> None:
    cfg, _, _, root = site
    resp = get(cfg, "/big.bin", headers={"Range": "bytes=1048000-"})
    assert resp.status == 206 and resp.header("Content-Range") == "bytes 1048000-1048575/1048576"
    assert body_bytes(resp) == (root / "htdocs" / "big.bin").read_bytes()[1048000:]


@pytest.mark.parametrize("target", ["/digits.txt", "/big.bin"])
def test_multi_range(site, target: str) -> None:
    cfg, _, _, root = site
    data = (root / "htdocs" / target[1:]).read_bytes()
    resp = get(cfg, target, headers={"Range": "bytes=0-1,5-6"})
    assert resp.status == 206 and isinstance(resp.body, MultipartBody)
    ctype = resp.header("Content-Type")
    assert ctype.startswith("multipart/byteranges; boundary=")
    boundary = ctype.split("=", 1)[1].encode()
    assert int(resp.header("Content-Length")) == resp.body.length
    raw = body_bytes(resp)
    assert raw.endswith(b"--" + boundary + b"--\r\n")
    assert f"Content-Range: bytes 0-1/{len(data)}".encode() in raw and data[5:7] in raw


def test_unsatisfiable_416(site) -> None:
    resp = get(site[0], "/digits.txt", headers={"Range": "bytes=5000-"})
    assert resp.status == 416 and resp.header("Content-Range") == "bytes */1000"


@pytest.mark.parametrize("header", ["bytes=abc", "items=0-4", "bytes=5-2",
                                    "bytes=" + ",".join(["0-"] * 300)])
def test_ignored_ranges_full_200(site, header: str) -> None:
    resp = get(site[0], "/digits.txt", headers={"Range": header})
    assert resp.status == 200 and len(body_bytes(resp)) == 1000


def test_range_dos_overlapping(site) -> None:
    header = "bytes=" + ",".join(["0-999"] * 100)
    resp = get(site[0], "/digits.txt", headers={"Range": header})
    assert resp.status == 200 and len(body_bytes(resp)) == 1000


def test_range_head(site) -> None:
    resp = get(site[0], "/digits.txt", method="HEAD", headers={"Range": "bytes=0-4"})
    assert resp.status == 206 and resp.body == b""


def test_if_range(site) -> None:
    cfg, _, _, root = site
    st = os.stat(root / "htdocs" / "digits.txt")
    etag = get(cfg, "/digits.txt").header("ETag")
    lm = formatdate(int(st.st_mtime), usegmt=True)
    cases = [(etag, 206), ('"other"', 200), ("W/" + etag, 200), (lm, 206), (OLD, 200)]
    for value, want in cases:
        resp = get(cfg, "/digits.txt", headers={"Range": "bytes=0-4", "If-Range": value})
        assert resp.status == want, value


# -- If-Match: * without an ETag; young files (static_files Rule 5) ---------------------------

def test_if_match_star_is_true_without_an_etag(site) -> None:
    # RFC 9110 13.1.1: "*" is true when a current representation exists (httpd: 200)
    cfg = config(site[3], "FileETag None")
    assert get(cfg, "/index.html", headers={"If-Match": "*"}).status == 200
    assert get(cfg, "/index.html", headers={"If-Match": '"x"'}).status == 412
    assert get(cfg, "/no-such", headers={"If-Match": "*"}).status == 404


def _at(cfg, when: float, headers=None, target=b"/a.txt"):
    from mpmd.core import request as pipeline
    from tests.modules.static_support import context
    ctx = context(cfg, "GET", target, headers)
    ctx.start_time = when
    return pipeline.process(ctx)


def test_future_mtime_gets_the_date_as_last_modified_and_a_weak_etag(site) -> None:
    import time as _t
    cfg, _, _, root = site
    path = root / "htdocs" / "a.txt"
    future = _t.time() + 3600
    os.utime(path, (future, future))
    now = _t.time()
    resp = _at(cfg, now)
    assert resp.status == 200 and body_bytes(resp) == b"hello\n"
    assert resp.header("Last-Modified") == formatdate(int(now), usegmt=True)   # httpd: = Date
    etag = resp.header("ETag")
    assert etag.startswith('W/"')
    strong = etag[2:]
    assert _at(cfg, now, {"If-Match": strong}).status == 412      # a weak tag never matches strongly
    assert _at(cfg, now, {"If-Match": etag}).status == 412
    assert _at(cfg, now, {"If-None-Match": strong}).status == 304  # weak comparison
    assert _at(cfg, now, {"If-None-Match": etag}).header("ETag") == etag
    ranged = _at(cfg, now, {"Range": "bytes=0-1", "If-Range": strong})
    assert ranged.status == 200                                  # If-Range needs a strong validator
    dated = _at(cfg, now, {"Range": "bytes=0-1", "If-Range": resp.header("Last-Modified")})
    assert dated.status == 200
    assert _at(cfg, now, {"Range": "bytes=0-1"}).status == 206


def test_file_young_within_a_second_then_strong_and_cached(site) -> None:
    cfg, _, _, root = site
    path = root / "htdocs" / "a.txt"
    mtime = 1_700_000_000.25
    os.utime(path, (mtime, mtime))
    young = _at(cfg, mtime + 0.5)
    assert young.header("ETag").startswith('W/"')
    assert young.header("Last-Modified") == formatdate(int(mtime), usegmt=True)
    edge = _at(cfg, mtime + 1.0)                                  # httpd: strong only past 1 s
    assert edge.header("ETag").startswith('W/"')
    later = _at(cfg, mtime + 1.5)
    assert later.header("ETag").startswith('"')                  # the young answers were not cached
    assert _at(cfg, mtime + 2, {"If-Match": later.header("ETag")}).status == 200
    assert _at(cfg, mtime + 2) is _at(cfg, mtime + 3)             # the shared cached answer again
    assert _at(cfg, mtime + 0.5).header("ETag").startswith('W/"')  # and never the other way round
