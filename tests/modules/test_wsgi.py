"""mod_wsgi unit tests: environ, start_response, bodies, file_wrapper, errors -- with a fake ctx."""

import json
import os
from types import SimpleNamespace

import pytest

from mpmd.core.exchange import FileBody
from mpmd.modules import mod_wsgi, wsgi_environ
from tests.apps import wsgi_apps
from tests.modules.wsgi_fakes import ROOT, drain, make_ctx


def serve(app, mount="/app", **kw):
    module = mod_wsgi.WSGIModule()
    m = mod_wsgi.WSGIApplication(mount, lambda: app, "test")
    module.mounts = lambda server, mounts=[m]: mounts
    ctx = make_ctx(**kw)
    assert module.translate_name(ctx) is True
    assert ctx.handler == "wsgi-script"
    resp = module.handlers["wsgi-script"](ctx)
    return resp, drain(resp)


def echo(**kw):
    from tests.apps.echo_app import application
    resp, body = serve(application, **kw)
    assert resp.status == 200
    return json.loads(body)


def test_environ_basics():
    env = echo(path="/app/a/b", query=b"x=1&y=%20", headers=[(b"Host", b"example.org:8080")])
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == "/app"
    assert env["PATH_INFO"] == "/a/b"
    assert env["QUERY_STRING"] == "x=1&y=%20"
    assert env["SERVER_NAME"] == "example.org"
    assert env["SERVER_PORT"] == "8080"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1" and env["REMOTE_PORT"] == "50000"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.run_once"] is False
    assert (env["wsgi.multithread"], env["wsgi.multiprocess"]) == (True, True)      # no MPM to ask: both


def test_bare_mount_and_root_mount():
    assert echo(path="/app")["PATH_INFO"] == ""
    from tests.apps.echo_app import application
    _, body = serve(application, mount="", path="/")
    env = json.loads(body)
    assert env["SCRIPT_NAME"] == "" and env["PATH_INFO"] == "/"


def test_mount_does_not_claim_prefix_lookalikes():
    module = mod_wsgi.WSGIModule()
    module.mounts = lambda server, mounts=[mod_wsgi.WSGIApplication("/app", lambda: None, "t")]: mounts
    assert module.translate_name(make_ctx(path="/application")) is None
    assert module.translate_name(make_ctx(path="/app/")) is True


def test_longest_mount_wins():
    server = SimpleNamespace(server_root=ROOT, wsgi_script_alias=[("/a", "tests/apps/echo_app.py")],
                             wsgi_app=[("/a/b", "tests.apps.wsgi_apps:hello")])
    module = mod_wsgi.WSGIModule()
    ctx = make_ctx(path="/a/b/c", server=server)
    module.translate_name(ctx)
    assert ctx.notes["wsgi.app"].mount == "/a/b"


def test_headers_cgi_names_repeats_and_underscores():
    env = echo(headers=[(b"X-Thing", b"1"), (b"X-Thing", b"2"), (b"X_Forwarded_For", b"evil"),
                        (b"Content-Type", b"text/plain"), (b"User-Agent", b"t")], method="POST",
               body=b"hello")
    assert env["HTTP_X_THING"] == "1, 2"
    assert "HTTP_X_FORWARDED_FOR" not in env
    assert env["CONTENT_TYPE"] == "text/plain" and "HTTP_CONTENT_TYPE" not in env
    assert env["CONTENT_LENGTH"] == "5" and "HTTP_CONTENT_LENGTH" not in env
    assert env["HTTP_USER_AGENT"] == "t"
    assert env["body"] == "hello"


def test_non_ascii_path_is_latin1_native_string():
    env = echo(path="/app/caf\u00e9")
    assert env["PATH_INFO"] == "/caf\u00c3\u00a9"     # UTF-8 bytes as latin-1


def test_multithread_multiprocess_without_an_mpm_are_both_true():
    # each MPM's answers are checked on a real server (integration/test_wsgi_server.py)
    assert wsgi_environ.mpm_flags(None) == (True, True)
    assert wsgi_environ.mpm_flags(SimpleNamespace(name="prefork")) == (True, True)


def test_wsgiref_validate_passes():
    from tests.apps.validate_app import application
    resp, body = serve(application, method="POST", body=b"12345")
    assert resp.status == 200 and body == b"validated 5\n"


def test_list_body_is_bytes():
    resp, body = serve(wsgi_apps.hello)
    assert isinstance(resp.body, bytes) and body == b"Hello, world!"


def test_streaming_body_is_lazy_generator():
    resp, body = serve(wsgi_apps.big, query=b"n=3")
    assert not isinstance(resp.body, (bytes, list))
    assert len(body) == 3 * 65536


def test_close_called_once_and_empty_chunks_skipped():
    wsgi_apps.ClosingIter.closed.clear()
    resp, body = serve(wsgi_apps.closing)
    assert body == b"abc"
    resp.on_close and resp.on_close()
    assert wsgi_apps.ClosingIter.closed == [True]


def test_close_called_when_body_never_sent():
    wsgi_apps.ClosingIter.closed.clear()
    module = mod_wsgi.WSGIModule()
    module.mounts = lambda server, mounts=[mod_wsgi.WSGIApplication("/app", lambda: wsgi_apps.closing, "t")]: mounts
    ctx = make_ctx(method="HEAD")
    module.translate_name(ctx)
    resp = module.handlers["wsgi-script"](ctx)
    resp.on_close()
    assert wsgi_apps.ClosingIter.closed == [True]


def test_write_callable_comes_first():
    assert serve(wsgi_apps.writer)[1] == b"one two three"


def test_lazy_start_response_in_iterable():
    resp, body = serve(wsgi_apps.lazy_start)
    assert resp.status == 200 and body == b"lazy"


def test_exc_info_replaces_headers_before_sending():
    resp, body = serve(wsgi_apps.exc_info_app)
    assert resp.status == 500 and body == b"replaced by exc_info\n"


def test_start_response_twice_without_exc_info_is_error():
    sr = mod_wsgi.StartResponse()
    sr("200 OK", [])
    with pytest.raises(AssertionError):
        sr("200 OK", [])


def test_exc_info_after_headers_sent_reraises():
    sr = mod_wsgi.StartResponse()
    sr("200 OK", [])
    mod_wsgi.response_head(sr)
    try:
        raise KeyError("x")
    except KeyError:
        import sys
        with pytest.raises(KeyError):
            sr("500 Oops", [], sys.exc_info())


def test_hop_by_hop_headers_dropped_and_repeats_kept():
    resp, _ = serve(wsgi_apps.headers, headers=[(b"X-Echo", b"hi")])
    assert resp.status == 201
    names = [k.lower() for k, _ in resp.headers]
    assert names.count("set-cookie") == 2 and "connection" not in names
    assert resp.header("X-Echo") == "hi"


def test_app_exception_gives_500_and_traceback(capsys):
    resp, body = serve(wsgi_apps.error)
    assert resp.status == 500
    err = capsys.readouterr().err
    assert "MPMD0702" in err and "RuntimeError: boom from the error app" in err


def test_exception_mid_body_is_logged_and_reraised(capsys):
    module = mod_wsgi.WSGIModule()
    module.mounts = lambda server, mounts=[mod_wsgi.WSGIApplication("/app", lambda: wsgi_apps.error_after_headers, "t")]: mounts
    ctx = make_ctx()
    module.translate_name(ctx)
    resp = module.handlers["wsgi-script"](ctx)
    assert resp.status == 200
    with pytest.raises(mod_wsgi.AppBodyError) as info:     # an OSError: drivers drop the connection
        list(resp.body)
    assert isinstance(info.value, OSError) and isinstance(info.value.__cause__, RuntimeError)
    assert "MPMD0703" in capsys.readouterr().err


def test_file_wrapper_becomes_filebody():
    resp, body = serve(wsgi_apps.filewrapper)
    assert isinstance(resp.body, FileBody)
    assert body == open(wsgi_apps.__file__, "rb").read()


def test_file_wrapper_over_non_file_is_iterated():
    resp, body = serve(wsgi_apps.filewrapper_pipe)
    assert body == b"from a BytesIO\n" * 3


def test_body_longer_than_content_length_is_cut():
    assert serve(wsgi_apps.too_long)[1] == b"abcde"


def test_script_alias_loads_application_once():
    server = SimpleNamespace(server_root=ROOT, wsgi_script_alias=[("/e", "tests/apps/echo_app.py")],
                             wsgi_app=[], wsgi_python_path=[], wsgi_preload=False, server_name="")
    module = mod_wsgi.WSGIModule()
    module.child_init(server, SimpleNamespace(name="worker"))
    app = module.mounts(server)[0].app
    assert callable(app)
    ctx = make_ctx(path="/e/q", server=server)
    module.translate_name(ctx)
    env = json.loads(drain(module.handlers["wsgi-script"](ctx)))
    assert env["SCRIPT_NAME"] == "/e" and env["wsgi.multithread"] is True
    module.child_init(server, SimpleNamespace(name="worker"))
    assert module.mounts(server)[0].app is app


def test_load_failure_is_logged_and_answers_500(capsys, tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("raise ImportError('nope')\n")
    server = SimpleNamespace(server_root=str(tmp_path), wsgi_script_alias=[("/b", str(bad))],
                             wsgi_app=[], wsgi_python_path=[], wsgi_preload=False, server_name="")
    module = mod_wsgi.WSGIModule()
    module.child_init(server, SimpleNamespace(name="prefork"))
    assert "MPMD0701" in capsys.readouterr().err
    ctx = make_ctx(path="/b", server=server)
    module.translate_name(ctx)
    assert module.handlers["wsgi-script"](ctx).status == 500


def test_directive_converters():
    assert mod_wsgi._script_alias(["/app/", "x.py"]) == ("/app", "x.py")
    assert mod_wsgi._script_alias(["/", "x.py"]) == ("", "x.py")
    with pytest.raises(ValueError):
        mod_wsgi._app_spec(["/a", "nocolon"])
    with pytest.raises(ValueError):
        mod_wsgi._script_alias(["app", "x.py"])


def test_a_header_list_seen_before_is_checked_once_and_still_refused_when_bad():
    def head(headers):
        sr = mod_wsgi.StartResponse()
        sr("200 OK", headers)
        return mod_wsgi.response_head(sr)

    first = head([("Content-Type", "text/plain"), ("Connection", "close"), ("Content-Length", "3")])
    again = head([("Content-Type", "text/plain"), ("Connection", "close"), ("Content-Length", "3")])
    assert first == (200, (("Content-Type", "text/plain"), ("Content-Length", "3")), 3)
    assert again[1] is first[1]                   # the same immutable tuple: checked once
    for _ in range(2):                            # an invalid list is never remembered
        with pytest.raises(ValueError):
            head([("X-Bad", "a\r\nInjected: 1")])
    assert head([["X-List", "pairs"]])[1] == (("X-List", "pairs"),)   # unhashable: no memo
