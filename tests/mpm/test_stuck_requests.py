"""StuckRequestTimeout's pure parts: the master's watch over the scoreboard (mpm/common.py
Rule 8), its log words, the -t checks (config/check.py) and mod_status's count.  No sockets."""

from __future__ import annotations

import pytest

from mpmd.config.loader import ConfigError, load_config
from mpmd.modules import mod_status
from mpmd.mpm.common import Child, StuckRequest, StuckWatch, is_stuck, log_text
from mpmd.scoreboard.board import Scoreboard
from mpmd.scoreboard.layout import Status

LIMIT = 10.0


def test_only_a_busy_request_past_the_limit_is_stuck():
    assert is_stuck(Status.BUSY_WRITE, 100.0, 111.0, LIMIT)
    assert is_stuck(Status.BUSY_LOG, 100.0, 111.0, LIMIT)
    assert not is_stuck(Status.BUSY_WRITE, 100.0, 109.0, LIMIT)      # not yet
    assert not is_stuck(Status.BUSY_WRITE, 100.0, 111.0, 0.0)        # 0 = off
    # between requests last_used is the last one's start: never stuck there
    for status in (Status.READY, Status.BUSY_KEEPALIVE, Status.BUSY_READ, Status.CLOSING,
                   Status.GRACEFUL, Status.DEAD):
        assert not is_stuck(status, 100.0, 1000.0, LIMIT)
    assert not is_stuck(Status.BUSY_WRITE, 0.0, 1000.0, LIMIT)       # never began one


def test_begin_writes_the_start_time_and_the_status():
    sb = Scoreboard(1, 1)
    ws = sb.worker(0, 0)
    ws.reset(4242, Status.READY)
    ws.begin(Status.BUSY_WRITE, 123.5)
    rec = sb.record(0, 0)
    assert (rec.status, rec.last_used) == (Status.BUSY_WRITE, 123.5)
    ws.finish(100, 123.5, Status.BUSY_KEEPALIVE)
    rec = sb.record(0, 0)
    assert (rec.status, rec.last_used, rec.access_count) == (Status.BUSY_KEEPALIVE, 123.5, 1)


def board_with(slots: list[tuple[int, int, float, bytes]]) -> tuple[Scoreboard, list[Child]]:
    """(slot, status, started, request line) per worker of a 1-thread board."""
    sb = Scoreboard(4, 1)
    children = []
    for slot, status, started, line in slots:
        pid = 1000 + slot
        sb.set_process(slot, pid, 0)
        ws = sb.worker(slot, 0)
        ws.reset(pid, Status.READY)
        ws.begin(status, started)
        ws.start_request(b"10.0.0.7", line, b"www.example")
        children.append(Child(pid, slot, 0, 0.0))
    return sb, children


def test_the_watch_reports_each_stuck_request_once():
    sb, kids = board_with([(0, Status.BUSY_WRITE, 100.0, b"GET /slow HTTP/1.1"),
                           (1, Status.BUSY_WRITE, 195.0, b"GET /fast HTTP/1.1"),
                           (2, Status.BUSY_KEEPALIVE, 50.0, b"GET /done HTTP/1.1")])
    watch = StuckWatch()
    found = watch.scan(sb, kids, 200.0, LIMIT)
    assert [(c.pid, s.request, s.client, s.vhost, s.started) for c, s in found] == \
        [(1000, "GET /slow HTTP/1.1", "10.0.0.7", "www.example", 100.0)]
    assert watch.scan(sb, kids, 201.0, LIMIT) == []               # logged once
    sb.worker(1, 0).begin(Status.BUSY_WRITE, 195.0)
    assert [s.request for _, s in watch.scan(sb, kids, 206.0, LIMIT)] == ["GET /fast HTTP/1.1"]
    # the first one ends and its worker starts a new request, which gets stuck in its turn
    sb.worker(0, 0).finish(10, 100.0, Status.BUSY_KEEPALIVE)
    assert watch.scan(sb, kids, 207.0, LIMIT) == []
    sb.worker(0, 0).begin(Status.BUSY_WRITE, 208.0)
    found = watch.scan(sb, kids, 219.0, LIMIT)
    assert [(s.slot, s.started) for _, s in found] == [(0, 208.0)]


def test_the_log_words_name_the_request_the_client_and_how_long():
    stuck = StuckRequest(4242, 3, 0, 100.0, "10.0.0.7", 'GET /a"\xe9 HTTP/1.1', "www.example")
    text = stuck.describe(112.25)
    assert text == ('stuck request: "GET /a\\"\\xe9 HTTP/1.1" from 10.0.0.7 to www.example has '
                    "run 12.2 s, over StuckRequestTimeout (pid 4242, scoreboard slot 3-0)")
    assert log_text("a\nb\\") == "a\\x0ab\\\\"


def conf_text(mpm: str, *lines: str) -> str:
    return "\n".join([f"LoadModule mpm_{mpm}_module modules/mod_mpm_{mpm}.so",
                      "Listen 127.0.0.1:0", *lines]) + "\n"


def test_off_by_default():
    cfg = load_config(text=conf_text("prefork"))
    assert (cfg.stuck_request_timeout, cfg.stuck_request_action) == (0.0, "log")


@pytest.mark.parametrize("mpm", ["worker", "event", "nginx"])
def test_replace_is_refused_where_a_process_serves_many_requests(mpm):
    with pytest.raises(ConfigError) as info:
        load_config(text=conf_text(mpm, "StuckRequestTimeout 30", "StuckRequestAction replace"))
    err = info.value
    assert err.line == 4, str(err)
    assert f"StuckRequestAction replace is refused with the {mpm} MPM" in err.message
    assert "serves many requests at once" in err.message


@pytest.mark.parametrize("mpm", ["prefork", "worker", "event", "nginx"])
def test_log_is_accepted_on_every_mpm(mpm):
    cfg = load_config(text=conf_text(mpm, "StuckRequestTimeout 2mi", "StuckRequestAction log"))
    assert cfg.stuck_request_timeout == 120.0
    assert not [p for p in cfg.problems if p.id in ("MPMD0508", "MPMD0509")]


def test_replace_on_prefork_is_accepted_and_without_a_timeout_named_at_its_line():
    cfg = load_config(text=conf_text("prefork", "StuckRequestTimeout 30", "StuckRequestAction replace"))
    assert cfg.stuck_request_action == "replace"
    assert not [p for p in cfg.problems if p.id in ("MPMD0508", "MPMD0509")]
    cfg = load_config(text=conf_text("prefork", "StuckRequestAction replace"))
    [problem] = [p for p in cfg.problems if p.id == "MPMD0509"]
    assert (problem.level, problem.line) == ("warn", 3)
    assert "StuckRequestTimeout is 0" in problem.text


def test_mod_status_counts_and_marks_stuck_workers():
    sb, _ = board_with([(0, Status.BUSY_WRITE, 100.0, b"GET /slow HTTP/1.1"),
                        (1, Status.BUSY_WRITE, 195.0, b"GET /fast HTTP/1.1")])
    snap = sb.snapshot()
    s = mod_status.aggregate(snap, now=200.0, stuck_s=LIMIT)
    assert s.stuck == 1
    assert [r.stuck for r in s.rows if r.letter == "W"] == [True, False]
    auto = mod_status.render_auto(s, "localhost", "prefork", "mpmd/0")
    assert "StuckRequests: 1\n" in auto
    page = mod_status.render_html(s, "localhost", "prefork", "mpmd/0", True)
    assert "1 stuck requests (running over StuckRequestTimeout, 10 s)" in page
    assert "<td>100 <b>stuck</b></td>" in page
    off = mod_status.aggregate(snap, now=200.0)
    assert off.stuck == 0 and "StuckRequests" not in mod_status.render_auto(
        off, "localhost", "prefork", "mpmd/0")


def test_mod_status_takes_a_loops_own_count_where_records_are_per_loop():
    sb, _ = board_with([(0, Status.BUSY_WRITE, 100.0, b"GET /last HTTP/1.1")])
    sb.set_stuck(0, 3)
    s = mod_status.aggregate(sb.snapshot(), now=200.0, stuck_s=LIMIT, request_records=False)
    assert s.stuck == 3 and not any(r.stuck for r in s.rows)
    sb.clear_process(0)
    assert sb.stuck(0) == 0


class FakeProto:
    """What the loop's watch reads of an HttpProtocol (hashable, as a connection is)."""

    def __init__(self, **attrs: object) -> None:
        self.__dict__.update(attrs)


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def warn(self, mid: str, text: str, module: str = "") -> None:
        self.lines.append((mid, text))


def test_the_nginx_loop_watches_its_own_requests(tmp_path):
    """loop.py Rule 5: each request past the limit logged once, its count published; a closed
    connection's request stays watched while a blocking handler holds its thread."""
    from types import SimpleNamespace

    from mpmd.core.log import ErrorLog
    from mpmd.mpm.base import Runtime
    from mpmd.mpm.nginx import Nginx
    from mpmd.mpm.nginx.loop import LoopWorker

    cfg = load_config(text=conf_text("nginx", f"DocumentRoot {tmp_path}", "StuckRequestTimeout 10"))
    mpm = Nginx(cfg, [], Scoreboard(2, 1), Runtime(log=ErrorLog(), single_process=True))
    w = LoopWorker(mpm, 1)
    w.log = log = Recorder()

    def proto(target: bytes, started: float, kind: str = "blocking", closed: bool = False) -> object:
        request = SimpleNamespace(method="GET", target=target, http_version="1.1")
        cycle = SimpleNamespace(start=started, ctx=SimpleNamespace(request=request),
                                policy=SimpleNamespace(vhost=b"www.example"))
        return FakeProto(cycle=cycle, kind=kind, closed=closed,
                         info=SimpleNamespace(client_addr=("10.0.0.9", 5555)))

    slow, fast = proto(b"/slow", 100.0), proto(b"/fast", 195.0)
    gone_thread = proto(b"/thread", 100.0, closed=True)
    gone_task = proto(b"/task", 100.0, kind="async", closed=True)
    for p in (slow, fast, gone_thread, gone_task):
        w.running[p] = False
    assert w.watch_stuck(200.0) == 2
    assert sorted(text.split('"')[1] for _, text in log.lines) == \
        ["GET /slow HTTP/1.1", "GET /thread HTTP/1.1"]
    assert all(mid == "MPMD0110" and "from 10.0.0.9 to www.example" in text
               for mid, text in log.lines)
    assert gone_task not in w.running and mpm.scoreboard.stuck(1) == 2
    assert w.watch_stuck(206.0) == 3 and len(log.lines) == 3        # /fast, once
    slow.cycle = None                                                # it ended
    assert w.watch_stuck(207.0) == 2 and slow not in w.running
