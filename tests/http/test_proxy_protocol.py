"""The sans-I/O PROXY protocol reader (http/proxy_protocol.py)."""

import struct

import pytest

from mpmd.http.proxy_protocol import (MAX_V2_BODY, V2_SIGNATURE, ProxyHeaderReader,
                                      ProxyProtocolError, v1_header, v2_header)

REQ = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def read_all(data, step=None):
    """Feed ``data`` as a peeking transport would (``step`` bytes arriving at a time); return
    (header, the bytes left for HTTP)."""
    reader = ProxyHeaderReader()
    arrived, consumed = 0, 0
    while not reader.done:
        arrived = len(data) if step is None else min(len(data), arrived + step)
        taken = reader.take(data[consumed:arrived])
        consumed += taken
        if not reader.done and arrived == len(data):
            raise AssertionError("incomplete")
    return reader.header, data[consumed:]


@pytest.mark.parametrize("step", [None, 1, 3, 7])
def test_v1_tcp4_then_request_untouched(step):
    header, rest = read_all(v1_header(("192.0.2.7", 5555), ("10.0.0.1", 80)) + REQ, step)
    assert header.version == 1 and header.source == ("192.0.2.7", 5555)
    assert header.destination == ("10.0.0.1", 80)
    assert rest == REQ


@pytest.mark.parametrize("step", [None, 1, 5, 17])
def test_v2_tcp6_with_tlvs_split(step):
    tlv = b"\x04" + struct.pack("!H", 3) + b"abc"
    data = v2_header(("2001:db8::1", 1234), ("::1", 443), tlv) + b"\x16\x03\x01"
    header, rest = read_all(data, step)
    assert header.version == 2 and header.source == ("2001:db8::1", 1234)
    assert rest == b"\x16\x03\x01"


def test_v2_tcp4_and_local_and_unknown():
    assert read_all(v2_header(("198.51.100.9", 1), ("127.0.0.1", 2)))[0].source == ("198.51.100.9", 1)
    assert read_all(v2_header(None, None) + REQ) == (read_all(v2_header(None, None))[0], REQ)
    assert read_all(v2_header(None, None))[0].source is None
    header, rest = read_all(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n" + REQ)
    assert header.source is None and rest == REQ
    assert read_all(b"PROXY UNKNOWN\r\n")[0].source is None


def test_v2_unspec_family_keeps_peer():
    data = V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x00, 0)
    assert read_all(data)[0].source is None


@pytest.mark.parametrize("data", [
    REQ,                                                    # plain HTTP
    b"\x16\x03\x01\x00",                                    # a TLS hello
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",                    # LF alone
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",                    # a port missing
    b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",                      # wrong family
    b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",              # port out of range
    b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",                 # leading zero
    b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
    b"PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n",
    b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY TCP4 " + b"1" * 120 + b"\r\n",                  # longer than 107 bytes
    b"PROXX TCP4",
    V2_SIGNATURE[:5] + b"X" * 20,
    V2_SIGNATURE + struct.pack("!BBH", 0x11, 0x11, 12) + bytes(12),   # version 1 in v2
    V2_SIGNATURE + struct.pack("!BBH", 0x22, 0x11, 12) + bytes(12),   # command 2
    V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x12, 12) + bytes(12),   # UDP
    V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x31, 216) + bytes(216),  # unix
    V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, 8) + bytes(8),     # addresses truncated
    V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x21, 12) + bytes(12),
    V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, MAX_V2_BODY + 1),  # oversized
])
def test_malformed_refused(data):
    with pytest.raises(ProxyProtocolError):
        read_all(data + b"\r\n" * 60, 1)
    with pytest.raises(ProxyProtocolError):
        read_all(data + b"\r\n" * 60)


def test_refused_early_without_waiting_for_more():
    with pytest.raises(ProxyProtocolError):
        ProxyHeaderReader().take(b"G")
    with pytest.raises(ProxyProtocolError):
        ProxyHeaderReader().take(b"\x16")


def test_truncated_waits_and_takes_only_header_bytes():
    reader = ProxyHeaderReader()
    full = v1_header(("192.0.2.1", 1), ("192.0.2.2", 2))
    assert reader.take(full[:10]) == 10 and not reader.done
    assert reader.take(b"") == 0 and not reader.done
    assert reader.take(full[10:] + REQ) == len(full) - 10 and reader.done
    assert reader.take(REQ) == 0
    reader = ProxyHeaderReader()
    v2 = v2_header(("192.0.2.1", 1), ("192.0.2.2", 2))
    assert reader.take(v2[:15]) == 15 and not reader.done
    assert reader.take(v2[15:20]) == 5 and not reader.done
    assert reader.take(v2[20:] + REQ) == len(v2) - 20 and reader.done
