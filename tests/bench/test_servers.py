"""The Python peers started for real through the lab's ServerPool (no wrk, no speed): each
answers the lab's app over HTTP/1.1 keep-alive on 127.0.0.1 and leaves no process behind."""

import http.client
import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from mpmd.bench import apps
from mpmd.bench.configs import Sizing
from mpmd.bench.servers import TARGETS, ServerPool, Unavailable

PEERS = [("gunicorn-sync", "wsgi-hello", "gunicorn"),
         ("gunicorn-gthread", "wsgi-hello", "gunicorn"),
         ("uvicorn", "asgi-hello", "uvicorn"),
         ("granian", "wsgi-hello", "granian"),
         ("granian", "asgi-hello", "granian")]


@pytest.fixture
def pool(tmp_path):
    os.chmod(tmp_path, 0o755)
    apps.write_static(tmp_path / "htdocs")
    apps.write_apps(tmp_path / "apps")
    with ServerPool(tmp_path / "run", tmp_path / "htdocs", tmp_path / "apps", Sizing()) as p:
        yield p


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(60)
@pytest.mark.parametrize("target,workload,module", PEERS)
def test_peer_serves_the_app_with_keep_alive_and_stops_clean(pool, target, workload, module):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} not installed (pip install '.[bench]')")
    server = pool.start(TARGETS[target], workload)
    assert server.port and server.url.startswith("http://127.0.0.1:")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        for _ in range(2):                              # one connection, two answers
            conn.request("GET", server.url.split(str(server.port), 1)[1])
            resp = conn.getresponse()
            assert (resp.status, resp.version, resp.read()) == (200, 11, b"Hello, world!\n")
            # gunicorn's sync worker closes after every answer (no keep-alive); the rest keep it
            assert resp.will_close == (target == "gunicorn-sync")
    finally:
        conn.close()
    pgid = server.proc.pid
    pool.stop(server)
    assert server.proc.returncode is not None and not _group_alive(pgid)


def test_granian_serves_what_the_lab_asks_of_it():
    assert set(TARGETS["granian"].workloads) == {"wsgi-hello", "asgi-hello", "tls-asgi-hello"}


def test_a_missing_python_peer_is_unavailable_not_an_error(pool, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(Unavailable, match="python module granian missing"):
        pool.start(TARGETS["granian"], "wsgi-hello")
    assert pool.running == []


# ---- the https workloads through the pool: TLS probe, and wrk over https -----------------

HTTPS_PEERS = [("nginx", "tls-static-1k", "nginx", False),
               ("apache-event", "tls-static-1k", "apache2", False),
               ("uvicorn", "tls-asgi-hello", "uvicorn", False),
               ("granian", "tls-asgi-hello", "granian", None)]   # None: it has no knob


@pytest.fixture
def open_pool():
    """A pool under a world-readable temp dir, as the lab's own: Apache's children run as
    www-data when the tests run as root, and pytest's tmp_path is private to root."""
    import tempfile
    root = Path(tempfile.mkdtemp(prefix="bench-tls-test-"))
    os.chmod(root, 0o755)
    apps.write_static(root / "htdocs")
    apps.write_apps(root / "apps")
    try:
        with ServerPool(root / "run", root / "htdocs", root / "apps", Sizing()) as p:
            yield p
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _installed(name):
    import shutil
    return shutil.which(name) if name in ("nginx", "apache2") else importlib.util.find_spec(name)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("target,workload,program,resumes", HTTPS_PEERS)
def test_https_peer_serves_tls13_with_the_labs_certificate(open_pool, target, workload,
                                                           program, resumes):
    pool = open_pool
    if not _installed(program):
        pytest.skip(f"{program} not installed")
    server = pool.start(TARGETS[target], workload)
    assert server.url.startswith("https://127.0.0.1:")
    facts = server.tls                      # probed with the lab's certificate as the only CA
    assert facts and "error" not in facts, facts
    assert facts["version"] == "TLSv1.3" and facts["status"] == "HTTP/1.1 200 OK"
    if resumes is not None:                 # session resumption off where it can be
        assert facts["resumed"] is resumes
    pgid = server.proc.pid
    pool.stop(server)
    assert not _group_alive(pgid)


@pytest.mark.timeout(60)
@pytest.mark.skipif(not shutil.which("nginx") or not shutil.which("wrk"),
                    reason="needs nginx and wrk")
def test_wrk_over_https_with_and_without_keep_alive(open_pool):
    pool = open_pool
    from mpmd.bench import wrk
    server = pool.start(TARGETS["nginx"], "tls-static-1k")
    try:
        for keep_alive in (True, False):
            r = wrk.run_wrk(server.url, connections=4, duration_s=1, keep_alive=keep_alive)
            assert r.requests > 0 and r.socket_errors == 0 and r.non_2xx_3xx == 0
            assert r.bytes_read >= r.requests * 1024          # the 1 KiB body each time
    finally:
        pool.stop(server)


def test_an_mpmd_that_refuses_tls_is_unavailable_with_its_reason(pool, monkeypatch):
    from mpmd.bench import configs
    real = configs.render_mpmd

    def refused(mpm, workload, p, s, port=0):      # as mpmd without TLS answers SSLEngine
        return real(mpm, workload, p, s, port).replace("SSLEngine on", "SSLNoSuchThing on")
    monkeypatch.setattr(configs, "render_mpmd", refused)
    with pytest.raises(Unavailable, match="mpmd-nginx exited with 1: .*SSLNoSuchThing"):
        pool.start(TARGETS["mpmd-nginx"], "tls-static-1k")
    assert pool.running == []
