"""Responses to bytes: status lines, header blocks, chunk framing (RFC 9112 4, 7.1).

Rule 1: the server always answers with ``HTTP/1.1`` in the status line (RFC 9110 6.2: a
        server sends its own highest conformant version, whatever the request said).
Rule 2: status lines for every known code are built once at import; the hot path is a dict
        lookup plus one ``join`` and one ``encode``.
Rule 3: header names and values are ``str`` holding latin-1 (WSGI's rule); a CR or LF in
        either is refused (``ValueError``) so an application cannot split the response.
"""

from __future__ import annotations

from typing import Iterable

# RFC 9110 section 15 reason phrases (plus the few httpd still sends).
REASONS: dict[int, str] = {
    100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
    200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information",
    204: "No Content", 205: "Reset Content", 206: "Partial Content", 207: "Multi-Status",
    208: "Already Reported", 226: "IM Used",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other",
    304: "Not Modified", 305: "Use Proxy", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 409: "Conflict",
    410: "Gone", 411: "Length Required", 412: "Precondition Failed",
    413: "Content Too Large", 414: "URI Too Long", 415: "Unsupported Media Type",
    416: "Range Not Satisfiable", 417: "Expectation Failed", 418: "I'm a teapot",
    421: "Misdirected Request", 422: "Unprocessable Content", 423: "Locked",
    424: "Failed Dependency", 425: "Too Early", 426: "Upgrade Required",
    428: "Precondition Required", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
    506: "Variant Also Negotiates", 507: "Insufficient Storage", 508: "Loop Detected",
    510: "Not Extended", 511: "Network Authentication Required",
}

_STATUS_LINES: dict[int, str] = {
    code: f"HTTP/1.1 {code} {reason}\r\n" for code, reason in REASONS.items()
}

STATUS_LINE_BYTES: dict[int, bytes] = {code: line.encode("latin-1") for code, line in _STATUS_LINES.items()}

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"
CRLF = b"\r\n"


def reason_phrase(status: int) -> str:
    return REASONS.get(status, "")


def status_line(status: int) -> str:
    """``"HTTP/1.1 404 Not Found\\r\\n"``; unknown codes get an empty reason (RFC 9112 4)."""
    line = _STATUS_LINES.get(status)
    if line is None:
        if not 100 <= status <= 999:
            raise ValueError(f"invalid status code {status!r}")
        line = f"HTTP/1.1 {status} \r\n"
    return line


def status_line_bytes(status: int) -> bytes:
    """``status_line`` as bytes (a table lookup for every known code)."""
    line = STATUS_LINE_BYTES.get(status)
    return line if line is not None else status_line(status).encode("latin-1")


def render_fields(headers: Iterable[tuple[str, str]]) -> bytes:
    """``b"Name: value\\r\\n"`` for each field (Rule 3), without the blank line."""
    lines = [f"{name}: {value}\r\n" for name, value in headers]
    block = "".join(lines)
    # Each line holds exactly one CR and one LF (its own); more means injected ones.
    if block.count("\n") != len(lines) or block.count("\r") != len(lines):
        raise ValueError("CR or LF in a response header name or value")
    return block.encode("latin-1")


def render_head(status: int, headers: Iterable[tuple[str, str]]) -> bytes:
    """Status line + header fields + the blank line, as latin-1 bytes."""
    return status_line_bytes(status) + render_fields(headers) + CRLF


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body; an empty ``data`` gives ``b""`` (never a last-chunk)."""
    if not data:
        return b""
    return b"%x\r\n%b\r\n" % (len(data), data)


def chunk_parts(data: bytes) -> tuple[bytes, bytes, bytes]:
    """(size line, data, CRLF): for writev/sendmsg without copying a large ``data``."""
    return (b"%x\r\n" % len(data), data, CRLF)
