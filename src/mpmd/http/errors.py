"""Protocol errors carry the status code of the answer they deserve (RFC 9112)."""

from __future__ import annotations


class ProtocolError(Exception):
    """The peer broke HTTP/1.1 framing or a limit; answer with ``status`` and close.

    ``status`` is one of 400, 408, 413, 414, 431, 501, 505, and also 405 (CONNECT
    to this origin server) and 417 (an Expect other than 100-continue).  After a ProtocolError the
    connection's framing is in doubt, so the driver always closes after the answer.
    ``method`` is the refused request's method when its request line was read (a HEAD is
    answered without content), else None.  ``line`` is what was received of its request line,
    as httpd keeps it for the access log's %r (``the_request``): the whole line once it was
    read, the first LimitRequestLine + 1 bytes of one too long, None when not even that
    much is known (a head cut off inside its first line: httpd logs "-").
    """

    method: str | None = None
    line: bytes | None = None

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class RequestBodyError(OSError):
    """What reading a request body raises to an application when the body failed: an OSError,
    as mod_wsgi's "request data read error", not the core's ProtocolError.  ``error`` is the
    ProtocolError the driver answers (400, 408, 413; 400 too when the client went away)."""

    def __init__(self, error: ProtocolError) -> None:
        super().__init__(f"request data read error: {error.reason}")
        self.error = error
