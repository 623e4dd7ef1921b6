"""systemd's sd_notify, without libsystemd: datagrams to ``$NOTIFY_SOCKET`` (docs/service.md).

Rule 1: with ``NOTIFY_SOCKET`` unset every call does nothing, so the master calls it always.
        The variable is taken out of the environment when read (sd_notify's
        ``unset_environment``): the children and the applications in them do not inherit it.
Rule 2: an address that starts with ``@`` is in the abstract namespace (a NUL byte first).
Rule 3: what the master says, and when: ``READY=1`` once the listeners are bound and the first
        generation's children are up; ``RELOADING=1`` when a restart begins and ``READY=1``
        again when the new generation is up; ``STOPPING=1`` when a stop begins; ``STATUS=`` (the
        scoreboard's summary, as ``systemctl status`` shows it) with each of those and every
        ``STATUS_EVERY_S`` from the master's maintenance loop.
Rule 4: a failed send is ignored: systemd not listening never stops the server.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

STATUS_EVERY_S = 5.0


def socket_address(value: str) -> str | bytes:
    """``$NOTIFY_SOCKET`` as ``sendto`` takes it (Rule 2)."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


def status_text(scoreboard: Any) -> str:
    """``Total requests: 42; busy workers: 1; idle workers: 24; processes: 3`` (mod_status's
    count of the scoreboard: busy, idle, accesses)."""
    from mpmd.modules.mod_status import aggregate
    s = aggregate(scoreboard.snapshot(), time.time())
    text = (f"Total requests: {s.total_accesses}; busy workers: {s.busy}; "
            f"idle workers: {s.idle}; processes: {s.processes}")
    if s.graceful:
        text += f"; gracefully finishing: {s.graceful}"
    return text


class Notifier:
    def __init__(self, environ: Any = os.environ) -> None:
        value = environ.pop("NOTIFY_SOCKET", "") or ""
        self.address = socket_address(value) if value else None
        self.sock: socket.socket | None = None
        self.last_status = 0.0
        self.said_stopping = False
        if self.address is not None:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            except OSError:
                self.address = None

    @property
    def enabled(self) -> bool:
        return self.sock is not None

    def send(self, *fields: str) -> None:
        if self.sock is None or not fields:
            return
        try:
            self.sock.sendto("\n".join(fields).encode(), self.address)
        except OSError:
            pass                                   # Rule 4

    def status_field(self, scoreboard: Any) -> str:
        self.last_status = time.monotonic()
        try:
            return "STATUS=" + status_text(scoreboard)
        except Exception:  # noqa: BLE001 - a status line never stops the server
            return "STATUS=running"

    def ready(self, scoreboard: Any) -> None:
        if self.enabled:
            self.send("READY=1", self.status_field(scoreboard))

    def reloading(self) -> None:
        if self.enabled:
            usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading")

    def stopping(self) -> None:
        if self.said_stopping:
            return
        self.said_stopping = True
        self.send("STOPPING=1", "STATUS=stopping: finishing the requests in flight")

    def tick(self, scoreboard: Any) -> None:
        """From the maintenance loop: STATUS= every STATUS_EVERY_S."""
        if self.enabled and time.monotonic() - self.last_status >= STATUS_EVERY_S:
            self.send(self.status_field(scoreboard))

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
