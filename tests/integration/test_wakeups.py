"""The thread that owns the connections is woken for every answer, on every MPM.

The event MPM's workers and the nginx MPM's thread pool wake that thread once per batch of
finished requests (docs/architecture.md, "Waking the thread that owns the connections").  A
lost wake-up does not lose the request: the listener's poll times out within a second and
finds it.  So the symptom is a request that takes a second instead of a millisecond, which
this test looks for with keep-alive requests sent one after another on one connection.
It is a liveness check, not a speed goal: the bound is 0.3 s, for a loopback answer.
"""

import statistics
import time

import pytest

from tests.integration.wsgi_support import REPO
from tests.support.rawclient import RawConn, get

ROUNDS = 30


@pytest.mark.parametrize("path", ["/1k.bin", "/hello"])
def test_sequential_keepalive_requests_never_wait_for_a_poll_timeout(conf, make_server, path):
    conf.add(f'WSGIPythonPath "{REPO}"').add("WSGIApp /hello tests.apps.wsgi_apps:hello")
    server = make_server(conf)
    took = []
    with RawConn(server.port) as c:
        for _ in range(ROUNDS):
            start = time.monotonic()
            c.send(get(path))
            assert c.read_response().status == 200
            took.append(time.monotonic() - start)
    assert statistics.median(took) < 0.3, f"median {statistics.median(took):.3f} s: {took}"


def test_concurrent_keepalive_clients_never_wait_for_a_poll_timeout(conf, make_server):
    """Many answers finishing together is where a batched wake-up can be lost (a flag reset
    at the wrong moment): 8 clients at once, each with its own keep-alive connection."""
    import threading

    conf.add(f'WSGIPythonPath "{REPO}"').add("WSGIApp /hello tests.apps.wsgi_apps:hello")
    server = make_server(conf)
    took: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        with RawConn(server.port) as c:
            for _ in range(ROUNDS):
                start = time.monotonic()
                c.send(get("/hello"))
                assert c.read_response().status == 200
                with lock:
                    took.append(time.monotonic() - start)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert len(took) == 8 * ROUNDS
    p90 = statistics.quantiles(took, n=10)[8]      # a lost wake-up hits a fraction of them
    assert p90 < 0.3, f"p90 {p90:.3f} s"
