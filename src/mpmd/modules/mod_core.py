"""core_module's content handler: static files ("default-handler"), and TRACE.

Core's directives (DocumentRoot, Options, SetHandler, FileETag ...) are declared in
``mpmd.core.core_directives``; the URL -> file mapping of DocumentRoot is
``mpmd.core.request.core_translate``.  This module contributes the handler, whose
logic lives in ``static_files``, ``conditional`` and ``ranges``, and httpd's TRACE answer.

Rule 1: TRACE is answered in map_to_storage, whatever the URL (a file, an application, a
        status page), as httpd's ap_send_http_trace: with ``TraceEnable On`` (the default) a
        200 of type message/http whose body is the request line and header fields as
        received (names in their canonical case: mpmd keeps them lower-cased), then CRLF; a
        TRACE with a body gets 413; with ``TraceEnable Off``, 405 with an empty Allow field,
        as httpd sends it.  The answer comes from a phase, so the route cache never keeps it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mpmd.core.exchange import RequestContext, Response
from mpmd.core.modules import Module
from mpmd.core.request import error
from mpmd.modules.static_files import StaticHandler

TRACE_TYPE = "message/http"


def canonical_name(name: bytes) -> str:
    """``x-forwarded-for`` -> ``X-Forwarded-For``."""
    return "-".join(part[:1].upper() + part[1:] for part in name.decode("latin-1").split("-"))


def trace_answer(ctx: RequestContext) -> Response:
    """Rule 1, for a TRACE request."""
    request = ctx.request
    if str(getattr(ctx.server, "trace_enable", "On")).lower() == "off":
        return error(405, ctx, [("Allow", "")])
    if request.has_body:
        return error(413, ctx)
    lines = [f"{request.method} {request.target.decode('latin-1')} HTTP/{request.http_version}"]
    lines += [f"{canonical_name(name)}: {value.decode('latin-1')}" for name, value in request.headers]
    body = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return Response(200, [("Content-Type", TRACE_TYPE)], body)


class CoreModule(Module):
    name: ClassVar[str] = "core_module"
    aliases: ClassVar[tuple[str, ...]] = ("core.c", "http_core.c", "mod_core.c")
    builtin: ClassVar[bool] = True
    route_pure: ClassVar[bool] = True        # TRACE's answer depends on the method and config

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {"default-handler": StaticHandler().serve}

    def map_to_storage(self, ctx: RequestContext) -> Response | None:
        if ctx.request.method == "TRACE":
            return trace_answer(ctx)
        return None
