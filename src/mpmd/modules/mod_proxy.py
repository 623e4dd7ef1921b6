"""mod_proxy, mod_proxy_http and mod_proxy_balancer: a reverse proxy, in Apache 2.4's syntax.

Theory: ``ProxyPass`` lines map URL prefixes to backends, tried in the order they appear
(first match wins, as httpd's proxy_trans); ``ProxyPass /x !`` keeps a prefix local.  A match
makes translate_name pick the "proxy-server" handler, with the backend's URL in the notes
(the route cache keeps it: the decision reads the path alone).  The handler chooses a worker
(a backend, or a member of a ``balancer://`` chosen by its lbmethod), forwards the request on
a pooled connection (proxy_client.py) and streams the answer back.

Rule 1: request fields: hop-by-hop ones (Connection and what it names, Keep-Alive, TE,
        Trailer, Transfer-Encoding, Upgrade, Proxy-*) are dropped; X-Forwarded-For (appended
        to), X-Forwarded-Host, X-Forwarded-Server and X-Forwarded-Proto are set; Host is the
        backend's unless ``ProxyPreserveHost On``; no Via (httpd's ProxyVia Off).
Rule 2: bodies stream both ways: a Content-Length body is forwarded with its length, a
        chunked one chunked; the answer's body is an iterator the MPM's driver writes as the
        client takes it (its hop-by-hop fields dropped; the driver frames it again).
Rule 3: ``ProxyPassReverse path url`` rewrites Location, Content-Location and URI answer
        fields that start with ``url`` to start with ``path`` (on this server's host).
Rule 4: a backend that cannot be reached is 503 and its worker is in error state for
        ``retry`` seconds (60), during which it is not tried (a balancer picks another
        member); no answer within the timeout (ProxyPass ``timeout=``, else ProxyTimeout,
        else Timeout) is 504; an answer that is not HTTP is 502.  Each is logged with
        httpd's AH id.  The client always gets an answer.
Rule 5: balancers: ``BalancerMember balancer://name url [key=value]`` (or inside
        ``<Proxy balancer://name>``), ``ProxySet`` for the balancer's parameters
        (lbmethod, stickysession) or a member's, ``status=+H`` for a hot standby used only
        when no other member is usable.  lbmethods: byrequests (weighted round robin, httpd's
        lbstatus algorithm), bybusyness (fewest requests in progress, weighted), bytraffic
        (fewest bytes moved per loadfactor).  ``stickysession=NAME`` reads the route after the
        last "." of cookie NAME (or of the ``NAME=`` query parameter) and picks the member with
        that ``route`` while it is usable.
Rule 6: ``SetHandler balancer-manager`` answers an HTML page of every balancer and member
        with its state (read-only: no member is changed from the page).
Rule 7: ``ProxyRequests On`` (a forward proxy) is refused at ``mpmd -t``: it is not offered.
"""

from __future__ import annotations

import asyncio
import html
import re
import threading
import time
from typing import Any, ClassVar
from urllib.parse import urlsplit

from mpmd.config import values as v
from mpmd.config.directives import Args, Ctx, Directive, Merge
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.modules import Module, PerServer, servers_of
from mpmd.core.request import error, log_error
from mpmd.modules.proxy_client import HOP_BY_HOP, BackendError, Worker, aexchange, exchange
from mpmd.modules.proxy_wstunnel import ProxyLoop, answer_of, open_tunnel
from mpmd.http.websocket import is_upgrade
from mpmd.mpm.base import awaits_handlers

HANDLER_NAME = "proxy-server"
MANAGER_HANDLER = "balancer-manager"
LBMETHODS = ("byrequests", "bybusyness", "bytraffic")

# ProxyPass (and BalancerMember / ProxySet) key=value parameters and their converters
_WORKER_KEYS = {
    "retry": lambda s: float(v.duration([s])),
    "timeout": lambda s: float(v.duration([s])),
    "connectiontimeout": lambda s: float(v.duration([s])),
    "keepalive": lambda s: v.flag([s]),
    "max": lambda s: _nonneg(s),
    "ttl": lambda s: float(v.duration([s])),
    "loadfactor": lambda s: _loadfactor(s),
    "route": str,
    "status": lambda s: _status(s),
}
_BALANCER_KEYS = {
    "lbmethod": lambda s: _lbmethod(s),
    "stickysession": str,
    "nofailover": lambda s: v.flag([s]),
}


def _nonneg(s: str) -> int:
    n = int(s)
    if n < 0:
        raise ValueError
    return n


def _loadfactor(s: str) -> int:
    n = int(s)
    if not 1 <= n <= 100:
        raise ValueError
    return n


def _status(s: str) -> str:
    flags = s.lstrip("+").upper()
    if s.startswith("-") or not flags or any(c not in "HD" for c in flags):
        raise ValueError
    return flags


def _lbmethod(s: str) -> str:
    if s.lower() not in LBMETHODS:
        raise ValueError
    return s.lower()


def _params(words: list[str], allowed: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for word in words:
        key, eq, val = word.partition("=")
        conv = allowed.get(key.lower())
        if not eq or conv is None:
            raise ValueError(f"unknown parameter {word!r} (mpmd accepts "
                             f"{', '.join(sorted(allowed))})")
        try:
            out[key.lower()] = conv(val)
        except (ValueError, TypeError):
            raise ValueError(f"bad value in {word!r}") from None
    return out


def _backend_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an http:// URL; a balancer:// has host = its name."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "balancer":
        if not parts.netloc:
            raise ValueError(f"a balancer URL needs a name: {url!r}")
        return scheme, parts.netloc.lower(), 0, parts.path
    if scheme not in ("http", "ws"):
        raise ValueError(f"mpmd proxies http://, ws:// and balancer:// URLs, not {url!r} "
                         "(https://, wss://, ajp://, fcgi:// backends are not offered)")
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    try:
        port = parts.port or 80
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    return scheme, parts.hostname, port, parts.path


class ProxyRule:
    """One ProxyPass line."""

    def __init__(self, path: str, url: str | None, params: dict[str, Any],
                 balancer_params: dict[str, Any]) -> None:
        self.path = path
        self.url = url
        self.params = params
        self.balancer_params = balancer_params
        if url is not None:
            self.scheme, self.host, self.port, self.url_path = _backend_url(url)

    def __repr__(self) -> str:
        return f"ProxyRule({self.path!r}, {self.url!r})"


def proxy_pass_value(args: list[str]) -> ProxyRule:
    if len(args) < 2:
        raise ValueError("must be: ProxyPass path !|url [key=value ...] (the one-argument form "
                         "inside <Location> is not offered)")
    path, url, rest = args[0], args[1], args[2:]
    if url == "!":
        if rest:
            raise ValueError("takes no parameters after !")
        return ProxyRule(path, None, {}, {})
    worker_words = [w for w in rest if w.partition("=")[0].lower() in _WORKER_KEYS]
    balancer_words = [w for w in rest if w not in worker_words]
    rule = ProxyRule(path, url, _params(worker_words, _WORKER_KEYS),
                     _params(balancer_words, _BALANCER_KEYS))
    if rule.scheme != "balancer" and rule.balancer_params:
        raise ValueError(f"{', '.join(rule.balancer_params)}: only for a balancer:// URL")
    return rule


def reverse_value(args: list[str]) -> tuple[str, str]:
    if len(args) != 2:
        raise ValueError("must be: ProxyPassReverse path url (the one-argument form inside "
                         "<Location> is not offered)")
    return args[0], args[1]


def member_value(args: list[str]) -> tuple[str, str, dict[str, Any]]:
    if len(args) < 2 or not args[0].lower().startswith("balancer://"):
        raise ValueError("must be: BalancerMember balancer://name url [key=value ...] (inside "
                         "<Proxy balancer://name>, the balancer's URL may be left out)")
    name = _backend_url(args[0])[1]
    url = args[1]
    if _backend_url(url)[0] != "http":
        raise ValueError(f"a member must be an http:// URL, not {url!r}")
    return name, url.rstrip("/"), _params(args[2:], _WORKER_KEYS)


def proxy_set_value(args: list[str]) -> tuple[str, dict[str, Any]]:
    if len(args) < 2:
        raise ValueError("must be: ProxySet url key=value ...")
    scheme, host, port, _ = _backend_url(args[0])
    allowed = _BALANCER_KEYS if scheme == "balancer" else _WORKER_KEYS
    key = f"balancer://{host}" if scheme == "balancer" else args[0].rstrip("/")
    return key, _params(args[1:], allowed)


PROXY_SECTION_LINES = ("balancermember", "proxyset")


def proxy_section_lines(args: list[str], children: list[Any]) -> list[Any]:
    """<Proxy balancer://name>'s lines with the balancer's URL put first (config/loader.py,
    the "proxy" inline section); a line that is not BalancerMember or ProxySet is refused."""
    from dataclasses import replace
    if len(args) != 1 or not args[0].lower().startswith("balancer://") \
            or not urlsplit(args[0]).netloc:
        raise ValueError("mpmd accepts <Proxy balancer://name> only (access control for "
                         "proxied URLs and forward proxying are not offered)")
    url = args[0]
    out = []
    for node in children:
        name = node.name.lower()
        if node.is_section or name not in PROXY_SECTION_LINES:
            raise ValueError(f"{node.name} at line {node.line}: only BalancerMember and "
                             "ProxySet lines are accepted in <Proxy>")
        first = node.args[0].lower() if node.args else ""
        if name == "balancermember" and not first.startswith("balancer://") or \
                name == "proxyset" and "=" in first:
            node = replace(node, args=[url, *node.args])
        out.append(node)
    return out


def proxy_requests_value(args: list[str]) -> bool:
    if v.flag(args):
        raise ValueError("On is refused: mpmd offers no forward proxy (ProxyRequests Off)")
    return False


DIRECTIVES = [
    Directive("ProxyPass", Args.RAW_ARGS, Ctx.SERVER | Ctx.VHOST, proxy_pass_value, [],
              "proxy_pass", "Map a URL prefix to a backend (http:// or balancer://) or keep it "
              "local (!); first match wins.", merge=Merge.APPEND, owner="proxy_module",
              syntax="ProxyPass path !|url [key=value ...]"),
    Directive("ProxyPassReverse", Args.RAW_ARGS, Ctx.SERVER | Ctx.VHOST, reverse_value, [],
              "proxy_pass_reverse", "Rewrite Location, Content-Location and URI answer fields "
              "from the backend's URL to this server's path.", merge=Merge.APPEND,
              owner="proxy_module", syntax="ProxyPassReverse path url"),
    Directive("ProxyPreserveHost", Args.FLAG, Ctx.SERVER | Ctx.VHOST, v.flag, False,
              "proxy_preserve_host", "Send the client's Host field to the backend instead of "
              "the backend's host.", owner="proxy_module",
              syntax="ProxyPreserveHost On|Off"),
    Directive("ProxyTimeout", Args.TAKE1, Ctx.SERVER | Ctx.VHOST, v.duration, None,
              "proxy_timeout", "Seconds to wait for a backend (connect, answer, each read); "
              "default: Timeout.", owner="proxy_module", syntax="ProxyTimeout seconds"),
    Directive("ProxyRequests", Args.FLAG, Ctx.SERVER | Ctx.VHOST, proxy_requests_value, False,
              "proxy_requests", "Forward proxy: only Off is accepted (not offered).",
              owner="proxy_module", syntax="ProxyRequests Off"),
    Directive("BalancerMember", Args.RAW_ARGS, Ctx.SERVER | Ctx.VHOST, member_value, [],
              "balancer_member", "Add a member to a balancer:// (loadfactor, route, status=+H "
              "hot standby, retry, timeout, keepalive, max, ttl).", merge=Merge.APPEND,
              owner="proxy_module",
              syntax="BalancerMember balancer://name url [key=value ...]"),
    Directive("<Proxy>", Args.RAW_ARGS, Ctx.SERVER | Ctx.VHOST, lambda args: args, None, "",
              "A balancer's members and parameters: BalancerMember and ProxySet lines without "
              "the balancer's URL (only balancer:// URLs; no access control inside).",
              syntax="<Proxy balancer://name> ... </Proxy>", owner="proxy_module",
              extra={"section": "Proxy", "inner": Ctx.SERVER | Ctx.VHOST, "inline": "expand",
                     "expand": lambda args, children: proxy_section_lines(args, children)}),
    Directive("ProxySet", Args.RAW_ARGS, Ctx.SERVER | Ctx.VHOST, proxy_set_value, [],
              "proxy_set", "Set a balancer's (lbmethod, stickysession, nofailover) or a worker's parameters.",
              merge=Merge.APPEND, owner="proxy_module", syntax="ProxySet url key=value ..."),
]


class Balancer:
    """httpd's proxy_balancer: its members and how one is chosen (Rule 5)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: list[Worker] = []
        self.lbmethod = "byrequests"
        self.sticky: str = ""
        self.nofailover = False
        self.lock = threading.Lock()

    def route_of(self, ctx: RequestContext) -> str:
        if not self.sticky:
            return ""
        for name in self.sticky.split("|"):
            cookie = ctx.request.header(b"cookie")
            if cookie:
                for part in cookie.decode("latin-1").split(";"):
                    k, _, val = part.strip().partition("=")
                    if k == name and "." in val:
                        return val.rsplit(".", 1)[1]
            for part in ctx.request.query.decode("latin-1").split("&"):
                k, _, val = part.partition("=")
                if k == name and "." in val:
                    return val.rsplit(".", 1)[1]
        return ""

    def choose(self, ctx: RequestContext, exclude: set[int]) -> Worker | None:
        now = time.monotonic()
        route = self.route_of(ctx)
        if route:
            for w in self.members:
                if w.route == route and id(w) not in exclude and w.usable(now):
                    return w
            if self.nofailover:
                return None
        usable = [w for w in self.members if id(w) not in exclude and w.usable(now)]
        active = [w for w in usable if not w.hot_standby] or usable
        if not active:
            return None
        with self.lock:
            if self.lbmethod == "bybusyness":
                return min(active, key=lambda w: (w.busy / w.loadfactor, w.elected))
            if self.lbmethod == "bytraffic":
                return min(active, key=lambda w: (w.transferred + w.read) / w.loadfactor)
            # byrequests: httpd's lbstatus weighted round robin
            total = 0
            best = None
            for w in active:
                w.lbstatus += w.loadfactor
                total += w.loadfactor
                if best is None or w.lbstatus > best.lbstatus:
                    best = w
            assert best is not None
            best.lbstatus -= total
            return best


class Proxies:
    """What one server's ProxyPass, BalancerMember and ProxySet lines make."""

    def __init__(self, server: Any) -> None:
        self.rules: list[ProxyRule] = list(getattr(server, "proxy_pass", None) or ())
        self.reverse: list[tuple[str, str]] = list(getattr(server, "proxy_pass_reverse", None) or ())
        self.preserve_host = bool(getattr(server, "proxy_preserve_host", False))
        timeout = getattr(server, "proxy_timeout", None)
        self.timeout = float(timeout if timeout is not None else getattr(server, "timeout", 60.0) or 60.0)
        self.server_name = (getattr(server, "server_name", "") or "localhost").split(":")[0]
        sets: dict[str, dict[str, Any]] = {}
        for key, params in getattr(server, "proxy_set", None) or ():
            sets.setdefault(key, {}).update(params)
        self.balancers: dict[str, Balancer] = {}
        # worker parameters on a ProxyPass to a balancer are its members' defaults
        defaults: dict[str, dict[str, Any]] = {}
        for rule in self.rules:
            if rule.url is not None and rule.scheme == "balancer":
                defaults.setdefault(rule.host, {}).update(rule.params)
        for name, url, params in getattr(server, "balancer_member", None) or ():
            bal = self.balancers.setdefault(name, Balancer(name))
            scheme, host, port, _ = _backend_url(url)
            merged = {**defaults.get(name, {}), **sets.get(url, {}), **params}
            bal.members.append(Worker(url, scheme, host, port, merged))
        for rule in self.rules:
            if rule.url is not None and rule.scheme == "balancer":
                bal = self.balancers.setdefault(rule.host, Balancer(rule.host))
                params = {**sets.get(f"balancer://{rule.host}", {}), **rule.balancer_params}
                bal.lbmethod = params.get("lbmethod", bal.lbmethod)
                bal.sticky = params.get("stickysession", bal.sticky)
                bal.nofailover = params.get("nofailover", bal.nofailover)
        for key, params in sets.items():
            if key.startswith("balancer://") and key[11:] in self.balancers:
                bal = self.balancers[key[11:]]
                bal.lbmethod = params.get("lbmethod", bal.lbmethod)
                bal.sticky = params.get("stickysession", bal.sticky)
                bal.nofailover = params.get("nofailover", bal.nofailover)
        self.workers: dict[int, Worker] = {}
        for rule in self.rules:
            if rule.url is not None and rule.scheme in ("http", "ws"):
                params = {**sets.get(rule.url.rstrip("/"), {}), **rule.params}
                self.workers[id(rule)] = Worker(rule.url, rule.scheme, rule.host, rule.port, params)

    def match(self, raw_path: str) -> ProxyRule | None:
        for rule in self.rules:
            if raw_path.startswith(rule.path):
                return rule
        return None


class ProxyModule(Module):
    name: ClassVar[str] = "proxy_module"
    route_pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("mod_proxy.c",)
    builtin: ClassVar[bool] = True
    DIRECTIVES: ClassVar[list[Directive]] = DIRECTIVES

    def __init__(self) -> None:
        self.proxies = PerServer(Proxies)
        self.handler = ProxyHandler(self)
        self.loop: ProxyLoop | None = None              # a blocking MPM's tunnels (wstunnel)
        self.handlers = {HANDLER_NAME: self.handler, MANAGER_HANDLER: self.manager}

    def check_config(self, cfg: Any) -> list[Any]:
        """-t and start-up: a ProxySet naming a worker or balancer that no ProxyPass or
        BalancerMember uses would have no effect, so it is refused at its line."""
        from mpmd.config.model import Problem
        from mpmd.modules.app_probe import lines_of
        used: set[str] = set()
        for server in servers_of(cfg):
            for rule in getattr(server, "proxy_pass", None) or ():
                if rule.url is not None:
                    used.add(f"balancer://{rule.host}" if rule.scheme == "balancer"
                             else rule.url.rstrip("/"))
            for name, url, _ in getattr(server, "balancer_member", None) or ():
                used.update((url, f"balancer://{name}"))
        return [Problem("error", "AH00944", f"ProxySet {key}: no ProxyPass or BalancerMember "
                        "uses this worker or balancer, so its parameters would have no effect",
                        file, line)
                for (key, _), file, line in lines_of(cfg, "proxy_set") if key not in used]

    def child_init(self, server: Any, mpm: Any) -> None:
        self.handler.kind = "async" if awaits_handlers(mpm) else "blocking"

    def child_exit(self, server: Any, mpm: Any) -> None:
        for proxies in self.proxies.values():
            for worker in [*proxies.workers.values(),
                           *(w for b in proxies.balancers.values() for w in b.members)]:
                worker.close_idle()
        if self.loop is not None:
            self.loop.stop()
            self.loop = None

    def unused_hooks(self, values: dict[str, Any]) -> list[str]:
        return [] if values.get("proxy_pass") else ["translate_name"]

    def translate_name(self, ctx: RequestContext) -> bool | None:
        proxies = self.proxies(ctx.server)
        if not proxies.rules:
            return None
        raw = ctx.request.path.decode("latin-1")
        rule = proxies.match(raw)
        if rule is None or rule.url is None:
            return None
        ctx.handler = HANDLER_NAME
        ctx.filename = "proxy:" + rule.url + raw[len(rule.path):]
        ctx.notes["proxy.rule"] = rule
        return True

    def manager(self, ctx: RequestContext) -> Response:
        """Rule 6: the balancer-manager page (read-only)."""
        proxies = self.proxies(ctx.server)
        now = time.monotonic()
        rows = []
        for bal in proxies.balancers.values():
            rows.append(f"<h3>LoadBalancer Status for balancer://{html.escape(bal.name)} "
                        f"[{html.escape(bal.lbmethod)}]</h3>\n<table border=\"1\">\n"
                        "<tr><th>StickySession</th><th>LB Method</th></tr>\n"
                        f"<tr><td>{html.escape(bal.sticky or '(None)')}</td>"
                        f"<td>{html.escape(bal.lbmethod)}</td></tr>\n</table>\n"
                        "<table border=\"1\">\n<tr><th>Worker URL</th><th>Route</th>"
                        "<th>Factor</th><th>Status</th><th>Elected</th><th>Busy</th>"
                        "<th>To</th><th>From</th></tr>\n")
            for w in bal.members:
                status = "Init Ok"
                if w.disabled:
                    status = "Init Dis"
                elif now < w.error_until:
                    status = "Init Err"
                if w.hot_standby:
                    status += " Stby"
                rows.append(f"<tr><td>{html.escape(w.url)}</td><td>{html.escape(w.route)}</td>"
                            f"<td>{w.loadfactor}</td><td>{status}</td><td>{w.elected}</td>"
                            f"<td>{w.busy}</td><td>{w.transferred}</td><td>{w.read}</td></tr>\n")
            rows.append("</table>\n")
        body = ("<!DOCTYPE html>\n<html><head><title>Balancer Manager</title></head><body>\n"
                "<h1>Load Balancer Manager for " + html.escape(proxies.server_name) + "</h1>\n"
                "<p>Read-only: members are changed in the configuration.</p>\n"
                + "".join(rows) + "</body></html>\n").encode()
        return Response(200, [("Content-Type", "text/html; charset=ISO-8859-1")], body)


class ProxyHandler:
    """The "proxy-server" handler: "async" on an MPM that awaits handlers on its loop (nginx),
    "blocking" elsewhere (its thread waits on the backend); set per process in child_init."""

    kind = "blocking"

    def __init__(self, module: ProxyModule) -> None:
        self.module = module

    def __call__(self, ctx: RequestContext) -> Any:
        if self.kind == "async":
            return self.run_async(ctx)
        proxies, rule, bal, rest = self._target(ctx)
        if rule.scheme == "ws" and is_upgrade(ctx.request):
            if self.module.loop is None:
                self.module.loop = ProxyLoop()
            loop = self.module.loop
            return loop.call(self.tunnel(ctx, proxies, rule, rest, loop.loop))
        if bal is None:
            worker = proxies.workers[id(rule)]
            resp = self.forward(ctx, proxies, worker, rule.url_path + rest, False)
            assert resp is not None
            return resp
        tried: set[int] = set()
        while True:
            worker = self._member(ctx, bal, tried)
            if isinstance(worker, Response):
                return worker
            resp = self.forward(ctx, proxies, worker, _member_path(worker, rule, rest),
                                not ctx.request.has_body)
            if resp is not None:
                return resp

    async def run_async(self, ctx: RequestContext) -> Response:
        proxies, rule, bal, rest = self._target(ctx)
        if rule.scheme == "ws" and is_upgrade(ctx.request):
            return await self.tunnel(ctx, proxies, rule, rest, asyncio.get_running_loop())
        if bal is None:
            worker = proxies.workers[id(rule)]
            resp = await self.aforward(ctx, proxies, worker, rule.url_path + rest, False)
            assert resp is not None
            return resp
        tried: set[int] = set()
        while True:
            worker = self._member(ctx, bal, tried)
            if isinstance(worker, Response):
                return worker
            resp = await self.aforward(ctx, proxies, worker, _member_path(worker, rule, rest),
                                       not ctx.request.has_body)
            if resp is not None:
                return resp

    def _target(self, ctx: RequestContext) -> tuple[Proxies, ProxyRule, Balancer | None, str]:
        proxies = self.module.proxies(ctx.server)
        rule: ProxyRule = ctx.notes["proxy.rule"]
        rest = ctx.request.path.decode("latin-1")[len(rule.path):]
        bal = proxies.balancers.get(rule.host) if rule.scheme == "balancer" else None
        if rule.scheme == "balancer" and bal is None:
            bal = Balancer(rule.host)                    # no member: 503 below
        return proxies, rule, bal, rest

    def _member(self, ctx: RequestContext, bal: Balancer, tried: set[int]) -> Worker | Response:
        if not bal.members:
            log_error(ctx, "AH01170", f"balancer://{bal.name}: No workers in balancer")
            return error(503, ctx)
        worker = bal.choose(ctx, tried)
        if worker is None:
            log_error(ctx, "AH01167", f"balancer://{bal.name}: All workers are in error state")
            return error(503, ctx)
        tried.add(id(worker))
        return worker

    def _refused(self, ctx: RequestContext, worker: Worker, exc: BackendError,
                 retry_elsewhere: bool) -> Response | None:
        """Rule 4: log, put an unreachable worker in error state; None: try another member."""
        log_error(ctx, exc.msg_id, exc.text)
        if exc.status != 503:
            log_error(ctx, "AH00898", "Error reading from remote server returned by "
                      + ctx.request.path.decode("latin-1"))
        if exc.status == 503:
            worker.put_in_error()
            log_error(ctx, "AH00959", f"ap_proxy_connect_backend disabling worker for "
                      f"({worker.host}:{worker.port}) for {worker.retry:g}s")
            if retry_elsewhere:
                return None
        return error(exc.status, ctx)

    def _disabled(self, ctx: RequestContext, worker: Worker) -> bool:
        if worker.in_error():
            log_error(ctx, "AH00940", f"HTTP: disabled connection for ({worker.host}:"
                      f"{worker.port})")
            return True
        return False

    def forward(self, ctx: RequestContext, proxies: Proxies, worker: Worker, path: str,
                retry_elsewhere: bool) -> Response | None:
        """The backend's answer; None when ``worker`` could not be reached and the caller
        may try another member."""
        if self._disabled(ctx, worker):
            return None if retry_elsewhere else error(503, ctx)
        req = ctx.request
        head = _request_head(ctx, proxies, worker, path, req.query)
        try:
            answer = exchange(worker, head, ctx.body, req.content_length, req.chunked,
                              req.method == "HEAD", worker.timeout or proxies.timeout)
        except BackendError as exc:
            return self._refused(ctx, worker, exc, retry_elsewhere)
        headers = _answer_headers(answer.headers, proxies, ctx)
        if answer.no_body:
            answer.close() if answer.status == 101 else list(answer.body())
            return Response(answer.status, headers, b"")
        return Response(answer.status, headers, answer.body(), on_close=answer.close)

    async def aforward(self, ctx: RequestContext, proxies: Proxies, worker: Worker, path: str,
                       retry_elsewhere: bool) -> Response | None:
        """``forward`` on the loop."""
        if self._disabled(ctx, worker):
            return None if retry_elsewhere else error(503, ctx)
        req = ctx.request
        head = _request_head(ctx, proxies, worker, path, req.query)
        try:
            answer = await aexchange(worker, head, ctx.body, req.content_length, req.chunked,
                                     req.method == "HEAD", worker.timeout or proxies.timeout)
        except BackendError as exc:
            return self._refused(ctx, worker, exc, retry_elsewhere)
        headers = _answer_headers(answer.headers, proxies, ctx)
        if answer.no_body:
            if answer.status == 101:
                answer.close()
            else:
                async for _ in answer.body():
                    pass
            return Response(answer.status, headers, b"")
        return Response(answer.status, headers, answer.body(), on_close=answer.close)


    async def tunnel(self, ctx: RequestContext, proxies: Proxies, rule: ProxyRule, rest: str,
                     loop: asyncio.AbstractEventLoop) -> Response:
        """mod_proxy_wstunnel (proxy_wstunnel.py): the backend's 101 and a Tunnel, or its
        other answer."""
        worker = proxies.workers[id(rule)]
        if self._disabled(ctx, worker):
            return error(503, ctx)
        upgrade = ctx.request.header(b"upgrade")
        head = _request_head(ctx, proxies, worker, rule.url_path + rest, ctx.request.query,
                             upgrade=upgrade)
        try:
            status, raw, body = await open_tunnel(worker, head, worker.timeout or proxies.timeout,
                                                  loop)
        except BackendError as exc:
            resp = self._refused(ctx, worker, exc, False)
            assert resp is not None
            return resp
        return answer_of(status, _answer_headers(raw, proxies, ctx), body, upgrade)


def _member_path(worker: Worker, rule: ProxyRule, rest: str) -> str:
    return _join(urlsplit(worker.url).path, rule.url_path, rest)


def _join(member_path: str, rule_path: str, rest: str) -> str:
    path = (member_path.rstrip("/") + rule_path) if rule_path else member_path
    if path.endswith("/") and rest.startswith("/"):
        rest = rest[1:]
    return (path + rest) or "/"


def _request_head(ctx: RequestContext, proxies: Proxies, worker: Worker, path: str,
                  query: bytes, upgrade: bytes | None = None) -> bytes:
    """Rule 1."""
    req = ctx.request
    named = {t.strip().lower().encode() for v in req.header_values(b"connection")
             for t in v.decode("latin-1").split(",") if t.strip()}
    target = (path or "/").encode("latin-1") + (b"?" + query if query else b"")
    lines = [req.method.encode() + b" " + target + b" HTTP/1.1"]
    host = req.header(b"host")
    if proxies.preserve_host and host:
        lines.append(b"Host: " + host)
    else:
        lines.append(b"Host: " + (worker.host if worker.port == 80
                                  else worker.hostport).encode())
    xff = None
    for name, value in req.headers:
        if name in HOP_BY_HOP or name in named or name == b"host" or name == b"content-length":
            continue
        if name == b"x-forwarded-for":
            xff = value if xff is None else xff + b", " + value
            continue
        lines.append(name + b": " + value)
    client = ctx.useragent_addr()[0].encode()
    lines.append(b"X-Forwarded-For: " + (xff + b", " + client if xff else client))
    if host:
        lines.append(b"X-Forwarded-Host: " + host)
    lines.append(b"X-Forwarded-Server: " + proxies.server_name.encode())
    lines.append(b"X-Forwarded-Proto: " + ctx.conn.scheme.encode())
    if req.chunked:
        lines.append(b"Transfer-Encoding: chunked")
    elif req.content_length is not None:
        lines.append(b"Content-Length: %d" % req.content_length)
    if upgrade is not None:                              # mod_proxy_wstunnel
        lines.append(b"Upgrade: " + upgrade)
        lines.append(b"Connection: Upgrade")
    else:
        lines.append(b"Connection: " + (b"Keep-Alive" if worker.keepalive else b"close"))
    return b"\r\n".join(lines) + b"\r\n\r\n"


_REWRITTEN = frozenset({b"location", b"content-location", b"uri"})


def _answer_headers(raw: list[tuple[bytes, bytes]], proxies: Proxies,
                    ctx: RequestContext) -> list[tuple[str, str]]:
    """The answer's fields minus hop-by-hop ones, with ProxyPassReverse (Rules 2, 3)."""
    named = {t.strip().lower().encode() for n, v in raw if n.lower() == b"connection"
             for t in v.decode("latin-1").split(",") if t.strip()}
    out = []
    for name, value in raw:
        lname = name.lower()
        if lname in HOP_BY_HOP or lname in named:
            continue
        text = value.decode("latin-1")
        if lname in _REWRITTEN and proxies.reverse:
            text = _reverse(text, proxies, ctx)
        out.append((name.decode("latin-1"), text))
    return out


def _reverse(value: str, proxies: Proxies, ctx: RequestContext) -> str:
    for path, url in proxies.reverse:
        candidates = [url]
        if url.lower().startswith("balancer://"):
            bal = proxies.balancers.get(urlsplit(url).netloc.lower())
            candidates = [w.url + urlsplit(url).path for w in bal.members] if bal else []
        for prefix in candidates:
            if value.startswith(prefix):
                rest = value[len(prefix):]
                if path.endswith("/") and rest.startswith("/"):
                    rest = rest[1:]
                host = ctx.host() or proxies.server_name
                return f"{ctx.conn.scheme}://{host}{path}{rest}"
    return value


class ProxyHttpModule(Module):
    """mod_proxy_http: the http:// scheme (in proxy_module's handler)."""

    name: ClassVar[str] = "proxy_http_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_proxy_http.c",)
    builtin: ClassVar[bool] = True


class ProxyBalancerModule(Module):
    """mod_proxy_balancer: balancer:// (in proxy_module's handler and tables)."""

    name: ClassVar[str] = "proxy_balancer_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_proxy_balancer.c",)
    builtin: ClassVar[bool] = True


class ProxyWstunnelModule(Module):
    """mod_proxy_wstunnel: ws:// (proxy_wstunnel.py, from proxy_module's handler)."""

    name: ClassVar[str] = "proxy_wstunnel_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_proxy_wstunnel.c",)
    builtin: ClassVar[bool] = True


class LbmethodByrequests(Module):
    name: ClassVar[str] = "lbmethod_byrequests_module"
    builtin: ClassVar[bool] = True


class LbmethodBybusyness(Module):
    name: ClassVar[str] = "lbmethod_bybusyness_module"
    builtin: ClassVar[bool] = True


class LbmethodBytraffic(Module):
    name: ClassVar[str] = "lbmethod_bytraffic_module"
    builtin: ClassVar[bool] = True


__all__ = ["ProxyModule", "ProxyHttpModule", "ProxyBalancerModule", "HANDLER_NAME"]
