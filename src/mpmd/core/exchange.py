"""One request's life (httpd's request_rec) and what a handler gives back.

A handler returns a ``Response`` whose body is one of:
  * ``bytes``                     -- sent as is, with Content-Length;
  * ``FileBody``                  -- an open file region, sent with sendfile when enabled;
  * an iterable of ``bytes``      -- streamed (chunked on HTTP/1.1 when no Content-Length);
  * an async iterable of bytes    -- only from "async" handlers, on the nginx MPM.
The driver of the MPM writes it; no handler touches a socket.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any, AsyncIterable, Callable, Iterable, Protocol

from mpmd.http.events import Request


@dataclass(slots=True)
class ConnInfo:
    client_addr: tuple[str, int]
    server_addr: tuple[str, int]
    scheme: str = "http"               # "https" once a TLS handshake is done
    conn_id: int = 0
    requests_served: int = 0           # on this connection, before the current one
    # TLS (mpmd/tls): httpd's SSL variables for this connection (HTTPS, SSL_PROTOCOL,
    # SSL_CLIENT_S_DN ...), and the name the client sent in SNI (None: none sent, or plain).
    tls: dict[str, str] | None = None
    sni: str | None = None
    # RemoteIPProxyProtocol (mpm/proxy_header.py): the TCP peer (the balancer) when a PROXY
    # header named the client in ``client_addr``; None: ``client_addr`` is the peer.  Read
    # by %{c}a / %{c}h and CONN_REMOTE_ADDR, as httpd keeps c->client_addr the balancer's.
    peer: tuple[str, int] | None = None


@dataclass(slots=True)
class FileBody:
    """A region of an open file.  The driver closes ``file`` once sent."""

    file: Any                          # object with fileno() and read(); opened "rb"
    offset: int
    length: int

    def close(self) -> None:
        self.file.close()


@dataclass(slots=True)
class MultipartBody:
    """multipart/byteranges: a sequence of bytes and FileBody parts (RFC 9110 14.6)."""

    parts: list[bytes | FileBody]

    @property
    def length(self) -> int:
        return sum(len(p) if isinstance(p, bytes) else p.length for p in self.parts)

    def close(self) -> None:
        for p in self.parts:
            if isinstance(p, FileBody):
                p.close()


Body = bytes | FileBody | MultipartBody | Iterable[bytes] | AsyncIterable[bytes]


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: Body = b""
    close_connection: bool = False      # force "Connection: close" after this answer
    on_close: Callable[[], None] | None = None   # called once the body is sent or dropped (WSGI close())
    # () from a handler that hands out this same Response again and again (a cached file):
    # finalize then keeps the answer's Plan here for the second (core/respond.py).
    memo: Any = None
    # An answer the server made itself (core/errors.py: error pages, redirects), httpd's
    # ap_send_error_response: ``Header`` onsuccess lines and ErrorDocument tell it from a
    # handler's answer (mod_headers.py Rule 1).
    local: bool = False

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None


class BodyReader(Protocol):
    """The request body as the application sees it (wsgi.input); provided by the driver.

    It enforces LimitRequestBody, decodes chunked framing, and sends "100 Continue"
    on the first read when the client asked for it.
    """

    def read(self, size: int = -1) -> bytes: ...
    def readline(self, size: int = -1) -> bytes: ...


class EmptyBody:
    def read(self, size: int = -1) -> bytes:
        return b""

    def readline(self, size: int = -1) -> bytes:
        return b""

    def readlines(self, hint: int = -1) -> list[bytes]:
        return []

    def __iter__(self) -> Iterable[bytes]:
        return iter(())


@dataclass(slots=True)
class RequestContext:
    """httpd's request_rec: filled in phase by phase by the module hooks."""

    request: Request
    conn: ConnInfo
    server: Any                         # mpmd.config.model.ServerConfig
    body: BodyReader = field(default_factory=EmptyBody)
    uri_path: str = "/"                 # %-decoded, dot-segments resolved, always starts with "/"
    path_info: str = ""
    filename: str | None = None         # set by translate_name (file system path)
    handler: str | None = None          # chosen handler name, e.g. "default-handler"
    dir_config: Any = None              # merged mpmd.config.model.DirConfig for this request
    notes: dict[str, Any] = field(default_factory=dict)
    mpm: Any = None                     # the running MPM, for query()
    start_time: float = 0.0             # time.time() when the request line arrived
    # Set by MPMs that await "async" handlers: the handler may hand its Response here as soon
    # as it is known and keep running (mod_asgi); it then returns None.
    respond: Callable[[Response], None] | None = None
    # httpd's subprocess_env: SetEnv, SetEnvIf, BrowserMatch ...; it reaches the WSGI environ,
    # the ``env=`` conditions of Header and CustomLog, and %{NAME}e
    env: dict[str, str] = field(default_factory=dict)
    # httpd's r->useragent_addr: who the request is for (mod_remoteip's client behind trusted
    # proxies); None means the connection's peer, ``conn.client_addr``.  Read it through
    # ``useragent_addr()``: the access log's %a, Require ip, REMOTE_ADDR, ASGI's client.
    useragent: tuple[str, int] | None = None
    log_id: str | None = None           # httpd's r->log_id, made on demand (core/logid.py)
    # What the transport moved, for the access log's %I/%O/%S (mod_logio): the Cycle, or a
    # refused request's counts; set once the answer is out, only when the server logs.
    wire: Any = None
    # Bytes of the request head as received, kept by a module that rewrites the request's
    # fields (``request.replace_headers``); 0: the head is as parsed, its size is computed.
    head_in: int = 0

    def useragent_addr(self) -> tuple[str, int]:
        """The client address after mod_remoteip (the connection's peer without it)."""
        return self.useragent or self.conn.client_addr

    def host(self) -> str:
        h = self.request.header(b"host")
        return h.decode("latin-1") if h else ""


# Name prefix of asyncio tasks a module keeps for the whole process (ASGI lifespan).  At a
# graceful end every other task still running (an app's work after its answer) gets up to
# TASK_GRACE_S first (``work_after_answers``); these end in child_exit.
PROCESS_TASK = "mpmd-process "
TASK_GRACE_S = 10.0


async def work_after_answers(grace_s: float = TASK_GRACE_S) -> None:
    """Wait up to ``grace_s`` for the running loop's tasks but this one and the PROCESS_TASK
    ones: the nginx MPM's graceful stop and the blocking MPMs' ASGI loop thread both use it."""
    me = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks()
               if t is not me and not t.done() and not t.get_name().startswith(PROCESS_TASK)]
    if pending:
        await asyncio.wait(pending, timeout=grace_s)


# Connections that left HTTP (accepted websockets, modules/asgi_websocket.py), on the loop that
# serves them; each has ``going_away()``.  A graceful stop or restart lets them live for
# ``upgraded_grace_s`` and then closes them (1001), as uvicorn at its shutdown.
UPGRADED: dict[Any, None] = {}


def close_upgraded() -> None:
    """Close every live upgraded connection of this loop (1001: going away)."""
    for conn in list(UPGRADED):
        conn.going_away()


def upgraded_grace_s(cfg: Any) -> float:
    """How long a graceful stop lets websockets live: GracefulShutdownTimeout less a second
    for the closing handshake (the master ends what is left at GracefulShutdownTimeout), or
    one second when it is 0 (no bound: a retiring process would otherwise never end)."""
    bound = float(getattr(cfg, "graceful_shutdown_timeout", 0) or 0)
    return max(bound - 1.0, 0.0) if bound > 0 else 1.0


class Handler(Protocol):
    """A content handler.  ``kind`` tells the MPM where it may run:

    "inline"   -- quick and non-blocking apart from local file I/O (static files): any thread/loop;
    "blocking" -- may block (WSGI apps): on the nginx MPM it runs in the bounded thread pool;
    "async"    -- a coroutine function (ASGI apps): only on the nginx MPM's event loop; it
                  returns its Response or hands it to ``ctx.respond`` earlier (then returns None).
                  A handler whose ``answers_itself`` is true promises to answer every request
                  through ``ctx.respond`` exactly once, whatever happens (its own errors as a
                  500), and to let only CancelledError out: the MPM then runs its coroutine as
                  the task itself, without a wrapper that checks the outcome (mod_asgi).
    """

    kind: str

    def __call__(self, ctx: RequestContext) -> Response | None: ...


def stat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None
