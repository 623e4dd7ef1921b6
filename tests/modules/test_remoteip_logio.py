"""The pure parts of mod_remoteip (the walk, proxies, its directives), of the access log's new
fields (%{name}C, the head's size for %I, %L) and of mod_status's Apache fields; no sockets."""

from __future__ import annotations

import os
import re
import time

import pytest

from mpmd.config.loader import load_config
from mpmd.config.model import ConfigError
from mpmd.core.logid import log_id, new_id
from mpmd.core.request import head_size
from mpmd.http.connection import Connection
from mpmd.http.events import Request
from mpmd.modules import mod_status
from mpmd.modules.mod_log_config import compile_format, cookie_value
from mpmd.modules.mod_remoteip import parse_proxy, walk
from mpmd.scoreboard.board import Scoreboard
from mpmd.scoreboard.layout import Status


def proxies(*words: str, internal: bool = False):
    return tuple(parse_proxy(w, internal) for w in words)


@pytest.mark.parametrize("value, listed, expected", [
    # every proxy trusted when none is listed; the rightmost untaken entry stays
    ("203.0.113.9", (), ("203.0.113.9", None, ["127.0.0.1"])),
    ("198.51.100.1, 203.0.113.9", (), ("198.51.100.1", None, ["127.0.0.1", "203.0.113.9"])),
    # an external proxy may not present a private address: the walk stops before it
    ("10.0.0.1, 203.0.113.9", (), ("203.0.113.9", "10.0.0.1", ["127.0.0.1"])),
    ("10.0.0.1", (), (None, "10.0.0.1", [])),
    ("fd00::1", (), (None, "fd00::1", [])),
    ("2001:db8::7", (), ("2001:db8::7", None, ["127.0.0.1"])),
    # only listed proxies present: 203.0.113.9 is no proxy, 198.51.100.1 stays
    ("198.51.100.1, 203.0.113.9", proxies("127.0.0.1"), ("203.0.113.9", "198.51.100.1",
                                                          ["127.0.0.1"])),
    # the peer is not listed: nothing is taken
    ("203.0.113.9", proxies("192.0.2.1"), (None, "203.0.113.9", [])),
    # internal proxies may present private addresses and are not recorded
    ("198.51.100.1, 10.0.0.5", proxies("127.0.0.1", "10.0.0.0/8", internal=True),
     ("198.51.100.1", None, [])),
    # not an address, or empty: the walk stops there and it stays in the header
    ("junk, 203.0.113.9", (), ("203.0.113.9", "junk", ["127.0.0.1"])),
    ("203.0.113.4, junk ", (), (None, "203.0.113.4, junk", [])),
])
def test_the_walk_right_to_left(value, listed, expected):
    assert walk("127.0.0.1", value, listed) == expected


def test_a_mapped_peer_matches_its_ipv4_network():
    assert walk("::ffff:127.0.0.1", "203.0.113.9", proxies("127.0.0.0/8"))[0] == "203.0.113.9"


@pytest.mark.parametrize("word, network", [
    ("10.1", "10.1.0.0/16"), ("10", "10.0.0.0/8"), ("10.0.0.0/255.0.0.0", "10.0.0.0/8"),
    ("192.0.2.7", "192.0.2.7/32"), ("2001:db8::/32", "2001:db8::/32"), ("10.1.2.3/8", "10.0.0.0/8"),
])
def test_proxies_as_apr_reads_them(word, network):
    assert str(parse_proxy(word, False).network) == network


def _load(tmp_path, text: str):
    path = tmp_path / "httpd.conf"
    path.write_text(f"Listen 127.0.0.1:0\nDocumentRoot {tmp_path}\n{text}")
    return load_config(str(path))


def test_directives_and_a_vhosts_own_list(tmp_path):
    (tmp_path / "proxies.txt").write_text("# ours\n192.0.2.0/24 198.51.100.7 # the edge\n\n")
    cfg = _load(tmp_path, "RemoteIPHeader X-Real-IP\nRemoteIPTrustedProxy 127.0.0.1\n"
                          f"RemoteIPTrustedProxyList {tmp_path}/proxies.txt\n"
                          "<VirtualHost *:80>\nServerName v\nRemoteIPInternalProxy 10.0.0.0/8\n"
                          "</VirtualHost>\n")
    from mpmd.modules.mod_remoteip import proxies_of
    main, vhost = cfg.vhosts.servers()
    assert [str(p.network) for p in proxies_of(main)] == ["127.0.0.1/32", "192.0.2.0/24",
                                                          "198.51.100.7/32"]
    assert [(str(p.network), p.internal) for p in vhost.remote_ip_proxies] == [("10.0.0.0/8", True)]
    assert vhost.remote_ip_header == "X-Real-IP"
    hooks = cfg.hooks.by_hook
    assert [f.__self__.name for f in hooks["post_read_request"]] == ["remoteip_module"]


def test_no_header_no_hooks(tmp_path):
    cfg = _load(tmp_path, "RemoteIPTrustedProxy 127.0.0.1\n")
    assert not cfg.hooks.by_hook["post_read_request"] and not cfg.hooks.by_hook["header_parser"]


def test_host_names_and_missing_lists_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="RemoteIP: Error parsing IP proxy.example"):
        _load(tmp_path, "RemoteIPTrustedProxy proxy.example\n")
    with pytest.raises(ConfigError, match="could not open file"):
        _load(tmp_path, f"RemoteIPInternalProxyList {tmp_path}/none.txt\n")
    (tmp_path / "bad.txt").write_text("192.0.2.1\nnot/an/ip\n")
    with pytest.raises(ConfigError, match="at line 2 of"):
        _load(tmp_path, f"RemoteIPTrustedProxyList {tmp_path}/bad.txt\n")


@pytest.mark.parametrize("header, name, value", [
    (b"foo=1; bar=x y ; baz=3", "bar", "x y"), (b"foo=1; bar=x y; baz=3=4", "baz", "3=4"),
    (b"Foo=up", "foo", "up"), (b"a=; b=2", "a", None), (b"a", "a", None), (None, "a", None),
    (b"  sid=abc;", "SID", "abc"),
])
def test_cookie_values_as_httpd_finds_them(header, name, value):
    assert cookie_value(header, name) == value


def test_the_head_size_is_the_bytes_a_client_wrote():
    raw = b"GET /a/b?c=d HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t/1\r\nCookie: x=1\r\n\r\n"
    conn = Connection()
    conn.receive_data(raw)
    request = conn.next_event()
    assert isinstance(request, Request) and head_size(request) == len(raw)


def test_log_formats_with_the_new_codes_compile():
    assert len(compile_format("%a %{c}a %h %{c}h %I %O %S %L %{sid}C")) == 17


def test_log_ids_are_apaches_shape_unique_and_kept():
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(re.fullmatch(r"[A-Za-z0-9+/]{11}", i) for i in ids)

    class Ctx:
        log_id = None
    ctx = Ctx()
    assert log_id(ctx) == log_id(ctx) == ctx.log_id


def test_status_auto_has_apaches_fields():
    sb = Scoreboard(2, 2)
    sb.set_process(0, os.getpid(), 0)
    w = sb.worker(0, 0)
    w.reset(os.getpid(), Status.READY)
    w.finish(100, time.time() - 0.25, int(Status.BUSY_KEEPALIVE))       # a 250 ms request
    s = mod_status.aggregate(sb.snapshot(), now=time.time() + 3)
    s.cpu, s.load = (1.5, 0.5, 0.25, 0.0), (0.1, 0.2, 0.3)
    text = mod_status.render_auto(s, "localhost", "worker", "mpmd/0.1.0")
    fields = dict(line.split(": ", 1) for line in text.splitlines()[1:])
    assert fields["ServerVersion"] == "Apache/2.4.62 (mpmd/0.1.0)"
    assert 240 <= int(fields["Total Duration"]) < 1000
    assert fields["DurationPerReq"] == fields["Total Duration"]
    assert (fields["CPUUser"], fields["CPUChildrenUser"], fields["CPULoad"]) == ("1.5", ".25", "75")
    assert (fields["Load1"], fields["Load15"]) == ("0.10", "0.30")
    assert (fields["ParentServerConfigGeneration"], fields["ParentServerMPMGeneration"]) == ("1", "0")


def test_cpu_times_count_this_process():
    user, system, _, _ = mod_status.cpu_times([os.getpid()])
    assert user + system > 0


def test_numbers_as_aprs_printf_writes_them():
    assert [mod_status.apr_g(v) for v in (0.6, -0.25, 12.0, 0.0, 1e-7)] == [
        ".6", "-.25", "12", "0", "1e-07"]
