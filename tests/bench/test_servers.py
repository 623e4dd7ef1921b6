"""The Python peers started for real through the lab's ServerPool (no wrk, no speed): each
answers the lab's app over HTTP/1.1 keep-alive on 127.0.0.1 and leaves no process behind."""

import http.client
import importlib.util
import os

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
    assert set(TARGETS["granian"].workloads) == {"wsgi-hello", "asgi-hello"}


def test_a_missing_python_peer_is_unavailable_not_an_error(pool, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(Unavailable, match="python module granian missing"):
        pool.start(TARGETS["granian"], "wsgi-hello")
    assert pool.running == []
