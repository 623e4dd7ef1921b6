"""Plain HTTP on a TLS port: found by the first bytes, answered with httpd's 400 page.

Theory: a TLS client's first byte is 0x16 (a handshake record).  OpenSSL recognises a plain
HTTP request by its first record header (``GET ``, ``POST ``, ``HEAD ``, ``PUT ``), and mod_ssl
then answers a faked ``GET / HTTP/1.0`` with a 400 whose page says "You're speaking plain
HTTP to an SSL-enabled server port" (ssl_engine_io.c, HTTP_ON_HTTPS_PORT), whatever the
client asked (a HEAD gets the page too), and closes.  Transports here look at the first bytes
before any handshake (``MSG_PEEK``, as nginx does), so every MPM decides the same way, and
answer ``PlainHttpOnTls`` as they answer any refused request: its ``answer()`` is the whole
response, head and page.

Rule 1: only those four method words count as plain HTTP, as in OpenSSL; anything else goes
        to the handshake, which fails (logged at info) and closes the connection.
Rule 2: the page is httpd 2.4's, byte for byte; the head is the core's (Date, Server, the
        fields' order), with ``Connection: close``.
"""

from __future__ import annotations

from mpmd.core.cycle import refusal
from mpmd.core.errors import CONTENT_TYPE
from mpmd.core.exchange import Response
from mpmd.core.respond import finalize_plan
from mpmd.http.errors import ProtocolError

PEEK_BYTES = 5                     # a TLS record header; OpenSSL looks at as much
HTTP_STARTS = (b"GET ", b"POST ", b"HEAD ", b"PUT ")
PAGE = (b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN" "http://www.w3.org/TR/html4/strict.dtd">\n'
        b"<html><head>\n<title>400 Bad Request</title>\n</head><body>\n<h1>Bad Request</h1>\n"
        b"<p>Your browser sent a request that this server could not understand.<br />\n"
        b"Reason: You're speaking plain HTTP to an SSL-enabled server port.<br />\n"
        b" Instead use the HTTPS scheme to access this URL, please.<br />\n</p>\n</body></html>\n")


def is_plain_http(first: bytes) -> bool:
    """The first bytes of a connection (up to PEEK_BYTES) are a plain HTTP request (Rule 1)."""
    return first.startswith(HTTP_STARTS)


class PlainHttpOnTls(ProtocolError):
    """A plain HTTP request on a TLS port: answered with ``answer()``, then closed."""

    def __init__(self) -> None:
        super().__init__(400, "plain HTTP on a TLS port")

    def answer(self) -> bytes:
        resp = Response(400, [("Content-Type", CONTENT_TYPE)], PAGE, close_connection=True)
        return finalize_plan(None, resp, False).head + PAGE


def refusal_bytes(exc: ProtocolError) -> bytes:
    """What a transport writes for a refused request: the core's refusal, or the page above."""
    if type(exc) is PlainHttpOnTls:
        return exc.answer()
    return refusal(exc)
