"""Run wrk and turn its text report into numbers.

Rule 1: parsing is a pure function of wrk's stdout (``parse_wrk``); running wrk is a thin
wrapper around it, so the parser is tested on captured text without a network.
Rule 2: wrk's report is line-oriented and stable since 4.0; each line we care about is one
entry of ``_LINE_PATTERNS`` (tables over branches). Unknown lines are ignored.
Rule 3: keep-alive "off" is the client's choice (``Connection: close`` on every request),
so the server configuration is the same for both runs.
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

INSTALL_HINT = (
    "wrk was not found on PATH. Install it with your package manager, e.g. "
    "`apt-get install wrk` (Debian/Ubuntu), `brew install wrk` (macOS), "
    "or build it from https://github.com/wg/wrk and put it on PATH."
)

_UNITS_TIME = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_UNITS_SIZE = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


@dataclass
class WrkResult:
    """Numbers from one wrk run; latencies in seconds, sizes in bytes."""

    requests: int = 0
    duration_s: float = 0.0
    bytes_read: int = 0
    rps: float = 0.0
    transfer_bytes_per_s: float = 0.0
    latency_avg_s: float | None = None
    latency_max_s: float | None = None
    latency_pct_s: dict[str, float] = field(default_factory=dict)  # "50", "75", "90", "99"
    errors_connect: int = 0
    errors_read: int = 0
    errors_write: int = 0
    errors_timeout: int = 0
    non_2xx_3xx: int = 0
    # wrk's own CPU time (user, system) over the run: it shares the machine with the server,
    # so what it spends per request is CPU the server does not get.  None: not measured.
    cpu_user_s: float | None = None
    cpu_sys_s: float | None = None

    @property
    def p99_s(self) -> float | None:
        return self.latency_pct_s.get("99")

    @property
    def socket_errors(self) -> int:
        return self.errors_connect + self.errors_read + self.errors_write + self.errors_timeout

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["p99_s"] = self.p99_s if self.requests else None  # wrk prints 0us with no requests
        d["socket_errors"] = self.socket_errors
        return d


def parse_time(text: str) -> float:
    """'1.23ms' -> 0.00123 seconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS_TIME[m.group(2)]


def parse_size(text: str) -> int:
    """'1.50MB' -> 1572864 bytes (wrk uses binary units)."""
    m = re.fullmatch(r"([\d.]+)([KMGT]?B)", text.strip())
    if not m:
        raise ValueError(f"not a wrk size: {text!r}")
    return int(float(m.group(1)) * _UNITS_SIZE[m.group(2)])


def _latency(r: WrkResult, m: re.Match[str]) -> None:
    r.latency_avg_s = parse_time(m.group(1))
    r.latency_max_s = parse_time(m.group(3))


def _percentile(r: WrkResult, m: re.Match[str]) -> None:
    r.latency_pct_s[m.group(1)] = parse_time(m.group(2))


def _totals(r: WrkResult, m: re.Match[str]) -> None:
    r.requests = int(m.group(1))
    r.duration_s = parse_time(m.group(2))
    r.bytes_read = parse_size(m.group(3))


def _socket_errors(r: WrkResult, m: re.Match[str]) -> None:
    r.errors_connect, r.errors_read, r.errors_write, r.errors_timeout = (
        int(g) for g in m.groups())


def _set(attr: str, conv: Callable[[str], Any]) -> Callable[[WrkResult, re.Match[str]], None]:
    def apply(r: WrkResult, m: re.Match[str]) -> None:
        setattr(r, attr, conv(m.group(1)))
    return apply


_LINE_PATTERNS: list[tuple[re.Pattern[str], Callable[[WrkResult, re.Match[str]], None]]] = [
    (re.compile(r"^Latency\s+(\S+)\s+(\S+)\s+(\S+)"), _latency),
    (re.compile(r"^(50|75|90|99)%\s+(\S+)$"), _percentile),
    (re.compile(r"^(\d+) requests in ([\d.]+\w+), ([\d.]+\w?B) read$"), _totals),
    (re.compile(r"^Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)$"),
     _socket_errors),
    (re.compile(r"^Non-2xx or 3xx responses: (\d+)$"), _set("non_2xx_3xx", int)),
    (re.compile(r"^Requests/sec:\s+([\d.]+)$"), _set("rps", float)),
    (re.compile(r"^Transfer/sec:\s+(\S+)$"), _set("transfer_bytes_per_s", parse_size)),
]


def parse_wrk(text: str) -> WrkResult:
    """Parse wrk's stdout; raises ValueError when no 'Requests/sec' line is present."""
    result = WrkResult()
    seen_rps = False
    for raw in text.splitlines():
        line = raw.strip()
        for pattern, apply in _LINE_PATTERNS:
            m = pattern.match(line)
            if m:
                apply(result, m)
                seen_rps = seen_rps or line.startswith("Requests/sec")
                break
    if not seen_rps:
        raise ValueError("wrk output has no Requests/sec line:\n" + text[-2000:])
    return result


def wrk_command(url: str, *, threads: int, connections: int, duration_s: float,
                keep_alive: bool, timeout_s: float = 2.0, wrk: str = "wrk") -> list[str]:
    """The exact wrk argv for one run (documented in docs/benchmarks.md)."""
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s",
           "--timeout", f"{max(1, round(timeout_s))}s", "--latency"]
    if not keep_alive:
        cmd += ["-H", "Connection: close"]
    return cmd + [url]


def find_wrk() -> str | None:
    return shutil.which("wrk")


def run_wrk(url: str, *, threads: int = 1, connections: int = 64, duration_s: float = 5.0,
            keep_alive: bool = True, wrk: str = "wrk") -> WrkResult:
    """Run wrk once (bounded by its own duration plus a grace period) and parse it."""
    return start_wrk(url, threads=threads, connections=connections, duration_s=duration_s,
                     keep_alive=keep_alive, wrk=wrk).finish()


@dataclass
class WrkRun:
    """A wrk started in the background (``start_wrk``): the caller acts on the server while it
    runs (reloads, kills), then ``finish`` waits for it and parses its report."""

    proc: subprocess.Popen[str]
    duration_s: float
    before: Any                      # getrusage(RUSAGE_CHILDREN) at the start

    def finish(self) -> WrkResult:
        """Wait for wrk (its duration plus 30 s at most; then it is killed) and parse it."""
        try:
            out, err = self.proc.communicate(timeout=self.duration_s + 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise RuntimeError(f"wrk did not finish within {self.duration_s + 30:.0f}s")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, now waited for, counts here
        if self.proc.returncode != 0:
            raise RuntimeError(f"wrk failed ({self.proc.returncode}): {err.strip()[:500]}")
        result = parse_wrk(out)
        result.cpu_user_s = after.ru_utime - self.before.ru_utime
        result.cpu_sys_s = after.ru_stime - self.before.ru_stime
        return result


def start_wrk(url: str, *, threads: int = 1, connections: int = 64, duration_s: float = 5.0,
              keep_alive: bool = True, wrk: str = "wrk") -> WrkRun:
    """Start wrk in the background; ``WrkRun.finish`` collects it."""
    cmd = wrk_command(url, threads=threads, connections=connections, duration_s=duration_s,
                      keep_alive=keep_alive, wrk=wrk)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    return WrkRun(proc, duration_s, before)
