"""Apps that answer who the client is (mod_remoteip tests): ``address port forwarded-for``."""


def wsgi(environ, start_response):
    out = " ".join((environ["REMOTE_ADDR"], environ["REMOTE_PORT"],
                    environ.get("HTTP_X_FORWARDED_FOR", "-"),
                    environ.get("HTTP_X_FORWARDED_BY", "-"))).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]


async def asgi(scope, receive, send):
    if scope["type"] != "http":
        return
    headers = dict(scope["headers"])
    host, port = scope["client"]
    out = " ".join((host, str(port), headers.get(b"x-forwarded-for", b"-").decode(),
                    headers.get(b"x-forwarded-by", b"-").decode())).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})


def boom(environ, start_response):
    raise RuntimeError("boom")


def stream(environ, start_response):
    """A body of unknown length in three pieces (chunked on HTTP/1.1), after reading the body."""
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return iter([b"a" * 5, b"b" * 300, b"c" * 70000])


async def astream(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")]})
    for piece in (b"a" * 5, b"b" * 300, b"c" * 70000):
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
