"""mod_proxy checked against apache2's own mod_proxy/mod_proxy_http/mod_proxy_balancer: the same
ProxyPass lines in front of the same backend give the same status, the same answer fields
(Location after ProxyPassReverse, the backend's own fields, no hop-by-hop ones) and send the
backend the same X-Forwarded-* and Host fields, on mpmd's event and nginx MPMs.  (A backend
answer that is not HTTP is a 502 in mpmd; httpd passes it on as an HTTP/0.9 body: not
compared; nor is a backend that closes without answering, after which httpd closes the
client's connection without an answer too; nor a backend that times out: 504 in mpmd, as issue 21
asks, 502 in httpd 2.4.)"""

from __future__ import annotations

import httpx
import pytest

from tests.integration.test_proxy_e2e import Backend, dead_port
from tests.support.apache import config, free_port, needs_apache, running

pytestmark = needs_apache("mod_proxy.so", "mod_proxy_http.so", "mod_proxy_balancer.so",
                          "mod_lbmethod_byrequests.so", "mod_slotmem_shm.so")

PROXY = """
ProxyPass /local !
ProxyPass /app/ http://127.0.0.1:{b}/sub/ timeout=1
ProxyPassReverse /app/ http://127.0.0.1:{b}/sub/
ProxyPass /down/ http://127.0.0.1:{dead}/ retry=1
ProxyPass /bal/ balancer://c/
<Proxy "balancer://c">
    BalancerMember http://127.0.0.1:{b}/sub
</Proxy>
ProxyRequests Off
"""
PATHS = ["/app/x?q=1", "/app/redirect", "/down/x", "/local/none",
         "/bal/x", "/app/a%20b"]
# X-Forwarded-Proto is mpmd's addition (issue 21 asks for it; httpd does not send it)
FORWARDED = ("host", "x-forwarded-for", "x-forwarded-host", "x-forwarded-server", "via",
             "connection")


@pytest.fixture
def backend():
    b = Backend("one")
    yield b
    b.stop()


def _seen(resp: httpx.Response, port: int) -> tuple:
    """What a comparison looks at, the proxy's own port written as PORT."""
    fields = {k: v.replace(str(port), "PORT") for k, v in resp.headers.items()
              if k in ("location", "content-location", "content-type", "x-backend")}
    backend_saw = {}
    if resp.headers.get("content-type") == "application/json":
        got = resp.json()
        backend_saw = {k: v.replace(str(port), "PORT") for k, v in got["headers"].items()
                       if k in FORWARDED}
        backend_saw["path"] = got["path"]
    return resp.status_code, fields, backend_saw


def test_same_answers_as_apache(conf, make_server, backend, tmp_path, mpm):
    if mpm not in ("event", "nginx"):
        pytest.skip("compared on the event and nginx MPMs")
    dead = dead_port()
    extra = PROXY.format(b=backend.port, dead=dead)
    conf.add(extra)
    server = make_server(conf)
    aport = free_port()
    aroot = tmp_path / "apache"
    (aroot / "htdocs").mkdir(parents=True)
    text = config(aroot, aport, aroot / "htdocs",
                  modules=("proxy", "proxy_http", "proxy_balancer", "lbmethod_byrequests",
                           "slotmem_shm"), extra="ServerName localhost\n" + extra)
    (aroot / "httpd.conf").write_text(text)
    with running(aroot / "httpd.conf", [("127.0.0.1", aport)]):
        with httpx.Client(timeout=20) as c:
            for path in PATHS:
                ours = _seen(c.get(f"http://127.0.0.1:{server.port}{path}"), server.port)
                theirs = _seen(c.get(f"http://127.0.0.1:{aport}{path}"), aport)
                assert ours == theirs, path
