"""The route cache (core/modules.py, "Route cache") never changes an answer, on every MPM.

Each server runs one process, so every request below meets the same per-process cache: an
outcome kept for one client, one header or one state of the file system would show up as a
wrong answer to the next request for the same URL.
"""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

from tests.support.rawclient import RawConn, get

ONE_PROCESS = textwrap.dedent("""
    <IfModule mpm_prefork_module>
        StartServers 1
        MinSpareServers 1
        MaxSpareServers 2
        MaxRequestWorkers 1
    </IfModule>
    <IfModule mpm_worker_module>
        StartServers 1
        ServerLimit 1
        ThreadsPerChild 4
        MaxRequestWorkers 4
    </IfModule>
    <IfModule mpm_event_module>
        StartServers 1
        ServerLimit 1
        ThreadsPerChild 4
        MaxRequestWorkers 4
    </IfModule>
    <IfModule mpm_nginx_module>
        WorkerProcesses 1
    </IfModule>
""")


def status_from(port: int, source: str, path: str, extra: str = "") -> tuple[int, bytes]:
    """One request on a fresh connection whose client address is ``source``."""
    sock = socket.socket()
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    conn = RawConn.__new__(RawConn)
    conn.sock, conn.buf = sock, b""
    with conn:
        conn.send(get(path, extra=extra + "Connection: close\r\n"))
        resp = conn.read_response()
    return resp.status, resp.body


def test_require_ip_is_decided_for_each_client(conf, make_server) -> None:
    (conf.htdocs / "private").mkdir()
    (conf.htdocs / "private" / "a.txt").write_bytes(b"only for 127.0.0.1\n")
    conf.add(ONE_PROCESS).add(textwrap.dedent(f"""
        <Directory "{conf.htdocs}/private">
            Require ip 127.0.0.1
        </Directory>
    """))
    server = make_server(conf)
    for _ in range(4):                        # alternate: a kept outcome would leak across
        assert status_from(server.port, "127.0.0.1", "/private/a.txt")[0] == 200, \
            server.diagnostics()
        assert status_from(server.port, "127.0.0.2", "/private/a.txt")[0] == 403
    assert status_from(server.port, "127.0.0.2", "/index.html")[0] == 200


VARIANT_MODULE = textwrap.dedent('''
    from mpmd.core.modules import Module


    class Variant(Module):
        """Maps /v.txt to a file chosen by the X-Variant header: not route-pure."""
        name = "variant_module"

        def translate_name(self, ctx):
            if ctx.uri_path == "/v.txt":
                variant = (ctx.request.header(b"x-variant") or b"a").decode()
                ctx.filename = f"{ctx.server.document_root}/v-{variant}.txt"
                return True
            return None
''')


def test_a_users_module_keeps_deciding_per_request(conf, make_server, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "variant_mod.py").write_text(VARIANT_MODULE)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    (conf.htdocs / "v-a.txt").write_bytes(b"variant a\n")
    (conf.htdocs / "v-b.txt").write_bytes(b"variant b\n")
    conf.add(ONE_PROCESS).add("LoadModule variant_module variant_mod:Variant")
    server = make_server(conf)
    for _ in range(3):
        assert status_from(server.port, "127.0.0.1", "/v.txt", "X-Variant: a\r\n") == \
            (200, b"variant a\n"), server.diagnostics()
        assert status_from(server.port, "127.0.0.1", "/v.txt", "X-Variant: b\r\n") == \
            (200, b"variant b\n")


def test_files_appearing_and_disappearing_are_seen_at_once(conf, make_server) -> None:
    conf.add(ONE_PROCESS)
    server = make_server(conf)
    target = conf.htdocs / "late.txt"
    with RawConn(server.port) as c:             # one keep-alive connection: one worker
        for _ in range(2):
            c.send(get("/late.txt"))
            assert c.read_response().status == 404
            target.write_bytes(b"here now\n")
            c.send(get("/late.txt"))
            resp = c.read_response()
            assert (resp.status, resp.body) == (200, b"here now\n")
            target.unlink()
