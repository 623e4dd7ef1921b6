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
