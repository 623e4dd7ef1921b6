"""mpm/proxy_header.py: who must send a PROXY header, and reading one from a real socket pair
as the transports do (peek, then consume only the header's bytes)."""

import socket

from mpmd.http.proxy_protocol import ProxyHeaderReader, v1_header, v2_header
from mpmd.modules.mod_remoteip import parse_proxy
from mpmd.mpm import proxy_header


def test_expected_follows_the_rule_and_its_exceptions():
    rule = (parse_proxy("10.0.0.0/8", False), parse_proxy("2001:db8::/32", False))
    assert not proxy_header.expected(None, ("1.2.3.4", 1))
    assert proxy_header.expected((), ("10.1.2.3", 1))
    assert not proxy_header.expected(rule, ("10.1.2.3", 1))
    assert not proxy_header.expected(rule, ("::ffff:10.1.2.3", 1))       # v4-mapped
    assert not proxy_header.expected(rule, ("2001:db8::7", 1))
    assert proxy_header.expected(rule, ("192.0.2.1", 1))


def test_step_consumes_only_the_header():
    a, b = socket.socketpair()
    try:
        header = v1_header(("192.0.2.9", 1234), ("192.0.2.1", 80))
        a.sendall(header[:9])
        reader = ProxyHeaderReader()
        assert not proxy_header.step(b, reader)
        a.sendall(header[9:] + b"GET / HTTP/1.1\r\n")
        assert proxy_header.step(b, reader)
        assert proxy_header.client_of(reader, ("127.0.0.1", 9)) == ("192.0.2.9", 1234)
        assert b.recv(100) == b"GET / HTTP/1.1\r\n"
        a.sendall(v2_header(None, None) + b"x")
        reader = ProxyHeaderReader()
        assert proxy_header.step(b, reader)
        assert proxy_header.client_of(reader, ("127.0.0.1", 9)) == ("127.0.0.1", 9)   # LOCAL
        assert b.recv(100) == b"x"
    finally:
        a.close()
        b.close()
