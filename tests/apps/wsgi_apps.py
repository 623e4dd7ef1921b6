"""A set of WSGI callables covering PEP 3333 corner cases (mount with WSGIApp tests.apps.wsgi_apps:NAME)."""

import os
import sys
import threading
import time


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]


def sleepy(environ, start_response):
    """Sleeps ?s seconds (default 0.5) -- keeps a worker busy."""
    qs = environ.get("QUERY_STRING", "")
    secs = float(qs[2:]) if qs.startswith("s=") else 0.5
    time.sleep(min(secs, 30.0))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slept\n"]


def sleepy_marked(environ, start_response):
    """Like sleepy, but first drops a file "PID-THREAD" into ?d=DIR (who serves the request)."""
    from urllib.parse import parse_qs
    qs = parse_qs(environ.get("QUERY_STRING", ""))
    marker_dir = qs.get("d", [""])[0]
    if marker_dir:
        with open(os.path.join(marker_dir, f"{os.getpid()}-{threading.get_ident()}"), "w"):
            pass
    time.sleep(min(float(qs.get("s", ["0.5"])[0]), 30.0))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slept\n"]


def error(environ, start_response):
    raise RuntimeError("boom from the error app")


def error_after_headers(environ, start_response):
    def gen():
        yield b"partial "
        raise RuntimeError("boom in the middle of the body")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return gen()


def crasher(environ, start_response):
    """Kills its own process, as a segfaulting extension would."""
    sys.stderr.flush()
    os._exit(3)


def big(environ, start_response):
    """Streams ?n chunks of 64 KiB without Content-Length (chunked on HTTP/1.1)."""
    qs = environ.get("QUERY_STRING", "")
    n = int(qs[2:]) if qs.startswith("n=") else 16
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    block = b"x" * 65536
    return (block for _ in range(n))


class ClosingIter:
    closed = []

    def __init__(self, chunks):
        self.chunks = chunks

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        ClosingIter.closed.append(True)
        sys.stderr.write("closing-iter closed\n")
        sys.stderr.flush()


def closing(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ClosingIter([b"a", b"", b"b", b"c"])


def headers(environ, start_response):
    """Sets repeated and custom response headers; echoes X-Echo."""
    start_response("201 Created", [
        ("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
        ("X-Echo", environ.get("HTTP_X_ECHO", "")), ("Connection", "close-me-not"),
    ])
    return [b"headers\n"]


def writer(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"one ")
    write(b"two ")
    return [b"three"]


def lazy_start(environ, start_response):
    """Calls start_response only when its iterable is first iterated."""
    def gen():
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b""
        yield b"lazy"
    return gen()


def exc_info_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise ValueError("replaced")
    except ValueError:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"replaced by exc_info\n"]


def filewrapper(environ, start_response):
    """Serves this file through wsgi.file_wrapper (sendfile path)."""
    f = open(__file__, "rb")
    size = os.fstat(f.fileno()).st_size
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](f, 4096)


def filewrapper_pipe(environ, start_response):
    """file_wrapper over something that is not a regular file: iterated, not sendfile."""
    import io
    start_response("200 OK", [("Content-Type", "text/plain")])
    return environ["wsgi.file_wrapper"](io.BytesIO(b"from a BytesIO\n" * 3), 7)


def too_long(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return iter([b"abc", b"defgh"])


def validated(environ, start_response):
    """The echo app behind wsgiref.validate: checks both the server and the app side."""
    from tests.apps.echo_app import application as echo
    from wsgiref.validate import validator
    return validator(echo)(environ, start_response)
