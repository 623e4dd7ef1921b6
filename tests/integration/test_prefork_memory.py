"""An idle prefork child's own memory: the pages only it maps (Private_Dirty), from
/proc/PID/smaps_rollup, with a pool of five children.

What a child writes after fork is copied out of the pages it shares with the master and its
siblings: that is what one more child costs, whatever the pool size (docs/benchmarks.md,
"Memory of an idle prefork child": about 2.2 MiB on CPython 3.11, most of it the interpreter's
own writes when it runs any code).  The bound leaves a margin over that and catches a child
that starts doing more after fork: a buffer made before the first connection, per-child state
built in the child instead of the master, a collection of the master's heap.  Memory, not time.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from tests.support.confbuilder import ConfBuilder
from tests.support.harness import wait_for
from tests.support.rawclient import get, request_once

POOL = 5
PRIVATE_DIRTY_BOUND_KIB = 3 * 1024
BODY = b"<h1>hello</h1>\n"


def private_dirty_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Private_Dirty:"):
            return int(line.split()[1])
    raise AssertionError(f"no Private_Dirty in /proc/{pid}/smaps_rollup")


def test_idle_prefork_child_private_memory_is_bounded_and_it_serves(tmp_path, make_server):
    conf = ConfBuilder(tmp_path, mpm="prefork")
    conf.htdocs.mkdir(parents=True, exist_ok=True)
    (conf.htdocs / "index.html").write_bytes(BODY)
    for name, value in {"StartServers": POOL, "MinSpareServers": POOL,
                        "MaxSpareServers": POOL + 10, "LogLevel": "warn"}.items():
        conf.set(name, value)
    server = make_server(conf)
    children = wait_for(lambda: sorted(server.children()) if len(server.children()) == POOL
                        else None, message=f"{POOL} children")

    # The ready file is written once every child has left STARTING: each is in its accept loop.
    idle = {pid: private_dirty_kib(pid) for pid in children}
    median = statistics.median(idle.values())
    assert median <= PRIVATE_DIRTY_BOUND_KIB, f"idle children's Private_Dirty (KiB): {idle}"

    # The same children still serve: a read buffer made at the first read, the master's Policy.
    for _ in range(3 * POOL):
        response = request_once(server.port, get("/"))
        assert response.status == 200
        assert response.body == BODY
    assert sorted(server.children()) == children
