"""WSGI and ASGI apps for the compression tests (mod_deflate, mod_brotli): a known text, a
stream that waits for the test between its chunks, an answer already encoded, one marked
no-transform.  Mount with WSGIApp / ASGIApp tests.apps.compress_apps:NAME."""

import asyncio
import gzip
import os
import time

TEXT = b"".join(b"line %04d: the quick brown fox jumps over the lazy dog\n" % i
                for i in range(400))
CHUNKS = [b"data: first event %s\n\n" % (b"x" * 200), b"data: second event\n\n",
          b"data: third event\n\n"]
WAIT_S = 10.0


def _wait_for(path: str) -> None:
    """Block until the test creates ``path`` (or WAIT_S passes): the test reads the chunk
    before it lets the app go on, so a chunk held back in a buffer would fail the test."""
    end = time.monotonic() + WAIT_S
    while not os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.01)


def text(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [TEXT]


def stream(environ, start_response):
    """Yields CHUNKS; before the 2nd and 3rd, waits for the files go1 / go2 in ?d=DIR."""
    directory = environ.get("QUERY_STRING", "")[2:]
    start_response("200 OK", [("Content-Type", "text/event-stream")])

    def body():
        for i, chunk in enumerate(CHUNKS):
            if i and directory:
                _wait_for(os.path.join(directory, f"go{i}"))
            yield chunk
    return body()


def encoded(environ, start_response):
    data = gzip.compress(TEXT)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Encoding", "gzip"),
                              ("Content-Length", str(len(data)))])
    return [data]


def no_transform(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Cache-Control", "public, no-transform")])
    return [TEXT]


async def astream(scope, receive, send):
    """The ASGI twin of ``stream``."""
    if scope["type"] != "http":
        return
    directory = scope.get("query_string", b"").decode()[2:]
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    for i, chunk in enumerate(CHUNKS):
        if i and directory:
            end = time.monotonic() + WAIT_S
            while not os.path.exists(os.path.join(directory, f"go{i}")) \
                    and time.monotonic() < end:
                await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": chunk,
                    "more_body": i < len(CHUNKS) - 1})


async def atext(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": TEXT})
