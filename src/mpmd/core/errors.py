"""Error answers: the short HTML page httpd sends for a status, and ProtocolError -> Response.

Rule 1: one table (``MESSAGES``) holds the sentence shown for each status; the page layout is
        one template, shaped like httpd 2.4.71's (HTML 4.01 doctype, title "404 Not Found", h1,
        p, optional <address> signature), in ISO-8859-1 as httpd labels it; a redirect's page
        links to its Location.
Rule 2: anything interpolated into the page is HTML-escaped.
Rule 3: a ProtocolError always closes the connection (the framing is in doubt).
"""

from __future__ import annotations

from html import escape
from typing import Any

from mpmd.core.exchange import Response
from mpmd.core.respond import server_tokens_header
from mpmd.http.errors import ProtocolError
from mpmd.http.writers import reason_phrase

CONTENT_TYPE = "text/html; charset=iso-8859-1"

MESSAGES: dict[int, str] = {
    400: "Your browser sent a request that this server could not understand.",
    401: "This server could not verify that you are authorized to access the document "
         "requested.",
    403: "You don't have permission to access this resource.",
    404: "The requested URL was not found on this server.",
    405: "The requested method is not allowed for this URL.",
    406: "An appropriate representation of the requested resource could not be found on "
         "this server.",
    408: "Server timeout waiting for the HTTP request from the client.",
    411: "A request of the requested method requires a valid Content-length.",
    412: "The precondition on the request for this URL evaluated to false.",
    413: "The requested resource does not allow request data with this method, or the "
         "amount of data provided in the request exceeds the capacity limit.",
    414: "The requested URL's length exceeds the capacity limit for this server.",
    416: "None of the range-specifier values in the Range request-header field overlap "
         "the current extent of the selected resource.",
    417: "The expectation given in the Expect request-header field could not be met by "
         "this server.",
    431: "The request header fields are too large for this server.",
    500: "The server encountered an internal error or misconfiguration and was unable to "
         "complete your request.",
    501: "The server does not support the action requested by the browser.",
    503: "The server is temporarily unable to service your request due to maintenance "
         "downtime or capacity problems. Please try again later.",
    505: "The server does not support the HTTP protocol version used in the request.",
}

_PAGE = ('<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN" "http://www.w3.org/TR/html4/strict.dtd">\n'
         "<html><head>\n<title>{status} {title}</title>\n</head><body>\n"
         "<h1>{title}</h1>\n<p>{message}</p>\n{extra}{signature}</body></html>\n")

# Methods an origin server of static files and applications allows (405's Allow field).
ALLOW = "GET, HEAD, POST, OPTIONS"


# Redirects whose page links to their Location (httpd's get_canned_error_string).
MOVED = {301: "The document has moved", 302: "The document has moved",
         307: "The document has moved", 308: "The document has moved",
         303: "The answer to your request is located"}


def error_page(status: int, reason: str = "", signature: str = "", location: str = "") -> bytes:
    """The HTML body for ``status``; ``reason`` is an extra detail line, ``signature``
    the <address> line's HTML (ServerSignature, already escaped), ``location`` a redirect's
    target (its page links to it, as httpd's)."""
    title = reason_phrase(status) or "Error"
    message = MESSAGES.get(status, f"The server answered {status} {title}.")
    if location and status in MOVED:
        paragraph = f'{MOVED[status]} <a href="{escape(location)}">here</a>.'
    else:
        paragraph = escape(message)
    extra = f"<p>{escape(reason)}</p>\n" if reason else ""
    sig = f"<hr>\n<address>{signature}</address>\n" if signature else ""
    return _PAGE.format(status=status, title=escape(title), message=paragraph,
                        extra=extra, signature=sig).encode("latin-1", "replace")


def error_response(status: int, ctx: Any = None, *, reason: str = "", signature: str = "",
                   close: bool = False, location: str = "") -> Response:
    """A Response carrying httpd's short error page for ``status``.

    ``ctx`` (a RequestContext, optional) supplies the ServerSignature line when
    ``signature`` is not given.
    """
    if not signature and ctx is not None:
        signature = _signature(ctx)
    headers = [("Content-Type", CONTENT_TYPE)]
    if status == 405:
        headers.append(("Allow", ALLOW))
    return Response(status, headers, error_page(status, reason, signature, location),
                    close_connection=close, local=True)


def response_for(exc: ProtocolError) -> Response:
    """The answer to a ProtocolError; always closes the connection (Rule 3)."""
    return error_response(exc.status, close=True)


def signature(ctx: Any) -> str:
    """The ServerSignature line's HTML for ``ctx`` ("" when Off): error pages and directory
    listings (mod_autoindex) end with it, as httpd's ap_psignature."""
    return _signature(ctx)


def _signature(ctx: Any) -> str:
    """ServerSignature On/EMail -> "mpmd/0.1.0 (...) Server at HOST Port N"; HOST and N as
    httpd's ap_get_server_name/port with UseCanonicalName Off: the Host field's name and port,
    else ServerName's port, else the scheme's default port."""
    server = getattr(ctx, "server", None)
    mode = str(getattr(getattr(ctx, "dir_config", None), "server_signature", None)
               or getattr(server, "server_signature", "Off") or "Off").lower()
    if mode not in ("on", "email"):
        return ""
    tokens = str(getattr(server, "server_tokens", "Full") or "Full")
    try:
        software = server_tokens_header(tokens)
    except ValueError:
        software = server_tokens_header("Full")
    host, port = host_and_port(ctx.host())
    if not host:
        host, _ = host_and_port(getattr(server, "server_name", None) or "")
    if port is None:
        _, port = host_and_port(getattr(server, "server_name", None) or "")
    if port is None:
        conn = getattr(ctx, "conn", None)
        port = 443 if conn is not None and conn.scheme == "https" else 80
    admin = getattr(server, "server_admin", None)
    shown = escape(host)
    if mode == "email" and admin:           # httpd: the host name links to ServerAdmin
        shown = f'<a href="mailto:{escape(admin)}">{shown}</a>'
    return f"{escape(software)} Server at {shown} Port {port}"


def host_and_port(text: str) -> tuple[str, int | None]:
    """``example.com:8080`` -> ("example.com", 8080); ``[::1]`` -> ("[::1]", None)."""
    host, colon, port = text.rpartition(":")
    if colon and port.isdigit() and not text.endswith("]"):
        return host, int(port)
    return text, None


def self_url(ctx: Any) -> str:
    """``scheme://name[:port]`` of ``ctx``'s request, as httpd's ap_construct_url builds it:
    the Host the client sent unless ``UseCanonicalName On``, else ServerName."""
    canonical = str(getattr(ctx.server, "use_canonical_name", "Off")).lower() == "on"
    host, port = host_and_port(ctx.host())
    name, name_port = host_and_port(str(getattr(ctx.server, "server_name", "") or ""))
    if canonical or not host:
        host, port = name or host or "localhost", name_port
    scheme = ctx.conn.scheme
    default = 443 if scheme == "https" else 80
    if port is None:
        port = name_port if name_port is not None and canonical else default
    return f"{scheme}://{host}" + ("" if port == default else f":{port}")
