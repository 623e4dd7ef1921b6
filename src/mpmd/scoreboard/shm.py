"""The shared segment: an anonymous MAP_SHARED mmap made by the master before it forks.

Rule 1: created once per server lifetime (ServerLimit/ThreadLimit cannot change on restart, as in
        httpd); children inherit the mapping through fork, so there is nothing to attach or unlink.
Rule 2: a fresh segment is zero-filled, which is ``Status.DEAD`` everywhere.
"""

from __future__ import annotations

import mmap


def create(size: int) -> mmap.mmap:
    """An anonymous shared mapping of ``size`` zero bytes, inherited by forked children."""
    return mmap.mmap(-1, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
