"""Streaming response bodies on the loop, with backpressure (never a whole large body in memory).

Theory: ``write_body`` is one task per streamed response.  It writes what the cycle planned
(core/cycle.py: the head, then the body; iterators framed by ``Cycle.aframed``).  A
``FileBody`` goes out with non-blocking ``os.sendfile`` on the socket itself (EnableSendfile
On) or with ``pread`` chunks through the transport; a ``MultipartBody`` is its parts in turn;
an async iterator (ASGI) is pulled only when the transport can take more; a plain iterator is
pulled on the loop for inline handlers and in the thread pool for blocking ones (it runs
application code).

Rule 1: sendfile writes only to an EMPTY transport buffer, so bytes never overtake the head;
        on EAGAIN it waits for the socket to become writable (``add_writer`` on a dup of the
        fd: the transport owns the original) and each progress re-arms Timeout.
Rule 2: chunks from iterators are awaited one at a time after ``drained()``; a slow reader
        holds at most the transport's high-water mark plus one chunk per connection.
Rule 3: an iterator that raises after the head was sent drops the connection without the last
        chunk (architecture.md, WSGI); the Response's close()/on_close run in every case.
Rule 4: a TLS connection never uses sendfile (the bytes must pass through OpenSSL): its files
        go out in ``pread`` chunks through the transport.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from mpmd.core.body import ClientGone
from mpmd.core.cycle import Cycle, close_response
from mpmd.core.exchange import FileBody, MultipartBody, Response
from mpmd.core.respond import Plan

FILE_CHUNK = 1 << 16
SENDFILE_MAX = 1 << 20
_END = object()


async def write_body(proto: Any, cycle: Cycle, plan: Plan, first: bytes) -> None:
    """Write the head (``first``) and the body, then hand the connection back
    (``proto.finish``)."""
    resp: Response = cycle.response                # type: ignore[assignment]
    sent = 0
    ok = False
    try:
        proto.transport.write(first)
        sent = await _write(proto, cycle, resp.body, plan.chunked)
        ok = True
    except (ClientGone, ConnectionError, OSError, asyncio.CancelledError):
        pass
    except Exception as exc:  # noqa: BLE001 - Rule 3: application body failure
        cycle.body_failed(exc)
    finally:
        await _close(proto, resp)
    if not ok:
        proto.keep = False
        proto.abort()
    proto.finish(sent)


async def _write(proto: Any, cycle: Cycle, body: Any, chunked: bool) -> int:
    if isinstance(body, FileBody):
        return await write_file(proto, cycle.ctx, body)
    if isinstance(body, MultipartBody):
        return await write_multipart(proto, cycle.ctx, body)
    if isinstance(body, (bytes, bytearray, memoryview)):
        proto.write_raw(bytes(body))
        await proto.drained()
        return len(body)
    chunks = body if hasattr(body, "__aiter__") else _pull(proto, body)
    async for piece in cycle.aframed(chunks, chunked):
        await proto.drained()
        proto.write_raw(piece)
    await proto.drained()
    return cycle.sent


async def _close(proto: Any, resp: Response) -> None:
    """Rule 3: close()/on_close exactly once; WSGI close() may block, so off the loop."""
    if proto.kind == "blocking" and (resp.on_close is not None or hasattr(resp.body, "close")):
        try:
            await asyncio.shield(proto.w.loop.run_in_executor(proto.w.executor(), close_response,
                                                              resp))
        except (asyncio.CancelledError, RuntimeError):
            close_response(resp)
        return
    close_response(resp)


def drop_body(proto: Any, resp: Response) -> None:
    """The client left before the answer was ready: release the body, count nothing."""
    if proto.kind == "blocking":
        proto.w.executor().submit(close_response, resp)
    else:
        close_response(resp)


# -- files ------------------------------------------------------------------------------------

async def write_file(proto: Any, ctx: Any, body: FileBody) -> int:
    if getattr(getattr(ctx, "dir_config", None), "enable_sendfile", False) and proto.tls is None:
        return await _sendfile(proto, body)
    return await _pread(proto, body)


async def _pread(proto: Any, body: FileBody) -> int:
    fd = body.file.fileno()
    offset, left = body.offset, body.length
    while left > 0:
        await proto.drained()
        chunk = os.pread(fd, min(left, FILE_CHUNK), offset)
        if not chunk:
            break
        proto.write_raw(chunk)
        offset += len(chunk)
        left -= len(chunk)
    await proto.drained()
    return body.length - left


async def _flushed(proto: Any) -> None:
    """Wait until the transport's buffer is empty (Rule 1)."""
    transport = proto.transport
    if transport is None:
        raise ClientGone()
    if transport.get_write_buffer_size():
        transport.set_write_buffer_limits(high=0)
        try:
            await proto.drained()
        finally:
            if proto.transport is not None:
                proto.transport.set_write_buffer_limits()


async def _sendfile(proto: Any, body: FileBody) -> int:
    await _flushed(proto)
    sock = proto.transport.get_extra_info("socket")
    out_fd = sock.fileno()
    in_fd = body.file.fileno()
    offset, left = body.offset, body.length
    watch = -1
    try:
        while left > 0:
            try:
                n = os.sendfile(out_fd, in_fd, offset, min(left, SENDFILE_MAX))
            except (BlockingIOError, InterruptedError):
                if watch < 0:
                    watch = os.dup(out_fd)
                await _writable(proto, watch)
                continue
            if n == 0:
                break
            offset += n
            left -= n
            proto.deadline = proto.w.loop.time() + proto.timeout_s
            if proto.closed:
                raise ClientGone()
    finally:
        if watch >= 0:
            try:
                proto.w.loop.remove_writer(watch)
            finally:
                os.close(watch)
    return body.length - left


async def _writable(proto: Any, fd: int) -> None:
    loop = proto.w.loop
    fut: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        loop.remove_writer(fd)
        if not fut.done():
            fut.set_result(None)

    loop.add_writer(fd, ready)
    try:
        await fut
    finally:
        loop.remove_writer(fd)
    if proto.closed:
        raise ClientGone()


async def write_multipart(proto: Any, ctx: Any, body: MultipartBody) -> int:
    sent = 0
    for part in body.parts:
        if isinstance(part, FileBody):
            sent += await write_file(proto, ctx, part)
        else:
            await proto.drained()
            proto.write_raw(part)
            sent += len(part)
    return sent


# -- iterators --------------------------------------------------------------------------------

async def _pull(proto: Any, body: Any) -> Any:
    it = iter(body)
    in_pool = proto.kind == "blocking" and not isinstance(body, (list, tuple))
    loop = proto.w.loop
    while True:
        if in_pool:
            chunk = await loop.run_in_executor(proto.w.executor(), next, it, _END)
        else:
            chunk = next(it, _END)
        if chunk is _END:
            return
        yield chunk
