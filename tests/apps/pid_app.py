"""Reports the pid that imported this module and the pid serving the request (WSGIPreload tests)."""

import os

IMPORT_PID = os.getpid()


def application(environ, start_response):
    body = f"{IMPORT_PID} {os.getpid()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
