"""Raw ASGI 3 applications for mod_asgi tests (mount with ASGIApp /x tests.apps.asgi_apps:NAME)."""

import json

EVENTS = []


async def echo(scope, receive, send):
    """Lifespan-aware echo: answers the scope (JSON) and the body it received."""
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            EVENTS.append(msg["type"])
            if msg["type"] == "lifespan.startup":
                scope["state"]["started"] = True
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    info = {k: scope[k] for k in ("method", "path", "root_path", "http_version", "scheme")}
    info["query_string"] = scope["query_string"].decode()
    info["headers"] = [[k.decode(), v.decode()] for k, v in scope["headers"]]
    info["state"] = scope.get("state", {})
    info["body"] = body.decode("latin-1")
    out = json.dumps(info).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})


async def stream(scope, receive, send):
    """No lifespan support (raises on it); streams ?n chunks without Content-Length."""
    assert scope["type"] == "http"
    qs = scope["query_string"].decode()
    n = int(qs[2:]) if qs.startswith("n=") else 5
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    for i in range(n):
        await send({"type": "http.response.body", "body": b"chunk %d\n" % i, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def error(scope, receive, send):
    if scope["type"] == "lifespan":
        return
    raise RuntimeError("boom from the ASGI error app")


async def disconnect(scope, receive, send):
    """Sends a response, then waits for http.disconnect and records it."""
    if scope["type"] != "http":
        return
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"bye"})
    msg = await receive()
    EVENTS.append(msg["type"])


async def head_first(scope, receive, send):
    """Sends the head, then holds the body until the file named by the query string exists:
    a server that kept the head back until the first body message would never answer."""
    if scope["type"] != "http":
        return
    import asyncio
    import os
    gate = scope["query_string"].decode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-head", b"first")]})
    for _ in range(1000):
        if os.path.exists(gate):
            break
        await asyncio.sleep(0.01)
    await send({"type": "http.response.body", "body": b"after the gate"})


async def fail_after_start(scope, receive, send):
    """Raises after http.response.start but before any body: nothing was sent, so a 500."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise RuntimeError("boom after start")


async def after_response(scope, receive, send):
    """Answers at once, then goes on working (Starlette's BackgroundTasks run like this) and
    leaves a marker file named by the query string."""
    if scope["type"] != "http":
        return
    import asyncio
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"answered"})
    while (await receive())["type"] != "http.disconnect":
        pass
    await asyncio.sleep(0.05)
    with open(scope["query_string"].decode(), "w") as f:
        f.write("done")


async def background(scope, receive, send):
    """Answers at once, then works on for a while (Starlette's BackgroundTasks) and leaves
    the marker file named by the query string: a graceful stop must let it finish."""
    if scope["type"] != "http":
        return
    import asyncio
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"accepted"})
    await asyncio.sleep(1.0)
    with open(scope["query_string"].decode(), "w") as f:
        f.write("done")


async def startup_fails(scope, receive, send):
    """Its lifespan startup fails: every request must be answered 500, never left hanging."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"should not be served"})


async def returns_early(scope, receive, send):
    """Returns without a response (or with only its head, when the query says so)."""
    if scope["type"] == "http" and scope["query_string"] == b"head":
        await send({"type": "http.response.start", "status": 204, "headers": []})


async def sleepy(scope, receive, send):
    """Awaits ?s seconds (default 0.5) before answering: a request that runs long."""
    import asyncio
    if scope["type"] != "http":
        return
    qs = scope["query_string"].decode()
    await asyncio.sleep(min(float(qs[2:]) if qs.startswith("s=") else 0.5, 30.0))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"slept\n"})
