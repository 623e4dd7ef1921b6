"""The demo WSGI application served at /app by the embedded default configuration."""

import html
import os


def application(environ, start_response):
    if environ.get("PATH_INFO", "/") not in ("", "/"):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(environ[k]))}</td></tr>"
        for k in sorted(environ) if k.isupper() or k.startswith("wsgi.")
    )
    body = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>mpmd demo app</title></head><body>"
        f"<h1>Hello from a WSGI app in process {os.getpid()}</h1>"
        f"<table>{rows}</table></body></html>"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
