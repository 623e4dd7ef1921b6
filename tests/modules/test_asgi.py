"""mod_asgi unit tests: both MPM families' paths with a fake ctx (real event loops, no sockets)."""

import asyncio
import json
from types import SimpleNamespace

import pytest

from mpmd.modules import mod_asgi
from mpmd.mpm.base import Query
from tests.apps import asgi_apps
from tests.modules.wsgi_fakes import ROOT, make_ctx


def module_for(spec, mpm_name, mount="/a"):
    server = SimpleNamespace(server_root=ROOT, asgi_app=[(mount, spec)], wsgi_python_path=[])
    module = mod_asgi.ASGIModule()
    module.child_init(server, SimpleNamespace(name=mpm_name, query=lambda q: int(
        q == Query.AWAITS_HANDLERS and mpm_name == "nginx")))     # the MPM's own answer
    return module, server


def request(module, server, **kw):
    ctx = make_ctx(server=server, **kw)
    assert module.translate_name(ctx) is True and ctx.handler == "asgi-app"
    return ctx, module.handlers["asgi-app"](ctx)


async def answer(ctx, coro):
    """What the nginx MPM does: run the handler in a task; its Response comes through
    ``ctx.respond`` (the app may run on) or as the task's result."""
    got = asyncio.get_running_loop().create_future()

    def respond(resp):
        assert not got.done(), "a second Response for one request"
        got.set_result(resp)

    def ended(task):
        if not got.done() and not task.cancelled():
            if task.exception() is not None:
                got.set_exception(task.exception())
            else:
                assert task.result() is not None, "the handler never answered"
                got.set_result(task.result())

    ctx.respond = respond
    task = asyncio.ensure_future(coro)
    task.add_done_callback(ended)
    return await got


def drain_sync(resp):
    try:
        return resp.body if isinstance(resp.body, bytes) else b"".join(resp.body)
    finally:
        resp.on_close and resp.on_close()


@pytest.fixture
def blocking_echo():
    asgi_apps.EVENTS.clear()
    module, server = module_for("tests.apps.asgi_apps:echo", "worker")
    yield module, server
    module.child_exit(server, None)


def test_blocking_lifespan_scope_and_body(blocking_echo):
    module, server = blocking_echo
    assert module.handler.kind == "blocking"
    assert asgi_apps.EVENTS == ["lifespan.startup"]
    _, resp = request(module, server, path="/a/x", query=b"k=v", method="POST", body=b"hello",
                      headers=[(b"X-Y", b"z")])
    info = json.loads(drain_sync(resp))
    assert resp.status == 200
    assert info["path"] == "/a/x" and info["root_path"] == "/a"
    assert info["query_string"] == "k=v" and info["body"] == "hello"
    assert ["x-y", "z"] in info["headers"]
    assert info["state"] == {"started": True}
    module.child_exit(server, None)
    assert asgi_apps.EVENTS == ["lifespan.startup", "lifespan.shutdown"]


def test_blocking_streaming_without_lifespan_support():
    module, server = module_for("tests.apps.asgi_apps:stream", "prefork")
    try:
        _, resp = request(module, server, path="/a", query=b"n=3")
        assert resp.header("content-length") is None
        assert drain_sync(resp) == b"chunk 0\nchunk 1\nchunk 2\n"
    finally:
        module.child_exit(server, None)


def test_blocking_error_gives_500(capsys):
    module, server = module_for("tests.apps.asgi_apps:error", "event")
    try:
        _, resp = request(module, server, path="/a")
        assert resp.status == 500
        assert "MPMD0802" in capsys.readouterr().err
    finally:
        module.child_exit(server, None)


def test_blocking_disconnect_after_response():
    asgi_apps.EVENTS.clear()
    module, server = module_for("tests.apps.asgi_apps:disconnect", "worker")
    try:
        _, resp = request(module, server, path="/a")
        assert drain_sync(resp) == b"bye"
        module.loop_thread.call(asyncio.sleep(0.05))
        deadline = asyncio.run(_wait_for(lambda: asgi_apps.EVENTS == ["http.disconnect"]))
        assert deadline
    finally:
        module.child_exit(server, None)


async def body_of(resp):
    """A whole answer is bytes (one write with its head); a streamed one an async iterator."""
    if isinstance(resp.body, bytes):
        return resp.body
    return b"".join([c async for c in resp.body])


async def _wait_for(cond, timeout=5.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if cond():
            return True
        await asyncio.sleep(0.01)
    return False


def test_async_path_for_nginx():
    asgi_apps.EVENTS.clear()
    module, server = module_for("tests.apps.asgi_apps:echo", "nginx")
    assert module.handler.kind == "async"

    async def main():
        ctx, coro = request(module, server, path="/a/y", method="POST", body=b"abc")
        resp = await answer(ctx, coro)
        data = await body_of(resp)
        resp.on_close()
        return resp, data

    resp, body = asyncio.run(main())
    info = json.loads(body)
    assert resp.status == 200 and info["body"] == "abc" and info["state"] == {"started": True}
    assert asgi_apps.EVENTS == ["lifespan.startup"]


def test_async_streaming_and_error(capsys):
    module, server = module_for("tests.apps.asgi_apps:stream", "nginx")

    async def main():
        ctx, coro = request(module, server, path="/a", query=b"n=2")
        resp = await answer(ctx, coro)
        body = await body_of(resp)
        resp.on_close()
        return body

    assert asyncio.run(main()) == b"chunk 0\nchunk 1\n"
    module, server = module_for("tests.apps.asgi_apps:error", "nginx")

    async def fail():
        ctx, coro = request(module, server, path="/a")
        return await answer(ctx, coro)

    assert asyncio.run(fail()).status == 500
    assert "MPMD0802" in capsys.readouterr().err


def test_fastapi_on_blocking_fallback():
    module, server = module_for("tests.apps.starlette_app:app", "worker", mount="")
    try:
        _, resp = request(module, server, path="/")
        assert json.loads(drain_sync(resp)) == {"hello": "fastapi", "started": True}
        _, resp = request(module, server, path="/items/3", query=b"q=z")
        assert json.loads(drain_sync(resp)) == {"item_id": 3, "q": "z"}
        _, resp = request(module, server, path="/stream")
        assert drain_sync(resp) == b"".join(b"line %d\n" % i for i in range(5))
        _, resp = request(module, server, path="/echo", method="POST", body=b'{"a": 1}',
                          headers=[(b"Content-Type", b"application/json")])
        assert json.loads(drain_sync(resp)) == {"got": {"a": 1}}
    finally:
        module.child_exit(server, None)


def test_async_client_gone_mid_stream_unblocks_app():
    module, server = module_for("tests.apps.asgi_apps:stream", "nginx")

    async def main():
        before = len(asyncio.all_tasks())
        ctx, coro = request(module, server, path="/a", query=b"n=1000")
        resp = await answer(ctx, coro)
        it = resp.body.__aiter__()
        first = await it.__anext__()
        resp.on_close()                         # the client went away
        await it.aclose()
        for _ in range(500):                    # the app task ends: its later sends are dropped
            if len(asyncio.all_tasks()) == before:
                break
            await asyncio.sleep(0.01)
        assert len(asyncio.all_tasks()) == before
        return first

    assert asyncio.run(asyncio.wait_for(main(), 10)) == b"chunk 0\n"


def test_blocking_client_gone_mid_stream_unblocks_app():
    module, server = module_for("tests.apps.asgi_apps:stream", "worker")
    try:
        _, resp = request(module, server, path="/a", query=b"n=1000")
        body = iter(resp.body)
        assert next(body) == b"chunk 0\n"
        body.close()
        resp.on_close()
        # the loop thread is free again: another request completes
        _, resp = request(module, server, path="/a", query=b"n=2")
        assert drain_sync(resp) == b"chunk 0\nchunk 1\n"
    finally:
        module.child_exit(server, None)


@pytest.mark.parametrize("spec,query,status", [
    ("tests.apps.asgi_apps:startup_fails", b"", 500),      # lifespan startup.failed
    ("tests.apps.asgi_apps:returns_early", b"", 500),      # returned without any answer
    ("tests.apps.asgi_apps:returns_early", b"head", 204),  # a head without a body: it ends empty
])
def test_async_path_answers_every_outcome_through_respond(spec, query, status, capsys):
    """On the nginx MPM the handler is the request's task itself (answers_itself): each
    outcome must come through ctx.respond, or the connection would wait forever."""
    module, server = module_for(spec, "nginx")
    assert module.handlers["asgi-app"].answers_itself

    async def main():
        ctx, coro = request(module, server, path="/a", query=query)
        got = asyncio.get_running_loop().create_future()
        ctx.respond = got.set_result
        assert await asyncio.wait_for(coro, 10) is None       # it answers, it never returns one
        resp = await asyncio.wait_for(got, 1)
        return resp.status

    assert asyncio.run(main()) == status
