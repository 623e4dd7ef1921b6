"""Scoreboard: layout sizes, one-writer records, snapshot shape, truncation marker."""

from mpmd.scoreboard import layout
from mpmd.scoreboard.board import Scoreboard
from mpmd.scoreboard.layout import STATUS_LETTERS, Status


def test_every_status_has_a_letter_and_letters_are_apaches():
    assert set(STATUS_LETTERS) == set(Status)
    assert "".join(STATUS_LETTERS[s] for s in Status) == ".S_RWKLDCGI"


def test_segment_size_adds_up():
    board = Scoreboard(3, 2)
    assert board.size == layout.GLOBAL.size + 3 * layout.PROCESS.size + 6 * layout.WORKER.size
    assert len(board.mm) == board.size


def test_fresh_board_is_all_dead():
    snap = Scoreboard(2, 2).snapshot()
    assert all(w.status is Status.DEAD for row in snap.workers for w in row)
    assert all(p.pid == 0 for p in snap.processes)


def test_worker_slot_writes_only_its_record():
    board = Scoreboard(2, 2)
    ws = board.worker(1, 0)
    ws.reset(4242)
    ws.set_status(Status.BUSY_WRITE)
    ws.start_request(b"127.0.0.1", b"GET / HTTP/1.1", b"localhost")
    ws.finish_request(100, 12.5)
    ws.finish_request(50, 13.0)
    snap = board.snapshot()
    rec = snap.workers[1][0]
    assert (rec.status, rec.pid, rec.access_count, rec.bytes_served, rec.last_used) == \
        (Status.BUSY_WRITE, 4242, 2, 150, 13.0)
    assert (rec.client, rec.request, rec.vhost, rec.letter) == ("127.0.0.1", "GET / HTTP/1.1", "localhost", "W")
    others = [w for s, row in enumerate(snap.workers) for t, w in enumerate(row) if (s, t) != (1, 0)]
    assert all(w.status is Status.DEAD and w.pid == 0 for w in others)


def test_finish_writes_status_and_counters_and_keeps_the_pid():
    board = Scoreboard(2, 1)
    board.worker(1, 0).reset(4242)
    ws = board.worker(1, 0)
    ws.set_status(Status.BUSY_WRITE)
    ws.finish(100, 12.5, Status.BUSY_KEEPALIVE)
    ws.finish(50, 13.0, Status.CLOSING)
    rec = board.snapshot().workers[1][0]
    assert (rec.status, rec.pid, rec.access_count, rec.bytes_served, rec.last_used) == \
        (Status.CLOSING, 4242, 2, 150, 13.0)
    assert board.snapshot().workers[0][0].status is Status.DEAD
    ws.set_status(Status.CLOSING)         # already C: the handle knows finish wrote it
    assert ws.status == Status.CLOSING


def test_long_request_line_is_cut_with_a_marker():
    board = Scoreboard(1, 1)
    board.worker(0).start_request(b"c" * 100, b"GET /" + b"x" * 500, b"")
    rec = board.snapshot().workers[0][0]
    assert len(rec.request) == layout.REQUEST_BYTES and rec.request.endswith("...")
    assert len(rec.client) == layout.CLIENT_BYTES


def test_process_records_and_clear():
    board = Scoreboard(2, 2)
    board.set_process(1, 99, 3, quiescing=True)
    board.set_status(1, 1, Status.READY)
    assert board.process(1).pid == 99 and board.process(1).quiescing
    board.clear_process(1)
    assert board.process(1).pid == 0
    assert board.statuses(1) == [Status.DEAD, Status.DEAD]


def test_shared_after_fork():
    import os
    board = Scoreboard(1, 1)
    pid = os.fork()
    if pid == 0:
        board.worker(0).set_status(Status.BUSY_KEEPALIVE)
        os._exit(0)
    os.waitpid(pid, 0)
    assert board.status(0) == Status.BUSY_KEEPALIVE


def test_generation():
    board = Scoreboard(1, 1)
    board.set_generation(7)
    assert board.generation == 7 and board.snapshot().generation == 7


def test_counters_land_in_the_layout_at_unaligned_offsets_and_on_either_byte_order():
    """An odd ServerLimit puts worker records at offsets that are not multiples of 8: the
    typed views copy unaligned items, and the big-endian fallback writes the same bytes."""
    from mpmd.scoreboard.board import typed_view
    board = Scoreboard(3, 1)
    ws = board.worker(2, 0)
    offset = board._woff(2, 0)
    assert (offset + layout.W_COUNTERS) % 8 != 0
    ws.reset(77)
    ws.finish(1024, 1234.5, Status.BUSY_KEEPALIVE)
    ws.finish(10, 1240.25, Status.CLOSING)
    raw = bytes(board.mm[offset:offset + layout.WORKER.size])
    status, pid, count, nbytes, last = layout.WORKER.unpack(raw)[:5]
    assert (status, pid, count, nbytes, last) == (Status.CLOSING, 77, 2, 1034, 1240.25)
    for fmt, count, values in (("Q", 2, (2**40 + 3, 5)), ("d", 1, (0.125,)), ("B", 1, (9,))):
        native, fallback = bytearray(16), bytearray(16)
        for buf, little in ((native, True), (fallback, False)):
            view = typed_view(buf, 0, fmt, count, little_endian_host=little)
            for i, value in enumerate(values):
                view[i] = value
            assert [view[i] for i in range(count)] == list(values)
        assert native == fallback
        assert native[:struct_size(fmt) * count] == struct_pack(fmt, values)


def struct_size(fmt):
    import struct
    return struct.calcsize("<" + fmt)


def struct_pack(fmt, values):
    import struct
    return struct.pack("<" + fmt * len(values), *values)


def test_a_new_process_in_a_slot_keeps_the_slot_counters_and_starts_its_own():
    """httpd: access_count/bytes_served belong to the slot and only grow; my_access_count and
    my_bytes_served (the child's) start at 0 for each new process."""
    board = Scoreboard(1, 1)
    ws = board.worker(0, 0)
    ws.reset(100)
    ws.finish(1000, 10.0, Status.READY)
    ws.finish(24, 11.0, Status.READY)
    ws.start_request(b"10.0.0.1", b"GET /old HTTP/1.1")
    board.worker(0, 0).reset(200, Status.STARTING)      # the next child in the same slot
    rec = board.snapshot().workers[0][0]
    assert (rec.pid, rec.status, rec.access_count, rec.bytes_served) == (200, Status.STARTING, 2, 1024)
    assert (rec.child_access_count, rec.child_bytes_served) == (0, 0)
    assert (rec.client, rec.request) == ("", "")
    board.worker(0, 0).finish(6, 12.0, Status.READY)
    rec = board.snapshot().workers[0][0]
    assert (rec.access_count, rec.bytes_served, rec.child_access_count, rec.child_bytes_served) == \
        (3, 1030, 1, 6)
