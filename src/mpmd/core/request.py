"""The request pipeline: one request through the module hooks, in httpd's order.

Theory: ``prepare(ctx)`` decodes the Request-URI once, then runs post_read_request,
translate_name (with core's DocumentRoot mapping as the last resort, httpd's
``ap_core_translate``), map_to_storage (the per-directory config), header_parser,
access_checker and fixups,
and returns the handler named by ``ctx.handler`` / ``SetHandler`` (default
"default-handler"), or a ``Response`` when a phase already answered.  ``process(ctx)`` runs
the handler too; ``log()`` runs log_transaction once the answer is sent.

Rule 1: the URI is decoded exactly once (``decode_path``): an encoded "/" or NUL is 404 (httpd
        ``AllowEncodedSlashes Off``), a bad escape or a backslash 400, "//" is merged and
        dot-segments are resolved (RFC 3986 5.2.4) *after* decoding, so "%2e%2e" is "..";
        a path that climbs above "/" is 400.  Non-UTF-8 bytes survive as surrogate escapes
        (``os.fsdecode`` style), so they reach the file system unchanged.
Rule 2: a phase that returns a ``Response`` ends the request; a handler that raises becomes a
        500 (logged with MPMD0301), never a dropped connection.
Rule 3: ``internal_redirect`` re-runs translate..handler for a new URI (DirectoryIndex), at
        most ``MAX_REDIRECTS`` times, as httpd's ``ap_internal_redirect``.
Rule 4: when every module's phase hooks are route-pure (core/modules.py, "Route cache"), what
        ``prepare`` found for a (raw path, method) is kept per process and generation, so a
        repeated URL skips decoding and the phases; answers from a phase are never kept.
Rule 5: a request the core refused before it had a head (cycle.py Rule 10) is logged through
        the same log_transaction hooks, as a ``RefusedRequest``: no fields, and ``line``, what
        was read of its request line, for %r (httpd's ``the_request``).
Rule 6: three hooks run on every request, the route cached or not: ``header_parser`` (what
        depends on the request's headers: SetEnvIf, BrowserMatch) after map_to_storage and
        before access_checker, as httpd's ap_process_request_internal, so ``Require env`` and
        ``Allow from env=`` see its variables; ``request_fixups`` after fixups, before the
        handler (httpd's fixups that depend on the request: SetEnv, RequestHeader); and
        ``output_filter`` over the answer, errors included, before its head is built (Header,
        Expires, DEFLATE).  For a route from the cache (whose access decision read none of
        what header_parser sets, or it would be volatile) header_parser runs once the route is
        restored (``parse_headers``); the env a route keeps is what the phases set, but
        not what header_parser or post_read_request changed (SetEnvIf).  A request the core
        refused (Rule 5) goes through none of them.
Rule 7: ``error()`` is the server's own error answer (``Response.local``), or, when an
        ErrorDocument line covers the status, its text, a 302 to its URL, or the answer of an
        internal redirect to its local URL with the error's status (core/errordoc.py).
Rule 8: when the configuration reads .htaccess files (config/model.py Rule 6), a request
        whose walk consulted one is kept in the route cache with a check (Rule 9): the walk
        is asked again, which stats the access files, and the route is reused only while it
        gives the same merged config, so an edit is seen at the next request.  A
        configuration without AllowOverride pays one attribute test per uncached route.
Rule 9: a route may carry checks (``checked_route``, core/modules.py): callables asked with
        the request on every reuse, in order.  One that is false for a request about the
        world (a file changed) or about the request (another value of a header the route
        read) means the phases run again for it, and the route is replaced by their outcome.
        A route without checks costs one ``is None`` test.  The checks are the route's,
        not the request's: they are kept apart from the notes a reuse copies.
"""

from __future__ import annotations

import posixpath
import re
import sys
import time
import traceback
from typing import Any

from mpmd.core import errordoc
from mpmd.core.errors import error_response
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.expr import ExprEvalError
from mpmd.core.log import ErrorLog
from mpmd.core.log import for_server as log_for_server
from mpmd.core.memo import remember
from mpmd.core.modules import ROUTE_CACHE_SIZE, ROUTE_CHECKS, VOLATILE, checked_route
from mpmd.http.events import Request

# ctx.notes: (env before a per-request hook first changed it, the names such hooks changed)
ROUTE_ENV = "route.env"
_UNSET = object()

DEFAULT_HANDLER = "default-handler"
MAX_REDIRECTS = 10
_HEX = frozenset(b"0123456789abcdefABCDEF")
_NEEDS_WORK = re.compile(rb"%|//|/\.|\\|\x00")     # what decode_path's slow path handles


class BadPath(Exception):
    """A Request-URI path that cannot name a resource; ``status`` is the answer."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def error(status: int, ctx: RequestContext | None = None,
          headers: list[tuple[str, str]] | None = None) -> Response:
    """An error answer (core/errors.py), plus extra headers (Allow, Location...), or what
    ErrorDocument says instead (Rule 7)."""
    location = ""
    if headers and 300 <= status < 400:
        location = next((v for k, v in headers if k.lower() == "location"), "")
    resp: Response = error_response(status, ctx, location=location)
    if headers:
        names = {name.lower() for name, _ in headers}
        resp.headers = [h for h in resp.headers if h[0].lower() not in names] + list(headers)
    if ctx is not None and ctx.server is not None:        # Rule 7: ErrorDocument
        return errordoc.custom(status, ctx, resp)
    return resp


def _unescape(raw: bytes) -> bytes:
    """%-decode ``raw``; %2F and %00 -> 404, a malformed escape -> 400 (httpd ap_unescape_url)."""
    parts = raw.split(b"%")
    out = [parts[0]]
    for part in parts[1:]:
        if len(part) < 2 or part[0] not in _HEX or part[1] not in _HEX:
            raise BadPath(400)
        byte = int(part[:2], 16)
        if byte in (0x2F, 0x00):
            raise BadPath(404)
        out.append(bytes((byte,)))
        out.append(part[2:])
    return b"".join(out)


def normalize(path: str) -> str:
    """Merge "//", resolve "." and ".." (RFC 3986 5.2.4); climbing above "/" -> 400."""
    segments = path.split("/")
    trailing = segments[-1] in ("", ".", "..")
    out: list[str] = []
    for seg in segments:
        if seg == "..":
            if not out:
                raise BadPath(400)
            out.pop()
        elif seg and seg != ".":
            out.append(seg)
    if not out:
        return "/"
    return "/" + "/".join(out) + ("/" if trailing else "")


def decode_path(raw: bytes) -> str:
    """The raw request path -> the decoded, normalized ``uri_path`` (Rule 1)."""
    if not raw.startswith(b"/"):
        raise BadPath(400)
    # A plain "/a/b.html" skips the slow path: no escape, "//", dot-segment, "\\" or NUL.
    if _NEEDS_WORK.search(raw) is None:
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            return raw.decode("utf-8", "surrogateescape")
    if b"%" in raw:
        raw = _unescape(raw)
    if b"\\" in raw or b"\x00" in raw:
        raise BadPath(400)
    return normalize(raw.decode("utf-8", "surrogateescape"))


_roots: dict[int, tuple[Any, str]] = {}      # id(server) -> (server, DocumentRoot without "/")


def core_translate(ctx: RequestContext) -> None:
    """httpd ``ap_core_translate``: DocumentRoot + uri_path, when no module claimed the URL."""
    server = ctx.server
    root = _roots.get(id(server))
    if root is None or root[0] is not server:
        docroot = getattr(server, "document_root", None) or "/var/www/html"
        if len(_roots) > 8:
            _roots.clear()
        root = _roots[id(server)] = (server, docroot.rstrip("/") or "/")
    root = root[1]
    ctx.notes["root"] = root
    ctx.filename = root + ctx.uri_path if root != "/" else ctx.uri_path


def _translate_and_check(ctx: RequestContext) -> Response | None:
    """translate_name .. fixups: every phase after the URI is known (Rule 2)."""
    by_hook = ctx.server.hooks.by_hook
    for fn in by_hook["translate_name"]:
        done = fn(ctx)
        if isinstance(done, Response):
            return done
        if done:
            break
    else:
        core_translate(ctx)
    ctx.dir_config = ctx.server.dir_config(ctx.filename, ctx.uri_path)
    if ctx.server.reads_htaccess and "_htaccess" in ctx.dir_config.__dict__:
        resp = _htaccess_walked(ctx)
        if resp is not None:
            return resp
    if ctx.server.has_if:                                # config/model.py Rule 5
        resp = _if_walk(ctx)
        if resp is not None:
            return resp
    for fn in by_hook["map_to_storage"]:
        resp = fn(ctx)
        if resp is not None:
            return resp
    parsers = by_hook["header_parser"]
    if parsers:                                          # Rule 6
        before = dict(ctx.env)
        for fn in parsers:
            resp = fn(ctx)
            if resp is not None:
                return resp
        _env_changed(ctx, before)
    for fn in by_hook["access_checker"]:
        resp = fn(ctx)
        if resp is not None:
            return resp
    for fn in by_hook["fixups"]:
        resp = fn(ctx)
        if resp is not None:                             # a per-directory Redirect
            return resp
    return None


def _env_changed(ctx: RequestContext, before: dict[str, str]) -> None:
    """Rule 6: note the env names a per-request hook changed, and the env before the first
    such change, so the route cache keeps neither."""
    env = ctx.env
    if env == before:
        return
    changed = [k for k in {*before, *env} if before.get(k, _UNSET) != env.get(k, _UNSET)]
    noted = ctx.notes.get(ROUTE_ENV)
    if noted is None:
        ctx.notes[ROUTE_ENV] = (before, changed)
    else:
        noted[1].extend(changed)


def _htaccess_walked(ctx: RequestContext) -> Response | None:
    """Rule 8: a route whose walk read access files is never kept (they may change), and a
    broken or unreadable one is the request's answer (500, 403), logged at alert as httpd."""
    failed = ctx.dir_config.__dict__.get("_htaccess_error")
    if failed is None:
        checked_route(ctx, _same_walk(ctx.server, ctx.filename, ctx.uri_path, ctx.dir_config))
        return None
    ctx.notes[VOLATILE] = True
    status, text = failed
    log_error(ctx, "MPMD0309", text, "alert")
    return error(status, ctx)


def _same_walk(server: Any, filename: Any, uri_path: Any, merged: Any) -> Any:
    """Rule 8: whether the walk still merges to ``merged`` (model.py keeps one DirConfig per
    version of the access files, so the same object means the same files)."""
    return lambda _request: server.dir_config(filename, uri_path) is merged


def _if_walk(ctx: RequestContext) -> Response | None:
    """httpd's ap_if_walk: the <If> branches the request takes merged over its config; a
    request that evaluated any is not kept in the route cache (its route depends on more
    than path and method).  A condition that cannot be evaluated is a 500, as in httpd."""
    try:
        ctx.dir_config, evaluated = ctx.server.if_config(ctx.dir_config, ctx)
    except ExprEvalError as exc:
        ctx.notes[VOLATILE] = True
        log_error(ctx, "MPMD0308", f"Failed to evaluate <If > condition: {exc}")
        return error(500, ctx)
    if evaluated:
        ctx.notes[VOLATILE] = True
    return None


def _pick_handler(ctx: RequestContext) -> Any:
    name = ctx.handler or getattr(ctx.dir_config, "set_handler", None) or DEFAULT_HANDLER
    if name is not DEFAULT_HANDLER and isinstance(name, str) and name.lower() == "none":
        name = DEFAULT_HANDLER
    ctx.handler = name
    handler = ctx.server.hooks.handlers.get(name)
    if handler is None:
        log_error(ctx, "MPMD0302", f"handler \"{name}\" not found for: {ctx.filename}")
        return error(500, ctx)
    return handler


def begin(request: Any, conn: Any, server: Any, body: Any, mpm: Any,
          now: float) -> tuple[RequestContext, Any]:
    """A request's context and, when the route cache knows its route (Rule 4), its handler:
    the context is then built complete in one call.  (ctx, None) otherwise: run
    ``prepare(ctx)``.  Drivers call this once per request."""
    routes = server.hooks.routes
    if routes is not None:
        hit = routes.get((request.path, request.method))
        if hit is not None and (hit[8] is None or _holds(request, hit[8])):
            uri_path, filename, path_info, dir_config, name, notes, env, handler, _ = hit
            ctx = RequestContext(request, conn, server, body, uri_path, path_info, filename,
                                 name, dir_config, notes.copy(), mpm, now)
            if env:
                ctx.env = env.copy()
            return ctx, handler
    return new_context(request, conn, server, body, mpm, now), None


def cached_route(server: Any, request: Any) -> tuple[Any, Any] | None:
    """(handler, dir_config) the route cache (Rule 4) holds for ``request`` on ``server``, or
    None when its route is not there (not yet asked in this process, not cacheable, or the
    fast path is off).  A transport may look before the request's cycle opens (the event
    MPM's listener reads a body first for a handler that reads it)."""
    routes = server.hooks.routes
    if routes is None:
        return None
    hit = routes.get((request.path, request.method))
    if hit is None or (hit[8] is not None and not _holds(request, hit[8])):
        return None
    return hit[7], hit[3]


def _holds(request: Any, checks: Any) -> bool:
    """Rule 9: every check of a kept route true for ``request``."""
    for check in checks:
        if not check(request):
            return False
    return True


def new_context(request: Any, conn: Any, server: Any, body: Any, mpm: Any,
                now: float) -> RequestContext:
    """A request's context before any phase ran (the plain path's ``begin``)."""
    return RequestContext(request, conn, server, body, "/", "", None, None, None, {}, mpm, now)


def prepare(ctx: RequestContext) -> Any:
    """Every phase up to the handler; returns the Handler to run, or a final Response."""
    request = ctx.request
    routes = ctx.server.hooks.routes
    if routes is None:
        return run_phases(ctx)
    key = (request.path, request.method)
    hit = routes.get(key)
    if hit is not None and (hit[8] is None or _holds(request, hit[8])):   # Rules 4, 9
        (ctx.uri_path, ctx.filename, ctx.path_info, ctx.dir_config, ctx.handler, notes,
         env, handler, _) = hit
        ctx.notes = notes.copy()
        if env:
            ctx.env = env.copy()
        return _header_parser(ctx, handler)              # Rule 6, as the phases would
    handler = run_phases(ctx)
    parsed = ctx.notes.pop(ROUTE_ENV, None)
    if type(handler) is not Response and VOLATILE not in ctx.notes:
        env = dict(ctx.env)
        if parsed is not None:                           # Rule 6: not what SetEnvIf set
            before, touched = parsed
            for name in touched:
                if name in before:
                    env[name] = before[name]
                else:
                    env.pop(name, None)
        notes = ctx.notes.copy()
        checks = notes.pop(ROUTE_CHECKS, None)
        remember(routes, key, (ctx.uri_path, ctx.filename, ctx.path_info, ctx.dir_config,
                               ctx.handler, notes, env, handler,
                               tuple(checks) if checks else None), ROUTE_CACHE_SIZE)
    return handler


def parse_headers(ctx: RequestContext, handler: Any) -> Any:
    """The header_parser hooks for a route that came from the cache (Rule 6): the handler, or
    the Response one of them answered with."""
    try:
        return _header_parser(ctx, handler)
    except Exception:  # noqa: BLE001 - Rule 2
        return phase_failed(ctx)


def _header_parser(ctx: RequestContext, handler: Any) -> Any:
    for fn in ctx.server.hooks.by_hook["header_parser"]:
        resp = fn(ctx)
        if resp is not None:
            return resp
    return handler


def fix_request(ctx: RequestContext, handler: Any) -> Any:
    """The request_fixups hooks, on every request just before its handler (Rule 6): the
    handler, or the Response one of them answered with."""
    try:
        for fn in ctx.server.hooks.by_hook["request_fixups"]:
            resp = fn(ctx)
            if resp is not None:
                return resp
    except Exception:  # noqa: BLE001 - Rule 2
        return phase_failed(ctx)
    return handler


def filter_output(ctx: RequestContext, resp: Response) -> Response:
    """The output_filter hooks over an answer (Rule 6).  One that raises is a 500 (logged),
    which the filters after it still see: a security header set ``always`` is on it too."""
    filters = ctx.server.hooks.by_hook["output_filter"]
    for i, fn in enumerate(filters):
        try:
            resp = fn(ctx, resp)
        except Exception:  # noqa: BLE001 - Rule 2
            close = getattr(resp.body, "close", None)
            if close is not None and not isinstance(resp.body, (bytes, bytearray)):
                close()
            resp = error(500, ctx)
            log_error(ctx, "MPMD0306", "output filter failed: " + traceback.format_exc().rstrip())
            for after in filters[i + 1:]:
                try:
                    resp = after(ctx, resp)
                except Exception:  # noqa: BLE001 - the 500 goes out as it is
                    pass
            return resp
    return resp


def run_phases(ctx: RequestContext) -> Any:
    """post_read_request .. fixups, without the route cache: the handler, or a Response."""
    request = ctx.request
    path = request.path
    if path == b"*" or request.target == b"*":
        if request.method == "OPTIONS":
            return Response(200, [("Allow", "GET, HEAD, POST, OPTIONS"), ("Content-Length", "0")])
        return error(400, ctx)
    try:
        ctx.uri_path = decode_path(path or b"/")
    except BadPath as exc:
        return error(exc.status, ctx)
    readers = ctx.server.hooks.by_hook["post_read_request"]
    if readers:
        before = dict(ctx.env)
        for fn in readers:
            resp = fn(ctx)
            if resp is not None:
                return resp
        _env_changed(ctx, before)
    resp = _translate_and_check(ctx)
    if resp is not None:
        return resp
    return _pick_handler(ctx)


def run_handler(ctx: RequestContext, handler: Any) -> Response:
    """Call an inline/blocking handler; exceptions and a missing answer become 500."""
    try:
        resp = handler(ctx)
    except Exception:
        return handler_failed(ctx)
    if resp is None:
        return no_answer(ctx)
    return resp


def handler_failed(ctx: RequestContext) -> Response:
    """The 500 for a handler that raised; call it from the ``except`` clause (it logs the
    traceback being handled).  Drivers that inline ``run_handler`` use it and ``no_answer``."""
    log_error(ctx, "MPMD0301", "handler failed: " + traceback.format_exc().rstrip())
    return error(500, ctx)


def phase_failed(ctx: RequestContext) -> Response:
    """The 500 for a phase hook that raised; call it from the ``except`` clause."""
    log_error(ctx, "MPMD0301", "request phase failed: " + traceback.format_exc().rstrip())
    return error(500, ctx)


def no_answer(ctx: RequestContext) -> Response:
    """The 500 for a handler that returned None."""
    log_error(ctx, "MPMD0303", f"handler {ctx.handler!r} returned no response")
    return error(500, ctx)


def process(ctx: RequestContext) -> Response:
    """prepare + run the handler inline (prefork/worker/event threads)."""
    handler = prepare(ctx)
    if isinstance(handler, Response):
        return handler
    return run_handler(ctx, handler)


def internal_redirect(ctx: RequestContext, uri_path: str) -> Response:
    """Serve ``uri_path`` instead (Rule 3): translate .. handler run again."""
    count = ctx.notes.get("redirects", 0) + 1
    if count > MAX_REDIRECTS:
        log_error(ctx, "MPMD0304", "too many internal redirects for " + uri_path)
        return error(500, ctx)
    ctx.notes["redirects"] = count
    ctx.uri_path = uri_path
    ctx.filename = None
    ctx.handler = None
    ctx.path_info = ""
    resp = _translate_and_check(ctx)
    if resp is not None:
        return resp
    handler = _pick_handler(ctx)
    if isinstance(handler, Response):
        return handler
    handler = fix_request(ctx, handler)                 # Rule 6 (header_parser ran above)
    if isinstance(handler, Response):
        return handler
    if getattr(handler, "kind", "inline") == "async":   # an ASGI app on the nginx MPM's loop
        log_error(ctx, "MPMD0307", f"internal redirect to {uri_path}: its handler "
                  f"{ctx.handler!r} runs only on the event loop, not here")
        return error(500, ctx)
    return run_handler(ctx, handler)


def log(ctx: RequestContext, response: Response, bytes_sent: int) -> None:
    """log_transaction for every module (access logs); never raises."""
    try:
        for fn in ctx.server.hooks.by_hook["log_transaction"]:
            fn(ctx, response, bytes_sent)
    except Exception:
        log_error(ctx, "MPMD0305", "log_transaction failed: " + traceback.format_exc().rstrip())


class RefusedRequest(Request):
    """Rule 5: a refused request, as the access log sees it; ``line`` is None when not even
    its request line was read (%r is then "-")."""

    __slots__ = ("line",)

    def __init__(self, method: str | None, line: bytes | None) -> None:
        parts = line.split(b" ") if line is not None else []
        target = parts[1] if len(parts) == 3 else b""
        path, _, query = target.partition(b"?")
        version = parts[2][5:].decode("latin-1") if len(parts) == 3 else "1.1"
        super().__init__(method or (parts[0].decode("latin-1") if parts else "-"), target, path,
                         query, version, (), False, False, None, False)
        self.line = line


def log_refused(server: Any, conn: Any, status: int, method: str | None, line: bytes | None,
                bytes_sent: int, mpm: Any = None, wire: Any = None) -> None:
    """Rule 5: the access-log line of a request the core refused with ``status``; ``wire``:
    its byte counts (``ctx.wire``)."""
    ctx = new_context(RefusedRequest(method, line), conn, server, None, mpm, time.time())
    ctx.wire = wire
    log(ctx, Response(status, []), bytes_sent)


def head_size(request: Request) -> int:
    """The bytes of ``request``'s head as a client writes it: request line, ``Name: value``
    lines, CRLF endings (what httpd's mod_logio counts for a head sent that way)."""
    size = len(request.method) + len(request.target) + len(request.http_version) + 11
    for name, value in request.headers:
        size += len(name) + len(value) + 4
    return size


def replace_headers(ctx: RequestContext, fields: Any) -> None:
    """Give the request other header fields (mod_remoteip, RequestHeader): the head's size as
    received is kept first, for the access log's %I."""
    if not ctx.head_in:
        ctx.head_in = head_size(ctx.request)
    ctx.request.headers = tuple(fields)


def logs_requests(cfg: Any) -> bool:
    """Whether a module logs answered requests (log_transaction).  A driver serves one
    generation's config for its whole life, so it asks once instead of per request."""
    hooks = getattr(cfg, "hooks", None)
    return hooks is None or bool(hooks.by_hook.get("log_transaction", True))


def log_error(ctx: RequestContext, msg_id: str, text: str, level: str = "error") -> None:
    """An error-log line for ``ctx``'s request (the MPM's log, or stderr)."""
    errlog = log_for_server(ctx.server, getattr(ctx.mpm, "log", None))
    if isinstance(errlog, ErrorLog):
        errlog.log(level, msg_id, text, "core", ctx)     # ErrorLogFormat's %a, %L ... (log.py)
    elif errlog is not None and hasattr(errlog, "error"):
        errlog.error(msg_id, text)
    else:
        sys.stderr.write(f"{msg_id}: {text}\n")


def join_under(root: str, rest: str) -> str:
    """``root`` + a normalized URL remainder, never above ``root`` (for Alias targets)."""
    joined = posixpath.normpath(root.rstrip("/") + "/" + rest.lstrip("/"))
    return joined + ("/" if rest.endswith("/") and not joined.endswith("/") else "")
