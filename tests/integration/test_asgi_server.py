"""mod_asgi end to end: raw ASGI apps and FastAPI on every MPM (loop thread fallback / nginx loop)."""

import httpx
import pytest

from tests.integration.wsgi_support import REPO


@pytest.fixture
def srv(conf, make_server):
    conf.add(f'WSGIPythonPath "{REPO}"')
    conf.add("ASGIApp /echo tests.apps.asgi_apps:echo")
    conf.add("ASGIApp /stream tests.apps.asgi_apps:stream")
    conf.add("ASGIApp /error tests.apps.asgi_apps:error")
    conf.add("ASGIApp /api tests.apps.starlette_app:app")
    return make_server(conf)


def test_asgi_echo_with_lifespan_state(srv):
    r = httpx.post(srv.url + "/echo/x?q=1", content=b"body!", timeout=20)
    info = r.json()
    assert info["path"] == "/echo/x" and info["root_path"] == "/echo"
    assert info["body"] == "body!" and info["state"] == {"started": True}


def test_asgi_streaming_and_errors(srv):
    r = httpx.get(srv.url + "/stream?n=4", timeout=20)
    assert r.text == "".join(f"chunk {i}\n" for i in range(4))
    assert r.headers.get("transfer-encoding") == "chunked"
    assert httpx.get(srv.url + "/error", timeout=20).status_code == 500
    assert httpx.get(srv.url + "/stream?n=1", timeout=20).status_code == 200


def test_fastapi(srv):
    with httpx.Client(base_url=srv.url + "/api", timeout=20) as c:
        assert c.get("/").json() == {"hello": "fastapi", "started": True}
        assert c.get("/items/7?q=a").json() == {"item_id": 7, "q": "a"}
        assert c.post("/echo", json={"x": [1, 2]}).json() == {"got": {"x": [1, 2]}}
        assert c.get("/stream").text == "".join(f"line {i}\n" for i in range(5))
        assert c.get("/missing").status_code == 404
        assert c.get("/crash").status_code == 500
        assert c.get("/text").text == "plain"
