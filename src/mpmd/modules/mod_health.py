"""mod_health: the ``server-health`` handler, for load balancers' and Kubernetes' probes.

    <Location "/health">
        SetHandler server-health
    </Location>

Rule 1: GET or HEAD answers 200 "OK" while the server serves, and 503 "Stopping" from the
        moment the master begins a stop: ``-k graceful-stop`` (SIGWINCH) or a TERM's drain
        (mpm/common.py Rule 10), read from the scoreboard's stopping state (scoreboard/board.py
        Rule 4) at each request, in every child, on every MPM.  A graceful restart is no
        stop: the answer stays 200.  With GracefulStopDelay the server goes on serving for
        that long while this answers 503, so balancers drain it first.
Rule 2: the answer is never cached (``Cache-Control: no-store``); a 503 also closes its
        connection and says ``Retry-After`` (the balancer's next check reconnects, and finds
        the listener gone once the drain is over).  Another method is 405.
Rule 3: "inline" (it reads one byte of shared memory): on the nginx MPM it runs on the loop.
        A process without a scoreboard (a tool, ``-X`` without one) answers 200.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mpmd.core.exchange import Response
from mpmd.core.modules import Module

HANDLER_NAME = "server-health"
_OK = (b"OK\n", [("Content-Type", "text/plain"), ("Cache-Control", "no-store")])
_STOPPING = (b"Stopping\n", [("Content-Type", "text/plain"), ("Cache-Control", "no-store"),
                             ("Retry-After", "10"), ("Connection", "close")])


def stopping(mpm: Any) -> bool:
    """Rule 1: whether the master has begun a stop."""
    board = getattr(mpm, "scoreboard", None)
    return bool(board is not None and getattr(board, "stopping", False))


class HealthHandler:
    """The "server-health" handler (Rule 3)."""

    kind = "inline"

    def __call__(self, ctx: Any) -> Response:
        if ctx.request.method not in ("GET", "HEAD"):
            return Response(405, [("Allow", "GET, HEAD, OPTIONS"), ("Content-Type", "text/plain")],
                            b"Method Not Allowed\n")
        body, headers = _STOPPING if stopping(ctx.mpm) else _OK
        return Response(503 if body is _STOPPING[0] else 200, list(headers), body)


class HealthModule(Module):
    name: ClassVar[str] = "health_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_health.c", "mod_health")
    builtin: ClassVar[bool] = True

    def __init__(self) -> None:
        self.handlers = {HANDLER_NAME: HealthHandler()}


__all__ = ["HealthModule", "HealthHandler", "stopping", "HANDLER_NAME"]
