"""The request body between the loop (producer) and a handler (consumer) on any thread.

Theory: while a request with a body is in flight, the connection's ``Data`` events are pumped
into a ``BodyChannel`` by the loop (``HttpProtocol.pump_body``).  The handler reads it as
``read()``/``readline()`` (a blocking WSGI app in the thread pool: waits on a condition; an
inline handler on the loop: gets what is buffered, never waits) or ``await aread()`` (ASGI).

Rule 1: backpressure: above ``HIGH_BYTES`` buffered the loop stops reading the socket; once a
        reader takes the buffer below ``LOW_BYTES`` reading resumes.
Rule 2: LimitRequestBody is enforced on what arrives (413); a read after an error raises
        ``RequestBodyError`` (an OSError, as ``mpm/conn.py``'s BodyReader) and the MPM answers
        the ProtocolError behind it with its status.
Rule 3: "100 Continue" is sent on the first read, only if the body has not arrived yet
        (RFC 9110 10.1.1).
Rule 4: after the response, an unread rest is discarded (``discarding``) so the next pipelined
        request can be parsed; the channel calls ``on_end`` once the body is over, or
        ``on_fail`` if it fails instead (bad framing, over the limit, the client's EOF): the
        answer is out and the stream cannot be resynchronised, so the connection must end.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

from mpmd.http.errors import ProtocolError, RequestBodyError

HIGH_BYTES = 1 << 20
LOW_BYTES = 1 << 18
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class ClientGone(ConnectionError):
    """The client closed the connection while the body was being read."""


class BodyChannel:
    def __init__(self, proto: Any, request: Any, limit: int) -> None:
        self.proto = proto
        self.loop: asyncio.AbstractEventLoop = proto.w.loop
        self.loop_thread = threading.get_ident()
        self.expect_continue = bool(request.expect_continue)
        self.limit = limit
        self.buf = bytearray()
        self.seen = 0
        self.done = False                 # EndOfMessage seen (or failed)
        self.error: BaseException | None = None
        self.continue_sent = False
        self.discarding = False
        self.on_end: Callable[[], None] | None = None
        self.on_fail: Callable[[], None] | None = None
        self.cond = threading.Condition()
        self.waiter: asyncio.Future[None] | None = None

    # -- producer side (the loop) -------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self.seen += len(data)
        if self.limit and self.seen > self.limit:
            self.fail(ProtocolError(413, "request body larger than LimitRequestBody"))
            return
        with self.cond:
            if not self.discarding:
                self.buf += data
            self.cond.notify_all()
            full = len(self.buf) > HIGH_BYTES
        if full:
            self.proto.pause_reading()
        self._wake()

    def finish(self) -> None:
        with self.cond:
            self.done = True
            self.cond.notify_all()
        self._wake()
        if self.discarding and self.on_end is not None and self.error is None:
            self.on_end()

    def fail(self, exc: BaseException) -> None:
        with self.cond:
            if self.error is None:
                self.error = exc
            self.done = True
            self.cond.notify_all()
        self._wake()
        on_fail, self.on_fail = self.on_fail, None
        if self.discarding and on_fail is not None:
            on_fail()                    # Rule 4

    def discard(self, on_end: Callable[[], None], on_fail: Callable[[], None]) -> None:
        """Rule 4: drop the rest; ``on_end`` runs (on the loop) once EndOfMessage arrives,
        ``on_fail`` if the body fails first."""
        with self.cond:
            self.discarding = True
            self.buf.clear()
        self.on_end = on_end
        self.on_fail = on_fail
        self.proto.resume_reading()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- consumer side ------------------------------------------------------------------------
    def _on_loop(self) -> bool:
        return threading.get_ident() == self.loop_thread

    def _first_read(self) -> None:
        if self.expect_continue and not self.continue_sent and not self.done:
            self.continue_sent = True
            if self._on_loop():
                self.proto.write_raw(CONTINUE)
            else:
                self.loop.call_soon_threadsafe(self.proto.write_raw, CONTINUE)

    def _taken(self) -> None:
        if len(self.buf) < LOW_BYTES:
            if self._on_loop():
                self.proto.resume_reading()
            else:
                self.loop.call_soon_threadsafe(self.proto.resume_reading)

    def _raise(self) -> None:
        error = self.error
        if isinstance(error, ProtocolError):
            raise RequestBodyError(error)
        if error is not None:
            raise error

    def _wait_for(self, enough: Callable[[], bool]) -> None:
        """Block until ``enough()`` or the end (threads); on the loop: never wait."""
        self._first_read()
        if self._on_loop():
            return
        with self.cond:
            while not enough() and not self.done:
                self._taken_locked()
                self.cond.wait(1.0)

    def _taken_locked(self) -> None:
        if len(self.buf) < LOW_BYTES:
            self.loop.call_soon_threadsafe(self.proto.resume_reading)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            self._wait_for(lambda: False)
        else:
            self._wait_for(lambda: len(self.buf) >= size)
        with self.cond:
            if size is None or size < 0 or len(self.buf) < size:
                self._raise()            # the body failed short of the read (as BodyReader)
            n = len(self.buf) if size is None or size < 0 else min(size, len(self.buf))
            out = bytes(self.buf[:n])
            del self.buf[:n]
        self._taken()
        return out

    def readline(self, size: int = -1) -> bytes:
        def enough() -> bool:
            return b"\n" in self.buf or (size is not None and 0 <= size <= len(self.buf))
        self._wait_for(enough)
        with self.cond:
            if not enough():
                self._raise()
            end = self.buf.find(b"\n") + 1 or len(self.buf)
            if size is not None and size >= 0:
                end = min(end, size)
            out = bytes(self.buf[:end])
            del self.buf[:end]
        self._taken()
        return out

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    async def aread(self, size: int = 65536) -> bytes:
        """ASGI: the next chunk (at most ``size``), ``b""`` at the end of the body."""
        self._first_read()
        while not self.buf and not self.done:
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        if not self.buf:
            self._raise()
            return b""
        n = min(size, len(self.buf)) if size and size > 0 else len(self.buf)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        self._taken()
        return out
