"""Echoes the environ (as JSON) and the request body; used by unit and integration tests."""

import json


def application(environ, start_response):
    body = environ["wsgi.input"].read()
    if environ.get("PATH_INFO", "").endswith("/body"):
        out = body
        ctype = "application/octet-stream"
    else:
        keys = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int, tuple))}
        keys["body"] = body.decode("latin-1")
        out = json.dumps(keys, sort_keys=True).encode()
        ctype = "application/json"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(out)))])
    return [out]
