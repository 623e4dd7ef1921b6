"""A fake request context for WSGI/ASGI unit tests (no sockets)."""

import io
import os
import sys
from types import SimpleNamespace

from mpmd.core.exchange import ConnInfo, RequestContext
from mpmd.http.events import Request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


class Body:
    """A minimal BodyReader (read/readline only), like the Protocol in core/exchange.py."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._f.read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._f.readline(size)


def make_ctx(path="/app/x", query=b"", method="GET", headers=(), body=b"", mpm_name="prefork",
             server=None):
    hdrs = tuple((k.lower(), v) for k, v in headers)
    if body and not any(k == b"content-length" for k, _ in hdrs):
        hdrs += ((b"content-length", str(len(body)).encode()),)
    target = path.encode() + (b"?" + query if query else b"")
    req = Request(method=method, target=target, path=path.encode(), query=query, http_version="1.1",
                  headers=hdrs, keep_alive=True, expect_continue=False,
                  content_length=len(body) if body else None, chunked=False)
    conn = ConnInfo(client_addr=("127.0.0.1", 50000), server_addr=("127.0.0.1", 8080))
    server = server or SimpleNamespace(server_root=ROOT, server_name="", wsgi_script_alias=[],
                                       wsgi_app=[], wsgi_python_path=[], wsgi_preload=False)
    ctx = RequestContext(request=req, conn=conn, server=server, body=Body(body), uri_path=path)
    ctx.mpm = SimpleNamespace(name=mpm_name)
    return ctx


def drain(resp):
    """The whole body of a Response, calling on_close like a driver."""
    try:
        body = resp.body
        if isinstance(body, bytes):
            return body
        if hasattr(body, "file"):
            body.file.seek(body.offset)
            return body.file.read(body.length)
        return b"".join(body)
    finally:
        if resp.on_close:
            resp.on_close()
