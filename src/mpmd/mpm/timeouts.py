"""TimeoutQueue: one FIFO per timeout kind (httpd event's TO_QUEUE_*, gunicorn keepalived_conns).

Theory: every entry of one queue has the same timeout, so deadlines are appended in increasing
order and expiry only ever looks at the head: append O(1), expire O(expired).

Rule 1: removal is lazy -- ``remove(item)`` forgets the item; a stale head entry is skipped when
        it reaches the front.
Rule 2: time is passed in (``now_s`` from time.monotonic()); the queue never reads a clock.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, Hashable, TypeVar

T = TypeVar("T", bound=Hashable)


class TimeoutQueue(Generic[T]):
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._fifo: deque[tuple[float, T]] = deque()
        self._live: dict[T, float] = {}

    def append(self, item: T, now_s: float) -> None:
        deadline = now_s + self.timeout_s
        self._live[item] = deadline
        self._fifo.append((deadline, item))

    def remove(self, item: T) -> None:
        self._live.pop(item, None)

    def __contains__(self, item: object) -> bool:
        return item in self._live

    def __len__(self) -> int:
        return len(self._live)

    def next_deadline(self) -> float | None:
        self._skip_stale()
        return self._fifo[0][0] if self._fifo else None

    def expire(self, now_s: float) -> list[T]:
        """Items whose deadline has passed, oldest first; they leave the queue."""
        out: list[T] = []
        while self._fifo and self._fifo[0][0] <= now_s:
            deadline, item = self._fifo.popleft()
            if self._live.get(item) == deadline:
                del self._live[item]
                out.append(item)
        return out

    def pop_oldest(self) -> T | None:
        """The oldest live item, removed from the queue (None when empty)."""
        self._skip_stale()
        if not self._fifo:
            return None
        item = self._fifo.popleft()[1]
        del self._live[item]
        return item

    def _skip_stale(self) -> None:
        while self._fifo and self._live.get(self._fifo[0][1]) != self._fifo[0][0]:
            self._fifo.popleft()
