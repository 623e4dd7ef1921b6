"""FastAPI on the nginx MPM's own event loop (the "async" handler path of mod_asgi)."""

import httpx
import pytest

from tests.conftest import available_mpms
from tests.integration.wsgi_support import REPO, wsgi_conf
from tests.support.confbuilder import ConfBuilder


@pytest.mark.skipif("nginx" not in available_mpms(),
                    reason="the nginx MPM (src/mpmd/mpm/nginx.py) is not available yet")
def test_fastapi_and_flask_on_nginx(tmp_path, make_server):
    conf = ConfBuilder(tmp_path, mpm="nginx")
    conf.add(f'WSGIPythonPath "{REPO}"')
    conf.add("ASGIApp /api tests.apps.starlette_app:app")
    srv = make_server(wsgi_conf(conf))
    with httpx.Client(base_url=srv.url, timeout=20) as c:
        assert c.get("/api/").json() == {"hello": "fastapi", "started": True}
        assert c.post("/api/echo", json={"n": 1}).json() == {"got": {"n": 1}}
        assert c.get("/api/stream").text == "".join(f"line {i}\n" for i in range(5))
        assert c.get("/api/crash").status_code == 500
        assert c.get("/flask/json").json()["ok"] is True
        assert c.get("/hello").text == "Hello, world!"
