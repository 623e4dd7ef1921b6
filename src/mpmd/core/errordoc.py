"""ErrorDocument (httpd core): what the server answers instead of its own error page.

Rule 1: ``ErrorDocument status document``: ``default`` (the server's page), a local URL
        (``/errors/404.html``, with an optional query), a full URL (``http://...``: a 302 to
        it; not for 401), or a text (anything else, or anything with a space; quotes as the
        config lexer strips them).  httpd reads the document as an ap_expr string: a backslash
        escapes the next character; one holding ``%{`` is refused at -t, mpmd does not
        evaluate ap_expr.  Lines merge per status, the
        innermost scope's winning (server, <VirtualHost>, <Directory>, <Files>, <Location>).
Rule 2: it applies to every answer the server makes itself through ``request.error``: the
        errors of every phase (a bad path, Require, a missing file, a handler that failed),
        never to an application's own answer.  The answer keeps the error's status.
Rule 3: a local URL is an internal redirect (httpd's ap_die): the request is served again for
        that URL, as a GET (a HEAD still gets no body), without its conditional and Range fields, and
        with ``ctx.env`` renamed to ``REDIRECT_*`` plus REDIRECT_STATUS, REDIRECT_URL,
        REDIRECT_QUERY_STRING and REDIRECT_REQUEST_METHOD: a WSGI error page finds them in its
        environ.  What the page's handler answers goes out with the original status.
Rule 4: an error while serving the error document is answered with the original error's own
        page, plus httpd's "Additionally, a 404 Not Found error was encountered ..." line.
"""

from __future__ import annotations

import re
from dataclasses import replace
from html import escape
from typing import Any

from mpmd.config.values import Worded
from mpmd.core.exchange import Response
from mpmd.http.writers import reason_phrase

SERVING = "error_document.status"            # ctx.notes: the status an ErrorDocument serves
_BACKSLASH = re.compile(r"\\(.)", re.S)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_DROPPED = frozenset((b"if-match", b"if-none-match", b"if-modified-since",
                      b"if-unmodified-since", b"if-range", b"range"))


def error_document_value(args: list[str]) -> tuple[int, str, str]:
    """Rule 1: (status, kind, document); kind is "default", "local", "url" or "text"."""
    code, doc = args
    if not code.isdigit() or not reason_phrase(int(code)) or int(code) < 100:
        raise Worded(f"Unsupported HTTP response code {code}")
    status = int(code)
    if "%{" in doc:
        raise Worded(f"ErrorDocument {code}: the document is an ap_expr string in httpd "
                     "(%{...}); mpmd does not evaluate ap_expr, write it without %{")
    doc = _BACKSLASH.sub(r"\1", doc)            # ap_expr's string escapes: \X is X
    if doc.lower() == "default":
        return status, "default", ""
    if " " in doc:
        kind = "text"
    elif doc.startswith("/"):
        kind = "local"
    elif _URL.match(doc):
        kind = "url"
    else:
        kind = "text"
    if status == 401 and kind == "url":
        raise Worded("cannot use a full URL in a 401 ErrorDocument directive (httpd ignores "
                     "it); use a local URL or a text")
    return status, kind, doc


_tables: dict[int, tuple[Any, dict[int, tuple[str, str]]]] = {}


def _table(dc: Any) -> dict[int, tuple[str, str]]:
    hit = _tables.get(id(dc))
    if hit is None or hit[0] is not dc:
        if len(_tables) > 256:
            _tables.clear()
        table = {status: (kind, doc) for status, kind, doc in
                 (getattr(dc, "error_document", None) or ())}
        hit = _tables[id(dc)] = (dc, table)
    return hit[1]


def custom(status: int, ctx: Any, resp: Response) -> Response:
    """``resp`` (the server's page for ``status``) or what ErrorDocument says instead."""
    serving = ctx.notes.get(SERVING)
    if serving is not None:                                   # Rule 4
        return _recursive(serving, status, ctx)
    dc = ctx.dir_config if ctx.dir_config is not None else ctx.server.default_dir
    entry = _table(dc).get(status)
    if entry is None or entry[0] == "default":
        return resp
    kind, doc = entry
    if kind == "text":
        return Response(status, resp.headers, doc.encode("utf-8", "surrogateescape"),
                        resp.close_connection, local=True)
    if kind == "url":
        from mpmd.core.errors import error_response
        page = error_response(302, ctx, location=doc)
        page.headers = list(page.headers) + [("Location", doc)]
        page.close_connection = resp.close_connection
        return page
    return _redirect(status, ctx, doc, resp)


def _redirect(status: int, ctx: Any, url: str, resp: Response) -> Response:
    """Rule 3."""
    from mpmd.core import request as pipeline
    req = ctx.request
    path, _, query = url.partition("?")
    env = {"REDIRECT_" + k: v for k, v in ctx.env.items()}
    env["REDIRECT_REQUEST_METHOD"] = req.method
    env["REDIRECT_STATUS"] = str(status)
    if req.query:
        env["REDIRECT_QUERY_STRING"] = req.query.decode("latin-1")
    env["REDIRECT_URL"] = ctx.uri_path
    ctx.env = env
    ctx.notes[SERVING] = status
    ctx.request = replace(req, method="GET",
                          query=query.encode("utf-8", "surrogateescape"),
                          headers=tuple(h for h in req.headers if h[0] not in _DROPPED))
    try:
        page = pipeline.internal_redirect(ctx, pipeline.normalize(path))
    finally:
        ctx.request = req
    if page.local:                          # the error page's own error (Rule 4), or a redirect
        return page
    return Response(status, page.headers, page.body, page.close_connection or resp.close_connection,
                    page.on_close, None, False)


def _recursive(status: int, again: int, ctx: Any) -> Response:
    from mpmd.core.errors import error_response
    page = error_response(status, ctx)
    extra = (f"<p>Additionally, a {again} {escape(reason_phrase(again) or '')}\nerror was "
             "encountered while trying to use an ErrorDocument to handle the request.</p>\n")
    body = page.body
    assert isinstance(body, bytes)
    cut = body.rfind(b"<hr>") if b"<hr>" in body else body.rfind(b"</body>")
    page.body = body[:cut] + extra.encode("latin-1", "replace") + body[cut:]
    return page
