"""PidFile: written by the master after start-up, removed on stop (httpd ap_log_pid).

Rule 1: ``remove`` deletes the file only if it still holds our pid (a newer server may own it).
Rule 2: it is written before any child is forked, so a failure leaves nothing running.
"""

from __future__ import annotations

import os


class PidFileError(Exception):
    """The PidFile could not be written: ``tmp`` is the file that failed, ``error`` the OSError."""

    def __init__(self, tmp: str, error: OSError) -> None:
        super().__init__(f"could not create {tmp}: {error}")
        self.tmp = tmp
        self.error = error


def write(path: str, pid: int) -> None:
    """Write atomically (a temp file, renamed); PidFileError when the directory is missing or
    not writable -- the master reports it as httpd does and does not start (Rule 2)."""
    tmp = f"{path}.{pid}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(f"{pid}\n")
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise PidFileError(tmp, exc) from None


def read(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def remove(path: str, pid: int) -> None:
    if read(path) == pid:
        try:
            os.unlink(path)
        except OSError:
            pass
