"""ListenRemap (supervisor/listeners.py Rule 6) and <IfModule> in a configuration that loads
Apache's module files (config/loader.py Rule 9)."""

import textwrap

import pytest

from mpmd.config import check
from mpmd.config.loader import ConfigError, load_config
from mpmd.config.model import ListenAddr
from mpmd.mpm import conn
from mpmd.supervisor import listeners


def load(text):
    return load_config(text=textwrap.dedent(text), server_root="/tmp")


def test_remap_binds_another_address_and_keeps_the_written_one():
    cfg = load("Listen 80\nListen 127.0.0.1:0\nListenRemap 80 127.0.0.1:0\n")
    assert cfg.listen_remap == [(80, ListenAddr("127.0.0.1", 0))]
    bound = listeners.bind_all(cfg.listen, remap=cfg.listen_remap)
    try:
        assert [lst.addr for lst in bound] == cfg.listen              # TLS and -S see these
        assert bound[0].host == "127.0.0.1" and bound[0].port != 80
        assert conn.seen_as(("127.0.0.1", bound[0].port)) == ("127.0.0.1", 80)
        assert conn.seen_as(("127.0.0.1", bound[1].port)) == ("127.0.0.1", bound[1].port)
    finally:
        listeners.close_all(bound)
        conn.SEEN_PORTS.clear()


def test_remap_of_a_port_no_listen_has_is_named_at_t():
    cfg = load("Listen 127.0.0.1:0\nListenRemap 443 127.0.0.1:0\n")
    found = [p for p in check.run(cfg) if p.id == "MPMD0515"]
    assert found and "no Listen line has port 443" in found[0].text and found[0].line == 2


@pytest.mark.parametrize("bad", ["ListenRemap http 127.0.0.1:0", "ListenRemap 80 nowhere:port"])
def test_remap_arguments_are_checked(bad):
    with pytest.raises(ConfigError):
        load(f"Listen 80\n{bad}\n")


def test_ifmodule_of_a_loadable_module_is_false_until_loaded_in_an_apache_tree():
    base = "LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so\nListen 80\n"
    cfg = load(base + "<IfModule ssl_module>\nListen 443\n</IfModule>\n"
                      "<IfModule mod_mime.c>\nKeepAlive Off\n</IfModule>\n"
                      "<IfModule log_config_module>\nTimeout 7\n</IfModule>\n")
    assert [a.port for a in cfg.listen] == [80]                      # Debian's ports.conf
    assert cfg.keep_alive is False and cfg.timeout == 7.0
    cfg = load("LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so\n" + base +
               "<IfModule ssl_module>\nListen 443\n</IfModule>\n")
    assert [a.port for a in cfg.listen] == [80, 443]


def test_ifmodule_sees_every_builtin_in_an_mpmd_config():
    cfg = load("LoadModule mpm_event_module modules/mod_mpm_event.so\nListen 80\n"
               "<IfModule headers_module>\nKeepAlive Off\n</IfModule>\n")
    assert cfg.keep_alive is False
