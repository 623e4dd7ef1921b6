"""mod_status: the /server-status page, as snapshot -> aggregate -> render_html | render_auto.

Configuration:
  <Location /server-status>
      SetHandler server-status
  </Location>
  ExtendedStatus On|Off      (server) On adds one row per worker: client, request line.  Default
                             On when a LoadModule line loads status_module (httpd's
                             status_pre_config), else Off; the cost is one scoreboard store of
                             client and request line per request.

``/server-status?auto`` is the machine-readable form: Apache 2.4's keys in Apache's order
(ServerVersion, ServerMPM, Server Built, CurrentTime, RestartTime, ParentServerConfigGeneration,
ParentServerMPMGeneration, ServerUptimeSeconds, ServerUptime, Load1/5/15, Total Accesses, Total
kBytes, Total Duration, CPUUser, CPUSystem, CPUChildrenUser, CPUChildrenSystem, CPULoad, Uptime,
ReqPerSec, BytesPerSec, BytesPerReq, DurationPerReq, BusyWorkers, GracefulWorkers, IdleWorkers,
Processes, Stopping, ConnsTotal, ConnsAsync*, Scoreboard), so tools made for Apache read it
(Debian's prometheus-apache-exporter reports the same metric families).  ``?refresh=N`` adds a
Refresh header to the HTML page.

Rule 1: the only input is ``mpm.scoreboard.snapshot()`` (a copy); the page never reads live
        shared memory field by field, so one answer is one consistent-enough picture.
Rule 2: ``aggregate`` is a pure function snapshot -> Summary; the renderers are pure functions
        Summary -> text.  Tests call them with hand-made snapshots.
Rule 3: busy/idle follow httpd's status_handler: READY is idle; DEAD, STARTING and IDLE_KILL are
        neither; GRACEFUL is counted apart (GracefulWorkers); everything else is busy.  Every
        worker of a quiescing process (an old generation after a graceful restart) shows and
        counts as G ("Gracefully finishing"), whatever it is doing.
Rule 4: per-process connection counters (ConnsTotal, ConnsAsync*) are read from the process
        records when the MPM keeps them (worker/event/nginx) and are 0 otherwise.
Rule 5: with StuckRequestTimeout set, a busy (W, L) worker whose request began longer ago is
        stuck: its row's SS says "stuck", and the page and ``?auto`` (``StuckRequests``) count
        them.  Where one record stands for a whole event loop (``Query.REQUEST_RECORDS`` 0:
        the nginx MPM) the count is the one each loop publishes in its process record.
Rule 6: ServerVersion is ``Apache/2.4.62 (mpmd/0.1.0)``: the Apache release whose configuration
        language mpmd reads (``<IfVersion>``'s), then mpmd's own version, so a tool that parses
        Apache's "Apache/x.y.z" reads a true Apache level (the exporter's apache_version 2.04062).
        The generations count as Apache's: the config generation from 1, the MPM's from 0.
Rule 7: Total Duration is the sum of the requests' durations (ms) the scoreboard keeps per slot;
        the CPU fields are seconds of the master and the live children (and, as children, what
        the reaped ones used), read from /proc when the page is asked for, nothing per request;
        CPULoad, as Apache, only when any is not 0.  Load1/5/15 are the system's load averages.
"""

from __future__ import annotations

import html
import os
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mpmd.config.directives import Args, Ctx, Directive
from mpmd.core.exchange import Response
from mpmd.core.modules import Module
from mpmd.mpm.base import Query
from mpmd.config import values as config_values

HANDLER_NAME = "server-status"

# status letter -> legend text (httpd's status page key)
LEGEND: dict[str, str] = {
    "_": "Waiting for Connection", "S": "Starting up", "R": "Reading Request",
    "W": "Sending Reply", "K": "Keepalive (read)", "D": "DNS Lookup",
    "C": "Closing connection", "L": "Logging", "G": "Gracefully finishing",
    "I": "Idle cleanup of worker", ".": "Open slot with no current process",
}
IDLE_LETTERS = frozenset("_")
NEITHER_LETTERS = frozenset(".SI")
GRACEFUL_LETTERS = frozenset("G")
BUSY_REQUEST_LETTERS = frozenset("WL")   # a request in hand, begun at last_used (Rule 5)
# ?auto fields read from process records (Rule 4): output name -> attribute names, first found wins
CONN_FIELDS: dict[str, tuple[str, ...]] = {
    "ConnsTotal": ("conns_total", "connections"),
    "ConnsAsyncWaitIO": ("conns_async_wait_io",),
    "ConnsAsyncWriting": ("conns_async_writing", "async_writing"),
    "ConnsAsyncKeepAlive": ("conns_async_keepalive", "conns_async_keep_alive", "async_keepalive"),
    "ConnsAsyncClosing": ("conns_async_closing", "async_closing"),
}


DIRECTIVES = [
    Directive("ExtendedStatus", args=Args.FLAG, context=Ctx.SERVER, value=config_values.flag, default=False,
              field="extended_status", owner="status_module", syntax="ExtendedStatus On|Off",
              doc="Show each worker's client and request line on the server-status page; On "
                  "whenever a LoadModule line loads status_module, unless set Off (as httpd)."),
]


@dataclass
class WorkerRow:
    slot: int
    thread: int
    pid: int
    letter: str
    accesses: int                # the slot's, over every process it has had
    bytes_served: int
    last_used: float
    client: str
    request: str
    vhost: str
    child_accesses: int = 0      # the current process's (thread's) own
    stuck: bool = False          # running past StuckRequestTimeout (Rule 5)


@dataclass
class Summary:
    now: float
    restart_time: float
    generation: int
    total_accesses: int = 0
    total_bytes: int = 0
    busy: int = 0
    idle: int = 0
    graceful: int = 0
    processes: int = 0
    stopping: int = 0
    stuck: int = 0               # requests past StuckRequestTimeout (Rule 5)
    stuck_s: float = 0.0         # StuckRequestTimeout (0: not watched)
    conns: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CONN_FIELDS, 0))
    scoreboard: str = ""
    rows: list[WorkerRow] = field(default_factory=list)
    duration_us: int = 0         # every request's duration, added up (Rule 7)
    pids: list[int] = field(default_factory=list)      # the live children
    # (user, system, children's user, children's system) CPU seconds (Rule 7)
    cpu: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    load: tuple[float, float, float] = (-1.0, -1.0, -1.0)

    @property
    def uptime(self) -> int:
        return max(int(self.now - self.restart_time), 0)


def snapshot(mpm: Any) -> Any:
    """The scoreboard copy of the running MPM, or None (Rule 1)."""
    board = getattr(mpm, "scoreboard", None)
    return board.snapshot() if board is not None else None


def aggregate(snap: Any, now: float, stuck_s: float = 0.0, request_records: bool = True) -> Summary:
    """Add up a snapshot (Rules 2-5).  ``stuck_s``: StuckRequestTimeout; ``request_records``:
    whether a worker record holds one request (``Query.REQUEST_RECORDS``)."""
    s = Summary(now=now, restart_time=snap.restart_time, generation=snap.generation,
                stuck_s=stuck_s)
    records_stuck = stuck_s > 0 and request_records
    letters = []
    for slot, (proc, workers) in enumerate(zip(snap.processes, snap.workers)):
        if proc.pid:
            s.processes += 1
            s.pids.append(proc.pid)
            s.stopping += int(bool(proc.quiescing))
            for out, attrs in CONN_FIELDS.items():
                s.conns[out] += _first_attr(proc, attrs)
            if stuck_s > 0 and not request_records:
                s.stuck += int(getattr(proc, "stuck", 0))
        retiring = bool(proc.pid and proc.quiescing)
        for thread, w in enumerate(workers):
            letter = w.letter
            if retiring and letter != ".":
                letter = "G"         # an old generation finishing after a graceful restart
            letters.append(letter)
            _count(s, letter)
            s.total_accesses += w.access_count
            s.total_bytes += w.bytes_served
            s.duration_us += int(getattr(w, "duration_s", 0.0) * 1e6)
            stuck = records_stuck and bool(proc.pid) and letter in BUSY_REQUEST_LETTERS and \
                w.last_used > 0 and now - w.last_used > stuck_s
            s.stuck += int(stuck)
            if letter != "." or w.access_count:
                s.rows.append(WorkerRow(slot, thread, w.pid, letter, w.access_count, w.bytes_served,
                                        w.last_used, w.client, w.request, w.vhost,
                                        getattr(w, "child_access_count", w.access_count), stuck))
    s.scoreboard = "".join(letters)
    return s


def _first_attr(record: Any, names: tuple[str, ...]) -> int:
    for name in names:
        value = getattr(record, name, None)
        if value is not None:
            return int(value)
    return 0


def _count(s: Summary, letter: str) -> None:
    if letter in IDLE_LETTERS:
        s.idle += 1
    elif letter in GRACEFUL_LETTERS:
        s.graceful += 1
    elif letter not in NEITHER_LETTERS:
        s.busy += 1


def _rates(s: Summary) -> tuple[float, float, float]:
    up = s.uptime or 1
    per_req = s.total_bytes / s.total_accesses if s.total_accesses else 0.0
    return s.total_accesses / up, s.total_bytes / up, per_req


def _master() -> list[int]:
    """This process's parent when it is mpmd's master (its title says so: with -X there is
    none, and the parent is whatever started the server)."""
    ppid = os.getppid()
    try:
        with open(f"/proc/{ppid}/cmdline", "rb") as fh:
            return [ppid] if fh.read(12) == b"mpmd: master" else []
    except OSError:
        return []


def cpu_times(pids: list[int]) -> tuple[float, float, float, float]:
    """(user, system, children's user, children's system) CPU seconds of the master (this
    process's parent) and the processes ``pids`` (Rule 7): /proc/PID/stat, or this process's
    own ``os.times()`` where there is no /proc."""
    tick = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
    total = [0.0, 0.0, 0.0, 0.0]
    seen = False
    for pid in dict.fromkeys([*_master(), *pids]):
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        for i in range(4):                   # utime stime cutime cstime: fields 14-17
            total[i] += int(fields[11 + i]) / tick
        seen = True
    if not seen:
        t = os.times()
        return t.user, t.system, t.children_user, t.children_system
    return total[0], total[1], total[2], total[3]


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return -1.0, -1.0, -1.0


def apache_version(version: str) -> str:
    """ServerVersion (Rule 6): ``Apache/2.4.62 (mpmd/0.1.0)``."""
    from mpmd.config.parser import APACHE_COMPAT_VERSION
    return "Apache/%d.%d.%d" % APACHE_COMPAT_VERSION + f" ({version})"


def server_built() -> str:
    """When this mpmd was installed (its package's files), as Apache's "Server Built"."""
    import mpmd
    stamp = os.stat(mpmd.__file__).st_mtime
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp))


def apr_g(value: float) -> str:
    """``%g`` as APR's printf writes it, which Apache's ?auto uses: no 0 before the point
    (``.6``, ``-.25``)."""
    text = f"{value:g}"
    if text.startswith("0."):
        return text[1:]
    return "-" + text[2:] if text.startswith("-0.") else text


def render_auto(s: Summary, host: str, mpm_name: str, version: str) -> str:
    """``?auto``: one ``Key: value`` per line, Apache's names and order."""
    req_s, bytes_s, bytes_req = _rates(s)
    cpu = s.cpu
    up = s.uptime
    duration_ms = s.duration_us // 1000
    lines = [
        host,
        f"ServerVersion: {apache_version(version)}",
        f"ServerMPM: {mpm_name}",
        f"Server Built: {server_built()}",
        f"CurrentTime: {_http_time(s.now)}",
        f"RestartTime: {_http_time(s.restart_time)}",
        f"ParentServerConfigGeneration: {s.generation + 1}",
        f"ParentServerMPMGeneration: {s.generation}",
        f"ServerUptimeSeconds: {up}",
        f"ServerUptime: {_human_uptime(up)}",
        "Load1: %.2f\nLoad5: %.2f\nLoad15: %.2f" % s.load,
        f"Total Accesses: {s.total_accesses}",
        f"Total kBytes: {s.total_bytes // 1024}",
        f"Total Duration: {duration_ms}",
        "CPUUser: %s\nCPUSystem: %s\nCPUChildrenUser: %s\nCPUChildrenSystem: %s"
        % tuple(apr_g(t) for t in cpu),
        *([f"CPULoad: {apr_g(sum(cpu) / (up or 1) * 100)}"] if any(cpu) else []),
        f"Uptime: {up}",
        *([f"ReqPerSec: {apr_g(req_s)}", f"BytesPerSec: {apr_g(bytes_s)}"] if up > 0 else []),
        *([f"BytesPerReq: {apr_g(bytes_req)}",
           f"DurationPerReq: {apr_g(duration_ms / s.total_accesses)}"] if s.total_accesses else []),
        f"BusyWorkers: {s.busy}",
        f"GracefulWorkers: {s.graceful}",
        f"IdleWorkers: {s.idle}",
        f"Processes: {s.processes}",
        f"Stopping: {s.stopping}",
        *([f"StuckRequests: {s.stuck}"] if s.stuck_s > 0 else []),
        *(f"{name}: {value}" for name, value in s.conns.items()),
        f"Scoreboard: {s.scoreboard}",
    ]
    return "\n".join(lines) + "\n"


def render_html(s: Summary, host: str, mpm_name: str, version: str, extended: bool) -> str:
    """The human page: summary, scoreboard grid, legend and (ExtendedStatus) worker rows."""
    req_s, bytes_s, bytes_req = _rates(s)
    esc = html.escape
    parts = [
        "<!DOCTYPE html>\n<html><head><meta charset=\"iso-8859-1\">",
        f"<title>Server Status for {esc(host)}</title></head><body>",
        f"<h1>Server Status for {esc(host)}</h1>",
        f"<dl><dt>Server Version: {esc(apache_version(version))}</dt>"
        f"<dt>Server MPM: {esc(mpm_name)}</dt><dt>Server Built: {server_built()}</dt></dl><hr>",
        f"<dl><dt>Current Time: {_http_time(s.now)}</dt><dt>Restart Time: {_http_time(s.restart_time)}</dt>",
        f"<dt>Parent Server Config. Generation: {s.generation + 1}</dt>",
        f"<dt>Parent Server MPM Generation: {s.generation}</dt>",
        f"<dt>Server uptime: {_human_uptime(s.uptime)}</dt>",
        "<dt>Server load: %.2f %.2f %.2f</dt>" % s.load,
        f"<dt>Total accesses: {s.total_accesses} - Total Traffic: {s.total_bytes // 1024} kB"
        f" - Total Duration: {s.duration_us // 1000}</dt>",
        "<dt>CPU Usage: u%s s%s cu%s cs%s" % tuple(apr_g(t) for t in s.cpu)
        + (f" - {sum(s.cpu) / (s.uptime or 1) * 100:.3g}% CPU load</dt>" if any(s.cpu) else "</dt>"),
        f"<dt>{req_s:.3g} requests/sec - {bytes_s:.3g} B/second - {bytes_req:.3g} B/request"
        + (f" - {s.duration_us / 1000 / s.total_accesses:g} ms/request" if s.total_accesses else "")
        + "</dt>",
        f"<dt>{s.busy} requests currently being processed, {s.idle} idle workers</dt>",
        *([f"<dt>{s.stuck} stuck requests (running over StuckRequestTimeout, {s.stuck_s:g} s)</dt>"]
          if s.stuck_s > 0 else []),
        "</dl>",
        f"<pre>{_grid(s.scoreboard)}</pre>",
        "<p>Scoreboard Key:<br>",
        " ".join(f"\"<b><code>{k}</code></b>\" {v}," for k, v in LEGEND.items()).rstrip(",") + "</p>",
    ]
    if extended:
        parts.append(_worker_table(s))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _worker_table(s: Summary) -> str:
    esc = html.escape
    head = ("<table border=\"0\"><tr><th>Srv</th><th>PID</th><th>Acc</th><th>M</th><th>SS</th>"
            "<th>Bytes</th><th>Client</th><th>VHost</th><th>Request</th></tr>")
    rows = []
    for r in s.rows:
        since = int(s.now - r.last_used) if r.last_used else 0
        # Acc is httpd's connection/child/slot; the per-connection count is not kept (it would
        # cost a scoreboard store per connection), hence "-".
        rows.append(f"<tr><td>{r.slot}-{r.thread}</td><td>{r.pid or '-'}</td>"
                    f"<td>-/{r.child_accesses}/{r.accesses}</td>"
                    f"<td><b>{esc(r.letter)}</b></td><td>{since}{' <b>stuck</b>' if r.stuck else ''}"
                    f"</td><td>{r.bytes_served}</td>"
                    f"<td>{esc(r.client)}</td><td>{esc(r.vhost)}</td><td>{esc(r.request)}</td></tr>")
    return head + "".join(rows) + "</table>"


def _grid(letters: str, width: int = 64) -> str:
    return "\n".join(letters[i:i + width] for i in range(0, len(letters), width))


def _http_time(t: float) -> str:
    return time.strftime("%A, %d-%b-%Y %H:%M:%S %Z", time.localtime(t))


def _human_uptime(secs: int) -> str:
    days, rem = divmod(secs, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, seconds = divmod(rem, 60)
    units = [(days, "day"), (hours, "hour"), (minutes, "minute"), (seconds, "second")]
    words = [f"{n} {u}{'s' if n != 1 else ''}" for n, u in units if n]
    return " ".join(words) or "0 seconds"


def _query_flags(query: bytes) -> dict[str, str]:
    out = {}
    for part in query.decode("latin-1").replace(";", "&").split("&"):
        key, _, value = part.partition("=")
        if key:
            out[key] = value
    return out


class StatusHandler:
    """The "server-status" handler (inline: it only copies memory and formats text)."""

    kind = "inline"

    def __call__(self, ctx: Any) -> Response:
        if ctx.request.method not in ("GET", "HEAD"):
            return Response(405, [("Allow", "GET, HEAD, OPTIONS"), ("Content-Type", "text/plain")],
                            b"Method Not Allowed\n")
        snap = snapshot(ctx.mpm)
        if snap is None:
            return Response(503, [("Content-Type", "text/plain")], b"no scoreboard in this process\n")
        query = getattr(ctx.mpm, "query", None)
        summary = aggregate(snap, time.time(),
                            float(getattr(ctx.server, "stuck_request_timeout", 0) or 0),
                            bool(query(Query.REQUEST_RECORDS)) if query is not None else True)
        summary.cpu, summary.load = cpu_times(summary.pids), load_average()
        flags = _query_flags(ctx.request.query)
        host = ctx.host().rsplit(":", 1)[0] if ctx.host() else (getattr(ctx.server, "server_name", "") or "localhost")
        mpm_name = getattr(ctx.mpm, "name", "") or "unknown"
        version = _version()
        headers = [("Cache-Control", "no-cache")]
        if "auto" in flags:
            body = render_auto(summary, host, mpm_name, version)
            headers.append(("Content-Type", "text/plain; charset=ISO-8859-1"))
        else:
            extended = bool(getattr(ctx.server, "extended_status", False))
            body = render_html(summary, host, mpm_name, version, extended)
            headers.append(("Content-Type", "text/html; charset=ISO-8859-1"))
            if flags.get("refresh", "").isdigit():
                headers.append(("Refresh", flags["refresh"]))
        return Response(200, headers, body.encode("latin-1", "replace"))


def _version() -> str:
    import mpmd
    return f"{getattr(mpmd, 'SERVER_SOFTWARE', 'mpmd')}/{mpmd.__version__}"


class StatusModule(Module):
    name: ClassVar[str] = "status_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_status.c", "mod_status")
    DIRECTIVES: ClassVar[list[Directive]] = DIRECTIVES
    builtin: ClassVar[bool] = True
    # httpd: loading mod_status turns ExtendedStatus on unless the config says Off
    # (config.loader applies it when a LoadModule line names this module).
    defaults_when_loaded: ClassVar[dict[str, Any]] = {"extended_status": True}

    def __init__(self) -> None:
        self.handlers = {HANDLER_NAME: StatusHandler()}
