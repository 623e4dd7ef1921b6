"""URL mounts of applications (WSGIScriptAlias, WSGIApp, ASGIApp): one matching rule for all.

Rule: a mount covers its own path and everything below it at a segment boundary ("/app"
covers "/app" and "/app/x", not "/apple"); with several, the longest wins, so callers keep
their mounts sorted longest first.
"""

from __future__ import annotations

from typing import Any, Sequence


def find_mount(mounts: Sequence[Any], path: str) -> Any | None:
    """The first (longest) mount whose ``.mount`` prefix covers ``path``, or None."""
    for m in mounts:
        mount = m.mount
        if path.startswith(mount) and (len(path) == len(mount) or path[len(mount)] == "/"):
            return m
    return None
