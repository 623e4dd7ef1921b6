"""Regression: silent connections (connect, send nothing) must not starve a small prefork pool.

mpmd sets TCP_DEFER_ACCEPT by default (``AcceptFilter http data``, as httpd on Linux), so a
connection that never sends a byte is not handed to a child.  With 40 of them open against a
pool capped at MaxRequestWorkers 5, a new client is still answered at once -- without the
accept filter each child would sit on a silent socket until Timeout (60 s here).
"""

from __future__ import annotations

import socket

import pytest

from tests.support.confbuilder import ConfBuilder
from tests.support.rawclient import RawConn, get

SILENT = 40
# Far below Timeout (60 s), far above any healthy answer: a liveness bound, not a speed test.
ANSWER_WITHIN = 10.0


@pytest.fixture
def small_pool(tmp_path) -> ConfBuilder:
    conf = ConfBuilder(tmp_path, mpm="prefork")
    conf.htdocs.mkdir(parents=True, exist_ok=True)
    (conf.htdocs / "index.html").write_bytes(b"<h1>hello</h1>\n")
    conf.set("StartServers", 2).set("MinSpareServers", 1).set("MaxSpareServers", 3)
    conf.set("MaxRequestWorkers", 5).set("ServerLimit", 5).set("Timeout", 60)
    return conf


def test_silent_connections_do_not_block_a_small_prefork_pool(small_pool, make_server):
    server = make_server(small_pool)
    silent: list[socket.socket] = []
    try:
        for _ in range(SILENT):
            silent.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        for _ in range(3):
            with RawConn(server.port, timeout=ANSWER_WITHIN) as c:
                c.send(get("/index.html"))
                resp = c.read_response()
                assert resp.status == 200 and resp.body == b"<h1>hello</h1>\n", server.diagnostics()
    except socket.timeout:
        pytest.fail(f"no answer within {ANSWER_WITHIN}s with {SILENT} silent connections open\n"
                    f"{server.diagnostics()}")
    finally:
        for s in silent:
            s.close()


def test_explicit_accept_filter_data_is_accepted(small_pool, make_server):
    server = make_server(small_pool.add("AcceptFilter http data"))
    with RawConn(server.port) as c:
        c.send(get("/index.html"))
        assert c.read_response().status == 200
