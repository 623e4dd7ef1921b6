"""Modules: directives plus request-phase hooks, in Apache's order.

A module is an object with a ``name`` (``"mime_module"``), a ``DIRECTIVES`` table and any
of the hook methods below.  Built-in modules and a user's module loaded with
``LoadModule name package.module:attr`` use this same interface.

Request phases (httpd's order), run by ``mpmd.core.request.process``:
  post_read_request(ctx) -> Response | None     first look at a parsed request
  translate_name(ctx)    -> bool | None         map URL -> filename/handler; True = done
  map_to_storage(ctx)    -> Response | None     after translate: merge per-dir config
  header_parser(ctx)     -> Response | None     every request (a cached route's too), before
                                                access_checker: what depends on the request's
                                                headers (SetEnvIf, BrowserMatch)
  access_checker(ctx)    -> Response | None     Require; a Response (403) ends the request
  fixups(ctx)            -> Response | None     last chance before the handler (MIME; a
                                                per-directory Redirect answers here)
  request_fixups(ctx)    -> Response | None     every request (a cached route's too), after
                                                fixups: httpd's fixups that depend on the
                                                request itself (SetEnv, RequestHeader)
  handlers: dict[str, Handler]                  handler name -> callable (SetHandler picks)
  output_filter(ctx, response) -> Response      every answer but the core's refusals, errors
                                                included, before its head is built: headers,
                                                Expires, compression (httpd's output filters).
                                                Run in ``output_order`` (low first: Expires 20,
                                                DEFLATE 50, Header 90, as httpd's filter types)
  log_transaction(ctx, response, bytes_sent) -> None
Process hooks:
  post_config(server)                            in the master, after the config is loaded and
                                                 before children fork (WSGIPreload On); per generation
  child_init(server, mpm) / child_exit(server, mpm)
Any hook a module does not define is skipped, and so is any hook its optional
``unused_hooks(values) -> Iterable[str]`` names for a configuration's server values (mod_log_config
without a CustomLog needs no log_transaction): the request path then makes no call for it.
``values[SET_FIELDS]`` is the set of fields some line of the configuration sets, at server
level or in any section (mod_headers without a Header line anywhere needs no output_filter).

Route cache: the outcome of the phases before the handler (uri_path, filename, per-dir config,
handler, notes) is remembered per (raw path, method) when every module that has one of those
hooks sets ``route_pure = True``: its hooks decide from the path, the method and the config
alone.  A pure module whose decision for one request depended on more (a client address, a
header) calls ``volatile_route(ctx)`` and that outcome is not kept.  A user's module is
impure unless it says otherwise, so loading one never changes its semantics.  The cache is
per process, holds at most ROUTE_CACHE_SIZE entries (a few MiB) and is emptied when full.
Each server (the main one, each <VirtualHost>) has its own HookTable, so its route cache is
keyed by vhost too.

Servers: a process hook gets the main server; ``servers_of(server)`` gives it and every
<VirtualHost> (each a server with its own values), and ``PerServer`` keeps what a module
derives from one server's values (its mounts, its log files) per server.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Generic, TypeVar

from mpmd.config.directives import Directive

ROUTE_HOOKS = ("post_read_request", "translate_name", "map_to_storage", "access_checker",
               "fixups")
REQUEST_HOOKS = ROUTE_HOOKS + ("header_parser", "request_fixups", "output_filter",
                               "log_transaction")
ROUTE_CACHE_SIZE = 4096
VOLATILE = "route.volatile"                      # ctx.notes key: do not cache this outcome
ROUTE_CHECKS = "route.checks"                    # ctx.notes key: reuse it while these hold
PROCESS_HOOKS = ("post_config", "child_init", "child_exit")
SET_FIELDS = "fields set"                        # key in unused_hooks' values (see above)


class Module:
    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()      # other names IfModule accepts, e.g. "mod_mime.c"
    DIRECTIVES: ClassVar[list[Directive]] = []
    handlers: ClassVar[dict[str, Any]] = {}
    builtin: ClassVar[bool] = False              # loaded without a LoadModule line
    route_pure: ClassVar[bool] = False           # see "Route cache" above
    output_order: ClassVar[int] = 50             # where its output_filter runs (see above)

    def __repr__(self) -> str:
        return f"<module {self.name}>"


class HookTable:
    """The hooks of the loaded modules, resolved once per generation (not per request)."""

    def __init__(self, modules: list[Module], values: dict[str, Any] | None = None) -> None:
        self.modules = list(modules)
        self.by_hook: dict[str, list[Any]] = {}
        unused = {id(m): set(m.unused_hooks(values or {})) for m in modules
                  if hasattr(m, "unused_hooks")}
        for hook in REQUEST_HOOKS + PROCESS_HOOKS:
            self.by_hook[hook] = [getattr(m, hook) for m in modules if hasattr(m, hook)
                                  and hook not in unused.get(id(m), ())]
        self.by_hook["output_filter"].sort(key=lambda fn: getattr(fn.__self__, "output_order", 50)
                                           if hasattr(fn, "__self__") else 50)
        self.handlers: dict[str, Any] = {}
        for m in modules:
            self.handlers.update(getattr(m, "handlers", {}) or {})
        pure = all(getattr(m, "route_pure", False) for m in modules
                   if any(hasattr(m, hook) for hook in ROUTE_HOOKS))
        # (raw path, method) -> (uri_path, filename, path_info, dir_config, handler name, notes,
        # env, handler, checks), filled by core.request.prepare; None when some module's hooks
        # are not pure.  ``checks``: None, or what must still hold for the route to be reused
        # (core/request.py Rule 9).
        self.routes: dict[tuple[bytes, str], Any] | None = {} if pure else None

    def run(self, hook: str, *args: Any) -> None:
        for fn in self.by_hook[hook]:
            fn(*args)

    def run_first(self, hook: str, *args: Any) -> Any:
        """Call each implementation until one returns something other than None."""
        for fn in self.by_hook[hook]:
            result = fn(*args)
            if result is not None:
                return result
        return None


def volatile_route(ctx: Any) -> None:
    """This request's route depended on more than path and method: do not cache it."""
    ctx.notes[VOLATILE] = True


def checked_route(ctx: Any, check: Callable[[Any], bool]) -> None:
    """This request's route depends on something that can be asked again cheaply (a file's
    version, a request field's value): keep it, and reuse it for a request only while
    ``check(request)`` is true (core/request.py Rule 9)."""
    checks = ctx.notes.get(ROUTE_CHECKS)
    if checks is None:
        ctx.notes[ROUTE_CHECKS] = [check]
    else:
        checks.append(check)


T = TypeVar("T")


def servers_of(server: Any) -> list[Any]:
    """The main server and its <VirtualHost>s (config/vhosts.py), main first."""
    hosts = getattr(server, "vhosts", None)
    return hosts.servers() if hosts else [server]


class PerServer(Generic[T]):
    """``derive(server)``, computed once per server of the generation it was asked for."""

    def __init__(self, derive: Callable[[Any], T]) -> None:
        self.derive = derive
        self._by_id: dict[int, tuple[Any, T]] = {}

    def __call__(self, server: Any) -> T:
        hit = self._by_id.get(id(server))
        if hit is None or hit[0] is not server:       # a new generation reused the id
            hit = self._by_id[id(server)] = (server, self.derive(server))
        return hit[1]

    def values(self) -> list[T]:
        return [value for _, value in self._by_id.values()]

    def clear(self) -> None:
        self._by_id.clear()
