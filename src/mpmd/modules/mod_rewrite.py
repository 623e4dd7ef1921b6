"""mod_rewrite: RewriteEngine, RewriteRule, RewriteCond, RewriteBase, RewriteOptions and
RewriteMap, as Apache httpd 2.4's (parsing and merging: rewrite_rules.py; the engine:
rewrite_engine.py).

Theory: the server's rules (main server, <VirtualHost>) run in translate_name before any other
module maps the URL; the per-directory rules (<Directory>, .htaccess) run first in fixups, on
the file name the URL was mapped to, and end in an internal redirect.

Rule 1: server context: the result is answered (F, G, a status, a redirect with an absolute
        Location, its query escaped unless NE or unchanged), handed on as a new URL-path to
        the other translators (PT), or is the file name: a path whose first component exists
        on disk is a file system path, any other is below DocumentRoot (httpd's prefix_stat;
        since httpd 2.4.60 a substitution starting with a back-reference, or a URL reduced
        from this server's absolute URL, is always below DocumentRoot unless
        UnsafePrefixStat).  The request's URL-path is unchanged.
Rule 2: per-directory context: nothing happens for the directory itself without its slash
        (unless AllowNoSlash); a result equal to the file name is ignored; otherwise the
        result loses the DocumentRoot prefix (or the directory is replaced by RewriteBase) and
        the request is internally redirected to it (with its query), through the whole
        request cycle again, at most LimitInternalRecursion (10) times, as httpd.
        Per-directory rules need Options FollowSymLinks or SymLinksIfOwnerMatch (403 else).
Rule 3: END stops rewriting for the rest of the request, internal redirects included; L ends
        this round only.
Rule 4: T= and H= are applied last in fixups (httpd's hook_mimetype): they win over AddType,
        ForceType and AddHandler/SetHandler.
Rule 5: route cache: an outcome that read the client, the query, the time or the
        environment, or that changed the query, is not cached (``volatile_route``); a
        path-only rule set is, and so is one that read request headers or tested files
        (-f, -s, -d, -x, -l) on paths made from the URL and the headers: with checks
        (``checked_route``) that each header read has the same values in the next request
        and each test gives the same result, else the rules run again for it.  Without any RewriteEngine On no hook
        runs (``unused_hooks``).
Rule 7: the request headers a matching rule's conditions read are added to Vary, on answers
        other than the server's own (httpd merges them into headers_out, which its error and
        redirect answers do not send); a condition with NV adds none.
Rule 6: ``LogLevel rewrite:traceN`` writes httpd's trace lines (trace1: redirects and results,
        trace2: each rewrite, trace3: patterns and prefixes, trace4: conditions, trace5: maps)
        to the ErrorLog.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, ClassVar

from mpmd.config.directives import Args, Ctx, Directive, Merge, Override
from mpmd.config.model import Problem
from mpmd.core import request as core_request
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.log import ErrorLog
from mpmd.core.log import for_server as log_for_server
from mpmd.core.modules import SET_FIELDS, Module, PerServer, checked_route, volatile_route
from mpmd.modules import rewrite_rules as rr
from mpmd.modules.rewrite_engine import (NOESCAPE, STATUS, Run, absolute_skip, escape_absolute_uri,
                                         same_file_tests, same_headers,
                                         escape_uri, prefix_exists, split_path_info)

ANSWER = "rewrite-answer"             # handler: a per-dir outcome that is an answer
REDIRECT = "rewrite-redirect"         # handler: a per-dir internal redirect (httpd's redirect-handler)
NOTE_END = "rewrite.end"
NOTE_ANSWER = "rewrite.answer"
NOTE_TARGET = "rewrite.target"
NOTE_TYPE = "forced_type"             # read by mod_mime's fixups (Rule 4)
NOTE_HANDLER = "rewrite.handler"
NOTE_VARY = "rewrite.vary"
KEEP: Any = type("Keep", (), {"__repr__": lambda self: "KEEP"})()   # the request's own query
M_TRACE = "MPMD2051"
M_REFUSED = "MPMD2052"
M_MAP = "MPMD2054"

_GROUP = {"group": True, "combine": rr.merge}
_DIR = Ctx.SERVER | Ctx.VHOST | Ctx.DIR


def _d(name: str, args: Args, value: Any, doc: str, syntax: str, bind: Any = rr.bind) -> Directive:
    return Directive(name, args, _DIR, value, None, "rewrite", doc, owner="rewrite_module",
                     syntax=syntax, extra={**_GROUP, "bind": bind}, override=Override.FILEINFO)


def _server_scope(server: Any) -> rr.Scope | None:
    """The server's own rules (Rule 1), its maps resolved; None when it has none to run."""
    conf = getattr(server.default_dir, "rewrite", None) or rr.RewriteConf()
    owner = id(server.vhost) if getattr(server, "vhost", None) is not None else 0
    scope = conf.server or rr.Scope()
    if owner and scope.owner != owner:          # rewrite_rules Rule 3: a vhost with no lines
        scope = rr.merge_scopes(scope, rr.Scope(owner=owner), server=True)
    scope = rr.with_maps(scope, list(getattr(server, "rewrite_maps", None) or ()), owner)
    root = getattr(server, "server_root", "/") or "/"
    maps = tuple(m if m.kind == "int" or m.source.startswith("/") else
                 dataclasses.replace(m, source=f"{root.rstrip('/')}/{m.source}")
                 for m in scope.maps)
    return dataclasses.replace(scope, maps=maps)


def _tracer(ctx: RequestContext, perdir: str | None) -> Any:
    errlog = log_for_server(ctx.server, getattr(ctx.mpm, "log", None))
    if not isinstance(errlog, ErrorLog):
        return None
    limit = errlog.limit("rewrite")
    if limit < 8:                       # below trace1: no trace line is written
        return None
    where = f"[perdir {perdir}] " if perdir else ""

    def trace(level: int, text: str) -> None:
        if 7 + level <= limit:
            errlog.log(f"trace{level}", M_TRACE, where + text, "rewrite", ctx)
    return trace


class RewriteModule(Module):
    name: ClassVar[str] = "rewrite_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_rewrite.c",)
    builtin: ClassVar[bool] = True
    route_pure: ClassVar[bool] = True           # Rule 5: volatile_route when it reads more
    DIRECTIVES: ClassVar[list[Directive]] = [
        _d("RewriteEngine", Args.TAKE1, rr.engine_value, "Turn the rewriting engine on or off.",
           "RewriteEngine on|off"),
        _d("RewriteRule", Args.RAW_ARGS, rr.rule_value,
           "A regular expression, its substitution and [flags] (docs/rewrite.md).",
           "RewriteRule Pattern Substitution [flags]"),
        _d("RewriteCond", Args.RAW_ARGS, rr.cond_value,
           "A condition for the next RewriteRule: TestString CondPattern [flags].",
           "RewriteCond TestString CondPattern [flags]"),
        _d("RewriteBase", Args.TAKE1, rr.base_value,
           "The URL-path of the per-directory rules' directory.", "RewriteBase URL-path",
           bind=rr.bind_base),
        _d("RewriteOptions", Args.ITERATE, rr.options_value,
           "Inherit, InheritBefore (and server-level InheritDown, InheritDownBefore, "
           "IgnoreInherit), AllowNoSlash.", "RewriteOptions Options"),
        Directive("RewriteMap", Args.TAKE2, Ctx.SERVER | Ctx.VHOST, rr.parse_map, [], "rewrite_maps",
                  "A map for ${name:key|default}: txt:file, rnd:file, int:toupper|tolower|escape|"
                  "unescape.", merge=Merge.APPEND, owner="rewrite_module",
                  syntax="RewriteMap MapName MapType:MapSource", extra={"bind": rr.bind_map}),
    ]

    def __init__(self) -> None:
        self.scopes = PerServer(_server_scope)
        self.handlers = {ANSWER: self.answer, REDIRECT: self.redirect}

    def check_config(self, cfg: Any) -> list[Problem]:
        """-t and start-up: a txt/rnd map's file must exist (httpd: "RewriteMap: file for map
        X not found"), relative to ServerRoot."""
        from mpmd.modules.app_probe import lines_of
        root = str(getattr(cfg, "server_root", "/") or "/")
        out = []
        for item, file, line in lines_of(cfg, "rewrite_maps"):
            m = item.value
            path = m.source if m.source.startswith("/") else os.path.join(root, m.source)
            if m.kind != "int" and not os.path.exists(path):
                out.append(Problem("error", M_MAP, f"RewriteMap: file for map {m.name} not "
                                   f"found:{path}", file, line))
        return out

    def unused_hooks(self, values: dict[str, Any]) -> list[str]:
        """No hook runs unless some scope turns the engine on (Rule 5)."""
        if "rewrite" not in values.get(SET_FIELDS, ()):
            return ["translate_name", "fixups", "output_filter"]
        return []

    # -- server context (Rule 1) -----------------------------------------------------------------
    def translate_name(self, ctx: RequestContext) -> bool | Response | None:
        scope = self.scopes(ctx.server)
        if not scope.engine or not scope.rules or ctx.notes.get(NOTE_END):
            return None
        run = Run(ctx, scope, None, _tracer(ctx, None))
        run.filename = ctx.uri_path
        status = run.apply(scope.rules)
        self._after(ctx, run)
        if not status:
            if run.trace:
                run.trace(1, f"pass through {ctx.uri_path}")
            return None
        if status == STATUS:
            return core_request.error(run.status, ctx)
        filename = run.filename
        skip, _ = absolute_skip(filename)
        if skip:
            return self._redirect(ctx, run, status, filename, skip, ctx.request.query)
        self._set_query(ctx, run)
        if filename.startswith("passthrough:"):
            ctx.uri_path = filename[12:]
            return None
        if not filename.startswith("/"):
            return core_request.error(400, ctx)
        if run.no_prefix_stat or not prefix_exists(filename):
            saved = ctx.uri_path
            ctx.uri_path = filename
            core_request.core_translate(ctx)
            ctx.uri_path = saved
            if run.trace:
                run.trace(2, f"prefixed with document_root to {ctx.filename}")
        else:
            ctx.filename = filename
            ctx.notes["root"] = "/"
        if run.trace:
            run.trace(1, f"go-ahead with {ctx.filename} [OK]")
        return True

    # -- per-directory context (Rule 2) ----------------------------------------------------------
    def fixups(self, ctx: RequestContext) -> None:
        conf = getattr(ctx.dir_config, "rewrite", None)
        scope = conf.dir if conf is not None else None
        if scope is None or scope.directory is None or not scope.engine:
            self._late(ctx)
            return
        directory = scope.directory
        filename = ctx.filename
        if filename and "AllowNoSlash" not in scope.options and filename == directory[:-1]:
            self._late(ctx)
            return
        if ctx.notes.get(NOTE_END):
            self._late(ctx)
            return
        options = getattr(ctx.dir_config, "options", None) or ()
        if not {"FollowSymLinks", "SymLinksIfOwnerMatch"} & set(options):
            core_request.log_error(ctx, M_REFUSED, "Options FollowSymLinks and "
                                   "SymLinksIfOwnerMatch are both off, so the RewriteRule directive "
                                   f"is also forbidden: {filename}")
            self._answer(ctx, 403, [])
            return
        run = Run(ctx, scope, directory, _tracer(ctx, directory), self.scopes(ctx.server))
        if filename and not ctx.path_info:
            known = directory if os.path.isdir(directory) else ""
            run.filename, run.path_info = split_path_info(filename, known)
        else:
            run.filename = filename or ctx.uri_path
        ofilename, oargs = run.filename, run.args
        status = run.apply(scope.rules)
        self._after(ctx, run)
        if not status:
            if run.trace:
                run.trace(1, f"pass through {ofilename}")
            self._late(ctx)
            return
        if status == STATUS:
            self._answer(ctx, run.status, [])
            return
        result = run.filename
        skip, _ = absolute_skip(result)
        if skip:
            if scope.base is not None:
                slash = result.find("/", skip)
                if slash >= 0 and slash + 1 < len(result):
                    rest = result[slash + 1:]
                    sub = _subst_prefix(rest, directory.lstrip("/"), scope.base[1:])
                    result = result[:slash + 1] + sub
            if status != NOESCAPE:
                result = escape_absolute_uri(result, skip)
            code = run.status if 300 <= run.status < 400 else 302
            if run.trace:
                run.trace(1, f"redirect to {result} [REDIRECT/{code}]")
            # the query is added when answering: it is the request's own unless a rule
            # changed it (then the outcome is not cached, Rule 5)
            args = run.args if run.query_changed else KEEP
            self._answer(ctx, code, [("Location", result)], (args, status == NOESCAPE))
            return
        if result.startswith("passthrough:"):
            result = result[12:]
        if not result.startswith("/"):
            self._answer(ctx, 400, [])
            return
        if result == ofilename:
            if run.trace:
                run.trace(1, f"initial URL equal rewritten URL: {result} [IGNORING REWRITE]")
            self._late(ctx)
            return
        if scope.base is not None:
            result = _subst_prefix(result, directory, scope.base)
        else:
            root = str(getattr(ctx.server, "document_root", "") or "").rstrip("/")
            if root and result.startswith(root + "/"):
                result = result[len(root):]
        if (filename and not ctx.uri_path.endswith("/") and os.path.isdir(filename)
                and getattr(ctx.dir_config, "directory_slash", True) is not False):
            # httpd: mod_dir's fixup comes later and its slash redirect replaces the
            # internal redirect (AllowNoSlash needs DirectorySlash Off)
            self._late(ctx)
            return
        if run.trace:
            run.trace(1, f"internal redirect with {result} [INTERNAL REDIRECT]")
        ctx.notes[NOTE_TARGET] = (result, run.args if run.query_changed else KEEP)
        ctx.handler = REDIRECT

    def output_filter(self, ctx: RequestContext, resp: Response) -> Response:
        """Rule 7: the request headers conditions read, in Vary (not on the server's own
        answers: httpd sends those with err_headers_out only)."""
        vary = ctx.notes.get(NOTE_VARY)
        if vary and not resp.local:
            old = resp.header("Vary")
            have = {v.strip().lower() for v in old.split(",")} if old else set()
            add = [v for v in vary if v.lower() not in have]
            if add:
                value = ", ".join(([old] if old else []) + add)
                resp.headers = [h for h in resp.headers if h[0].lower() != "vary"] + [("Vary", value)]
        return resp

    def _after(self, ctx: RequestContext, run: Run) -> None:
        if run.vary:
            have = ctx.notes.get(NOTE_VARY) or []
            ctx.notes[NOTE_VARY] = have + [v for v in run.vary if v not in have]
        if run.volatile or run.query_changed:
            volatile_route(ctx)
        else:                                 # Rule 5: kept while each read gives the same
            if run.headers_read:
                checked_route(ctx, same_headers(tuple(run.headers_read)))
            if run.file_tests:
                checked_route(ctx, same_file_tests(tuple(run.file_tests)))
        if run.end:
            ctx.notes[NOTE_END] = True
        if run.mime:
            ctx.notes[NOTE_TYPE] = run.mime
        if run.handler:
            ctx.notes[NOTE_HANDLER] = run.handler

    def _late(self, ctx: RequestContext) -> None:
        """Rule 4: H= as httpd's hook_mimetype (T= is read by mod_mime's fixups)."""
        handler = ctx.notes.get(NOTE_HANDLER)
        if handler and ctx.handler not in (ANSWER, REDIRECT):
            ctx.handler = handler

    def _set_query(self, ctx: RequestContext, run: Run) -> None:
        query = (run.args or "").encode("latin-1", "replace")
        if query != ctx.request.query:
            ctx.request = dataclasses.replace(ctx.request, query=query)

    def _redirect(self, ctx: RequestContext, run: Run, status: int, url: str, skip: int,
                  oquery: bytes) -> Response:
        if status != NOESCAPE:
            url = escape_absolute_uri(url, skip)
        if run.args:
            noescape = status == NOESCAPE or run.args.encode("latin-1", "replace") == oquery
            url += "?" + (run.args if noescape else escape_uri(run.args))
        code = run.status if 300 <= run.status < 400 else 302
        if run.trace:
            run.trace(1, f"redirect to {url} [REDIRECT/{code}]")
        return core_request.error(code, ctx, [("Location", url)])

    def _answer(self, ctx: RequestContext, status: int, headers: list[tuple[str, str]],
                query: tuple[Any, bool] = (None, False)) -> None:
        ctx.notes[NOTE_ANSWER] = (status, headers, query)
        ctx.handler = ANSWER

    # -- handlers --------------------------------------------------------------------------------
    def answer(self, ctx: RequestContext) -> Response:
        status, headers, (args, noescape) = ctx.notes.get(NOTE_ANSWER, (500, [], (None, False)))
        if args is KEEP:
            args = ctx.request.query.decode("latin-1") or None
            noescape = True                  # httpd: an unchanged query is copied as it is
        if args and headers:
            name, location = headers[0]
            headers = [(name, location + "?" + (args if noescape else escape_uri(args)))]
        return core_request.error(status, ctx, list(headers) or None)

    def redirect(self, ctx: RequestContext) -> Response:
        """httpd's redirect-handler: ap_internal_redirect to the per-dir result (Rule 2)."""
        path, args = ctx.notes.pop(NOTE_TARGET, ("/", KEEP))
        if args is KEEP:
            args = ctx.request.query.decode("latin-1") or None
        # httpd's internal redirect: the new request's variables are the old ones as REDIRECT_*
        ctx.env = {"REDIRECT_" + k: v for k, v in ctx.env.items()}
        for note in (NOTE_ANSWER, NOTE_TYPE, NOTE_HANDLER):     # the new request's own notes
            ctx.notes.pop(note, None)
        try:
            uri = core_request.decode_path(path.encode("utf-8", "surrogateescape"))
        except core_request.BadPath as exc:
            return core_request.error(exc.status, ctx)
        query = (args or "").encode("latin-1", "replace")
        if query != ctx.request.query:
            ctx.request = dataclasses.replace(ctx.request, query=query)
        return core_request.internal_redirect(ctx, uri)


def _subst_prefix(path: str, match: str, subst: str) -> str:
    """httpd's subst_prefix_path: ``match`` (a directory) at the start of ``path`` -> ``subst``."""
    m = match[:-1] if match.endswith("/") else match
    if path.startswith(m) and path[len(m):len(m) + 1] == "/":
        rest = path[len(m) + 1:]
        prefix = subst if subst.endswith("/") or not subst else subst + "/"
        return prefix + rest
    return path
