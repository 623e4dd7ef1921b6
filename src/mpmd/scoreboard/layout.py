"""The scoreboard's binary layout: one place for formats, sizes, offsets and status letters.

Theory: the segment is ``Global`` + ``Process[server_limit]`` + ``Worker[server_limit][thread_limit]``,
each record a fixed-size ``struct`` (httpd scoreboard.h).  There are no pointers and no pickles, so
any process that maps the segment can read it.

Rule 1: offsets are computed here once; ``board.py`` never does layout arithmetic of its own.
Rule 2: text fields have fixed sizes (client 64, request 128, vhost 64); longer values are cut
        and end with ``TRUNC_MARK`` so a reader sees the cut.
Rule 3: the status codes and their mod_status letters are the ``STATUS`` table below, nothing else.
"""

from __future__ import annotations

import struct
from enum import IntEnum


class Status(IntEnum):
    """Worker states, numbered as httpd's SERVER_* constants (scoreboard.h)."""

    DEAD = 0            # open slot, no process/thread
    STARTING = 1
    READY = 2           # idle, waiting for a connection
    BUSY_READ = 3
    BUSY_WRITE = 4
    BUSY_KEEPALIVE = 5
    BUSY_LOG = 6
    BUSY_DNS = 7
    CLOSING = 8
    GRACEFUL = 9
    IDLE_KILL = 10


# mod_status letters (httpd status_flags[]).
STATUS_LETTERS: dict[Status, str] = {
    Status.DEAD: ".", Status.STARTING: "S", Status.READY: "_", Status.BUSY_READ: "R",
    Status.BUSY_WRITE: "W", Status.BUSY_KEEPALIVE: "K", Status.BUSY_LOG: "L",
    Status.BUSY_DNS: "D", Status.CLOSING: "C", Status.GRACEFUL: "G", Status.IDLE_KILL: "I",
}

MAGIC = b"MPSB"
CLIENT_BYTES = 64
REQUEST_BYTES = 128
VHOST_BYTES = 64
TRUNC_MARK = b"..."

# Global: magic, server_limit, thread_limit, generation, restart_time (time.time()).
GLOBAL = struct.Struct("<4sIIId")
# Process: pid, generation, quiescing (0/1).
PROCESS = struct.Struct("<iIB3x")
# Worker: status, pad, pid, access_count, bytes_served, last_used, client, request, vhost,
# child_base_count, child_base_bytes.  access_count/bytes_served belong to the slot and only
# grow (httpd worker_score access_count/bytes_served), so Total Accesses never goes back when a
# slot gets a new process; the two bases are the slot's counters when its current process (or
# thread) started, which makes the per-child counts (httpd my_access_count/my_bytes_served)
# count - base: written once per child, nothing more per request.  last_used is when the
# request in hand began, while the status is W or L (written as it begins: ``WorkerSlot.begin``),
# and when the last one began afterwards: mod_status's SS, and the master's stuck-request watch.
# duration: the seconds the slot's requests took, added as each ends (httpd worker_score
# duration): mod_status's Total Duration.
WORKER = struct.Struct(f"<B3xiQQd{CLIENT_BYTES}s{REQUEST_BYTES}s{VHOST_BYTES}sQQd")

# Field offsets inside one Worker record (for pack_into on a single field).
W_STATUS = 0
W_PID = 4
W_COUNTERS = 8                  # access_count, bytes_served, last_used: packed together
COUNTERS = struct.Struct("<QQd")
W_CLIENT = W_COUNTERS + COUNTERS.size
W_REQUEST = W_CLIENT + CLIENT_BYTES
W_VHOST = W_REQUEST + REQUEST_BYTES
TEXT = struct.Struct(f"<{CLIENT_BYTES}s{REQUEST_BYTES}s{VHOST_BYTES}s")
HEAD = struct.Struct("<B3xi")           # status, pid
W_CHILD_BASE = W_VHOST + VHOST_BYTES
CHILD_BASE = struct.Struct("<QQ")      # child_base_count, child_base_bytes
W_DURATION = W_CHILD_BASE + CHILD_BASE.size

assert W_DURATION + 8 == WORKER.size == 312, WORKER.size
assert PROCESS.size == 12 and GLOBAL.size == 24


# ProcessConns: per-process connection counters of the async MPMs (httpd process_score
# connections/keep_alive/write_completion/lingering_close) plus a flags word; written only by the
# child's listener thread.  Kept in a second mapping (board.py) so the main layout is unchanged.
CONNS = struct.Struct("<IIIII")
CONNS_ACCEPTING = 1          # flags bit: the child polls its listening sockets
# Behind each process's counters: how many of its requests are stuck (past StuckRequestTimeout),
# written by a process that watches its own requests (the nginx MPM's loop, whose one worker
# record stands for all of them); the others' are found from their worker records.
STUCK = struct.Struct("<I")
CONNS_STRIDE = CONNS.size + STUCK.size
# After the last process's counters: the server's state byte (board.py Rule 4).
STATE_STOPPING = 1


def segment_size(server_limit: int, thread_limit: int) -> int:
    """Total bytes of a segment for these limits (httpd ap_calc_scoreboard_size)."""
    return GLOBAL.size + PROCESS.size * server_limit + WORKER.size * server_limit * thread_limit


def process_offset(slot: int) -> int:
    return GLOBAL.size + PROCESS.size * slot


def worker_offset(server_limit: int, thread_limit: int, slot: int, thread: int) -> int:
    base = GLOBAL.size + PROCESS.size * server_limit
    return base + WORKER.size * (slot * thread_limit + thread)


def fit(text: bytes, size: int) -> bytes:
    """Cut ``text`` to ``size`` bytes, marking the cut (Rule 2)."""
    if len(text) <= size:
        return text
    return text[: size - len(TRUNC_MARK)] + TRUNC_MARK
