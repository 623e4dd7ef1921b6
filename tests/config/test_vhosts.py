"""The vhost table and each vhost's merged values (config/vhosts.py, loader._virtual_host)."""

from __future__ import annotations

import pytest

from mpmd.config.loader import load_config
from mpmd.config.model import ConfigError
from mpmd.config.vhosts import ANY_PORT, VhostAddrError, host_of, parse_addr, vhost_report

BASE = "Listen 127.0.0.1:0\nServerName main.test\nDocumentRoot /srv/main\n"


def load(text: str):
    return load_config(text=BASE + text, path="/etc/t.conf")


@pytest.mark.parametrize("word, ip, port", [
    ("*:80", "*", 80), ("_default_:443", "*", 443), ("*", "*", ANY_PORT), ("*:*", "*", ANY_PORT),
    ("127.0.0.1:8080", "127.0.0.1", 8080), ("[::1]:81", "::1", 81), ("::1", "::1", ANY_PORT),
    ("localhost:82", "127.0.0.1", 82)])
def test_parse_addr(word, ip, port):
    addr = parse_addr(word)
    assert (addr.ip, addr.port) == (ip, port)


@pytest.mark.parametrize("word", ["*:http", "*:0", "*:70000", "[::1"])
def test_bad_addr(word):
    with pytest.raises(VhostAddrError):
        parse_addr(word)


def test_bad_vhost_address_is_an_error_at_its_line():
    with pytest.raises(ConfigError) as err:
        load("<VirtualHost *:nope>\n</VirtualHost>\n")
    assert err.value.line == 4 and err.value.file == "/etc/t.conf"


@pytest.mark.parametrize("value, host", [
    (b"Example.COM", "example.com"), (b"example.com:8080", "example.com"), (b"a.test.", "a.test"),
    (b"[::1]:80", "::1"), (b"", None), (None, None)])
def test_host_of(value, host):
    assert host_of(value) == host


TWO = """<VirtualHost *:80>
ServerName a.test
ServerAlias www.a.test
ServerAlias *.a.test ?.b.test
DocumentRoot /srv/a
</VirtualHost>
<VirtualHost *:80>
ServerName https://b.test:443
DocumentRoot /srv/b
</VirtualHost>
<VirtualHost 127.0.0.2:80>
DocumentRoot /srv/ip
</VirtualHost>
"""


@pytest.mark.parametrize("ip, port, host, root", [
    ("127.0.0.1", 80, "a.test", "/srv/a"), ("127.0.0.1", 80, "x.a.test", "/srv/a"),
    ("127.0.0.1", 80, "q.b.test", "/srv/a"), ("127.0.0.1", 80, "qq.b.test", "/srv/a"),
    ("127.0.0.1", 80, "b.test", "/srv/b"), ("127.0.0.1", 80, "B.Test:80", "/srv/b"),
    ("127.0.0.1", 80, None, "/srv/a"), ("127.0.0.2", 80, "b.test", "/srv/ip"),
    ("::ffff:127.0.0.2", 80, "b.test", "/srv/ip"), ("127.0.0.1", 81, "a.test", "/srv/main")])
def test_select(ip, port, host, root):
    cfg = load(TWO)
    assert cfg.vhosts.select(ip, port, host).document_root == root


def test_vhost_values_merge_as_httpd():
    cfg = load("Alias /m /srv/m-alias\nCustomLog /var/log/main.log common\nKeepAlive On\n"
               "<VirtualHost *:80>\nServerName a.test\nAlias /v /srv/v-alias\nAlias /m /srv/v-m\n"
               "KeepAlive Off\n</VirtualHost>\n"
               "<VirtualHost *:80>\nServerName b.test\nCustomLog /var/log/b.log common\n</VirtualHost>\n")
    a, b = cfg.vhosts.vhosts
    assert [r.url for r in a.alias] == ["/v", "/m", "/m"]          # the vhost's first
    assert a.alias[1].target == "/srv/v-m"
    assert a.custom_log == cfg.custom_log                           # inherited
    assert [c[0] for c in b.custom_log] == ["/var/log/b.log"]       # its own alone
    assert (cfg.keep_alive, a.keep_alive, b.keep_alive) == (True, False, True)
    assert a.server_alias == [] and a.where("keep_alive") == "/etc/t.conf:11"


def test_vhost_sections_come_after_the_main_servers():
    cfg = load("<Directory /srv/a>\nOptions Indexes\n</Directory>\n"
               "<Location /s>\nSetHandler server-status\n</Location>\n"
               "<VirtualHost *:80>\nServerName a.test\nDocumentRoot /srv/a\n"
               "<Directory /srv/a>\nOptions -Indexes +ExecCGI\n</Directory>\n"
               "<Location /s>\nSetHandler none\n</Location>\n</VirtualHost>\n")
    vhost = cfg.vhosts.vhosts[0]
    # Options Indexes (main), then -Indexes +ExecCGI (the vhost's, over it)
    assert vhost.dir_config("/srv/a/x", "/x").options == frozenset({"ExecCGI"})
    assert cfg.dir_config("/srv/a/x", "/x").options == frozenset({"Indexes"})
    assert vhost.dir_config("/srv/a/s", "/s").set_handler == "none"
    assert cfg.dir_config("/srv/main/s", "/s").set_handler == "server-status"


def test_every_server_has_its_own_route_cache():
    cfg = load(TWO)
    tables = {id(s.hooks) for s in cfg.vhosts.servers()}
    assert len(tables) == 4


def test_report_lists_sets_as_apachectl():
    report = vhost_report(load(TWO))
    assert report.splitlines()[:8] == [
        "VirtualHost configuration:",
        "127.0.0.2:80           main.test (/etc/t.conf:14)",
        "*:80                   is a NameVirtualHost",
        "         default server a.test (/etc/t.conf:4)",
        "         port 80 namevhost a.test (/etc/t.conf:4)",
        "                 alias www.a.test",
        "                 wild alias *.a.test",
        "                 wild alias ?.b.test",
    ]
    assert "         port 80 namevhost b.test (/etc/t.conf:10)" in report
    assert 'Main DocumentRoot: "/srv/main"' in report


def test_no_vhosts():
    cfg = load("")
    assert not cfg.vhosts and cfg.vhosts.select("127.0.0.1", 80, "x") is cfg
    assert vhost_report(cfg).splitlines()[1].startswith("ServerRoot:")
