"""Protocol errors carry the status code of the answer they deserve (RFC 9112)."""

from __future__ import annotations


class ProtocolError(Exception):
    """The peer broke HTTP/1.1 framing or a limit; answer with ``status`` and close.

    ``status`` is one of 400, 408, 413, 414, 431, 501, 505, and also 405 (CONNECT
    to this origin server) and 417 (an Expect other than 100-continue).  After a ProtocolError the
    connection's framing is in doubt, so the driver always closes after the answer.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
