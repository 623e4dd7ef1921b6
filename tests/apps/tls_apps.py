"""Apps that show what a TLS connection gives them (mount with WSGIApp / ASGIApp)."""

import json


def wsgi_env(environ, start_response):
    """The environ's TLS part as JSON: wsgi.url_scheme, HTTPS and every SSL_* variable."""
    shown = {k: v for k, v in environ.items() if k.startswith("SSL_") or k == "HTTPS"}
    shown["wsgi.url_scheme"] = environ["wsgi.url_scheme"]
    body = json.dumps(shown).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


async def asgi_scope(scope, receive, send):
    """The scope's scheme and TLS extension as JSON."""
    if scope["type"] != "http":
        return
    body = json.dumps({"scheme": scope["scheme"],
                       "tls": scope.get("extensions", {}).get("tls")}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
