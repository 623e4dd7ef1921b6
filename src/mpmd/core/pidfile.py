"""PidFile: written by the master after start-up, removed on stop (httpd ap_log_pid).

Rule 1: ``remove`` deletes the file only if it still holds our pid (a newer server may own it).
"""

from __future__ import annotations

import os


def write(path: str, pid: int) -> None:
    tmp = f"{path}.{pid}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{pid}\n")
    os.replace(tmp, path)


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
