"""URL mounts of applications (WSGIScriptAlias, WSGIApp, ASGIApp): one matching rule for all.

Rule 1: a mount covers its own path and everything below it at a segment boundary ("/app"
        covers "/app" and "/app/x", not "/apple"); with several, the longest wins, so callers
        keep their mounts sorted longest first.
Rule 2: each server (the main one, each <VirtualHost>) has its own mounts (``MountTable``);
        an application several servers mount at the same URL (a vhost inherits the main
        server's lines) is one object, so it is imported, and its lifespan run, once per process.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Iterable, Sequence, TypeVar

from mpmd.core.modules import PerServer, servers_of

App = TypeVar("App")
# (URL mount, what names the application, how to make it) for each mount line of a server
Specs = Callable[[Any], Iterable[tuple[str, str, Callable[[], App]]]]


def find_mount(mounts: Sequence[Any], path: str) -> Any | None:
    """The first (longest) mount whose ``.mount`` prefix covers ``path``, or None."""
    for m in mounts:
        mount = m.mount
        if path.startswith(mount) and (len(path) == len(mount) or path[len(mount)] == "/"):
            return m
    return None


class MountTable(Generic[App]):
    """Rule 2: ``of(server)`` is a server's mounts, longest first; ``all(main)`` every one."""

    def __init__(self, specs: Specs[App]) -> None:
        self.specs = specs
        self.apps: dict[tuple[str, str], App] = {}       # (mount, what) -> the application
        self.of = PerServer(self._mounts_of)

    def _mounts_of(self, server: Any) -> list[App]:
        mounts = []
        for url, what, make in self.specs(server):
            app = self.apps.get((url, what))
            if app is None:
                app = self.apps[(url, what)] = make()
            mounts.append(app)
        mounts.sort(key=lambda m: len(m.mount), reverse=True)    # type: ignore[attr-defined]
        return mounts

    def all(self, server: Any) -> list[App]:
        for each in servers_of(server):
            self.of(each)
        return list(self.apps.values())
