"""mod_status end to end: /server-status and ?auto against the real scoreboard."""

import httpx

from tests.integration.wsgi_support import wsgi_conf
from tests.support.harness import wait_for


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
