"""wsgiref.validate around a streaming app: every PEP 3333 check runs inside the server."""

from wsgiref.validate import validator


def _inner(environ, start_response):
    if environ.get("CONTENT_LENGTH"):
        data = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))  # validate wants read(size)
    else:
        data = environ["wsgi.input"].read(-1)      # chunked: wsgi.input_terminated allows EOF reads
    environ["wsgi.errors"].write("validate app saw %d bytes\n" % len(data))
    environ["wsgi.errors"].flush()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return iter([b"validated ", str(len(data)).encode(), b"\n"])


application = validator(_inner)
