"""mpmd.core.respond: finalize tables, ServerTokens, the cached date."""

from __future__ import annotations

import platform

import pytest

from mpmd.core.exchange import ConnInfo, FileBody, MultipartBody, RequestContext, Response
from mpmd.core.respond import (HttpDate, finalize, finalize_plan, server_tokens_header)
from mpmd.http.events import Request

DATE = b"Sun, 06 Nov 1994 08:49:37 GMT"


def req(method: str = "GET", version: str = "1.1", keep_alive: bool = True) -> Request:
    return Request(method=method, target=b"/", path=b"/", query=b"", http_version=version,
                   headers=((b"host", b"h"),), keep_alive=keep_alive, expect_continue=False,
                   content_length=None, chunked=False)


def fields(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")
    assert lines[-2:] == ["", ""]
    out: dict[str, str] = {}
    for line in lines[1:-2]:
        name, _, value = line.partition(": ")
        assert name.lower() not in out, f"duplicate {name}"
        out[name.lower()] = value
    return out


def run(request: Request | None, response: Response, allowed: bool = True) -> tuple[str, dict[str, str], bool]:
    head, keep = finalize(request, response, keep_alive_allowed=allowed, server_header="mpmd",
                          date=DATE)
    return head.split(b"\r\n", 1)[0].decode(), fields(head), keep


class _File:
    def fileno(self) -> int:
        return -1

    def read(self, n: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        pass


# (request, response, allowed) -> (status line, expected fields subset, absent fields, keep)
CASES = [
    ("bytes body, 1.1", req(), Response(200, [("Content-Type", "text/plain")], b"hello"), True,
     "HTTP/1.1 200 OK", {"content-length": "5", "date": DATE.decode(), "server": "mpmd"},
     ["connection", "transfer-encoding"], True),
    ("driver forbids keep-alive", req(), Response(200, [], b"x"), False,
     "HTTP/1.1 200 OK", {"connection": "close", "content-length": "1"}, [], False),
    ("client asked close", req(keep_alive=False), Response(200, [], b"x"), True,
     "HTTP/1.1 200 OK", {"connection": "close"}, [], False),
    ("handler asked close", req(), Response(200, [], b"x", close_connection=True), True,
     "HTTP/1.1 200 OK", {"connection": "close"}, [], False),
    ("handler Connection: close header", req(), Response(200, [("Connection", "close")], b""), True,
     "HTTP/1.1 200 OK", {"connection": "close", "content-length": "0"}, [], False),
    ("1.0 keep-alive echo", req(version="1.0"), Response(200, [], b"x"), True,
     "HTTP/1.1 200 OK", {"connection": "keep-alive", "content-length": "1"}, [], True),
    ("iterable on 1.1 is chunked", req(), Response(200, [], iter([b"a"])), True,
     "HTTP/1.1 200 OK", {"transfer-encoding": "chunked"}, ["content-length", "connection"], True),
    ("iterable on 1.0 is close-delimited", req(version="1.0"), Response(200, [], iter([b"a"])), True,
     "HTTP/1.1 200 OK", {"connection": "close"}, ["content-length", "transfer-encoding"], False),
    ("iterable with handler length", req(), Response(200, [("Content-Length", "3")], iter([b"abc"])),
     True, "HTTP/1.1 200 OK", {"content-length": "3"}, ["transfer-encoding"], True),
    ("HEAD keeps GET's length", req("HEAD"), Response(200, [], b"hello"), True,
     "HTTP/1.1 200 OK", {"content-length": "5"}, ["transfer-encoding"], True),
    ("HEAD with handler length and empty body", req("HEAD"),
     Response(200, [("Content-Length", "1234")], b""), True,
     "HTTP/1.1 200 OK", {"content-length": "1234"}, [], True),
    ("HEAD with iterable: no framing fields", req("HEAD"), Response(200, [], iter([b"a"])), True,
     "HTTP/1.1 200 OK", {}, ["content-length", "transfer-encoding", "connection"], True),
    ("204 has no length", req(), Response(204, [("Content-Length", "5")], b""), True,
     "HTTP/1.1 204 No Content", {}, ["content-length", "transfer-encoding"], True),
    ("304 keeps only a handler length", req(), Response(304, [], b""), True,
     "HTTP/1.1 304 Not Modified", {}, ["content-length", "transfer-encoding"], True),
    ("304 with handler length", req(), Response(304, [("Content-Length", "9")], b""), True,
     "HTTP/1.1 304 Not Modified", {"content-length": "9"}, [], True),
    ("no request (parse error)", None, Response(400, [], b"bad"), True,
     "HTTP/1.1 400 Bad Request", {"connection": "close", "content-length": "3"}, [], False),
    ("file body", req(), Response(200, [], FileBody(_File(), 10, 42)), True,
     "HTTP/1.1 200 OK", {"content-length": "42"}, [], True),
    ("multipart body", req(), Response(206, [], MultipartBody([b"ab", FileBody(_File(), 0, 5)])),
     True, "HTTP/1.1 206 Partial Content", {"content-length": "7"}, [], True),
    ("owned fields are replaced", req(),
     Response(200, [("Date", "x"), ("Server", "evil"), ("Transfer-Encoding", "gzip"),
                    ("content-length", "99"), ("Keep-Alive", "timeout=1")], b"ab"), True,
     "HTTP/1.1 200 OK", {"content-length": "2", "server": "mpmd", "date": DATE.decode()},
     ["transfer-encoding", "keep-alive"], True),
]


@pytest.mark.parametrize("request_,response,allowed,line,present,absent,keep", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_finalize(request_: Request | None, response: Response, allowed: bool, line: str,
                  present: dict[str, str], absent: list[str], keep: bool) -> None:
    status_line, got, keep_alive = run(request_, response, allowed)
    assert status_line == line
    for name, value in present.items():
        assert got.get(name) == value, (name, got)
    for name in absent:
        assert name not in got, (name, got)
    assert keep_alive is keep


def test_handler_headers_keep_their_order_and_spelling() -> None:
    head, _ = finalize(req(), Response(200, [("X-B", "2"), ("Content-Type", "t"), ("x-a", "1")], b""),
                       True, server_header="s", date=DATE)
    assert b"X-B: 2\r\nContent-Type: t\r\nx-a: 1\r\n" in head
    assert head.startswith(b"HTTP/1.1 200 OK\r\nDate: ")


@pytest.mark.parametrize("response,send_body,chunked", [
    (Response(200, [], iter([b"a"])), True, True),
    (Response(200, [], b"a"), True, False),
    (Response(204, [], b""), False, False),
    (Response(101, [], b""), False, False),
])
def test_plan(response: Response, send_body: bool, chunked: bool) -> None:
    plan = finalize_plan(req(), response, True, server_header="s", date=DATE)
    assert (plan.send_body, plan.chunked) == (send_body, chunked)
    assert plan.head.startswith(b"HTTP/1.1 ")


def test_head_plan_sends_no_body() -> None:
    plan = finalize_plan(req("HEAD"), Response(200, [], iter([b"a"])), True, server_header="s",
                         date=DATE)
    assert (plan.send_body, plan.chunked, plan.keep_alive) == (False, False, True)


def test_context_is_accepted_and_server_tokens_come_from_config() -> None:
    class Cfg:
        server_tokens = "Prod"
    ctx = RequestContext(request=req(), conn=ConnInfo(("1.2.3.4", 1), ("127.0.0.1", 80)),
                         server=Cfg())
    head, keep = finalize(ctx, Response(200, [], b""), True)
    assert fields(head)["server"] == "mpmd"
    assert keep


def test_positional_call_as_drivers_use_it() -> None:
    head, keep = finalize(None, Response(400, [], b""), False)
    assert keep is False
    assert b"\r\nDate: " in head and b"\r\nServer: mpmd/" in head


PY = platform.python_version()


@pytest.mark.parametrize("tokens,value", [
    ("Prod", "mpmd"),
    ("prod", "mpmd"),
    ("Major", "mpmd/0"),
    ("Minor", "mpmd/0.1"),
    ("Minimal", "mpmd/0.1.0"),
    ("OS", f"mpmd/0.1.0 ({platform.system()})"),
    ("Full", f"mpmd/0.1.0 (Python/{PY})"),
])
def test_server_tokens(tokens: str, value: str) -> None:
    assert server_tokens_header(tokens) == value


def test_server_tokens_unknown() -> None:
    with pytest.raises(ValueError):
        server_tokens_header("Everything")


def test_http_date_is_cached_per_second() -> None:
    date = HttpDate()
    first = date(784111777.0)
    assert first == DATE
    assert date(784111777.9) is first
    later = date(784111778.2)
    assert later == b"Sun, 06 Nov 1994 08:49:38 GMT"


def test_date_and_server_stamp_per_config_and_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """The joined Date+Server fields are kept per config and rebuilt when the second turns."""
    import mpmd.core.respond as respond

    class Prod:
        server_tokens = "Prod"

    class Major:
        server_tokens = "Major"

    conn = ConnInfo(("1.2.3.4", 1), ("127.0.0.1", 80))
    clock = [784111777.0]

    class Stopped(HttpDate):                 # the clock this test turns by hand
        def http_date(self, now: float | None = None) -> bytes:
            return super().http_date(clock[0])

    monkeypatch.setattr(respond, "_DATE", Stopped())
    heads = {}
    for cfg in (Prod(), Major(), Prod()):
        ctx = RequestContext(request=req(), conn=conn, server=cfg)
        heads.setdefault(type(cfg).__name__, []).append(finalize(ctx, Response(200, [], b""))[0])
    assert fields(heads["Prod"][0])["server"] == "mpmd"
    assert fields(heads["Major"][0])["server"] == "mpmd/0"
    assert fields(heads["Prod"][1])["server"] == "mpmd"
    ctx = RequestContext(request=req(), conn=conn, server=Prod())
    clock[0] = 784111778.5
    assert fields(finalize(ctx, Response(200, [], b""))[0])["date"] == \
        "Sun, 06 Nov 1994 08:49:38 GMT"


def test_plans_of_a_cached_answer_are_remembered_per_second_and_request_kind(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler that hands out the same headers tuple (static files) gets its Plan from the
    memo, but only for the same status, length, method, version, keep-alive and second."""
    import mpmd.core.respond as respond

    clock = [784111777.2]
    monkeypatch.setattr(respond, "_time", lambda: clock[0])
    monkeypatch.setattr(respond, "_PLANS", {})
    headers = (("Content-Type", "text/plain"), ("Content-Length", "5"))
    conn = ConnInfo(("1.2.3.4", 1), ("127.0.0.1", 80))

    class Cfg:
        server_tokens = "Prod"

    cfg = Cfg()

    def plan(method: str = "GET", version: str = "1.1", allowed: bool = True,
             body: bytes = b"hello", server: object = cfg) -> respond.Plan:
        ctx = RequestContext(req(method, version), conn, server)
        return finalize_plan(ctx, Response(200, headers, body), allowed)

    first = plan()
    assert plan() is first                                   # remembered
    assert fields(first.head)["date"] == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert first.keep_alive and first.send_body

    closing = plan(allowed=False)
    assert fields(closing.head)["connection"] == "close" and not closing.keep_alive
    head = plan("HEAD", body=b"")
    assert not head.send_body and fields(head.head)["content-length"] == "5"
    old = plan(version="1.0")
    assert fields(old.head)["connection"] == "keep-alive"
    other = plan(server=type("Full", (), {"server_tokens": "Full"})())
    assert fields(other.head)["server"].startswith("mpmd/")
    assert plan() is first                                   # the others did not replace it

    clock[0] += 1.0                                          # the second turns: a new Date
    later = plan()
    assert later is not first
    assert fields(later.head)["date"] == "Sun, 06 Nov 1994 08:49:38 GMT"

    listed = finalize_plan(RequestContext(req(), conn, cfg), Response(200, list(headers), b"hello"))
    assert listed is not plan()                                  # a list is not remembered
    assert {**fields(listed.head), "date": ""} == {**fields(plan().head), "date": ""}


def test_a_shared_response_keeps_its_plan_and_whole_answer_for_the_second(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A Response made with memo=() (the static cache's, handed out again and again) keeps its
    Plan, with head + body joined, and the drivers' entry (plan_for) reuses it for requests
    of the same second, method, version, keep-alive decision and config; anything else gets
    a Plan of its own, the same as finalize_plan makes."""
    import mpmd.core.respond as respond

    monkeypatch.setattr(respond, "_PLANS", {})
    shared = Response(200, (("Content-Type", "text/plain"),), b"hello", memo=())
    conn = ConnInfo(("1.2.3.4", 1), ("127.0.0.1", 80))

    class Cfg:
        server_tokens = "Prod"

    class FullTokens:
        server_tokens = "Full"

    cfg = Cfg()

    def plan(at: float = 784111777.5, method: str = "GET", version: str = "1.1",
             allowed: bool = True, client_keeps: bool = True, server: object = cfg) -> respond.Plan:
        ctx = RequestContext(req(method, version, client_keeps), conn, server)
        ctx.start_time = at
        kept = respond.plan_for(ctx, shared, allowed)
        fresh = finalize_plan(ctx, Response(200, shared.headers, shared.body, memo=()), allowed)
        assert (kept.head, kept.keep_alive, kept.send_body, kept.whole) == \
            (fresh.head, fresh.keep_alive, fresh.send_body, fresh.whole)
        return kept

    closing = plan(client_keeps=False)                       # Connection: close first
    assert not closing.keep_alive and fields(closing.head)["connection"] == "close"
    first = plan()
    assert first.keep_alive and "connection" not in fields(first.head)
    assert not plan(client_keeps=False).keep_alive           # and the other way round
    first = plan()
    assert first.whole == first.head + b"hello"
    assert fields(first.head)["date"] == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert fields(first.head)["content-length"] == "5"
    assert plan(784111777.9) is first                        # same second: kept
    other = plan(784111777.9, server=FullTokens())           # another config: its own
    assert other is not first and fields(other.head)["server"] != fields(first.head)["server"]
    assert plan(784111777.9) is not first                    # (the memo now holds that one)
    first = plan(784111777.9)
    assert not plan(allowed=False).keep_alive
    assert fields(plan(version="1.0").head)["connection"] == "keep-alive"
    later = plan(784111778.1)
    assert later is not first and fields(later.head)["date"] == "Sun, 06 Nov 1994 08:49:38 GMT"
    assert later.whole == later.head + b"hello"
    head_only = plan(784111778.1, method="HEAD")
    assert not head_only.send_body and head_only.whole is None

    fresh = finalize_plan(RequestContext(req(), conn, cfg),
                          Response(200, (("Content-Type", "text/plain"),), b"hello"))
    assert fresh.whole is None                               # memo=None: nothing kept on it


def test_request_context_field_order_is_what_the_drivers_build_positionally() -> None:
    """Both drivers build RequestContext with every field positional (mpm/conn.py,
    mpm/nginx/protocol.py): a field added or moved must be added there too."""
    from dataclasses import fields as dc_fields
    assert [f.name for f in dc_fields(RequestContext)][:12] == [
        "request", "conn", "server", "body", "uri_path", "path_info", "filename", "handler",
        "dir_config", "notes", "mpm", "start_time"]
