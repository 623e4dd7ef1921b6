"""mod_wsgi end to end: the real server on every MPM, real clients (http.client, httpx, sockets)."""

import http.client
import json
import socket

import httpx
import pytest

from tests.integration.wsgi_support import APPS, wsgi_conf
from tests.support.harness import wait_for


@pytest.fixture
def srv(conf, make_server):
    conf.set("StartServers", 2) if conf.mpm == "prefork" else None
    return make_server(wsgi_conf(conf))


def get(srv, path, **kw):
    return httpx.get(srv.url + path, timeout=20, **kw)


def test_hello_and_keepalive(srv):
    with httpx.Client(base_url=srv.url, timeout=20) as c:
        for _ in range(5):
            r = c.get("/hello")
            assert r.status_code == 200 and r.text == "Hello, world!"


def test_environ_over_the_wire(srv):
    r = httpx.post(srv.url + "/echo/a/b?x=1", content=b"payload", timeout=20,
                   headers={"X-Multi": "1", "X_Spoof": "evil"})
    env = r.json()
    assert env["SCRIPT_NAME"] == "/echo" and env["PATH_INFO"] == "/a/b"
    assert env["QUERY_STRING"] == "x=1" and env["body"] == "payload"
    assert env["CONTENT_LENGTH"] == "7" and env["REQUEST_METHOD"] == "POST"
    assert env["SERVER_PORT"] == str(srv.port) and env["REMOTE_ADDR"] == "127.0.0.1"
    assert "HTTP_X_SPOOF" not in env and env["HTTP_X_MULTI"] == "1"
    expect = {"prefork": [False, True]}.get(srv.conf.mpm, [True, True])
    assert [env["wsgi.multithread"], env["wsgi.multiprocess"]] == expect


def test_repeated_headers_joined(srv):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    env = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert env["HTTP_X_A"] == "1, 2"


def test_wsgiref_validate_in_server(srv):
    r = httpx.post(srv.url + "/validate", content=b"x" * 1000, timeout=20)
    assert r.status_code == 200 and r.text == "validated 1000\n", srv.error_log_text()
    chunked = httpx.post(srv.url + "/validate", content=iter([b"ab", b"cd"]), timeout=20)
    assert chunked.text == "validated 4\n"


def test_streaming_is_chunked(srv):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
    conn.request("GET", "/big?n=20")
    r = conn.getresponse()
    assert r.getheader("Transfer-Encoding") == "chunked"
    assert len(r.read()) == 20 * 65536
    conn.close()


def test_write_lazy_headers_filewrapper(srv):
    assert get(srv, "/writer").text == "one two three"
    assert get(srv, "/lazy").text == "lazy"
    r = get(srv, "/headers", headers={"X-Echo": "hey"})
    assert r.status_code == 201 and r.headers["x-echo"] == "hey"
    assert r.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert get(srv, "/fw").content == (APPS / "wsgi_apps.py").read_bytes()
    assert get(srv, "/fwpipe").content == b"from a BytesIO\n" * 3


def test_close_is_called(srv):
    assert get(srv, "/closing").text == "abc"
    wait_for(lambda: "closing-iter closed" in srv.error_log_text() + srv.out_file.read_text(),
             10, message="close() of the app's iterable")


def test_error_gives_500_traceback_and_server_keeps_serving(srv):
    r = get(srv, "/error")
    assert r.status_code == 500
    wait_for(lambda: "RuntimeError: boom from the error app" in srv.error_log_text(), 10,
             message="the traceback in the ErrorLog")
    assert "MPMD0702" in srv.error_log_text()
    assert get(srv, "/hello").status_code == 200


def test_error_mid_body_drops_connection(srv):
    with pytest.raises(httpx.HTTPError):
        get(srv, "/midfail")
    assert get(srv, "/hello").status_code == 200


def test_crashing_app_process_replaced(srv):
    with pytest.raises(httpx.HTTPError):
        get(srv, "/crash")
    wait_for(lambda: get(srv, "/hello").status_code == 200, 20, message="service after a crash")


def test_flask(srv):
    assert get(srv, "/flask/").text == "Hello from Flask"
    j = get(srv, "/flask/json?a=b").json()
    assert j == {"ok": True, "args": {"a": "b"}, "script_root": "/flask", "path": "/json"}
    assert httpx.post(srv.url + "/flask/form", data={"k": "v"}, timeout=20).json() == {"form": {"k": "v"}}
    up = httpx.post(srv.url + "/flask/upload", files={"file": ("a.bin", b"\x00ABCDEFG" * 1000)}, timeout=20)
    assert up.json() == {"name": "a.bin", "size": 8000, "head": "\x00ABCDEFG"}
    assert get(srv, "/flask/stream").text == "".join(f"row {i}\n" for i in range(10))
    assert get(srv, "/flask/nope").status_code == 404
    assert get(srv, "/flask/boom").status_code == 500


def test_django(srv):
    assert get(srv, "/django/").text == "Hello from Django"
    j = get(srv, "/django/json?a=b").json()
    assert j == {"ok": True, "get": {"a": "b"}, "path": "/django/json", "script_name": "/django"}
    r = httpx.post(srv.url + "/django/form", data={"k": "v"}, timeout=20)
    assert r.json() == {"form": {"k": "v"}, "method": "POST"}
    up = httpx.post(srv.url + "/django/upload", files={"file": ("f.txt", b"z" * 50000)}, timeout=20)
    assert up.json() == {"name": "f.txt", "size": 50000}
    assert get(srv, "/django/stream").text == "".join(f"row {i}\n" for i in range(10))
    assert get(srv, "/django/boom").status_code == 500


def test_preload_off_imports_in_children(srv):
    imported, serving = get(srv, "/pid").text.split()
    assert imported == serving and int(serving) != srv.pid
