"""Finalize a handler's ``Response`` into the response head and the framing decision.

Theory: handlers return a ``Response`` (core/exchange.py) and never think about framing;
``finalize`` adds the fields the server owns (Date, Server, Content-Length or
Transfer-Encoding, Connection) and decides whether the connection survives.  The driver then
writes the body as ``plan.chunked`` says (or, through the 2-tuple API, by looking for
``Transfer-Encoding: chunked`` in the head).

Rule 1: no body is ever sent for HEAD, 1xx, 204 or 304 (RFC 9110 6.4.1).  HEAD keeps the
        Content-Length that GET would have had (RFC 9110 9.3.2); 1xx and 204 never carry
        one (RFC 9110 8.6); 304 keeps one only if the handler set it.
Rule 2: a body whose length is known (bytes, FileBody, MultipartBody, or a handler-set
        Content-Length) is sent with Content-Length; an iterable of unknown length is
        chunked on HTTP/1.1 and close-delimited on HTTP/1.0 (RFC 9112 6.3, 7).
Rule 3: keep-alive needs all of: the driver allows it, the client asked for it (RFC 9112
        9.3, ``Request.keep_alive``), the handler did not ask to close, and the framing is
        self-delimiting.  HTTP/1.0 keep-alive is echoed with ``Connection: keep-alive``.
Rule 4: the fields the server owns are dropped from the handler's headers and rebuilt, so a
        WSGI app cannot send two Content-Lengths or a stray Transfer-Encoding.
Rule 5: a Plan depends only on the answer's headers, status and body length, the request's
        method and version, the keep-alive decision, the config and the second (Date).  So
        an answer with an immutable headers tuple and a bytes body (a cached file, a WSGI/ASGI
        app's remembered header list) gets its Plan from ``_PLANS`` for the rest of the second,
        and a Response handed out again and again (``memo=()``, the static cache's) keeps its
        Plan, head and body joined (``Plan.whole``), on itself, which ``plan_for`` (the
        drivers' entry) reuses.  Date is the request's time, as httpd's ``r->request_time``.
Rule 6: a 101 (Switching Protocols: an accepted websocket, mod_asgi) carries ``Connection:
        Upgrade`` and ends the connection's HTTP: its Plan never keeps the connection alive.
"""

from __future__ import annotations

import platform
from time import time as _time
from dataclasses import dataclass
from typing import Any

from mpmd import SERVER_SOFTWARE, __version__
from mpmd.core.clock import Clock
from mpmd.core.exchange import FileBody, MultipartBody, RequestContext, Response
from mpmd.core.memo import derived_by_content, remember
from mpmd.http.events import Request
from mpmd.http.writers import CRLF, STATUS_LINE_BYTES, render_fields, status_line_bytes

# Fields ``finalize`` owns (Rule 4), lower-cased.  Content-Length is read, then rebuilt.
_OWNED = frozenset({"date", "server", "connection", "keep-alive", "transfer-encoding",
                    "content-length"})


# -- ServerTokens (httpd core: ap_set_version) -------------------------------------------

def _tokens_table() -> dict[str, str]:
    major, minor = __version__.split(".")[:2]
    python = f"Python/{platform.python_version()}"
    system = platform.system() or "Unix"
    return {
        "prod": SERVER_SOFTWARE,
        "major": f"{SERVER_SOFTWARE}/{major}",
        "minor": f"{SERVER_SOFTWARE}/{major}.{minor}",
        "minimal": f"{SERVER_SOFTWARE}/{__version__}",
        "os": f"{SERVER_SOFTWARE}/{__version__} ({system})",
        "full": f"{SERVER_SOFTWARE}/{__version__} ({python})",
    }


_TOKENS = _tokens_table()


def server_tokens_header(tokens: str = "Full") -> str:
    """The Server field for a ServerTokens value (Full|OS|Minimal|Minor|Major|Prod)."""
    try:
        return _TOKENS[tokens.lower()]
    except KeyError:
        raise ValueError(f"ServerTokens must be one of Full, OS, Minimal, Minor, Major, Prod; "
                         f"not {tokens!r}") from None


# -- the cached HTTP date ------------------------------------------------------------------

class HttpDate(Clock):
    """``HttpDate()(now)`` -> ``b"Sun, 06 Nov 1994 08:49:37 GMT"``; rebuilt once a second.

    The clock is injected: callers pass the ``time.time()`` they already read.
    """

    __slots__ = ()

    def __call__(self, now: float) -> bytes:
        return self.http_date(now)


_DATE = HttpDate()


# -- finalize ------------------------------------------------------------------------------

@dataclass(slots=True)
class Plan:
    """What the driver must do with the body after writing ``head``.  Plans of cached answers
    are shared (``_PLANS``): treat one as immutable."""

    head: bytes
    keep_alive: bool
    send_body: bool      # False for HEAD, 1xx, 204, 304
    chunked: bool        # frame an iterable body with writers.chunk / LAST_CHUNK
    whole: bytes | None = None   # head + body, when the Plan is kept on its Response (memo)


def finalize(request: Any, response: Response, keep_alive_allowed: bool = True, *,
             server_header: str | None = None, date: bytes | None = None) -> tuple[bytes, bool]:
    """(head bytes, keep_alive) for ``response`` to ``request`` (a Request, a RequestContext
    or None when the request could not be parsed).  See the module rules."""
    plan = finalize_plan(request, response, keep_alive_allowed,
                         server_header=server_header, date=date)
    return plan.head, plan.keep_alive


def plan_for(ctx: RequestContext, response: Response, keep_alive_allowed: bool) -> "Plan":
    """The drivers' entry (once per request): the Plan a shared Response keeps (Rule 5) when
    it was made for this second, method, version, keep-alive decision and config, else
    ``finalize_plan``, which makes one and keeps it.  The only place a kept Plan is reused;
    it skips finalize_plan's keyword-only defaults and type checks (a memo is only ever set
    for a tuple of headers and a bytes body, on a Response nobody changes), a few dozen cache
    lines a request for a cached file."""
    memo = response.memo
    if memo:
        req = ctx.request
        now = ctx.start_time
        if now and memo[0] == int(now) and memo[1] is req.method \
                and memo[2] is req.http_version and memo[4] is ctx.server \
                and memo[3] is (keep_alive_allowed and req.keep_alive
                                and not response.close_connection):
            return memo[5]                        # type: ignore[no-any-return]
    return finalize_plan(ctx, response, keep_alive_allowed)


def finalize_plan(request: Any, response: Response, keep_alive_allowed: bool = True, *,
                  server_header: str | None = None, date: bytes | None = None) -> Plan:
    """Like ``finalize`` but also returns the body plan (send_body, chunked)."""
    headers = response.headers
    if type(headers) is not tuple or type(request) is not RequestContext \
            or type(response.body) is not bytes or server_header is not None or date is not None:
        return _plan(request, response, keep_alive_allowed, server_header, date)
    # Rule 5: a shared Response gets a Plan kept on itself (``memo``; plan_for reuses it),
    # any other the one in ``_PLANS``.
    req = request.request
    server = request.server
    now = request.start_time or _time()  # httpd dates an answer by its request's time too
    second = int(now)
    # the driver's allowance and the client's wish (Connection: close, HTTP/1.0) alike
    keep = keep_alive_allowed and req.keep_alive and not response.close_connection
    memo = response.memo
    if memo is not None:                 # a Response handed out again and again
        plan = _plan(request, response, keep, None, _DATE.http_date(now))
        if plan.send_body:
            plan.whole = plan.head + response.body       # before anyone else sees the Plan
        response.memo = (second, req.method, req.http_version, keep, server, plan)
        return plan                      # kept for plan_for, which reuses it
    key = (id(headers), response.status, len(response.body), req.method, req.http_version,
           keep, id(server))
    hit = _PLANS.get(key)
    if hit is not None and hit[1] == second and hit[0] is headers and hit[2] is server:
        return hit[3]
    plan = _plan(request, response, keep, None, _DATE.http_date(now))
    remember(_PLANS, key, (headers, second, server, plan), PLAN_CACHE_SIZE)
    return plan


# (id(headers), status, body length, method, version, keep-alive, id(server)) ->
# (headers, second, server, Plan): a handler that answers from a cache (static files) hands
# out the same immutable headers tuple, so its Plan is the same for the whole second.
_PLANS: dict[tuple[Any, ...], tuple[Any, int, Any, "Plan"]] = {}
PLAN_CACHE_SIZE = 4096


def plain_plan(request: Any, response: Response, keep_alive_allowed: bool) -> Plan:
    """``finalize_plan`` with nothing remembered: no kept Plan, head block, length field or
    Date/Server stamp (the plain path of core/cycle.py Rule 6, which tests compare with)."""
    return _plan(request, response, keep_alive_allowed, None, None, cached=False)


def _plan(request: Any, response: Response, keep_alive_allowed: bool,
          server_header: str | None, date: bytes | None, cached: bool = True) -> "Plan":
    if request is None or isinstance(request, Request):
        req, server = request, None
    else:
        req, server = request.request, getattr(request, "server", None)
    status = response.status
    if req is not None:
        version = req.http_version
        send_body = status >= 200 and status != 204 and status != 304 and req.method != "HEAD"
    else:
        version = "1.1"
        send_body = status >= 200 and status != 204 and status != 304

    block, app_length, app_close = (_own_headers(response.headers) if cached
                                    else _split_owned(response.headers))
    body = response.body
    if type(body) is bytes and send_body:                       # the common case, Rule 2
        length: int | None = len(body)
        chunked = False
    else:
        length, chunked = _framing(response, status, version, app_length, send_body)
    keep_alive = (keep_alive_allowed and req is not None and req.keep_alive
                  and not response.close_connection and not app_close
                  and (length is not None or chunked or not send_body))

    if length is not None:
        framing = (_LENGTHS.get(length) or _length_field(length)) if cached \
            else b"Content-Length: %d\r\n" % length
    elif chunked and send_body:
        framing = b"Transfer-Encoding: chunked\r\n"
    else:
        framing = b""
    if status == 101:                    # Rule 6: the connection leaves HTTP
        keep_alive = False
        framing = b"Connection: Upgrade\r\n"
    elif not keep_alive:
        framing += b"Connection: close\r\n"
    elif version == "1.0":
        framing += b"Connection: keep-alive\r\n"
    if not cached:
        stamp = b"".join((b"Date: ", _DATE.http_date(), b"\r\nServer: ",
                          _server_of(server).encode("latin-1"), CRLF))
    elif date is None and server_header is None:
        stamp = _stamp(server)
    else:
        stamp = b"".join((b"Date: ", date if date is not None else _DATE.http_date(),
                          b"\r\nServer: ", _server_field(server, server_header)))
    head = b"".join((STATUS_LINE_BYTES.get(status) or status_line_bytes(status), stamp, block,
                     framing, CRLF))
    return Plan(head, keep_alive, send_body, chunked and send_body)


# Content-Length -> its field line, for the lengths answered again and again.
_LENGTHS: dict[int, bytes] = {}
LENGTH_CACHE_SIZE = 1024


def _length_field(length: int) -> bytes:
    return remember(_LENGTHS, length, b"Content-Length: %d\r\n" % length, LENGTH_CACHE_SIZE)


# id(server) -> (server, this second's Date value, b"Date: ...\r\nServer: ...\r\n"): both
# fields change at most once a second (Date, a new bytes object then) or once a generation
# (ServerTokens), so they are joined once.
_STAMPS: dict[int, tuple[Any, bytes, bytes]] = {}


def _stamp(server: Any) -> bytes:
    """The Date and Server fields of this second for ``server``'s ServerTokens."""
    date = _DATE.http_date()
    hit = _STAMPS.get(id(server))
    if hit is not None and hit[0] is server and hit[1] is date:
        return hit[2]
    stamp = b"".join((b"Date: ", date, b"\r\nServer: ", _server_field(server, None)))
    remember(_STAMPS, id(server), (server, date, stamp), 8)
    return stamp


# id(server) -> (server, b"<Server value>\r\n"): ServerTokens is read once per generation.
_SERVER_FIELDS: dict[int, tuple[Any, bytes]] = {}


def _server_field(server: Any, server_header: str | None) -> bytes:
    """The Server value plus its CRLF, for an explicit value or the config's ServerTokens."""
    if server_header is not None:
        return render_fields([("Server", server_header)])[8:]
    hit = _SERVER_FIELDS.get(id(server))
    if hit is None or hit[0] is not server:
        if len(_SERVER_FIELDS) > 8:
            _SERVER_FIELDS.clear()
        hit = _SERVER_FIELDS[id(server)] = (server, _server_of(server).encode("latin-1") + CRLF)
    return hit[1]


def _server_of(server: Any) -> str:
    tokens = getattr(server, "server_tokens", None) if server is not None else None
    if not isinstance(tokens, str):
        return _TOKENS["full"]
    return _TOKENS.get(tokens.lower(), _TOKENS["full"])


# id(headers tuple) -> (the tuple, _own_headers result).  Handlers that answer from a cache
# (static files) hand out the same immutable tuple each time, so its block is rendered once.
_BLOCKS: dict[int, tuple[tuple[tuple[str, str], ...], tuple[bytes, int | None, bool]]] = {}
BLOCK_CACHE_SIZE = 4096


# A short list (a WSGI/ASGI app's headers, new each request) -> the same, by content.
_LIST_BLOCKS: dict[tuple[Any, ...], tuple[bytes, int | None, bool]] = {}


def _own_headers(headers: Any) -> tuple[bytes, int | None, bool]:
    """(handler headers minus the owned ones, rendered; its Content-Length; it asked to close).

    A tuple of headers is immutable, so its result is remembered by identity; a short list
    of (str, str) pairs is remembered by its content (apps answer alike again and again)."""
    if type(headers) is not tuple:
        return derived_by_content(_LIST_BLOCKS, headers, _split_owned, BLOCK_CACHE_SIZE)
    hit = _BLOCKS.get(id(headers))
    if hit is not None and hit[0] is headers:
        return hit[1]
    return remember(_BLOCKS, id(headers), (headers, _split_owned(headers)), BLOCK_CACHE_SIZE)[1]


def _split_owned(headers: Any) -> tuple[bytes, int | None, bool]:
    kept: list[tuple[str, str]] = []
    length: int | None = None
    close = False
    for name, value in headers:
        lname = name.lower()
        if lname not in _OWNED:
            kept.append((name, value))
        elif lname == "content-length":
            length = _parse_length(value)
        elif lname == "connection":
            close = "close" in value.lower()
    return render_fields(kept), length, close


def _parse_length(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() else None


def _framing(response: Response, status: int, version: str, app_length: int | None,
             send_body: bool) -> tuple[int | None, bool]:
    """(Content-Length to send or None, chunked) per Rules 1 and 2."""
    if status < 200 or status == 204:
        return None, False
    if status == 304 or (not send_body and app_length is not None):
        return app_length, False      # HEAD: what GET would have said, if the handler knows
    known = _known_length(response.body)
    if known is not None:
        return known, False
    if app_length is not None:
        return app_length, False
    return None, version != "1.0"


def _known_length(body: Any) -> int | None:
    if isinstance(body, (bytes, bytearray, memoryview)):
        return len(body)
    if isinstance(body, (FileBody, MultipartBody)):
        return body.length
    return None
