"""The files every server in the lab serves: static bodies and tiny apps.

Rule 1: one set of files per lab run, shared by all servers, so nginx, Apache and mpmd send
byte-identical static bodies and gunicorn, uvicorn and mpmd run the same app code.
Rule 2: apps are written as small importable files (``hello_wsgi.py`` ...) because mpmd's
``WSGIScriptAlias`` takes a file and gunicorn/uvicorn take ``module:callable``; a user app
(``--app pkg.mod:callable``) gets a one-line shim with the same name.
Rule 3: the faulty app crashes the serving process with ``os._exit`` on requests to
``.../crash`` -- the client decides the crash fraction, so the blast radius (other requests
that fail with it) is measurable: in prefork a crash loses one connection, in a threaded
child it loses every connection that child was serving.
"""

from __future__ import annotations

from pathlib import Path

HELLO_WSGI = '''"""WSGI hello world for the mpmd benchmark lab."""

BODY = b"Hello, world!\\n"


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]
'''

HELLO_ASGI = '''"""ASGI hello world for the mpmd benchmark lab."""

BODY = b"Hello, world!\\n"


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})
'''

FAULTY_WSGI = '''"""A WSGI app that kills its own process on requests whose path ends in /crash."""

import os
import time

BODY = b"ok\\n"


def application(environ, start_response):
    if environ.get("PATH_INFO", "").endswith("/crash"):
        os._exit(1)  # not 3/4: gunicorn reads those as boot/app-load errors and halts
    time.sleep(0.005)  # keep requests in flight so a crash has neighbours to take down
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]
'''

BODY_WSGI = '''"""A WSGI app that reads the whole request body, then answers its length (the target
of the slow-body workload: a client that sends its body slowly holds the reader meanwhile)."""


def application(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    stream, got = environ["wsgi.input"], 0
    while got < length:
        chunk = stream.read(min(65536, length - got))
        if not chunk:
            break
        got += len(chunk)
    body = b"%d\\n" % got
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''

USER_SHIM = '''"""Shim: the user's app given with --app, under the name the lab serves."""

from {module} import {attr} as {name}
'''

STATIC_FILES: dict[str, int] = {"1k.bin": 1024, "1m.bin": 1024 * 1024}


def write_static(docroot: Path) -> None:
    """Deterministic bodies of the sizes in STATIC_FILES, plus an index page."""
    docroot.mkdir(parents=True, exist_ok=True)
    for name, size in STATIC_FILES.items():
        pattern = bytes(range(33, 127))
        body = (pattern * (size // len(pattern) + 1))[:size]
        (docroot / name).write_bytes(body)
    (docroot / "index.html").write_text("<!doctype html><title>bench</title>ok\n")


def write_apps(appdir: Path, user_app: str | None = None) -> None:
    """hello_wsgi.py, hello_asgi.py, faulty_wsgi.py, body_wsgi.py; with user_app, hello_wsgi
    is its shim."""
    appdir.mkdir(parents=True, exist_ok=True)
    (appdir / "hello_asgi.py").write_text(HELLO_ASGI)
    (appdir / "body_wsgi.py").write_text(BODY_WSGI)
    (appdir / "faulty_wsgi.py").write_text(FAULTY_WSGI)
    if user_app:
        module, _, attr = user_app.partition(":")
        text = USER_SHIM.format(module=module, attr=attr or "application", name="application")
        (appdir / "hello_wsgi.py").write_text(text)
    else:
        (appdir / "hello_wsgi.py").write_text(HELLO_WSGI)
