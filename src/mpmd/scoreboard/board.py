"""Scoreboard: typed access to the shared segment.

Theory: the master writes ``Global`` and ``Process`` records; each worker (a prefork child, a
worker thread) writes only its own ``Worker`` record through a ``WorkerSlot`` handle.  Readers
(the master's spare-server maintenance, mod_status) take ``snapshot()``, a copy, and live with a
status byte that may be a moment stale.

Rule 1: one writer per record, so no locks.
Rule 2: the per-request cost is a few stores through typed views of the worker's own record
        (``typed_view``); a status is written only when it changes.  A blocking worker ends a
        request with one ``finish`` call for status and counters (every call touches lines
        that 63 other prefork children have pushed out of the cache since).
Rule 3: counters are per slot and only grow, across the processes a slot has had (httpd); a
        new process's own counts are the growth since its ``reset``.  Totals are added up by
        readers.
Rule 4: the master's state for the children: one byte behind the ProcessConns records,
        ``STATE_STOPPING`` from the moment a stop begins (mod_health answers 503 from then on,
        in every child at its next check: shared memory, no signal needed).
"""

from __future__ import annotations

import struct
import sys
import time
from dataclasses import dataclass
from typing import Any

from mpmd.scoreboard import layout, shm
from mpmd.scoreboard.layout import Status


def typed_view(mm: Any, offset: int, fmt: str, count: int,
               little_endian_host: bool = sys.byteorder == "little") -> Any:
    """Item access to ``count`` values of the struct format ``fmt`` at ``offset`` of ``mm``,
    as the layout stores them (little-endian).  On a little-endian host a cast memoryview: an
    item store copies its bytes, where ``Struct.pack_into`` parses its format and exports the
    mapping's buffer on every call (about 38 more cache lines per prefork request, counted
    with valgrind's cachegrind).  Elsewhere ``_LittleEndianItems`` does it through struct.
    Offsets need no alignment: memoryview copies unaligned items."""
    if little_endian_host:
        size = struct.calcsize(fmt)
        return memoryview(mm)[offset:offset + size * count].cast(fmt)
    return _LittleEndianItems(mm, offset, fmt)


class _LittleEndianItems:
    """``typed_view`` for big-endian hosts: each item packed and unpacked little-endian."""

    __slots__ = ("_mm", "_off", "_item")

    def __init__(self, mm: Any, offset: int, fmt: str) -> None:
        self._mm, self._off, self._item = mm, offset, struct.Struct("<" + fmt)

    def __getitem__(self, index: int) -> Any:
        return self._item.unpack_from(self._mm, self._off + index * self._item.size)[0]

    def __setitem__(self, index: int, value: Any) -> None:
        self._item.pack_into(self._mm, self._off + index * self._item.size, value)


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    pid: int
    generation: int
    quiescing: bool
    conns_total: int = 0               # ConnsTotal (event MPM; 0 for the others)
    conns_async_keepalive: int = 0     # ConnsAsyncKeepAlive
    conns_async_writing: int = 0       # ConnsAsyncWriting
    conns_async_closing: int = 0       # ConnsAsyncClosing
    accepting: bool = True             # the child polls the listeners (event's connection limit)
    stuck: int = 0                     # its stuck requests, when it counts them itself (nginx)


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    status: Status
    pid: int
    access_count: int
    bytes_served: int
    last_used: float
    client: str
    request: str
    vhost: str
    child_access_count: int = 0        # this process's (thread's) share of access_count
    child_bytes_served: int = 0
    duration_s: float = 0.0            # what the slot's requests took, in all (Total Duration)

    @property
    def letter(self) -> str:
        return layout.STATUS_LETTERS[self.status]


@dataclass(frozen=True, slots=True)
class Snapshot:
    server_limit: int
    thread_limit: int
    generation: int
    restart_time: float
    processes: list[ProcessRecord]
    workers: list[list[WorkerRecord]]       # [slot][thread]


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode("latin-1")


class WorkerSlot:
    """The write handle of one Worker record (Rule 1, Rule 2)."""

    __slots__ = ("_mm", "_off", "_status", "_state", "_counts", "_last", "_duration", "slot",
                 "thread")

    def __init__(self, mm: Any, offset: int, slot: int, thread: int) -> None:
        self._mm = mm
        self._off = offset
        self._status = mm[offset]
        base = offset + layout.W_COUNTERS
        self._state = typed_view(mm, offset, "B", 1)
        self._counts = typed_view(mm, base, "Q", 2)          # access_count, bytes_served
        self._last = typed_view(mm, base + 16, "d", 1)       # last_used
        self._duration = typed_view(mm, offset + layout.W_DURATION, "d", 1)
        self.slot = slot
        self.thread = thread

    def set_status(self, status: int) -> None:
        if status != self._status:
            self._status = status
            self._state[0] = status

    def reset(self, pid: int, status: int = Status.STARTING) -> None:
        """Start the record over for a new process/thread in this slot.  The slot's counters
        go on growing (httpd keeps access_count and bytes_served; it zeroes only the child's);
        the child's start from here (layout.CHILD_BASE)."""
        layout.HEAD.pack_into(self._mm, self._off, status, pid)
        layout.TEXT.pack_into(self._mm, self._off + layout.W_CLIENT, b"", b"", b"")
        counts = self._counts
        layout.CHILD_BASE.pack_into(self._mm, self._off + layout.W_CHILD_BASE, counts[0], counts[1])
        self._status = status

    def begin(self, status: int, now: float) -> None:
        """A request starts at ``now`` (time.time()): its start time in ``last_used``, then
        ``status``.  While the status is busy, ``last_used`` is when the request in hand
        began (httpd's worker_score start_time), which is how the master sees a request that
        runs too long; after it, when the last one began, as before (``finish`` writes the
        same time)."""
        self._last[0] = now
        if status != self._status:
            self._status = status
            self._state[0] = status

    def start_request(self, client: bytes, request_line: bytes, vhost: bytes = b"") -> None:
        """Status R with who and what (called once the request head is parsed)."""
        layout.TEXT.pack_into(self._mm, self._off + layout.W_CLIENT,
                              layout.fit(client, layout.CLIENT_BYTES),
                              layout.fit(request_line, layout.REQUEST_BYTES),
                              layout.fit(vhost, layout.VHOST_BYTES))

    def finish_request(self, nbytes: int, now: float) -> None:
        """Count one request and its bytes; ``now`` is time.time() the caller already has."""
        self.add_requests(1, nbytes, now)

    def add_requests(self, count: int, nbytes: int, last: float, duration_s: float = 0.0) -> None:
        """Count ``count`` requests and their bytes (one, or a loop iteration's batch);
        ``last`` is the newest one's time, ``duration_s`` what they took in all.  The blocking
        driver calls it for one."""
        counts = self._counts
        counts[0] += count
        counts[1] += nbytes
        self._last[0] = last
        if duration_s > 0:
            self._duration[0] += duration_s

    def finish(self, nbytes: int, last: float, status: int) -> None:
        """Count one request of ``nbytes`` begun at ``last``, and what it took (until now), and
        take ``status`` (what the worker does next: K or C): the driver's one call as a request
        ends (Rule 2)."""
        counts = self._counts
        counts[0] += 1
        counts[1] += nbytes
        self._last[0] = last
        self._duration[0] += time.time() - last
        self._status = status
        self._state[0] = status

    @property
    def status(self) -> int:
        return self._status


class Scoreboard:
    """The segment plus its limits; create it in the master before forking."""

    def __init__(self, server_limit: int, thread_limit: int = 1) -> None:
        self.server_limit = server_limit
        self.thread_limit = thread_limit
        self.size = layout.segment_size(server_limit, thread_limit)
        self.mm = shm.create(self.size)
        # ProcessConns, one per slot, then the server's state byte (Rule 4)
        self.state_off = layout.CONNS_STRIDE * server_limit
        self.conns_mm = shm.create(self.state_off + 8)
        layout.GLOBAL.pack_into(self.mm, 0, layout.MAGIC, server_limit, thread_limit, 0, time.time())

    # -- Global (master only) ---------------------------------------------------------------
    @property
    def generation(self) -> int:
        return int(layout.GLOBAL.unpack_from(self.mm, 0)[3])

    def set_generation(self, generation: int) -> None:
        layout.GLOBAL.pack_into(self.mm, 0, layout.MAGIC, self.server_limit, self.thread_limit,
                                generation, time.time())

    # -- Process records (master only) ------------------------------------------------------
    def set_process(self, slot: int, pid: int, generation: int, quiescing: bool = False) -> None:
        layout.PROCESS.pack_into(self.mm, layout.process_offset(slot), pid, generation, int(quiescing))

    def process(self, slot: int) -> ProcessRecord:
        pid, gen, q = layout.PROCESS.unpack_from(self.mm, layout.process_offset(slot))
        return ProcessRecord(pid, gen, bool(q))

    def clear_process(self, slot: int) -> None:
        """The process in ``slot`` is gone: free the slot and mark its workers dead."""
        self.set_process(slot, 0, 0, False)
        self.set_conns(slot, 0, 0, 0, 0, True)
        self.set_stuck(slot, 0)
        for thread in range(self.thread_limit):
            self.mm[self._woff(slot, thread)] = Status.DEAD

    # -- ProcessConns (written by that process's listener thread only) -----------------------
    def set_conns(self, slot: int, total: int, keepalive: int, writing: int, closing: int,
                  accepting: bool = True) -> None:
        layout.CONNS.pack_into(self.conns_mm, layout.CONNS_STRIDE * slot, total, keepalive, writing,
                               closing, layout.CONNS_ACCEPTING if accepting else 0)

    def conns(self, slot: int) -> tuple[int, int, int, int, bool]:
        """(total, keepalive, writing, closing, accepting) of the process in ``slot``."""
        total, ka, wr, cl, flags = layout.CONNS.unpack_from(self.conns_mm, layout.CONNS_STRIDE * slot)
        return total, ka, wr, cl, bool(flags & layout.CONNS_ACCEPTING)

    def set_stuck(self, slot: int, count: int) -> None:
        """How many requests of the process in ``slot`` are stuck (a process that watches its
        own requests: layout.STUCK)."""
        layout.STUCK.pack_into(self.conns_mm, layout.CONNS_STRIDE * slot + layout.CONNS.size, count)

    def stuck(self, slot: int) -> int:
        return int(layout.STUCK.unpack_from(self.conns_mm,
                                            layout.CONNS_STRIDE * slot + layout.CONNS.size)[0])

    # -- the server's state (Rule 4) --------------------------------------------------------
    def set_stopping(self, stopping: bool = True) -> None:
        """Master only: a stop (graceful-stop, TERM's drain) has begun."""
        self.conns_mm[self.state_off] = layout.STATE_STOPPING if stopping else 0

    @property
    def stopping(self) -> bool:
        """Whether the master has begun a stop: what every child's server-health answers."""
        return bool(self.conns_mm[self.state_off] & layout.STATE_STOPPING)

    # -- Worker records -----------------------------------------------------------------------
    def _woff(self, slot: int, thread: int) -> int:
        return layout.worker_offset(self.server_limit, self.thread_limit, slot, thread)

    def worker(self, slot: int, thread: int = 0) -> WorkerSlot:
        if not (0 <= slot < self.server_limit and 0 <= thread < self.thread_limit):
            raise IndexError(f"scoreboard slot ({slot}, {thread}) out of range")
        return WorkerSlot(self.mm, self._woff(slot, thread), slot, thread)

    def status(self, slot: int, thread: int = 0) -> int:
        return self.mm[self._woff(slot, thread)]

    def set_status(self, slot: int, thread: int, status: int) -> None:
        self.mm[self._woff(slot, thread)] = status

    def statuses(self, slot: int, threads: int | None = None) -> list[int]:
        """Status bytes of the first ``threads`` workers of ``slot`` (cheap: no unpacking)."""
        n = self.thread_limit if threads is None else threads
        return [self.mm[self._woff(slot, t)] for t in range(n)]

    # -- Readers ----------------------------------------------------------------------------
    def record(self, slot: int, thread: int = 0) -> WorkerRecord:
        """One worker record, read from the live segment (the master's stuck-request watch
        reads only the busy ones, not the whole segment)."""
        return self._wrec(self.mm, slot, thread)

    def snapshot(self, slots: int | None = None) -> Snapshot:
        """A consistent-enough copy of the first ``slots`` process slots (all by default)."""
        data = bytes(self.mm)
        n = self.server_limit if slots is None else min(slots, self.server_limit)
        _, sl, tl, gen, restart = layout.GLOBAL.unpack_from(data, 0)
        procs = [ProcessRecord(*self._proc(data, s), *self.conns(s), self.stuck(s)) for s in range(n)]
        workers = [[self._wrec(data, s, t) for t in range(tl)] for s in range(n)]
        return Snapshot(sl, tl, gen, restart, procs, workers)

    @staticmethod
    def _proc(data: bytes, slot: int) -> tuple[int, int, bool]:
        pid, gen, q = layout.PROCESS.unpack_from(data, layout.process_offset(slot))
        return pid, gen, bool(q)

    def _wrec(self, data: Any, slot: int, thread: int) -> WorkerRecord:
        st, pid, count, nbytes, last, client, req, vhost, base_count, base_bytes, duration = \
            layout.WORKER.unpack_from(data, self._woff(slot, thread))
        status = Status(st) if st in Status._value2member_map_ else Status.DEAD
        return WorkerRecord(status, pid, count, nbytes, last, _text(client), _text(req), _text(vhost),
                            count - base_count, nbytes - base_bytes, duration)
