"""Cached HTTP Date (RFC 9110 5.6.7), refreshed at most once a second.

Rule 1: callers that already hold ``time.time()`` pass it in, so a request costs one clock read.
Rule 2: the formatted value is rebuilt only when the integer second changes.
"""

from __future__ import annotations

import time
from email.utils import formatdate


class Clock:
    __slots__ = ("_second", "_date")

    def __init__(self) -> None:
        self._second = -1
        self._date = b""

    def http_date(self, now: float | None = None) -> bytes:
        """``b"Sun, 06 Nov 1994 08:49:37 GMT"`` for ``now`` (default: the current time)."""
        second = int(time.time() if now is None else now)
        if second != self._second:
            self._second = second
            self._date = formatdate(second, usegmt=True).encode("ascii")
        return self._date


CLOCK = Clock()


def http_date(now: float | None = None) -> bytes:
    return CLOCK.http_date(now)
