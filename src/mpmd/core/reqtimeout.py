"""mod_reqtimeout's rule (httpd's RequestReadTimeout): how long a request's head and body may take.

Theory: reading a request has two stages, the head and the body.  Each stage has an initial
timeout; with ``MinRate`` every ``MinRate`` bytes received add one second, up to the stage's
maximum (``header=20-40,MinRate=500``).  A slow-but-steady client keeps its stage alive, one
that trickles (slowloris) runs out of time whatever it sends.  This file is I/O-free: the
transports feed a ``StageClock`` the byte counts they read and monotonic times, and ask it how
long they may still wait.

Rule 1: the header stage starts when a connection is accepted, or, on a kept-alive connection,
        with the first byte of the next request (KeepAliveTimeout waits for that byte), as in
        httpd.  It ends when the head is whole.
Rule 2: the body stage starts when the body is first waited for and ends with the body.
Rule 3: while a stage runs, a read waits for the smaller of its time left and Timeout (httpd
        sets the socket timeout to MIN(time left, Timeout)): a client that stops sending is
        cut after Timeout, one that trickles after the stage's time; a disabled stage
        (``header=0``) leaves Timeout alone.
Rule 4: a stage that runs out is answered 408 and the connection closed (logged at info as
        httpd's AH01382); a new connection that never sent a byte is closed silently.
Rule 5: one server's value is per stage: a ``RequestReadTimeout`` line sets the stages it names
        and keeps the others (the main server's, or the default), as httpd merges them.
        ``handshake=`` (httpd 2.4.39) is refused: TLS handshakes are bounded by Timeout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from mpmd.config import values as v
from mpmd.http.errors import ProtocolError

MODULE = "reqtimeout"
STAGES = ("header", "body")
_VALUE = re.compile(r"(\d+)(?:-(\d+))?")


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage's limits: ``timeout_s`` 0 = off; ``max_s`` 0 = no cap; ``min_rate`` bytes/s."""

    timeout_s: float
    max_s: float = 0.0
    min_rate: float = 0.0
    idle_s: float = 0.0     # Timeout: the longest wait for any one read (Rule 3); 0 = none

    @property
    def on(self) -> bool:
        return self.timeout_s > 0

    def start(self, now_s: float) -> "StageClock | None":
        """The clock of a stage starting at ``now_s`` (None when the stage is off)."""
        if not self.on:
            return None
        cap = now_s + self.max_s if self.max_s else float("inf")
        return StageClock(now_s + self.timeout_s, cap, 1.0 / self.min_rate if self.min_rate else 0.0,
                          self.idle_s, now_s)

    def render(self) -> str:
        if not self.on:
            return "0"
        text = f"{self.timeout_s:g}" + (f"-{self.max_s:g}" if self.max_s else "")
        return text + (f",MinRate={self.min_rate:g}" if self.min_rate else "")


class StageClock:
    """One running stage of one connection: its deadline, extended by the bytes it receives."""

    __slots__ = ("stage_deadline_s", "cap_s", "per_byte_s", "idle_s", "last_s")

    def __init__(self, deadline_s: float, cap_s: float, per_byte_s: float, idle_s: float = 0.0,
                 now_s: float = 0.0) -> None:
        self.stage_deadline_s = deadline_s
        self.cap_s = cap_s              # the stage's maximum: no extension goes past it
        self.per_byte_s = per_byte_s    # 1 / MinRate (0: no extension)
        self.idle_s = idle_s            # Timeout, for each read (Rule 3)
        self.last_s = now_s             # when bytes last came

    @property
    def deadline_s(self) -> float:
        """The stage's deadline, or Timeout after the last bytes when that comes first: httpd
        waits for each read MIN(time left, Timeout)."""
        if self.idle_s:
            return min(self.stage_deadline_s, self.last_s + self.idle_s)
        return self.stage_deadline_s

    def received(self, nbytes: int, now_s: float | None = None) -> None:
        """``nbytes`` more arrived (at ``now_s``): MinRate extends the deadline (httpd
        extend_timeout), and Timeout counts again from then."""
        if self.per_byte_s and nbytes > 0:
            self.stage_deadline_s = min(self.stage_deadline_s + nbytes * self.per_byte_s,
                                        self.cap_s)
        if now_s is not None and nbytes > 0:
            self.last_s = now_s

    def left(self, now_s: float) -> float:
        return self.deadline_s - now_s

    def expired(self, now_s: float) -> bool:
        return now_s >= self.deadline_s


@dataclass(frozen=True, slots=True)
class ReadTimeout:
    """A server's RequestReadTimeout; ``set`` names the stages its lines set (Rule 5)."""

    header: Stage
    body: Stage
    set: frozenset[str] = field(default=frozenset(), compare=False)   # not the value itself

    def render(self) -> str:
        return f"header={self.header.render()} body={self.body.render()}"


DEFAULT = ReadTimeout(Stage(20.0, 40.0, 500.0), Stage(20.0, 0.0, 500.0))


def parse_stage(text: str) -> tuple[str, Stage]:
    """``header=20-40,MinRate=500`` -> ("header", Stage(20, 40, 500)); httpd's checks."""
    key, eq, rest = text.partition("=")
    key = key.strip().lower()
    if not eq:
        raise ValueError(f"'{text}': a parameter is stage=timeout[-maxtimeout][,MinRate=rate]")
    if key == "handshake":
        raise ValueError("handshake= is not supported: TLS handshakes are bounded by Timeout")
    if key not in STAGES:
        raise ValueError(f"Unknown RequestReadTimeout parameter '{key}' (header= or body=)")
    timeout, _, rate_part = rest.partition(",")
    m = _VALUE.fullmatch(timeout.strip())
    if not m:
        raise ValueError(f"'{rest}': the timeout must be a number of seconds, or initial-max")
    initial, most = float(m.group(1)), float(m.group(2) or 0)
    rate = 0.0
    if rate_part:
        name, _, value = rate_part.partition("=")
        if name.strip().lower() != "minrate" or not value.strip().isdigit():
            raise ValueError(f"'{rate_part}': expected MinRate=bytes-per-second")
        rate = float(value)
        if rate <= 0:
            raise ValueError("Minimum data rate must be larger than 0")
    if most and not rate:
        raise ValueError("Must set MinRate option if using timeout range")
    if most and most <= initial:
        raise ValueError("Maximum timeout must be larger than initial timeout")
    return key, Stage(initial, most, rate)


class ReadTimeoutArgs(v.Converter):
    """The directive's converter: a line -> the ``ReadTimeout`` of the stages it names."""

    kind = "words"
    describe = "header=timeout[-maxtimeout][,MinRate=rate] body=timeout[-maxtimeout][,MinRate=rate]"

    def __call__(self, args: list[str]) -> ReadTimeout:
        stages = dict(parse_stage(arg) for arg in args)
        return ReadTimeout(stages.get("header", DEFAULT.header), stages.get("body", DEFAULT.body),
                           frozenset(stages))

    def render(self, value: Any) -> str:
        return value.render() if isinstance(value, ReadTimeout) else str(value)


def combine(old: ReadTimeout | None, line: ReadTimeout) -> ReadTimeout:
    """Rule 5: a line's stages over the inherited value's."""
    base = old if isinstance(old, ReadTimeout) else DEFAULT
    out = base
    for stage in line.set:
        out = replace(out, **{stage: getattr(line, stage)})
    return replace(out, set=base.set | line.set)


M_EXPIRED = {"header": "MPMD1101", "body": "MPMD1102"}      # httpd's AH01382


def expired_error(stage: str, partial: bool, log: Any, client: Any) -> ProtocolError | None:
    """Rule 4: what a transport does when ``stage`` ran out: answer the returned 408 (logged
    here, as httpd's AH01382 at info), or, None, close silently: a head never begun."""
    if stage == "header" and not partial:
        return None
    if log is not None and log.enabled("info", MODULE):
        host, port = (client[0], client[1]) if isinstance(client, tuple) else (client, 0)
        log.info(M_EXPIRED[stage], f"[client {host}:{port}] Request {stage} read timeout", MODULE)
    return ProtocolError(408, f"request {stage} read timeout")
