"""Path traversal never escapes DocumentRoot, on every MPM.

A canary file is planted next to (outside) the DocumentRoot; no request, however encoded, may
make its content appear in any byte the server sends.  Symlinks are refused without
FollowSymLinks and followed with it (httpd's semantics), and lexical ``..`` through a symlinked
directory still cannot climb out.
"""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest

from tests.integration.e2e_support import all_bytes, healthy
from tests.support.rawclient import request_once

ATTACKS = [
    "/../secret.txt", "/../../secret.txt", "/sub/../../secret.txt", "/sub/./../../secret.txt",
    "/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/.%2e/secret.txt", "/%2e./secret.txt",
    "/%2e%2e%2fsecret.txt", "/sub/%2e%2e%2f%2e%2e%2fsecret.txt", "/..%2fsecret.txt", "/sub/..%2f..%2fsecret.txt",
    "/..%5csecret.txt", "/sub/..%5c..%5csecret.txt", "/..\\secret.txt", "/sub\\..\\..\\secret.txt",
    "/%2e%2e%5c%2e%2e%5csecret.txt", "/%252e%252e/secret.txt", "/%252e%252e%252fsecret.txt",
    "/%c0%ae%c0%ae/secret.txt", "/%c0%ae%c0%ae%c0%afsecret.txt", "/..;/secret.txt", "//../secret.txt",
    "/.../secret.txt", "/sub/....//....//secret.txt", "/%00/../secret.txt", "/sub/..%00/../secret.txt",
    "/index.html%00/../../secret.txt", "/link-dir/../../secret.txt", "/link-dir/..%2f..%2fsecret.txt",
    "/link-dir/%2e%2e/secret.txt", "http://localhost/../secret.txt", "http://localhost/%2e%2e/secret.txt",
    "/../../../../../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/sub/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
]


@pytest.fixture
def tree(conf):
    """htdocs/ with sub/, symlinks in and out; the canary and an outside dir next to htdocs."""
    canary = f"CANARY-{secrets.token_hex(8)}"
    (conf.root / "secret.txt").write_text(canary + "\n")
    outside = conf.root / "outside"
    outside.mkdir()
    (outside / "shared.txt").write_text("outside-but-linked\n")
    (conf.htdocs / "sub").mkdir()
    (conf.htdocs / "sub" / "file.txt").write_text("inside\n")
    os.symlink(conf.root / "outside", conf.htdocs / "link-dir")
    os.symlink("sub/file.txt", conf.htdocs / "link-inside.txt")
    os.symlink(outside / "shared.txt", conf.htdocs / "link-outside.txt")
    conf.canary = canary
    return conf


def with_options(conf, options: str):
    return conf.add(f'<Directory "{conf.htdocs}">\n  Options {options}\n</Directory>')


def raw_get(target: bytes) -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def check_attacks(server, canary: str) -> list[str]:
    bad = []
    for target in ATTACKS:
        data = all_bytes(server.port, raw_get(target.encode("latin-1")))
        status = data[9:12]
        if canary.encode() in data or b"root:x:0:0" in data:
            bad.append(f"{target}: LEAKED ({status!r})")
        elif status not in (b"400", b"403", b"404"):
            bad.append(f"{target}: status {status!r}")
    return bad


@pytest.mark.parametrize("options", ["FollowSymLinks", "None"])
def test_traversal_attempts_never_escape_the_root(tree, make_server, options):
    server = make_server(with_options(tree, options))
    bad = check_attacks(server, tree.canary)
    assert not bad, "\n".join(bad) + "\n" + server.diagnostics()
    assert healthy(server.port)


def test_raw_nul_and_control_bytes_in_target(tree, make_server):
    server = make_server(tree)
    for target in (b"/sub/file.txt\x00", b"/\x00../secret.txt", b"/sub/\x01file.txt", b"/sub/file.txt\x7f"):
        data = all_bytes(server.port, raw_get(target))
        assert tree.canary.encode() not in data
        assert data[9:12] in (b"400", b"404"), (target, data[:100])
    assert healthy(server.port)


def test_curl_path_as_is(tree, make_server):
    server = make_server(tree)
    for path in ("/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt"):
        out = subprocess.run(["curl", "-s", "-i", "--path-as-is", "--max-time", "10", server.url + path],
                             capture_output=True, timeout=20).stdout
        assert tree.canary.encode() not in out
        assert out.split(b" ", 2)[1] in (b"400", b"403", b"404"), out[:100]


def test_symlinks_refused_without_follow_symlinks(tree, make_server):
    server = make_server(with_options(tree, "None"))
    for path in ("/link-inside.txt", "/link-outside.txt", "/link-dir/shared.txt"):
        resp = request_once(server.port, raw_get(path.encode()))
        assert resp.status == 403, (path, resp.status, server.diagnostics())
        assert b"outside-but-linked" not in resp.body and b"inside\n" != resp.body
    assert request_once(server.port, raw_get(b"/sub/file.txt")).body == b"inside\n"


def test_symlinks_followed_with_follow_symlinks(tree, make_server):
    server = make_server(with_options(tree, "FollowSymLinks"))
    assert request_once(server.port, raw_get(b"/link-inside.txt")).body == b"inside\n"
    assert request_once(server.port, raw_get(b"/link-dir/shared.txt")).body == b"outside-but-linked\n"
    # Lexical '..' is resolved on the URL before the filesystem is asked: link-dir/.. is '/'.
    resp = request_once(server.port, raw_get(b"/link-dir/../sub/file.txt"))
    assert resp.status == 200 and resp.body == b"inside\n"


def test_encoded_slash_is_not_a_separator(tree, make_server):
    server = make_server(tree)
    resp = request_once(server.port, raw_get(b"/sub%2ffile.txt"))
    assert resp.status in (400, 403, 404)
    assert request_once(server.port, raw_get(b"/sub/%66ile.txt")).body == b"inside\n"
