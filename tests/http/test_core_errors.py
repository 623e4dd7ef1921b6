"""mpmd.core.errors: httpd-style error pages and ProtocolError answers."""

from __future__ import annotations

import pytest

from mpmd.core.errors import error_page, error_response, response_for
from mpmd.core.exchange import ConnInfo, RequestContext
from mpmd.http.errors import ProtocolError
from mpmd.http.events import Request


@pytest.mark.parametrize("status,title", [
    (400, "400 Bad Request"), (403, "403 Forbidden"), (404, "404 Not Found"),
    (405, "405 Method Not Allowed"), (413, "413 Content Too Large"), (414, "414 URI Too Long"),
    (500, "500 Internal Server Error"), (501, "501 Not Implemented"),
    (505, "505 HTTP Version Not Supported"), (599, "599 Error"),
])
def test_error_response(status: int, title: str) -> None:
    resp = error_response(status)
    assert resp.status == status
    assert resp.header("Content-Type") == "text/html; charset=iso-8859-1"
    assert isinstance(resp.body, bytes)
    assert resp.body.startswith(b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN" '   # httpd 2.4.71
                               b'"http://www.w3.org/TR/html4/strict.dtd">')
    assert f"<title>{title}</title>".encode() in resp.body
    assert not resp.close_connection


def test_reason_is_escaped_and_signature_is_html() -> None:
    page = error_page(404, reason="<script>", signature="a &amp; <a href=\"mailto:x\">h</a>")
    assert b"&lt;script&gt;" in page and b"<script>" not in page
    assert b"<address>a &amp; <a href=\"mailto:x\">h</a></address>" in page


def test_close_and_allow() -> None:
    assert error_response(400, close=True).close_connection
    assert error_response(405).header("Allow") == "GET, HEAD, POST, OPTIONS"


@pytest.mark.parametrize("status", [400, 405, 413, 414, 431, 501, 505])
def test_response_for_always_closes(status: int) -> None:
    resp = response_for(ProtocolError(status, "why"))
    assert resp.status == status and resp.close_connection


def test_signature_from_context() -> None:
    class Cfg:
        server_signature = "On"
        server_tokens = "Prod"
    request = Request("GET", b"/", b"/", b"", "1.1", ((b"host", b"example.com:8080"),), True,
                      False, None, False)
    ctx = RequestContext(request=request, conn=ConnInfo(("1.2.3.4", 5), ("127.0.0.1", 8080)),
                         server=Cfg())
    resp = error_response(404, ctx)
    assert b"<address>mpmd Server at example.com Port 8080</address>" in resp.body
    Cfg.server_signature = "Off"
    assert b"<address>" not in error_response(404, ctx).body
