"""Property tests of the HTTP core (tests/fuzz/http_core.py): generated requests, raw bytes and
real-world hostile inputs, each cut into reads at random, give the same events as whole."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.http_core import check, events

METHODS = st.sampled_from([b"GET", b"HEAD", b"POST", b"PUT", b"OPTIONS", b"BLAH", b"get", b""])
TOKENS = st.binary(min_size=0, max_size=12)
NAMES = st.sampled_from([b"Host", b"Content-Length", b"Transfer-Encoding", b"Connection",
                         b"Expect", b"X-A", b"Upgrade", b"Trailer", b"host", b"Bad Name"])
VALUES = st.one_of(st.sampled_from([b"h", b"0", b"5", b"chunked", b"close", b"keep-alive",
                                    b"100-continue", b"-1", b"gzip, chunked", b"\xc3\xa9"]),
                   st.binary(max_size=10))
TARGETS = st.one_of(st.sampled_from([b"/", b"/a/../b", b"*", b"http://h/x", b"/caf\xc3\xa9",
                                     b"/%2e%2e/", b"/a?b#c", b""]), st.binary(max_size=16))
SEPARATORS = st.sampled_from([b"\r\n", b"\n", b"\r"])


@st.composite
def messages(draw) -> bytes:
    line = draw(METHODS) + b" " + draw(TARGETS) + b" " + draw(
        st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2", b"HTTP/x"]))
    eol = draw(SEPARATORS) if draw(st.integers(0, 9)) == 0 else b"\r\n"
    fields = draw(st.lists(st.tuples(NAMES, VALUES), max_size=5))
    head = line + eol + b"".join(n + b": " + v + eol for n, v in fields) + eol
    body = draw(st.one_of(st.just(b""), st.binary(max_size=20),
                          st.sampled_from([b"5\r\nhello\r\n0\r\n\r\n",
                                           b"3\r\nabc\r\n0\r\nContent-Length: 9\r\n\r\n",
                                           b"ffffffffffffffffff\r\n", b"0\r\n\r\n"])))
    return head + body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages(), min_size=1, max_size=3), st.lists(st.integers(0, 400), max_size=8))
def test_generated_requests_any_chunking(msgs, cuts):
    check(b"".join(msgs), cuts)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=8))
def test_raw_bytes_any_chunking(data, cuts):
    check(data, cuts)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(0, 300), max_size=6))
def test_a_valid_head_then_anything(tail, cuts):
    check(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n" + tail, cuts)


def test_the_oracle_sees_requests():
    assert events([b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"])[0][:2] == ("REQ", "GET")
