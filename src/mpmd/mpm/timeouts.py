"""TimeoutQueue: one FIFO per timeout kind (httpd event's TO_QUEUE_*, gunicorn keepalived_conns).

Theory: every entry of one queue has the same timeout, so deadlines are appended in increasing
order and expiry only ever looks at the head: append O(1), expire O(expired).

Rule 1: removal is lazy -- ``remove(item)`` forgets the item; a stale head entry is skipped when
        it reaches the front.
Rule 2: time is passed in (``now_s`` from time.monotonic()); the queue never reads a clock.
Rule 3: an item may come with a timeout of its own (a vhost's); each distinct timeout keeps
        its own FIFO, so every FIFO still holds increasing deadlines.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, Hashable, TypeVar

T = TypeVar("T", bound=Hashable)


class TimeoutQueue(Generic[T]):
    """Items with deadlines; ``append`` may give an item a timeout other than the queue's
    (a vhost's KeepAliveTimeout): each distinct timeout has its own FIFO (Rule 3)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._fifo: deque[tuple[float, T]] = deque()          # the queue's own timeout
        self._fifos: dict[float, deque[tuple[float, T]]] = {timeout_s: self._fifo}
        self._live: dict[T, float] = {}

    def append(self, item: T, now_s: float, timeout_s: float | None = None) -> None:
        if timeout_s is None or timeout_s == self.timeout_s:
            fifo, timeout_s = self._fifo, self.timeout_s
        else:
            fifo = self._fifos.get(timeout_s)
            if fifo is None:
                fifo = self._fifos[timeout_s] = deque()
        deadline = now_s + timeout_s
        self._live[item] = deadline
        fifo.append((deadline, item))

    def remove(self, item: T) -> None:
        self._live.pop(item, None)

    def __contains__(self, item: object) -> bool:
        return item in self._live

    def __len__(self) -> int:
        return len(self._live)

    def next_deadline(self) -> float | None:
        heads = [fifo[0][0] for fifo in self._live_fifos()]
        return min(heads) if heads else None

    def expire(self, now_s: float) -> list[T]:
        """Items whose deadline has passed, oldest first; they leave the queue."""
        out: list[tuple[float, T]] = []
        for fifo in self._fifos.values():
            while fifo and fifo[0][0] <= now_s:
                deadline, item = fifo.popleft()
                if self._live.get(item) == deadline:
                    del self._live[item]
                    out.append((deadline, item))
        if len(self._fifos) > 1:
            out.sort(key=lambda entry: entry[0])
        return [item for _, item in out]

    def pop_oldest(self) -> T | None:
        """The live item appended first, removed from the queue (None when empty)."""
        fifos = self._live_fifos()
        if not fifos:
            return None
        fifo = min(fifos, key=lambda f: f[0][0] - self._timeout_of(f))
        item = fifo.popleft()[1]
        del self._live[item]
        return item

    def _timeout_of(self, fifo: deque[tuple[float, T]]) -> float:
        return next(t for t, f in self._fifos.items() if f is fifo)

    def _live_fifos(self) -> list[deque[tuple[float, T]]]:
        """The FIFOs with a live head, stale heads dropped (Rule 1)."""
        out = []
        for fifo in self._fifos.values():
            while fifo and self._live.get(fifo[0][1]) != fifo[0][0]:
                fifo.popleft()
            if fifo:
                out.append(fifo)
        return out
