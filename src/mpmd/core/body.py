"""The request body as a handler reads it (wsgi.input, ASGI receive), the same on every MPM.

Theory: the sans-I/O ``Connection`` parses the body into ``Data`` events; ``pump()`` moves the
ones already parsed into the buffer (no I/O).  What brings more bytes is the driver's
``BodySource``: the blocking driver reads the socket in the reader's own thread; the nginx
MPM's loop pumps as bytes arrive and a reader on another thread waits for it.

Rule 1: LimitRequestBody is enforced on what arrives: past it the body fails with 413.
Rule 2: a read after the body failed raises ``RequestBodyError`` (an OSError, as mod_wsgi's
        "request data read error"); the cycle answers the ``ProtocolError`` behind it with its
        status and a close (``error``).  An error that is not a ProtocolError (the client left)
        is raised as it is.
Rule 3: "100 Continue" goes out on the first read, only while the body has not arrived
        (RFC 9110 10.1.1): a handler that answers without reading never invites the body.
        A transport that reads the body before a handler that reads it (``PREREAD_BYTES``)
        sends it then (``invite``).
Rule 4: after the answer an unread rest is discarded (``discard``) so the next pipelined
        request can be parsed; if the body fails instead, the connection must end.
Rule 5: producer and consumer may be different threads (the nginx MPM's pool), so the buffer
        is guarded by one Condition; the source hears of each arrival and each take (``fed``,
        ``taken``) to pause reading past ``HIGH_BYTES`` buffered and resume below ``LOW_BYTES``,
        or while a reader waits for more than is buffered (a whole ``read()``).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import threading

from mpmd.http.errors import ProtocolError, RequestBodyError
from mpmd.http.events import NEED_DATA, PAUSED, Data, EndOfMessage

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
HIGH_BYTES = 1 << 20             # buffered past this: the source stops reading (Rule 5)
LOW_BYTES = 1 << 18              # taken below this: it reads again
# A body for a handler that reads it ("blocking", "async") is read by the event MPM's listener
# or the nginx MPM's loop until it ends or this much is buffered, before a thread runs the
# handler (mpm/event/listener.py Rule 7, mpm/nginx/protocol.py Rule 7).
PREREAD_BYTES = HIGH_BYTES


class ClientGone(ConnectionError):
    """The client closed the connection while the body was being read."""


class BodySource(Protocol):
    """What a driver gives a body: how more bytes come, and where "100 Continue" goes."""

    def wait(self, body: "RequestBody", enough: Callable[[], bool]) -> None:
        """Return once ``enough()`` holds or the body is done (reading, or waiting for the
        thread that reads); a reader that must not block returns at once."""

    async def arrive(self, body: "RequestBody") -> None:
        """Await more of the body (async readers on the loop)."""

    def send_continue(self) -> None: ...
    def fed(self, body: "RequestBody") -> None:
        """Bytes arrived, or the body ended or failed: wake async readers, pause reading
        past HIGH_BYTES buffered."""
    def taken(self, body: "RequestBody") -> None:
        """A reader took bytes (resume reading below LOW_BYTES)."""


class RequestBody:
    """wsgi.input (``read``/``readline``/iteration) and ASGI's ``aread`` over one request."""

    __slots__ = ("conn", "source", "expect_continue", "limit", "buf", "seen", "done", "error",
                 "continue_sent", "discarding", "on_end", "on_fail", "cond")

    def __init__(self, request: Any, conn: Any, limit: int, source: BodySource) -> None:
        self.conn = conn
        self.source = source
        self.expect_continue = bool(request.expect_continue)
        self.limit = limit
        self.buf = bytearray()
        self.seen = 0
        self.done = False                # EndOfMessage seen, or the body failed
        self.error: BaseException | None = None
        self.continue_sent = False
        self.discarding = False
        self.on_end: Callable[[], None] | None = None
        self.on_fail: Callable[[], None] | None = None
        self.cond = threading.Condition()

    # -- producer side ----------------------------------------------------------------------
    def pump(self) -> None:
        """Move what the connection already parsed into the buffer (no I/O)."""
        conn = self.conn
        while not self.done:
            try:
                event = conn.next_event()
            except ProtocolError as exc:
                self.fail(exc)
                return
            if event is NEED_DATA or event is PAUSED:
                return
            self.take(event)

    def take(self, event: Any) -> None:
        """One event of the body: Data, EndOfMessage, or ConnectionClosed (EOF inside it)."""
        kind = type(event)
        if kind is Data:
            self.feed(event.data)
        elif kind is EndOfMessage:
            self.finish()
        else:
            self.fail(ClientGone("connection closed in the body"))

    def hold_to(self, limit: int, declared: int | None) -> bool:
        """The request's own LimitRequestBody (its directory's), known once the phases ran:
        the body fails with 413 when what already came is over it; True when the declared
        length is (refused before any handler reads, as the core refuses one over every
        directory's limit)."""
        self.limit = limit
        if limit and max(self.seen, declared or 0) > limit:
            self.fail(ProtocolError(413, "request body larger than LimitRequestBody"))
            return bool(declared and declared > limit)
        return False

    def feed(self, data: bytes) -> None:
        self.seen += len(data)
        if self.limit and self.seen > self.limit:
            self.fail(ProtocolError(413, "request body larger than LimitRequestBody"))
            return
        with self.cond:
            if not self.discarding:
                self.buf += data
            self.cond.notify_all()
        self.source.fed(self)

    def finish(self) -> None:
        with self.cond:
            self.done = True
            self.cond.notify_all()
        self.source.fed(self)
        if self.discarding and self.on_end is not None and self.error is None:
            self.on_end()

    def fail(self, exc: BaseException) -> None:
        with self.cond:
            if self.error is None:
                self.error = exc
            self.done = True
            self.cond.notify_all()
        self.source.fed(self)
        on_fail, self.on_fail = self.on_fail, None
        if self.discarding and on_fail is not None:
            on_fail()

    def discard(self, on_end: Callable[[], None] | None = None,
                on_fail: Callable[[], None] | None = None) -> None:
        """Rule 4: drop the rest.  A source that reads in this thread reads it to the end
        now (callbacks unused: check ``error`` after); otherwise ``on_end`` runs once the
        body is over and ``on_fail`` if it fails first."""
        with self.cond:
            self.discarding = True
            self.buf.clear()
        self.on_end, self.on_fail = on_end, on_fail
        self.source.taken(self)
        if not self.done:
            self.source.wait(self, lambda: False)

    # -- consumer side ----------------------------------------------------------------------
    def invite(self) -> None:
        """Send "100 Continue" now, as the first read would (Rule 3): a transport that reads
        the body before the handler runs does so for a handler that reads it."""
        self._first_read()

    def _first_read(self) -> None:
        if self.expect_continue and not self.continue_sent and not self.done:
            self.continue_sent = True
            self.source.send_continue()

    def _wait_for(self, enough: Callable[[], bool]) -> None:
        self._first_read()
        if not enough() and not self.done:
            self.source.wait(self, enough)

    def _raise(self) -> None:
        error = self.error
        if isinstance(error, ProtocolError):
            raise RequestBodyError(error)
        if error is not None:
            raise error

    def _take(self, n: int) -> bytes:
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read(self, size: int | None = -1) -> bytes:
        whole = size is None or size < 0
        self._wait_for((lambda: False) if whole else (lambda: len(self.buf) >= size))
        with self.cond:
            if whole or len(self.buf) < size:         # type: ignore[operator]
                self._raise()            # the body failed short of the read
            out = self._take(len(self.buf) if whole else min(size, len(self.buf)))  # type: ignore[type-var]
        self.source.taken(self)
        return out

    def readline(self, size: int | None = -1) -> bytes:
        limited = size is not None and size >= 0

        def enough() -> bool:
            return b"\n" in self.buf or (limited and size <= len(self.buf))  # type: ignore[operator]
        self._wait_for(enough)
        with self.cond:
            if not enough():
                self._raise()
            end = self.buf.find(b"\n") + 1 or len(self.buf)
            out = self._take(min(end, size) if limited else end)   # type: ignore[type-var]
        self.source.taken(self)
        return out

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    async def aread(self, size: int = 65536) -> bytes:
        """ASGI: the next chunk (at most ``size``), ``b""`` at the end of the body."""
        self._first_read()
        while not self.buf and not self.done:
            await self.source.arrive(self)
        with self.cond:
            if not self.buf:
                self._raise()
                return b""
            out = self._take(min(size, len(self.buf)) if size and size > 0 else len(self.buf))
        self.source.taken(self)
        return out
