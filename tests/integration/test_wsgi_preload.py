"""WSGIPreload On: the application is imported once, in the master, before fork (post_config hook)."""

import httpx

from tests.integration.wsgi_support import wsgi_conf


def test_preload_imports_in_master(conf, make_server):
    srv = make_server(wsgi_conf(conf, preload=True))
    imported, serving = httpx.get(srv.url + "/pid", timeout=20).text.split()
    assert int(imported) == srv.pid and int(serving) != srv.pid
