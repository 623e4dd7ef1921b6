"""One request cycle, from its parsed head to the access log: what every MPM does alike.

Theory: a driver (an MPM's transport) reads a ``Request`` from the sans-I/O ``Connection``
and opens a ``Cycle`` for it.  The cycle runs the phases (core/request.py) and names the
handler's ``kind``: "answered" (a phase already answered), "inline", "blocking" or "async";
the driver runs the handler where the kind says (``run`` for the first three) and hands the
``Response`` to ``answer``, which returns the ``Plan``: the head, whether a body goes out and
how it is framed.  The driver writes ``first`` and then, unless that was ``whole``, what
``framed()``/``aframed()`` yield, or the body's bytes and file regions; ``finish`` logs the request
and says what the connection does next: ``KEEP`` it, ``LINGER`` (a lingering close) or wait
for an unread body to drain (``DRAINING``).  Drivers write no HTTP bytes of their own.

Rule 1: scoreboard states are the cycle's: W from the parsed head to the end of the answer,
        with the time it began (``begin``), L while logging, then K or C with the request's
        counters in one ``finish``.  Who and what (client, request line, vhost) are stored
        with ExtendedStatus, as httpd, and whenever StuckRequestTimeout is set: a stuck
        request's error-log line names them.
Rule 2: a phase hook or handler that raises, or a handler that answers nothing, is a 500
        (logged); the process or thread serving it lives on.
Rule 3: a request body that failed (over LimitRequestBody, bad chunking, timed out) is
        answered with its own status and a close, whatever the handler said.
Rule 4: one keep-alive decision: the server allows it (KeepAlive, MaxKeepAliveRequests, not
        stopping), the handler did not ask to close, the client did not hold back a body it
        was never invited to send (``Expect: 100-continue``); ``respond.finalize_plan`` adds
        the client's wish and self-delimiting framing.
Rule 5: a connection that ends after an answer is closed lingering: shut the write side,
        read and drop for up to ``LINGER_S`` (``LINGER_READS`` reads), as httpd.
Rule 6: the fast path (route cache, remembered plans and joined head + body) is one switch,
        ``FAST``; ``MPMD_PLAIN_PATH=1`` in the environment turns it off.  Both paths give the
        same bytes (tests/integration/test_fast_path.py compares them).
Rule 7: LimitRequestBody is the request's directory's (httpd reads it per directory): once
        the phases found it, a declared length over it is refused before the handler runs,
        and a chunked body fails when it passes it.
Rule 8: with <VirtualHost>s, the request's server is chosen from the connection's local
        address and the Host (config/vhosts.py) before any phase runs; its Policy decides
        keep-alive and logging, and ``ctx.server`` is that server.  What governs reading the
        heads (the LimitRequest* line limits, Timeout, KeepAliveTimeout) is the Policy of the
        connection's address's default server, ``for_address``, as in httpd.
Rule 9: on a TLS connection whose client sent SNI, a request must name a host (else 400) whose
        server has the TLS settings of the server SNI chose (else 421 Misdirected Request), as
        httpd's mod_ssl: a client cannot reach a vhost whose certificate it never checked.
Rule 10: a request the core refused (a ``ProtocolError``: 400, 408, 413, 414, 431, 501, 505 ...)
        is answered by ``refuse``, which every transport calls: the answer's bytes, and its
        access-log line written first, as httpd logs every request it answers: %r is what was
        read of the request line (``ProtocolError.line``, or the head's line for a 408 the
        transport found), "-" when not even that, %b the error page's length.  The line goes
        to the logs of the address's default server (no Host was taken from a refused head).
Rule 11: what moved for the access log (mod_logio's %I, %O): ``finish`` hands the cycle to the
        log as ``ctx.wire``, and a format that asks counts then: the head from ``first``, the
        body and its chunk lines (``framing``), a ``100 Continue`` sent; the request's head
        from its fields (``request.head_size``) and the request body's bytes read; a refused
        request's are its answer and what was read of its line (``Refused``).  The
        scoreboard's client is the one mod_remoteip found, when it found one (ExtendedStatus).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from time import time as _time
from typing import Any, AsyncIterator, Iterable, Iterator

from mpmd.config.vhosts import server_hostname
from mpmd.core import request as pipeline
from mpmd.core.body import CONTINUE, ClientGone, RequestBody
from mpmd.core.errors import response_for
from mpmd.core.reqtimeout import DEFAULT as DEFAULT_READ_TIMEOUT
from mpmd.core.reqtimeout import ReadTimeout
from mpmd.core.exchange import EmptyBody, Response
from mpmd.core.respond import Plan, finalize_plan, plain_plan, plan_for
from mpmd.http.connection import Connection
from mpmd.http.errors import ProtocolError
from mpmd.http.events import Request
from mpmd.http.limits import Limits
from mpmd.scoreboard.layout import Status

__all__ = ["Cycle", "Policy", "KEEP", "LINGER", "DRAINING", "LINGER_S", "LINGER_READS", "RETIRE_S",
           "ClientGone", "refusal", "refuse", "close_response", "SMALL_BODY"]

LINGER_S = 2.0
LINGER_READS = 32
# How long a retiring process (graceful restart or stop) still answers its kept-alive
# connections, each with "Connection: close", before it closes the ones left idle: a client
# that sends its next request meanwhile is answered, not cut off (gunicorn's gthread does so).
RETIRE_S = 1.0
LAST_CHUNK = b"0\r\n\r\n"
SMALL_BODY = 65536          # a bytes body below this leaves in the head's write
KEEP, LINGER, DRAINING = "keep", "linger", "draining"
FAST = os.environ.get("MPMD_PLAIN_PATH", "") in ("", "0")

# Plain ints: an IntEnum member costs 60 ns to look up, and a request changes state 3 times.
_WRITE, _LOG, _KEEPALIVE, _CLOSING = (int(s) for s in (
    Status.BUSY_WRITE, Status.BUSY_LOG, Status.BUSY_KEEPALIVE, Status.CLOSING))


@dataclass(frozen=True, slots=True)
class Policy:
    """What a driver needs of the config, read once per generation (typed attributes)."""

    cfg: Any
    timeout_s: float
    keep_alive: bool
    keep_alive_timeout_s: float
    max_keep_alive: int
    extended_status: bool         # store client and request line (Rule 1)
    logs: bool
    limits: Limits
    vhost: bytes = b""            # the scoreboard's VHost column: the server's name (mod_status)
    hosts: Any = None             # config.vhosts.VhostTable when <VirtualHost>s exist
    by_server: Any = None         # id(server) -> that server's Policy (Rule 8)
    read_timeout: ReadTimeout = DEFAULT_READ_TIMEOUT   # RequestReadTimeout (core/reqtimeout.py)
    parses_headers: bool = False  # some module has a header_parser hook (request.py Rule 6)
    filters_output: bool = False  # some module has an output_filter hook
    fixes_requests: bool = False  # some module has a request_fixups hook
    # RemoteIPProxyProtocol (mpm/proxy_header.py): None when off for this server, else the
    # RemoteIPProxyProtocolExceptions networks; ``proxy_anywhere``: on for some server.
    proxy_protocol: Any = None
    proxy_anywhere: bool = False

    @classmethod
    def from_config(cls, cfg: Any) -> "Policy":
        body = largest_body_limit(cfg)
        hosts = getattr(cfg, "vhosts", None)
        if not hosts:
            return cls._of(cfg, make_limits(cfg, body))
        by_server: dict[int, Policy] = {}            # shared by every server's Policy
        anywhere = any(_proxy_rule(server) is not None for server in hosts.servers())
        for server in hosts.servers():
            by_server[id(server)] = cls._of(server, make_limits(server, body), hosts, by_server,
                                            anywhere)
        return by_server[id(cfg)]

    def for_address(self, local: tuple[str, int]) -> "Policy":
        """The Policy a connection to ``local`` reads its heads with (Rule 8): that address's
        default server's (its Timeout, KeepAliveTimeout and LimitRequest* line limits)."""
        hosts = self.hosts
        if hosts is None:
            return self
        return self.by_server[id(hosts.candidates(local[0], local[1])[0])]

    @classmethod
    def _of(cls, server: Any, limits: Limits, hosts: Any = None, by_server: Any = None,
            anywhere: bool | None = None) -> "Policy":
        proxy = _proxy_rule(server)
        return cls(server, float(server.timeout), bool(server.keep_alive),
                   float(server.keep_alive_timeout), int(server.max_keep_alive_requests),
                   bool(server.extended_status) or bool(server.stuck_request_timeout),  # Rule 1
                   pipeline.logs_requests(server), limits,
                   server_hostname(server).encode("latin-1", "replace"), hosts, by_server,
                   _with_idle(getattr(server, "request_read_timeout", DEFAULT_READ_TIMEOUT),
                              float(server.timeout)),
                   *_request_hooks(server), proxy,
                   proxy is not None if anywhere is None else anywhere)

    def serving(self, request: Request, info: Any) -> "Policy":
        """The Policy of the server that answers ``request`` (Rule 8): self without vhosts."""
        hosts = self.hosts
        if hosts is None:
            return self
        local = info.server_addr
        server = hosts.select(local[0], local[1], request.header(b"host"))
        return self.by_server[id(server)]

    def misdirected(self, request: Request, info: Any) -> int:
        """Rule 9: 0, or the status for a Host this TLS connection's SNI does not cover."""
        if request.header(b"host") is None:
            return 400
        hosts = self.hosts
        if hosts is None:
            return 0
        local = info.server_addr
        by_sni = hosts.select(local[0], local[1], info.sni)
        return 0 if by_sni is self.cfg or same_tls(by_sni, self.cfg) else 421

    def connection(self) -> Connection:
        """A fresh sans-I/O ``Connection`` with the LimitRequest* values."""
        return Connection(self.limits)


def _proxy_rule(server: Any) -> tuple[Any, ...] | None:
    if not getattr(server, "remote_ip_proxy_protocol", False):
        return None
    return tuple(getattr(server, "remote_ip_proxy_protocol_exceptions", None) or ())


def _request_hooks(server: Any) -> tuple[bool, bool, bool]:
    """Whether any module parses headers, filters output or fixes requests for ``server``:
    when none does, the cycle makes no call for them."""
    by_hook = getattr(getattr(server, "hooks", None), "by_hook", {})
    return (bool(by_hook.get("header_parser")), bool(by_hook.get("output_filter")),
            bool(by_hook.get("request_fixups")))


def _with_idle(read_timeout: Any, timeout_s: float) -> Any:
    """RequestReadTimeout's stages with Timeout as each read's bound (reqtimeout.py Rule 3)."""
    return replace(read_timeout, header=replace(read_timeout.header, idle_s=timeout_s),
                   body=replace(read_timeout.body, idle_s=timeout_s))


def same_tls(a: Any, b: Any) -> bool:
    """Whether two servers' TLS settings agree (httpd's ssl_server_compatible, in short)."""
    mine, theirs = a.values(), b.values()
    return all(mine[k] == theirs.get(k) for k in mine if k.startswith("ssl_"))


def make_limits(cfg: Any, body: int | None = None) -> Limits:
    """The core's ``Limits`` from the LimitRequest* directives.  Its body limit is the largest
    any scope of any server allows (0: one allows any size): the core refuses at once what no
    directory would take, and the cycle holds each request to its own directory's (Rule 7)."""
    return Limits(request_line=int(cfg.limit_request_line),
                  field_size=int(cfg.limit_request_field_size),
                  fields=int(cfg.limit_request_fields),
                  body=largest_body_limit(cfg) if body is None else body)


def largest_body_limit(cfg: Any) -> int:
    hosts = getattr(cfg, "vhosts", None)
    servers = hosts.servers() if hosts else [cfg]
    limits = [int(v or 0) for server in servers for v in (
        server.limit_request_body, *server.section_values("limit_request_body"))]
    return 0 if 0 in limits else max(limits)


class NullSlot:
    """Stands in for a scoreboard WorkerSlot when none is given (tools, tests)."""

    def set_status(self, status: int) -> None: ...
    def begin(self, status: int, now: float) -> None: ...
    def start_request(self, client: bytes, request_line: bytes, vhost: bytes = b"") -> None: ...
    def finish(self, nbytes: int, last: float, status: int) -> None: ...


class NoBody(EmptyBody):
    """The body of a request without one: shared and stateless."""

    __slots__ = ()
    done = True                                      # what the cycle asks of a body


NO_BODY = NoBody()

if FAST:
    _begin, _prepare, _plan_for = pipeline.begin, pipeline.prepare, plan_for
else:
    def _begin(request: Any, info: Any, cfg: Any, body: Any, mpm: Any,
               now: float) -> tuple[Any, Any]:
        return pipeline.new_context(request, info, cfg, body, mpm, now), None

    _prepare = pipeline.run_phases

    def _plan_for(ctx: Any, resp: Response, keep_ok: bool) -> Plan:
        return plain_plan(ctx, resp, keep_ok)


class Cycle:
    """One request on one connection (see the module docstring)."""

    __slots__ = ("policy", "slot", "conn", "ctx", "handler", "body", "response", "start", "sent",
                 "framing", "first", "whole")

    def __init__(self, policy: Policy, conn: Any, request: Request, info: Any, slot: Any,
                 mpm: Any, source: Any) -> None:
        if policy.hosts is not None:                 # Rule 8
            policy = policy.serving(request, info)
        self.policy = policy
        self.slot = slot
        self.conn = conn
        self.start = now = _time()
        slot.begin(_WRITE, now)                      # Rule 1: W, and when it began
        if policy.extended_status:
            slot.start_request(info.client_addr[0].encode("latin-1", "replace"),
                               request_line(request), policy.vhost)
        if request.chunked or request.content_length:
            body: Any = RequestBody(request, conn, policy.limits.body, source)   # Rule 7
            body.pump()
        else:
            conn.next_event()                        # the EndOfMessage right behind the head
            body = NO_BODY
        self.body = body
        self.sent = 0                                # body bytes ``framed`` handed out
        self.framing = 0                             # and the chunk lines around them (%O)
        ctx, handler = _begin(request, info, policy.cfg, body, mpm, now)
        self.ctx = ctx
        if info.sni is not None:                     # Rule 9
            status = policy.misdirected(request, info)
            if status:
                handler = pipeline.error(status, ctx)
        if handler is None:                          # not in the route cache: the phases
            try:
                handler = _prepare(ctx)              # header_parser among them
            except Exception:  # noqa: BLE001 - Rule 2
                handler = pipeline.phase_failed(ctx)
        elif policy.parses_headers and type(handler) is not Response:
            handler = pipeline.parse_headers(ctx, handler)     # a cached route's
        if policy.fixes_requests and type(handler) is not Response:
            handler = pipeline.fix_request(ctx, handler)
        useragent = ctx.useragent
        if useragent is not None and useragent is not info.client_addr and policy.extended_status:
            slot.start_request(useragent[0].encode("latin-1", "replace"),    # mod_remoteip's
                               request_line(request), policy.vhost)
        if body is not NO_BODY and ctx.dir_config is not None and \
                body.hold_to(int(ctx.dir_config.limit_request_body or 0),
                             request.content_length):               # Rule 7
            handler = response_for(body.error)       # refused before the handler runs
        self.handler = handler

    @property
    def kind(self) -> str:
        handler = self.handler
        if type(handler) is Response:
            return "answered"
        return getattr(handler, "kind", "inline")

    def run(self) -> Response:
        """The handler's Response (any thread); Rule 2 for what goes wrong."""
        handler = self.handler
        if type(handler) is Response:
            return handler
        try:                                         # request.run_handler, inline: per request
            resp = handler(self.ctx)
        except Exception:  # noqa: BLE001 - Rule 2
            return pipeline.handler_failed(self.ctx)
        return resp if resp is not None else pipeline.no_answer(self.ctx)

    def failed(self, exc: BaseException) -> Response:
        """The 500 for a handler that failed outside ``run`` (an async task, a pool)."""
        pipeline.log_error(self.ctx, "MPMD0301", f"handler failed: {exc!r}")
        return pipeline.error(500, self.ctx)

    def unanswered(self) -> Response:
        """The 500 for an async handler that ended without answering (as ``run``'s None)."""
        return pipeline.no_answer(self.ctx)

    def body_failed(self, exc: BaseException) -> None:
        """A streamed body raised after the head went out: logged; the transport cuts the
        answer (no last chunk) and closes, so the client never sees it complete."""
        pipeline.log_error(self.ctx, "MPMD0620", f"response body failed: {exc!r}")

    def answer(self, resp: Response, stopping: bool, served: int,
               small: int = SMALL_BODY) -> Plan:
        """The Plan for ``resp``: Rule 3, then the keep-alive decision (Rule 4).  Also sets
        ``first``, the answer's first write (the head, with a bytes body under ``small``
        joined to it), and ``whole``: True when that is the whole answer."""
        body = self.body
        if body is not NO_BODY:
            if not body.done:
                body.pump()                          # what is parsed already, no read
            if isinstance(body.error, ProtocolError):
                resp = response_for(body.error)
        policy = self.policy
        if policy.filters_output:
            resp = pipeline.filter_output(self.ctx, resp)
        max_ka = policy.max_keep_alive
        keep_ok = (policy.keep_alive and not resp.close_connection and not stopping
                   and not (max_ka and served + 1 >= max_ka)
                   and (body.done or not body.expect_continue or body.continue_sent))
        try:
            plan = _plan_for(self.ctx, resp, keep_ok)
        except Exception:  # noqa: BLE001 - headers no head can carry: Rule 2
            close_response(resp)
            resp = pipeline.handler_failed(self.ctx)
            plan = finalize_plan(self.ctx, resp, False)
        self.response = resp
        content = resp.body
        if not plan.send_body:
            self.first, self.whole = plan.head, True
        elif type(content) is bytes and len(content) < small:
            self.first, self.whole = plan.whole or plan.head + content, True
        else:
            self.first, self.whole = plan.head, False
        return plan

    # -- framing: the only place body bytes get HTTP framing ---------------------------------
    def framed(self, chunks: Iterable[bytes], chunked: bool) -> Iterator[bytes]:
        """A streamed body's writes: RFC 9112 7.1 chunks when ``chunked``, the last chunk at
        the end; an empty chunk is skipped (it would end a chunked body).  Counts ``sent``,
        and the chunk lines in ``framing``."""
        for chunk in chunks:
            if chunk:
                n = len(chunk)
                self.sent += n
                if chunked:
                    self.framing += ((n.bit_length() + 3) >> 2) + 4    # "%x\r\n" .. "\r\n"
                    yield b"%x\r\n%s\r\n" % (n, chunk)
                else:
                    yield bytes(chunk)
        if chunked:
            self.framing += len(LAST_CHUNK)
            yield LAST_CHUNK

    async def aframed(self, chunks: AsyncIterator[bytes], chunked: bool) -> AsyncIterator[bytes]:
        """``framed`` for an async iterator (ASGI)."""
        async for chunk in chunks:
            if chunk:
                n = len(chunk)
                self.sent += n
                if chunked:
                    self.framing += ((n.bit_length() + 3) >> 2) + 4
                    yield b"%x\r\n%s\r\n" % (n, chunk)
                else:
                    yield bytes(chunk)
        if chunked:
            self.framing += len(LAST_CHUNK)
            yield LAST_CHUNK

    def finish(self, nbytes: int, keep: bool, on_end: Any = None, on_fail: Any = None) -> str:
        """The answer is out (``keep``: its Plan's keep-alive, False if writing failed): log,
        count, and what the connection does next (KEEP, LINGER or DRAINING)."""
        slot = self.slot
        step = LINGER
        if keep:
            conn = self.conn
            body = self.body
            if conn.closing and not conn.has_buffered_request():
                pass                                 # the client sent its last request
            elif body.done:
                step = KEEP
            else:                                    # an unread body: drop it (body.py Rule 4)
                body.discard(on_end, on_fail)
                step = DRAINING if not body.done else LINGER if body.error is not None else KEEP
        if self.policy.logs:
            slot.set_status(_LOG)
            ctx = self.ctx
            ctx.wire = self                          # %I, %O (bytes_in, bytes_out)
            pipeline.log(ctx, self.response, nbytes)
        slot.finish(nbytes, self.start, _CLOSING if step is LINGER else _KEEPALIVE)
        return step


    # -- what moved, for the access log (mod_logio's %I and %O) -------------------------------
    def bytes_in(self) -> int:
        """The request's bytes: its head as received and the body's bytes read (chunk framing
        not counted)."""
        ctx = self.ctx
        body = self.body
        return (ctx.head_in or pipeline.head_size(ctx.request)) + \
            (body.seen if body is not NO_BODY else 0)

    def bytes_out(self, nbytes: int) -> int:
        """The answer's bytes: its head (from ``first``), ``nbytes`` of body and the chunk
        lines around them, and a ``100 Continue`` sent before it."""
        body = self.body
        interim = len(CONTINUE) if body is not NO_BODY and body.continue_sent else 0
        try:
            first = self.first
        except AttributeError:                       # never answered: the client left first
            return nbytes + interim
        return len(first) - (nbytes if self.whole else 0) + nbytes + self.framing + interim


class Refused:
    """``ctx.wire`` of a refused request (Rule 10): what was read of its line, and the answer."""

    __slots__ = ("received", "head")

    def __init__(self, received: int, head: int) -> None:
        self.received, self.head = received, head

    def bytes_in(self) -> int:
        return self.received

    def bytes_out(self, nbytes: int) -> int:
        return self.head + nbytes


def refusal(exc: ProtocolError) -> bytes:
    """The answer to a request the core refused: head and error page, or the head alone for
    a HEAD (RFC 9110 9.3.2); always with a close."""
    resp = response_for(exc)
    head = finalize_plan(None, resp, False).head
    if exc.method == "HEAD":
        return head
    return head + resp.body                          # type: ignore[operator]


def refuse(exc: ProtocolError, policy: Policy, info: Any, conn: Any = None,
           mpm: Any = None) -> bytes:
    """Rule 10: what a transport writes for a request the core refused on ``conn`` (the
    sans-I/O Connection, for the line of a head that timed out), with its access-log line
    written.  An error that renders its own answer (``answer()``: plain HTTP on a TLS port)
    is answered with it."""
    answer = getattr(exc, "answer", None)
    data: bytes = answer() if answer is not None else refusal(exc)
    if policy.logs:
        line = exc.line
        if line is None and conn is not None:
            line = conn.received_line()
        sent = len(data) - data.find(b"\r\n\r\n") - 4
        pipeline.log_refused(policy.cfg, info, exc.status, exc.method, line, sent, mpm,
                             Refused(len(line) + 2 if line else 0, len(data) - sent))
    return data


def close_response(resp: Response) -> None:
    """The body's close() (WSGI) and the Response's on_close, each once; never raises."""
    body = resp.body
    closer = getattr(body, "close", None)
    if closer is not None and not isinstance(body, (bytes, bytearray)):
        try:
            closer()
        except Exception:  # noqa: BLE001 - a body's close() must not kill the connection
            pass
    if resp.on_close is not None:
        on_close, resp.on_close = resp.on_close, None
        on_close()


def request_line(request: Request) -> bytes:
    return b"%s %s HTTP/%s" % (request.method.encode("latin-1"), request.target,
                               request.http_version.encode("ascii"))
