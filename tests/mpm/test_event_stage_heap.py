"""The event listener's RequestReadTimeout heap drops the entries of ended stages (lazy removal
would keep every short connection of the last 20 s, its socket included, until its deadline)."""

from __future__ import annotations

from mpmd.mpm.event.listener import STAGE_COMPACT_MIN, ConnectionStates


class FakeClock:
    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s


class FakeConn:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.clock = FakeClock(float(fd))


def test_ended_stages_leave_the_heap_once_it_is_full_of_them():
    states = ConnectionStates.__new__(ConnectionStates)
    states.stage_q, states.conns = [], {}
    live = []
    for fd in range(5 * STAGE_COMPACT_MIN):
        ec = FakeConn(fd)
        states.conns[fd] = ec
        states._stage_wait(ec)
        if fd % 10 == 0:
            live.append(ec)                    # one in ten still reads its head
        else:
            del states.conns[fd]               # the others closed
    assert len(states.stage_q) < 2 * STAGE_COMPACT_MIN
    states._compact_stages()
    assert sorted(e[3].fd for e in states.stage_q) == [ec.fd for ec in live]
    assert [e[0] for e in states.stage_q][0] == min(e[0] for e in states.stage_q)   # a heap
