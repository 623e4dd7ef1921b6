"""event's pure parts: the timer queue's oldest-first eviction and the connection limit."""

from __future__ import annotations

from types import SimpleNamespace

from mpmd.mpm.event import DIRECTIVES, Event
from mpmd.mpm.threaded import settings
from mpmd.mpm.timeouts import TimeoutQueue
from tests.support.confbuilder import directive_values


def test_pop_oldest_skips_removed_entries():
    q: TimeoutQueue[str] = TimeoutQueue(5.0)
    for i, name in enumerate("abc"):
        q.append(name, float(i))
    q.remove("a")
    assert q.pop_oldest() == "b"
    assert len(q) == 1 and "b" not in q
    assert q.pop_oldest() == "c"
    assert q.pop_oldest() is None


def test_timeout_queue_with_timeouts_of_its_own():
    """A vhost's KeepAliveTimeout: a shorter timeout appended later expires first."""
    q: TimeoutQueue[str] = TimeoutQueue(30.0)
    q.append("long", 0.0)
    q.append("short", 1.0, 1.0)
    q.append("mid", 2.0, 5.0)
    assert q.next_deadline() == 2.0
    assert q.expire(2.0) == ["short"]
    assert q.expire(40.0) == ["mid", "long"]
    q.append("a", 0.0, 5.0)
    q.append("b", 1.0)
    q.remove("a")
    assert q.pop_oldest() == "b" and len(q) == 0 and q.next_deadline() is None


def _limit_view(conns: int, lingering: int, idle: int, tpc: int = 4, factor: float = 2.0):
    ev = Event.__new__(Event)
    ev.settings, _ = settings(directive_values(DIRECTIVES, threads_per_child=tpc, max_request_workers=tpc))
    ev.factor = factor
    ev.idle_workers = idle
    ev.conns = dict.fromkeys(range(conns))
    ev.linger_q = TimeoutQueue(1.0)
    for i in range(lingering):
        ev.linger_q.append(i, 0.0)
    return ev


def test_connections_above_limit_as_httpd():
    # ThreadsPerChild 4 + 2 x 4 idle = 12 connections allowed
    assert not _limit_view(12, 0, 4)._over_limit()
    assert _limit_view(13, 0, 4)._over_limit()
    assert not _limit_view(13, 1, 4)._over_limit()       # lingering closes do not count
    assert _limit_view(5, 0, 0)._over_limit()            # no idle worker: ThreadsPerChild only


def test_eviction_cap_is_the_limit_with_every_worker_idle():
    # 4 + 2 x 4 = 12, whatever the momentary idle count
    assert not _limit_view(12, 0, 0)._over_cap()
    assert _limit_view(13, 0, 4)._over_cap()
