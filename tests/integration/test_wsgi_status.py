"""mod_status end to end: /server-status and ?auto against the real scoreboard."""

import signal
import time

import httpx
import pytest

from tests.integration.wsgi_support import wsgi_conf
from tests.support.harness import wait_for
from tests.support.rawclient import RawConn


def auto(srv):
    text = httpx.get(srv.url + "/server-status?auto", timeout=20).text
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def test_server_status(conf, make_server):
    conf.add("ExtendedStatus On")
    conf.add("<Location /server-status>\n    SetHandler server-status\n</Location>")
    srv = make_server(wsgi_conf(conf))
    for _ in range(5):
        assert httpx.get(srv.url + "/hello", timeout=20).status_code == 200
    fields = wait_for(lambda: (f := auto(srv)) and int(f["Total Accesses"]) >= 5 and f, 10,
                      message="Total Accesses to count the requests")
    for name in ("Total kBytes", "Uptime", "BusyWorkers", "IdleWorkers", "ConnsTotal",
                 "ConnsAsyncKeepAlive", "ConnsAsyncWriting", "ConnsAsyncClosing", "Scoreboard"):
        assert name in fields, fields
    assert int(fields["BusyWorkers"]) >= 1           # the worker answering this request
    assert set(fields["Scoreboard"]) <= set("_SRWKDCLGI.")
    assert "W" in fields["Scoreboard"]               # the status request itself, as httpd shows it
    page = httpx.get(srv.url + "/server-status", timeout=20)
    assert page.status_code == 200 and "Server Status for" in page.text
    assert "GET /server-status HTTP/1.1" in page.text      # ExtendedStatus On: request lines


def test_total_accesses_count_every_answer_exactly(conf, make_server):
    """Each answered request reaches the scoreboard (the nginx MPM adds a loop iteration's
    answers at once, LoopWorker.tally): kept-alive static requests, then the count."""
    conf.add("<Location /server-status>\n    SetHandler server-status\n</Location>")
    (conf.htdocs / "one.txt").write_bytes(b"1")
    srv = make_server(conf)
    with httpx.Client(timeout=20) as client:
        for _ in range(40):
            assert client.get(srv.url + "/one.txt").status_code == 200
    # 40 answers, plus the status requests before the one that sees them all
    fields = wait_for(lambda: (f := auto(srv)) and int(f["Total Accesses"]) >= 40 and f, 10,
                      message="Total Accesses to count the 40 requests")
    again = auto(srv)
    assert int(again["Total Accesses"]) - int(fields["Total Accesses"]) == 1   # the one between
    assert int(fields["Total Accesses"]) <= 40 + 10


def test_blocking_workers_show_k_between_requests_and_r_for_a_half_sent_head(conf, make_server):
    """The scoreboard letters a prefork child or worker thread takes (mpm/conn.py Rule 6): K
    while its keep-alive connection waits for the next request (written as the last answer
    ended), R while a head that one read did not bring is still arriving."""
    if conf.mpm not in ("prefork", "worker"):
        pytest.skip("event and nginx keep idle connections and unfinished heads off the workers")
    conf.add("<Location /server-status>\n    SetHandler server-status\n</Location>")
    (conf.htdocs / "one.txt").write_bytes(b"1")
    srv = make_server(conf)
    with RawConn(srv.port) as kept:
        kept.send(b"GET /one.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert kept.read_response().status == 200
        wait_for(lambda: "K" in auto(srv)["Scoreboard"], 10,
                 message="a K for the kept-alive connection")
        kept.send(b"GET /one.txt HTTP/1.1\r\nHo")          # the rest of the head later
        wait_for(lambda: "R" in auto(srv)["Scoreboard"] and "K" not in auto(srv)["Scoreboard"],
                 10, message="its K to become an R")
        kept.send(b"st: x\r\n\r\n")
        assert kept.read_response().status == 200


def test_a_graceful_restart_closes_a_kept_alive_connection_after_its_next_answer(conf,
                                                                              make_server):
    """The child's graceful flag reaches the driver serving the connection (common.py
    ``ForkingMPM.graceful``): the request after SIGUSR1 is answered, with Connection: close.
    The event listener and the nginx loop keep a parked connection for ``RETIRE_S`` (1 s)
    for that, so the request goes soon after the signal, before the new generation is up."""
    (conf.htdocs / "one.txt").write_bytes(b"1")
    srv = make_server(conf.set("KeepAliveTimeout", 10))
    with RawConn(srv.port) as kept:
        kept.send(b"GET /one.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        first = kept.read_response()
        assert first.status == 200 and first.header("connection") != "close"
        srv.signal(signal.SIGUSR1)
        time.sleep(0.3)                                      # the children got the news
        kept.send(b"GET /one.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        last = kept.read_response()
        assert last.status == 200 and last.header("connection") == "close"
        assert kept.sock.recv(1) == b""                     # and the child closed it
    srv.wait_ready(generation=1)
