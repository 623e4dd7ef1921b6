"""prefork's directive defaults and httpd's clamps (prefork_check_config)."""

from types import SimpleNamespace

from mpmd.mpm.base import Query
from mpmd.mpm.prefork import DIRECTIVES, Prefork, settings


def cfg(**kw):
    return SimpleNamespace(**kw)


def test_defaults_are_apaches():
    defaults = {d.name: d.default for d in DIRECTIVES}
    assert defaults == {"StartServers": 5, "MinSpareServers": 5, "MaxSpareServers": 10,
                        "MaxRequestWorkers": 256, "ServerLimit": 256}
    assert next(d for d in DIRECTIVES if d.name == "MaxRequestWorkers").aliases == ("MaxClients",)
    for d in DIRECTIVES:
        assert d.value([str(d.default)]) == d.default


def test_max_spare_raised_above_min_with_warning():
    s, problems = settings(cfg(min_spare_servers=8, max_spare_servers=4))
    assert s.max_spare == 9
    assert any("MaxSpareServers" in p.text for p in problems)


def test_max_request_workers_clamped_to_server_limit():
    s, problems = settings(cfg(server_limit=16, max_request_workers=100))
    assert s.max_workers == 16
    assert any("exceeds ServerLimit" in p.text for p in problems)


def test_server_limit_hard_max():
    s, problems = settings(cfg(server_limit=50000, max_request_workers=30000))
    assert s.server_limit == 20000 and s.max_workers == 20000
    assert any("20000" in p.text for p in problems)


def test_defaults_give_no_problems():
    s, problems = settings(cfg())
    assert problems == [] and (s.start_servers, s.min_spare, s.max_spare, s.max_workers) == (5, 5, 10, 256)


def test_query_table():
    m = Prefork(cfg(max_request_workers=10, server_limit=20), [], None)
    assert m.query(Query.IS_THREADED) == 0 and m.query(Query.IS_FORKED) == 1
    assert m.query(Query.MAX_DAEMONS) == 10 and m.query(Query.HARD_LIMIT_DAEMONS) == 20
    assert Prefork.scoreboard_limits(cfg(server_limit=20)) == (20, 1)
