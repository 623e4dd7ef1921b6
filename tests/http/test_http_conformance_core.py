"""The conformance corpus' byte streams through the sans-I/O core (no sockets).

For each case of the categories the core decides (smuggling, chunked, parsing, limits,
protocol, keepalive) the table says what the core must do: the request paths it hands out
before stopping, and the error status it ends with (None = no error).  Whatever the table
says, no case may ever yield a request for /smuggled.txt.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from mpmd.http.connection import Connection
from mpmd.http.errors import ProtocolError
from mpmd.http.events import NEED_DATA, PAUSED, ConnectionClosed, Request

CASES = Path("/work/shared/conformance/cases")
CATEGORIES = ("smuggling", "chunked", "parsing", "limits", "protocol", "keepalive")

A, B, C, I, D = b"/a.txt", b"/b.txt", b"/c.txt", b"/index.html", b"/digits.txt"

# id -> (paths handed out, final error status or None)
EXPECTED: dict[str, tuple[list[bytes], int | None]] = {
    "chunk-bare-lf": ([I], 400),
    "chunk-ext-quoted": ([I, B], None),
    "chunk-last-with-ext": ([I, B], None),
    "chunk-many-leading-zeros": ([I, B], None),
    "chunk-missing-last-chunk": ([I], 400),
    "chunk-size-huge": ([I], 400),
    "chunk-size-overflow-wrap": ([I], 400),
    "chunk-te-chunked-on-get": ([A, B], None),
    "chunk-trailing-ws-size": ([I], 400),
    "ka-after-400-no-more": ([], 400),
    "ka-connection-close": ([A], None),
    "ka-http10-default-close": ([A], None),
    "ka-http11-persistent": ([A], None),
    "ka-pipeline-close-middle": ([A, B], None),
    "ka-reuse-after-idle": ([A, B], None),
    "limit-body-2m-post": ([I], None),
    "limit-header-8k-legal": ([I], None),
    "limit-huge-cl-post": ([], 413),
    "limit-long-uri-1m": ([], 414),
    "limit-pipeline-100": ([A] * 100, None),
    "parse-absolute-form": ([I], None),
    "parse-bare-lf-lines": ([], 400),
    "parse-connect-authority": ([], 405),
    "parse-double-space": ([I], None),
    "parse-extra-token": ([], 400),
    "parse-header-name-high-byte": ([], 400),
    "parse-header-value-obs-text": ([I], None),
    "parse-host-invalid-chars": ([], 400),
    "parse-leading-ws-first-field": ([], 400),
    "parse-method-bad-char": ([], 400),
    "parse-no-leading-slash": ([], 400),
    "parse-nul-in-value": ([], 400),
    "parse-percent-encoded-ok": ([b"/ind%65x.html"], None),
    "parse-query-string": ([I], None),
    "parse-tab-in-request-line": ([], 400),
    "parse-version-garbage": ([], 400),
    "parse-version-minor-higher": ([I], None),
    "proto-absolute-form-other-scheme": ([], 400),
    "proto-h2-preface-only-pri": ([], 505),
    "proto-half-request-then-next": ([], 400),
    "proto-proxy-protocol": ([], 400),
    "proto-websocket-upgrade": ([I], None),
    "smug-bare-cr-header": ([], 400),
    "smug-cl-dup-conflict-rev": ([], 400),
    "smug-cl-empty-then-valid": ([], 400),
    "smug-cl-huge-digits": ([], 400),
    "smug-cl-list-identical": ([], 400),
    "smug-cl-overflow-2e64": ([], 400),
    "smug-cl-trailing-junk": ([], 400),
    "smug-clte-basic": ([], 400),
    "smug-clte-name-x85": ([], 400),
    "smug-clte-te-first": ([], 400),
    "smug-get-with-body": ([A, B], None),
    "smug-name-continued": ([], 400),
    "smug-tecl-chunked-identity": ([], 400),
    "smug-tecl-dup-te-x-last": ([], 400),
    "smug-tecl-get": ([], 400),
    "smug-tecl-nul-suffix": ([], 400),
    "smug-tecl-tab-value": ([], 400),
    "smug-tecl-xchunked": ([], 400),
}


def load_cases() -> list[tuple[str, bytes]]:
    if not CASES.is_dir():
        return []
    out = []
    for path in sorted(CASES.glob("*.json")):
        if path.name.split("__")[0] not in CATEGORIES:
            continue
        case = json.loads(path.read_text())
        data = b"".join(base64.b64decode(s["b64"]) * s.get("repeat", 1)
                        for s in case["request"]["segments"])
        out.append((case["id"], data))
    return out


def run(data: bytes, piece: int) -> tuple[list[bytes], int | None]:
    """Feed ``data`` in ``piece``-sized reads, as a driver would; serve every request."""
    conn = Connection()
    paths: list[bytes] = []
    offset = 0
    while True:
        try:
            event = conn.next_event()
        except ProtocolError as exc:
            return paths, exc.status
        if event is NEED_DATA:
            if offset >= len(data):
                return paths, None
            conn.receive_data(data[offset:offset + piece])
            offset += piece
        elif event is PAUSED:
            conn.start_next_cycle()
        elif isinstance(event, ConnectionClosed):
            return paths, None
        elif isinstance(event, Request):
            paths.append(event.path)


ALL = load_cases()


@pytest.mark.skipif(not ALL, reason="conformance corpus not present")
@pytest.mark.parametrize("piece", [1 << 16, 7])
@pytest.mark.parametrize("case_id,data", ALL, ids=[c[0] for c in ALL])
def test_case(case_id: str, data: bytes, piece: int) -> None:
    if piece < 100 and len(data) > 100_000:
        pytest.skip("large case: one piece size is enough")
    paths, status = run(data, piece)
    assert b"/smuggled.txt" not in paths
    assert case_id in EXPECTED, f"new corpus case {case_id}: {paths} {status}"
    assert (paths, status) == EXPECTED[case_id]
