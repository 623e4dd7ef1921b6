"""wrk output parsing and command lines (captured wrk 4.1 output in data/)."""

from pathlib import Path

import pytest

from mpmd.bench.wrk import parse_size, parse_time, parse_wrk, wrk_command

DATA = Path(__file__).parent / "data"


def test_parse_plain_keepalive_off_run():
    r = parse_wrk((DATA / "wrk_close.txt").read_text())
    assert r.requests == 21690
    assert r.rps == pytest.approx(21680.94)
    assert r.duration_s == pytest.approx(1.0)
    assert r.latency_pct_s["99"] == pytest.approx(355e-6)
    assert r.latency_avg_s == pytest.approx(146.35e-6)
    assert r.latency_max_s == pytest.approx(3.53e-3)
    assert r.non_2xx_3xx == 0 and r.socket_errors == 0
    assert r.transfer_bytes_per_s == int(4.82 * 1024 * 1024)


def test_parse_non_2xx_responses():
    r = parse_wrk((DATA / "wrk_non2xx.txt").read_text())
    assert r.non_2xx_3xx == 101549 == r.requests
    assert r.p99_s == pytest.approx(132e-6)


def test_parse_socket_errors():
    r = parse_wrk((DATA / "wrk_socket_errors.txt").read_text())
    assert (r.errors_connect, r.errors_read, r.errors_write, r.errors_timeout) == (3, 155, 2, 41)
    assert r.socket_errors == 201
    assert r.non_2xx_3xx == 17
    assert r.latency_max_s == pytest.approx(1.99)
    d = r.to_dict()
    assert d["socket_errors"] == 201 and d["p99_s"] == pytest.approx(0.20133)


def test_output_without_rate_is_an_error():
    with pytest.raises(ValueError):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


@pytest.mark.parametrize("text,seconds", [("80.00us", 80e-6), ("1.5ms", 1.5e-3),
                                          ("2.00s", 2.0), ("1.00m", 60.0)])
def test_parse_time(text, seconds):
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text,size", [("512B", 512), ("1.00KB", 1024), ("2.00MB", 2 * 1024 ** 2)])
def test_parse_size(text, size):
    assert parse_size(text) == size


def test_keepalive_off_adds_connection_close_header():
    on = wrk_command("http://127.0.0.1:1/x", threads=1, connections=64, duration_s=5,
                     keep_alive=True)
    off = wrk_command("http://127.0.0.1:1/x", threads=1, connections=64, duration_s=5,
                      keep_alive=False)
    assert on[:4] == ["wrk", "-t1", "-c64", "-d5s"]
    assert "Connection: close" not in on
    assert off[off.index("-H") + 1] == "Connection: close"
