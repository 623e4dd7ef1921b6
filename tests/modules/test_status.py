"""mod_status: aggregate and render from a real (in-process) scoreboard; no sockets."""

from types import SimpleNamespace

from mpmd.modules import mod_status
from mpmd.scoreboard.board import Scoreboard
from mpmd.scoreboard.layout import Status
from tests.modules.wsgi_fakes import make_ctx


def board():
    sb = Scoreboard(2, 3)
    sb.set_process(0, 4242, 1)
    w = sb.worker(0, 0)
    w.reset(4242, Status.BUSY_WRITE)
    w.start_request(b"10.0.0.1", b"GET /<script> HTTP/1.1")
    w.finish_request(2048, 1000.0)
    sb.worker(0, 1).reset(4242, Status.READY)
    k = sb.worker(0, 2)
    k.reset(4242, Status.BUSY_KEEPALIVE)
    k.finish_request(1024, 1000.0)
    k.finish_request(1024, 1000.0)
    return sb


def test_aggregate_counts_like_httpd():
    s = mod_status.aggregate(board().snapshot(), now=2000.0)
    assert s.scoreboard == "W_K..."
    assert (s.busy, s.idle, s.processes) == (2, 1, 1)
    assert s.total_accesses == 3 and s.total_bytes == 4096
    assert s.conns["ConnsTotal"] == 0


def test_render_auto_fields():
    s = mod_status.aggregate(board().snapshot(), now=2000.0)
    text = mod_status.render_auto(s, "localhost", "prefork", "mpmd/0.1.0")
    fields = dict(line.split(": ", 1) for line in text.splitlines()[1:])
    assert fields["Total Accesses"] == "3"
    assert fields["Total kBytes"] == "4"
    assert fields["BusyWorkers"] == "2" and fields["IdleWorkers"] == "1"
    assert fields["Scoreboard"] == "W_K..."
    for name in ("Uptime", "ConnsTotal", "ConnsAsyncKeepAlive", "ConnsAsyncWriting", "ConnsAsyncClosing"):
        assert name in fields


def test_conn_counters_read_from_process_records():
    snap = board().snapshot()
    procs = [SimpleNamespace(pid=p.pid, quiescing=p.quiescing, conns_total=5 if p.pid else 0,
                             conns_async_keepalive=2, conns_async_writing=0, conns_async_closing=1)
             for p in snap.processes]
    snap = SimpleNamespace(restart_time=snap.restart_time, generation=0, processes=procs,
                           workers=snap.workers)
    s = mod_status.aggregate(snap, now=2000.0)
    assert s.conns["ConnsTotal"] == 5 and s.conns["ConnsAsyncKeepAlive"] == 2


def test_html_extended_escapes_request_lines():
    s = mod_status.aggregate(board().snapshot(), now=2000.0)
    page = mod_status.render_html(s, "h", "prefork", "mpmd/0.1.0", extended=True)
    assert "GET /&lt;script&gt; HTTP/1.1" in page and "<script>" not in page
    plain = mod_status.render_html(s, "h", "prefork", "mpmd/0.1.0", extended=False)
    assert "10.0.0.1" not in plain and "W_K..." in plain


def test_handler_auto_and_html():
    mpm = SimpleNamespace(name="prefork", scoreboard=board())
    handler = mod_status.StatusModule().handlers["server-status"]
    ctx = make_ctx(path="/server-status", query=b"auto")
    ctx.mpm = mpm
    resp = handler(ctx)
    assert resp.status == 200 and resp.header("Content-Type").startswith("text/plain")
    assert b"Scoreboard: W_K..." in resp.body
    ctx = make_ctx(path="/server-status", query=b"refresh=5")
    ctx.mpm = mpm
    resp = handler(ctx)
    assert resp.header("Refresh") == "5" and b"<html>" in resp.body
    ctx = make_ctx(path="/server-status", method="POST")
    ctx.mpm = mpm
    assert handler(ctx).status == 405


def test_an_old_generation_still_busy_after_a_graceful_restart_shows_g():
    """httpd marks the workers of a process finishing after a graceful restart "G"
    (Gracefully finishing) and counts them in GracefulWorkers, not as busy or idle."""
    sb = board()
    sb.set_process(0, 4242, 1, True)            # retire_generation: quiescing
    sb.set_process(1, 4343, 2)
    sb.worker(1, 0).reset(4343, Status.READY)
    s = mod_status.aggregate(sb.snapshot(), now=2000.0)
    assert s.scoreboard == "GGG_.."
    assert (s.graceful, s.busy, s.idle, s.stopping) == (3, 0, 1, 1)


def test_the_acc_column_is_child_and_slot_accesses():
    sb = board()
    w = sb.worker(0, 0)
    w.reset(5151, Status.BUSY_WRITE)            # a new child in the slot, then one request
    w.finish_request(10, 1500.0)
    page = mod_status.render_html(mod_status.aggregate(sb.snapshot(), now=2000.0), "h",
                                  "prefork", "mpmd/0.1.0", extended=True)
    assert "<td>5151</td><td>-/1/2</td>" in page


def test_loading_mod_status_turns_extended_status_on_unless_set_off():
    """httpd's status_pre_config: ExtendedStatus On whenever mod_status is loaded; without the
    LoadModule line (the benchmark configs) nothing changes, so no request pays for it."""
    from mpmd.config.loader import load_config
    base = "LoadModule mpm_prefork_module modules/mod_mpm_prefork.so\nListen 127.0.0.1:0\n"
    loaded = base + "LoadModule status_module modules/mod_status.so\n"
    assert load_config(text=loaded).extended_status is True
    assert load_config(text=loaded + "ExtendedStatus Off\n").extended_status is False
    assert load_config(text=base).extended_status is False
    assert load_config(text=base + "ExtendedStatus On\n").extended_status is True
