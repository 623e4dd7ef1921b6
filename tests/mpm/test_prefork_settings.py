"""prefork's directive defaults and httpd's clamps (prefork_check_config)."""

from types import SimpleNamespace

from tests.support.confbuilder import directive_values

from mpmd.mpm.base import Query
from mpmd.mpm.prefork import DIRECTIVES, Prefork, settings


def cfg(**kw):
    return directive_values(DIRECTIVES, **kw)


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


def test_server_limit_hard_max_is_httpd_24s():
    s, problems = settings(cfg(server_limit=50000, max_request_workers=30000))
    assert (s.server_limit, s.max_workers, problems) == (50000, 30000, [])
    s, problems = settings(cfg(server_limit=250000, max_request_workers=30000))
    assert s.server_limit == 200000 and s.max_workers == 30000
    assert [p.text for p in problems] == ["WARNING: ServerLimit of 250000 exceeds compile-time "
                                          "limit of 200000 servers, decreasing to 200000."]


def test_large_server_limit_small_workers_maps_but_does_not_touch_the_scoreboard():
    """ServerLimit 200000 sizes the scoreboard (as httpd's); only MaxRequestWorkers slots run."""
    from mpmd.scoreboard.board import Scoreboard
    from mpmd.scoreboard.layout import GLOBAL, PROCESS, WORKER
    c = cfg(server_limit=200000, max_request_workers=4, start_servers=2)
    assert Prefork.scoreboard_limits(c) == (200000, 1)
    assert Prefork(c, [], None).maintenance_bounds()[2] == 4
    board = Scoreboard(*Prefork.scoreboard_limits(c))
    # address space for every slot; untouched pages cost nothing
    assert board.size == GLOBAL.size + (PROCESS.size + WORKER.size) * 200000


def test_start_servers_below_one_warns_as_httpd():
    for value in (0, -1):
        s, problems = settings(cfg(start_servers=value))
        assert s.start_servers == 1
        assert [(p.id, p.text) for p in problems] == [
            ("MPMD0205", f"WARNING: StartServers of {value} not allowed, increasing to 1.")]
    s, problems = settings(cfg(start_servers=50, max_request_workers=10))
    assert s.start_servers == 10 and [p.id for p in problems] == []     # httpd: silently


def test_negative_values_are_read_and_clamped_not_refused():
    assert {d.name: d.value(["-1"]) for d in DIRECTIVES} == {n: -1 for n in (
        "StartServers", "MinSpareServers", "MaxSpareServers", "MaxRequestWorkers", "ServerLimit")}
    s, _ = settings(cfg(server_limit=-1, max_request_workers=-1, min_spare_servers=-1))
    assert (s.server_limit, s.max_workers, s.min_spare) == (1, 1, 1)


def test_defaults_give_no_problems():
    s, problems = settings(cfg())
    assert problems == [] and (s.start_servers, s.min_spare, s.max_spare, s.max_workers) == (5, 5, 10, 256)


def test_query_table():
    m = Prefork(cfg(max_request_workers=10, server_limit=20), [], None)
    assert m.query(Query.IS_THREADED) == 0 and m.query(Query.IS_FORKED) == 1
    assert m.query(Query.MAX_DAEMONS) == 10 and m.query(Query.HARD_LIMIT_DAEMONS) == 20
    assert Prefork.scoreboard_limits(cfg(server_limit=20)) == (20, 1)
