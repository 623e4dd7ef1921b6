"""nginx MPM without sockets: directives, settings, and HttpProtocol on a fake transport.

The fake transport records writes (uvicorn's MockTransport pattern); the loop is a real asyncio
loop that is never run unless a test needs it.
"""

from __future__ import annotations

import asyncio
import re
import threading
from types import SimpleNamespace

import pytest

from mpmd.config.loader import load_config
from mpmd.core.log import ErrorLog
from mpmd.mpm.base import Runtime
from mpmd.mpm.nginx import DIRECTIVES, Nginx, check, cpu_count, settings
from mpmd.core.body import RequestBody
from mpmd.mpm.nginx.loop import LoopWorker
from mpmd.mpm.nginx.protocol import HttpProtocol
from mpmd.scoreboard.board import Scoreboard
from tests.support.confbuilder import directive_values

GET = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"


def directive(name):
    return next(d for d in DIRECTIVES if d.name == name)


def test_worker_processes_auto_and_bounds():
    conv = directive("WorkerProcesses").value
    assert conv(["auto"]) == 0 and conv(["4"]) == 4
    for bad in (["0"], ["x"], ["2000"]):
        with pytest.raises(ValueError):
            conv(bad)
    assert settings(directive_values(DIRECTIVES, worker_processes=0)).processes == cpu_count()
    assert settings(directive_values(DIRECTIVES, worker_processes=3)).processes == 3


def test_defaults_and_scoreboard_room_for_a_graceful_generation():
    s = settings(directive_values(DIRECTIVES))
    assert (s.processes, s.connections, s.reuse_port) == (1, 16384, False)
    assert Nginx.scoreboard_limits(directive_values(DIRECTIVES, worker_processes=3)) == (6, 1)
    assert check(directive_values(DIRECTIVES, worker_connections=4))[0].id == "MPMD0602"


def test_loads_from_httpd_conf(tmp_path):
    cfg = load_config(text=f"LoadModule mpm_nginx_module modules/mod_mpm_nginx.so\n"
                           f"Listen 127.0.0.1:0\nDocumentRoot {tmp_path}\n"
                           "WorkerProcesses auto\nWorkerConnections 100\nReusePort On\n")
    assert cfg.mpm_name == "nginx"
    s = settings(cfg)
    assert s.processes == cpu_count() and s.connections == 100 and s.reuse_port


def test_directives_need_the_nginx_mpm():
    from mpmd.config.loader import ConfigError
    with pytest.raises(ConfigError):
        load_config(text="LoadModule mpm_prefork_module x.so\nListen 80\nWorkerConnections 10\n")


# -- HttpProtocol on a fake transport -------------------------------------------------------------

class FakeTransport:
    def __init__(self):
        self.out = bytearray()
        self.closed = self.eof = self.paused = False

    def write(self, data):
        self.out += data

    def get_extra_info(self, name):
        return ("127.0.0.1", 5555)

    def pause_reading(self):
        self.paused = True

    def resume_reading(self):
        self.paused = False

    def can_write_eof(self):
        return True

    def write_eof(self):
        self.eof = True

    def close(self):
        self.closed = True

    def abort(self):
        self.closed = True


@pytest.fixture
def worker(tmp_path):
    (tmp_path / "index.html").write_bytes(b"hello\n")
    cfg = load_config(text=f"LoadModule mpm_nginx_module x.so\nListen 127.0.0.1:0\n"
                           f"DocumentRoot {tmp_path}\nKeepAliveTimeout 5\nTimeout 7\n")
    mpm = Nginx(cfg, [], Scoreboard(2, 1), Runtime(log=ErrorLog(), single_process=True))
    w = LoopWorker(mpm, 0)
    w.loop = asyncio.new_event_loop()
    w.loop_thread = threading.get_ident()
    w.ws = mpm.scoreboard.worker(0, 0)
    w.done = w.loop.create_future()
    yield w
    w.loop.close()


def connect(w):
    proto, transport = HttpProtocol(w), FakeTransport()
    w.nconns += 1
    proto.connection_made(transport)
    return proto, transport


def test_pipelined_requests_answered_in_order_and_kept_alive(worker):
    proto, t = connect(worker)
    proto.data_received(GET + b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n" + GET)
    statuses = re.findall(rb"HTTP/1.1 (\d{3}) ", bytes(t.out))
    assert statuses == [b"200", b"404", b"200"]
    assert proto in worker.keepalive and not proto.busy and not t.closed
    assert proto.deadline == pytest.approx(worker.loop.time() + 5, abs=0.5)


def test_fresh_connection_then_keepalive_is_fifo(worker):
    a, _ = connect(worker)
    b, _ = connect(worker)
    assert list(worker.fresh) == [a, b]
    a.data_received(GET)
    b.data_received(GET)
    assert list(worker.keepalive) == [a, b]
    assert worker.evict_one() and list(worker.keepalive) == [b]     # the oldest goes first
    assert worker.nconns == 1


def test_partial_head_times_out_with_408(worker):
    proto, t = connect(worker)
    proto.data_received(b"GET /index.html HTTP/1.1\r\nHost:")
    assert proto in worker.busy and proto.timed
    # the smaller of RequestReadTimeout's header stage (20 s) and Timeout (7 s) for a read
    assert proto.deadline == pytest.approx(worker.loop.time() + 7, abs=0.5)
    proto.on_timeout()                               # the sweep came early: it waits again
    assert t.out == b"" and not proto.lingering
    proto.clock.last_s = worker.loop.time() - 7      # no byte for Timeout
    proto.on_timeout()
    assert t.out.startswith(b"HTTP/1.1 408") and t.eof and proto.lingering


def test_idle_expiry_in_the_sweep_is_silent(worker):
    proto, t = connect(worker)
    proto.data_received(GET)
    t.out.clear()
    proto.deadline = 0.0                             # long past
    worker.loop.call_later = lambda *a: None        # one sweep only
    worker._sweep()
    assert t.closed and t.out == b"" and worker.nconns == 0


def test_bad_request_is_answered_and_lingers(worker):
    proto, t = connect(worker)
    proto.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    assert t.out.startswith(b"HTTP/1.1 400") and b"Connection: close" in t.out and t.eof


def test_request_body_never_waits_on_the_loop_and_aread(worker):
    proto, t = connect(worker)
    request = SimpleNamespace(expect_continue=True)
    ch = RequestBody(request, proto.conn, 10, proto)
    assert ch.read(5) == b"" and t.out == b"HTTP/1.1 100 Continue\r\n\r\n"   # Rule 3, no wait
    ch.feed(b"abc")
    ch.feed(b"def")
    assert ch.read(4) == b"abcd"

    async def rest():
        first = await ch.aread(10)
        ch.finish()
        return first, await ch.aread(10)
    assert worker.loop.run_until_complete(rest()) == (b"ef", b"")
    ch2 = RequestBody(request, proto.conn, 4, proto)
    ch2.feed(b"12345")
    assert ch2.error is not None and ch2.error.status == 413
