"""worker/event directives: Apache's defaults and worker_check_config clamps (threaded.settings)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mpmd.config.loader import load_config
from mpmd.mpm import load_mpm_class
from mpmd.mpm.base import Query
from mpmd.mpm.event import DIRECTIVES as EVENT_DIRECTIVES
from mpmd.mpm.threaded import settings
from tests.support.confbuilder import directive_values


def cfg(**kw):
    return directive_values(EVENT_DIRECTIVES, **kw)


def test_apache_defaults():
    s, problems = settings(cfg())
    assert (s.start_servers, s.server_limit, s.thread_limit, s.threads_per_child) == (3, 16, 64, 25)
    assert (s.min_spare, s.max_spare, s.max_workers, s.max_daemons) == (75, 250, 400, 16)
    assert problems == []


CLAMPS = [
    # (settings, field, expected value, message id)
    (dict(max_request_workers=110), "max_workers", 100, "MPMD0404"),       # not a multiple of 25
    (dict(max_request_workers=10), "max_workers", 25, "MPMD0404"),        # below ThreadsPerChild
    (dict(max_request_workers=1000), "max_workers", 400, "MPMD0404"),     # > ServerLimit x TPC
    (dict(threads_per_child=100), "threads_per_child", 64, "MPMD0403"),   # > ThreadLimit
    (dict(threads_per_child=0), "threads_per_child", 1, "MPMD0403"),
    (dict(min_spare_threads=0), "min_spare", 1, "MPMD0405"),
    (dict(max_spare_threads=80), "max_spare", 100, "MPMD0406"),           # < Min + TPC
    (dict(server_limit=0), "server_limit", 1, "MPMD0401"),
    (dict(thread_limit=30000), "thread_limit", 20000, "MPMD0402"),
]


@pytest.mark.parametrize("given, field, expected, msg_id", CLAMPS)
def test_clamps_warn(given, field, expected, msg_id):
    s, problems = settings(cfg(**given))
    assert getattr(s, field) == expected
    assert msg_id in [p.id for p in problems]
    assert all(p.text.startswith("WARNING: ") for p in problems)


# Apache 2.4.68's words (worker AH00300/AH00302/AH00305/AH00307/AH00310/AH00312/AH00320).
WORDING = [
    (dict(server_limit=30000), "ServerLimit of 30000 exceeds compile-time limit of 20000 servers, "
     "decreasing to 20000."),
    (dict(server_limit=-1, max_request_workers=25), "ServerLimit of -1 not allowed, increasing to 1."),
    (dict(thread_limit=30000), "ThreadLimit of 30000 exceeds compile-time limit of 20000 threads, "
     "decreasing to 20000."),
    (dict(thread_limit=0, threads_per_child=1, max_request_workers=16),
     "ThreadLimit of 0 not allowed, increasing to 1."),
    (dict(threads_per_child=30000, max_request_workers=384), "ThreadsPerChild of 30000 exceeds "
     "ThreadLimit of 64 threads, decreasing to 64. To increase, please see the ThreadLimit directive."),
    (dict(threads_per_child=-3, max_request_workers=16),
     "ThreadsPerChild of -3 not allowed, increasing to 1."),
    (dict(start_servers=0), "StartServers of 0 not allowed, increasing to 1."),
    (dict(start_servers=-1), "StartServers of -1 not allowed, increasing to 1."),
]


@pytest.mark.parametrize("given, text", WORDING)
def test_clamp_wording_as_apache(given, text):
    _, problems = settings(cfg(**given))
    assert [p.text for p in problems] == ["WARNING: " + text]


def test_hard_limits_per_mpm():
    """httpd 2.4: ServerLimit <= 20000 for both; ThreadLimit <= 20000 (worker), 100000 (event)."""
    from mpmd.mpm.event import settings as event_settings
    big = cfg(server_limit=30000, thread_limit=200000)
    w, _ = settings(big)
    e, problems = event_settings(big)
    assert (w.server_limit, w.thread_limit) == (20000, 20000)
    assert (e.server_limit, e.thread_limit) == (20000, 100000)
    assert ("WARNING: ThreadLimit of 200000 exceeds compile-time limit of 100000 threads, "
            "decreasing to 100000.") in [p.text for p in problems]
    assert event_settings(cfg(thread_limit=30000))[0].thread_limit == 30000
    assert load_mpm_class("event").scoreboard_limits(cfg(thread_limit=30000)) == (16, 30000)
    assert load_mpm_class("worker").scoreboard_limits(cfg(thread_limit=30000)) == (16, 20000)


def test_multiple_wording_as_apache():
    _, problems = settings(cfg(max_request_workers=110))
    assert problems[0].text == ("WARNING: MaxRequestWorkers of 110 is not an integer multiple of "
                                "ThreadsPerChild of 25, decreasing to nearest multiple 100, for a "
                                "maximum of 4 servers.")


def test_start_servers_never_above_daemon_limit():
    s, _ = settings(cfg(start_servers=10, max_request_workers=50))
    assert s.start_servers == 2


@pytest.mark.parametrize("mpm", ["worker", "event"])
def test_loaded_from_httpd_conf_and_queried(mpm, tmp_path):
    text = (f"LoadModule mpm_{mpm}_module modules/mod_mpm_{mpm}.so\nListen 127.0.0.1:0\n"
            f"DocumentRoot {tmp_path}\nThreadsPerChild 4\nMaxRequestWorkers 10\nServerLimit 3\n")
    config = load_config(text=text)
    assert config.mpm_name == mpm
    cls = load_mpm_class(mpm)
    assert "MPMD0404" in [p.id for p in cls.check_config(config)]
    assert cls.scoreboard_limits(config) == (3, 64)
    m = cls(config, [], None)
    assert m.query(Query.IS_THREADED) == 1 and m.query(Query.MAX_THREADS) == 4
    assert m.query(Query.MAX_DAEMONS) == 2
    assert m.query(Query.IS_ASYNC) == int(mpm == "event")


def test_async_request_worker_factor_only_under_event(tmp_path):
    base = f"Listen 127.0.0.1:0\nDocumentRoot {tmp_path}\nAsyncRequestWorkerFactor 3.5\n"
    config = load_config(text="LoadModule mpm_event_module x.so\n" + base)
    assert config.async_request_worker_factor == 3.5
    with pytest.raises(Exception, match="AsyncRequestWorkerFactor"):
        load_config(text="LoadModule mpm_worker_module x.so\n" + base)
    with pytest.raises(Exception, match="greater than 0"):
        load_config(text="LoadModule mpm_event_module x.so\n" + base.replace("3.5", "0"))


def test_two_mpms_is_an_error_naming_both(tmp_path):
    with pytest.raises(Exception) as exc:
        load_config(text="LoadModule mpm_worker_module a.so\nLoadModule mpm_event_module b.so\n"
                         f"Listen 127.0.0.1:0\nDocumentRoot {tmp_path}\n")
    assert "mpm_worker_module" in str(exc.value) and "mpm_event_module" in str(exc.value)
