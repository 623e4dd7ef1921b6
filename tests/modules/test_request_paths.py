"""URI decoding and traversal: core/request.py Rule 1, and the conformance traversal cases."""

from __future__ import annotations

import pytest

from mpmd.core.request import BadPath, decode_path, normalize
from tests.modules.static_support import body_bytes, config, get, make_site

DECODE = [
    (b"/", "/"),
    (b"/a/b.html", "/a/b.html"),
    (b"/a//b", "/a/b"),
    (b"/a/./b/", "/a/b/"),
    (b"/a/b/..", "/a/"),
    (b"/a/%62", "/a/b"),
    (b"/%2e%2e%2e/", "/.../"),
    (b"/sub/..;/x", "/sub/..;/x"),
    (b"/caf%C3%A9", "/caf\u00e9"),
    (b"//127.0.0.2/%2e%2e/sub", "/sub"),
]
DECODE_ERRORS = [
    (b"/..", 400), (b"/../secret.txt", 400), (b"/a/../../x", 400), (b"/%2e%2e/x", 400),
    (b"/%2E./x", 400), (b"/a%2fb", 404), (b"/a%2Fb", 404), (b"/a%00b", 404), (b"/a%zz", 400),
    (b"/a%2", 400), (b"/%u002e%u002e/x", 400), (b"/a\\..\\x", 400), (b"x/a", 400),
]


@pytest.mark.parametrize("raw,want", DECODE)
def test_decode(raw: bytes, want: str) -> None:
    assert decode_path(raw) == want


@pytest.mark.parametrize("raw,status", DECODE_ERRORS)
def test_decode_rejects(raw: bytes, status: int) -> None:
    with pytest.raises(BadPath) as info:
        decode_path(raw)
    assert info.value.status == status


def test_normalize_keeps_trailing_slash() -> None:
    assert normalize("/a/b/.") == "/a/b/"
    assert normalize("/a/b/") == "/a/b/"


# The traversal category of /work/shared/conformance (target -> accepted statuses).
TRAVERSAL = [
    "/sub/deeper/../../../secret.txt", "/..;/secret.txt", "/%252e%252e/secret.txt",
    "/%2e%2e%2fsecret.txt", "/%2e%2e/secret.txt", "/%ef%bc%8e%ef%bc%8e/secret.txt",
    "/../secret.txt", "/%2e./secret.txt", "/%c0%ae%c0%ae/secret.txt", "/sub/..;/../secret.txt",
    "/sub/../../secret.txt", "/%u002e%u002e/secret.txt", "/..%2fsecret.txt", "/..%5csecret.txt",
    "/%5c..%5csecret.txt", "/sub/%2e%2e/%2e%2e/secret.txt",
]


@pytest.mark.parametrize("target", TRAVERSAL)
def test_traversal_never_escapes(tmp_path, target: str) -> None:
    make_site(tmp_path)
    resp = get(config(tmp_path), target)
    assert resp.status in (400, 403, 404)
    assert b"CANARY" not in body_bytes(resp)


def test_semicolon_is_a_plain_character(tmp_path) -> None:
    make_site(tmp_path)
    assert get(config(tmp_path), "/a.txt;x=1").status == 404


def test_options_star(tmp_path) -> None:
    make_site(tmp_path)
    resp = get(config(tmp_path), b"*", method="OPTIONS")
    assert resp.status == 200 and "GET" in resp.header("Allow")
