"""RemoteIPProxyProtocol as Apache's mod_remoteip: the same config and the same connections
(v1 and v2 headers, LOCAL, Require ip, an excepted peer, connections without a header) to
apache2 and to mpmd give the same answers and the same access-log lines.

Two differences, where mpmd follows the PROXY protocol's specification (docs/modules.md):
httpd 2.4 takes a v1 port out of range (99999) and mpmd refuses the header; httpd fails the
shortest v1 header, ``PROXY UNKNOWN\r\n``, when the request comes with it in one read
(AH03513 "internal error: have data left over"), and mpmd serves it with the peer's address."""

from __future__ import annotations

import socket
import time

import pytest

from mpmd.http.proxy_protocol import v1_header, v2_header
from tests.support.apache import config, free_port, needs_apache, running
from tests.support.harness import wait_for

pytestmark = needs_apache("mod_remoteip.so", "mod_authz_host.so")

EXTRA = '''
RemoteIPProxyProtocol On
RemoteIPProxyProtocolExceptions 127.0.0.5
LogFormat "%a %{{c}}a %>s %U" pp
CustomLog "{log}" pp
<Location "/only-doc">
    Require ip 203.0.113.0/24
</Location>
'''


def _cases(port):
    dst = ("127.0.0.1", port)
    return [
        ("127.0.0.1", v1_header(("203.0.113.7", 40001), dst), "/index.html"),
        ("127.0.0.1", v2_header(("2001:db8::5", 7), ("::1", port)), "/index.html"),
        ("127.0.0.1", v2_header(("198.51.100.4", 9), dst), "/only-doc"),
        ("127.0.0.1", v1_header(("203.0.113.9", 1), dst), "/only-doc"),
        ("127.0.0.1", v2_header(None, None), "/index.html"),
        ("127.0.0.1", b"PROXY UNKNOWN\r\n", "/index.html"),
        ("127.0.0.5", b"", "/index.html"),                       # an exception
        ("127.0.0.1", b"", "/index.html"),                       # no header: closed
        ("127.0.0.1", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", "/index.html"),
    ]


def _run(port, log):
    statuses = []
    for source, preamble, path in _cases(port):
        with socket.create_connection(("127.0.0.1", port), timeout=10,
                                      source_address=(source, 0)) as sock:
            sock.sendall(preamble)
            time.sleep(0.05)
            try:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n"
                             "Connection: close\r\n\r\n".encode())
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            except (ConnectionResetError, BrokenPipeError):
                data = b""
        statuses.append(int(data.split(b" ", 2)[1]) if data else 0)
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 7, timeout=10,
             message="seven log lines")
    time.sleep(0.2)
    return statuses, log.read_text().splitlines()


def _site(htdocs):
    htdocs.mkdir(parents=True, exist_ok=True)
    (htdocs / "index.html").write_bytes(b"<h1>hello</h1>\n")
    (htdocs / "only-doc").write_bytes(b"doc\n")
    return htdocs


@pytest.mark.parametrize("mpm", ["event"])
def test_proxy_protocol_as_apache(conf, make_server, tmp_path, mpm):
    port, root = free_port(), tmp_path / "apache"
    apache_log = root / "access.log"
    (root / "httpd.conf").write_text(config(
        root, port, _site(root / "htdocs"), modules=("remoteip", "authz_host"),
        extra=EXTRA.format(log=apache_log)))
    with running(root / "httpd.conf", [("127.0.0.1", port)]):
        apache = _run(port, apache_log)
    log = tmp_path / "mpmd_access.log"
    _site(conf.htdocs)
    server = make_server(conf.add(EXTRA.format(log=log)))
    mine = _run(server.port, log)
    same = [0, 1, 2, 3, 4, 6, 7]
    assert [mine[0][i] for i in same] == [apache[0][i] for i in same]
    assert [mine[0][i] for i in same] == [200, 200, 403, 200, 200, 200, 0], mine
    assert mine[1][:5] + mine[1][6:] == apache[1][:5] + apache[1][5:6], (mine, apache)
    assert apache[1][0] == "203.0.113.7 127.0.0.1 200 /index.html", apache
    # the two differences (module docstring)
    assert (apache[0][5], mine[0][5]) == (0, 200) and mine[1][5].startswith("127.0.0.1 127.0.0.1 200")
    assert (apache[0][8], mine[0][8]) == (200, 0) and apache[1][6].startswith("1.2.3.4 ")
