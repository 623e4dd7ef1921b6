"""mod_asgi end to end: raw ASGI apps and FastAPI on every MPM (loop thread fallback / nginx loop)."""

import signal

import httpx
import pytest

from tests.support.harness import wait_for
from tests.support.rawclient import RawConn, get

from tests.integration.wsgi_support import REPO


@pytest.fixture
def srv(conf, make_server):
    conf.add(f'WSGIPythonPath "{REPO}"')
    conf.add("ASGIApp /echo tests.apps.asgi_apps:echo")
    conf.add("ASGIApp /stream tests.apps.asgi_apps:stream")
    conf.add("ASGIApp /error tests.apps.asgi_apps:error")
    conf.add("ASGIApp /api tests.apps.starlette_app:app")
    conf.add("ASGIApp /head-first tests.apps.asgi_apps:head_first")
    conf.add("ASGIApp /fail-after-start tests.apps.asgi_apps:fail_after_start")
    conf.add("ASGIApp /after tests.apps.asgi_apps:after_response")
    conf.add("ASGIApp /background tests.apps.asgi_apps:background")
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


def test_head_is_not_held_back_until_the_first_body_chunk(srv, tmp_path):
    gate = tmp_path / "gate"
    with RawConn(srv.port) as c:
        c.send(get(f"/head-first?{gate}"))
        head = c._read_head()                   # arrives while the app still holds its body
        assert head.status == 200 and head.header("x-head") == "first"
        gate.write_text("open")
        assert c._read_body(head) == b"after the gate"


def test_an_app_failing_before_any_body(srv):
    # Nothing was sent yet (the head waits for the first body message or the app's first
    # pause): a clean 500, on the nginx MPM and in the loop-thread fallback alike.
    assert httpx.get(srv.url + "/fail-after-start", timeout=20).status_code == 500
    wait_for(lambda: "boom after start" in srv.error_log_text(), timeout=10,
             message="the traceback in the ErrorLog")


def test_the_app_runs_on_after_its_response(srv, tmp_path):
    marker = tmp_path / "marker"
    with RawConn(srv.port) as c:
        c.send(get(f"/after?{marker}"))
        assert c.read_response().body == b"answered"
        c.send(get("/echo/next"))               # the same connection serves on meanwhile
        assert c.read_response().status == 200
    wait_for(marker.exists, timeout=10, message="the app's work after its response")


def test_graceful_stop_lets_work_after_the_answer_finish(srv, tmp_path):
    marker = tmp_path / "background-done"
    assert httpx.get(f"{srv.url}/background?{marker}", timeout=20).text == "accepted"
    srv.signal(signal.SIGWINCH)                 # graceful-stop
    assert srv.proc.wait(timeout=30) == 0
    assert marker.read_text() == "done"         # the app's work after its answer was not cut
