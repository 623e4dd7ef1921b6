"""CustomLog on a real server, every MPM: the access log is written when one is configured,
and a graceful restart that adds one starts writing it (the hook table is built per
generation from the loaded config: with no CustomLog, mod_log_config's hook is left out)."""

import signal

from tests.support.harness import wait_for
from tests.support.rawclient import RawConn, get


def _get(port: int, path: str) -> int:
    with RawConn(port) as c:
        c.send(get(path))
        return c.read_response().status


def test_custom_log_lines_are_written(conf, make_server, tmp_path):
    log = tmp_path / "access.log"
    server = make_server(conf.add(f'CustomLog "{log}" "%>s %U"'))
    assert _get(server.port, "/index.html") == 200
    assert _get(server.port, "/missing") == 404
    wait_for(lambda: log.exists() and {"200 /index.html", "404 /missing"}
             <= set(log.read_text().splitlines()), timeout=10, message="both lines logged")


def test_a_graceful_restart_that_adds_a_custom_log_starts_it(conf, make_server, tmp_path):
    log = tmp_path / "access.log"
    server = make_server(conf)
    assert _get(server.port, "/index.html") == 200
    assert not log.exists()
    conf.add(f'CustomLog "{log}" "%>s %U"')
    conf.write()
    server.signal(signal.SIGUSR1)                        # graceful: re-read httpd.conf
    server.wait_ready(generation=1)
    wait_for(lambda: _get(server.port, "/index.html") == 200 and log.exists()
             and "200 /index.html" in log.read_text(), timeout=15,
             message="the new generation writes the access log")


def test_the_local_address_is_the_connections_own_on_a_wildcard_listener(conf, make_server,
                                                                           tmp_path):
    # %A/%p come from the accepted socket (prefork takes a specific Listen address from the
    # listener, whose options its connections inherit); a wildcard bind is asked per socket
    log = tmp_path / "access.log"
    server = make_server(conf.listen("0.0.0.0:0").add(f'CustomLog "{log}" "%A %p %>s"'))
    assert _get(server.port, "/index.html") == 200
    wait_for(lambda: log.exists() and log.read_text().strip(), timeout=10, message="a line")
    assert log.read_text().split() == ["127.0.0.1", str(server.port), "200"]


def test_the_local_address_of_a_specific_listener(conf, make_server, tmp_path):
    log = tmp_path / "access.log"
    server = make_server(conf.add(f'CustomLog "{log}" "%A %p %>s"'))
    for _ in range(2):
        assert _get(server.port, "/index.html") == 200
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == 2, timeout=10,
             message="two lines")
    assert set(log.read_text().splitlines()) == {f"127.0.0.1 {server.port} 200"}
