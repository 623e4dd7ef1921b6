"""wsgiref.validate around a streaming app: every PEP 3333 check runs inside the server."""

from wsgiref.validate import validator


def _inner(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data = environ["wsgi.input"].read(length)     # validate insists on read(size)
    environ["wsgi.errors"].write("validate app saw %d bytes\n" % len(data))
    environ["wsgi.errors"].flush()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return iter([b"validated ", str(len(data)).encode(), b"\n"])


application = validator(_inner)
