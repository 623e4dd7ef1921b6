"""Request log ids (httpd's r->log_id): the %L of LogFormat and of ErrorLogFormat.

Theory: an id is made the first time something asks for it (the access log's %L, an error-log
line about the request) and kept on the request (``ctx.log_id``), so every line about one
request carries the same id.  It is 11 characters, as httpd's: 8 bytes in base64 without
padding, with ``@`` and ``-`` for httpd's ``+`` and ``/``.

Rule 1: ids are unique among the server's processes: the 8 bytes are a per-process counter
        (40 bits), which starts at a random value in each process (a forked child draws its
        own on its first id), and the process id (24 bits).
Rule 2: nothing is made for a request nobody asks an id for.
"""

from __future__ import annotations

import base64
import os
from typing import Any

_MASK = (1 << 40) - 1
_state = [0, 0]                     # [pid the counter belongs to, the counter]


def new_id() -> str:
    """A fresh id (Rule 1)."""
    pid = os.getpid()
    if _state[0] != pid:
        _state[0], _state[1] = pid, int.from_bytes(os.urandom(5), "big")
    _state[1] = count = (_state[1] + 1) & _MASK
    raw = ((count << 24) | (pid & 0xFFFFFF)).to_bytes(8, "big")
    return base64.b64encode(raw)[:11].decode("ascii")


def log_id(ctx: Any) -> str:
    """The request's id, made on first use (Rule 2)."""
    lid = ctx.log_id
    if lid is None:
        lid = ctx.log_id = new_id()
    return lid
