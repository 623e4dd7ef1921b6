"""core/expr.py: ap_expr parsing (errors with positions) and evaluation against a request."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mpmd.config.loader import load_config
from mpmd.core.exchange import ConnInfo, RequestContext
from mpmd.core.expr import ExprError, ExprEvalError, compile_expr
from mpmd.http.events import Request


def _ctx(tmp_path: Path, *, method: str = "GET", target: str = "/a/b.html?x=1&y=2",
         headers: dict[str, str] | None = None, scheme: str = "http",
         client: str = "10.1.2.3", useragent: str | None = None) -> RequestContext:
    path, _, query = target.partition("?")
    fields = {"host": "www.example.com:8080", "user-agent": "Mozilla/5.0 Bot",
              **{k.lower(): v for k, v in (headers or {}).items()}}
    request = Request(method, target.encode(), path.encode(), query.encode(), "1.1",
                      tuple((k.encode(), v.encode()) for k, v in fields.items()),
                      True, False, None, False)
    server = load_config(text=f'Listen 127.0.0.1:0\nDocumentRoot "{tmp_path}"\nServerName srv.example\n')
    ctx = RequestContext(request, ConnInfo((client, 5555), ("127.0.0.1", 8080), scheme), server)
    ctx.uri_path = path
    ctx.filename = str(tmp_path) + path
    ctx.env = {"APP": "prod"}
    ctx.notes = {"n1": "note-value"}
    if useragent:
        ctx.useragent = (useragent, 1)
    return ctx


@pytest.fixture
def ctx(tmp_path: Path) -> RequestContext:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b.html").write_text("x")
    (tmp_path / "empty").write_text("")
    os.symlink(tmp_path / "empty", tmp_path / "link")
    return _ctx(tmp_path)


TRUE = [
    "true", "!false", "true && !false", "false || true", "(false || true) && true",
    "%{HTTP_HOST} == 'www.example.com:8080'", "%{HTTP_HOST} = \"www.example.com:8080\"",
    "%{REQUEST_URI} == '/a/b.html'", "%{REQUEST_METHOD} == 'GET'",
    "%{REQUEST_SCHEME} == 'http'", "%{HTTPS} == 'off'", "%{QUERY_STRING} == 'x=1&y=2'",
    "%{REMOTE_ADDR} == '10.1.2.3'", "%{SERVER_NAME} == 'www.example.com'",
    "%{SERVER_PORT} == '8080'", "%{THE_REQUEST} == 'GET /a/b.html?x=1&y=2 HTTP/1.1'",
    "%{HTTP_USER_AGENT} =~ /bot/i", "%{HTTP_USER_AGENT} !~ /bot/", "%{http_user_agent} =~ /Bot$/",
    "%{REQUEST_URI} =~ m#^/a/(\\w+)\\.html# && $1 == 'b'",
    "%{REQUEST_URI} =~ m#^/(a)/(b)# && '$2-$1' == 'b-a' && $0 == '/a/b'",
    "'a' < 'b'", "'b' >= 'a'", "'10' < '9'", "10 -gt 9", "2 -le 2", "1 -ne 2", "3 -eq 3",
    "%{REQUEST_METHOD} in {'PUT', 'GET'}", "tolower(%{HTTP_HOST}) == 'www.example.com:8080'",
    "toupper('ab') == 'AB'", "escape('a b/c') == 'a%20b/c'", "unescape('a%20b') == 'a b'",
    "req('User-Agent') == 'Mozilla/5.0 Bot'", "http('user-agent') =~ /Mozilla/",
    "env('APP') == 'prod'", "note('n1') == 'note-value'", "env('n1') == 'note-value'",
    "'%{tolower:%{REQUEST_METHOD}}' == 'get'", "%{REQUEST_METHOD} . '-' . 'x' == 'GET-x'",
    "-f %{REQUEST_FILENAME}", "-d %{DOCUMENT_ROOT}", "!-d %{REQUEST_FILENAME}",
    "-e %{REQUEST_FILENAME}", "-s %{REQUEST_FILENAME}", "!-s '%{DOCUMENT_ROOT}/empty'",
    "-L '%{DOCUMENT_ROOT}/link'", "-l '%{DOCUMENT_ROOT}/link'", "!-f '%{DOCUMENT_ROOT}/none'",
    "-n %{HTTP_HOST}", "-z %{HTTP_X_NONE}", "-z ''", "-T 'on'", "!-T 'off'",
    "%{REMOTE_ADDR} -ipmatch '10.0.0.0/8'", "-R '10.1.0.0/16'", "!(%{REMOTE_ADDR} -ipmatch '::1')",
    "%{REQUEST_URI} -strmatch '/a/*.html'", "%{REQUEST_URI} -strcmatch '/A/*.HTML'",
    "!(%{REQUEST_URI} -fnmatch '/*.html')", "%{REQUEST_URI} -fnmatch '/*/*.html'",
    "%{HTTP_X_MISSING} == ''", "'it\\'s' == \"it's\"",
]

FALSE = [
    "false", "!true", "true && false", "%{HTTPS} == 'on'", "%{HTTP_HOST} != %{HTTP_HOST}",
    "%{REQUEST_URI} =~ /^\\/b/", "9 -gt 10", "%{REQUEST_METHOD} in {'PUT'}",
    "-d %{REQUEST_FILENAME}", "-f '/no/such/file'", "-n ''", "%{REMOTE_ADDR} -ipmatch '192.0.2.0/24'",
    "%{REQUEST_URI} =~ m#nomatch(.)# || $1 == 'x'",
]


@pytest.mark.parametrize("text", TRUE)
def test_true(ctx: RequestContext, text: str) -> None:
    assert compile_expr(text).evaluate(ctx) is True, text


@pytest.mark.parametrize("text", FALSE)
def test_false(ctx: RequestContext, text: str) -> None:
    assert compile_expr(text).evaluate(ctx) is False, text


def test_variables_from_the_request(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, scheme="https", useragent="203.0.113.9")
    assert compile_expr("%{HTTPS} == 'on' && %{REQUEST_SCHEME} == 'https'").evaluate(ctx)
    # %{REMOTE_ADDR} is the useragent address (mod_remoteip), the peer without it
    assert compile_expr("%{REMOTE_ADDR} == '203.0.113.9'").evaluate(ctx)
    assert compile_expr("%{CONN_REMOTE_ADDR} == '10.1.2.3'").evaluate(ctx)


def test_integer_comparison_of_a_word_is_an_evaluation_error(ctx: RequestContext) -> None:
    with pytest.raises(ExprEvalError):
        compile_expr("%{HTTP_HOST} -lt 3").evaluate(ctx)


@pytest.mark.parametrize("text, pos, words", [
    ("", 0, "empty expression"),
    ("%{HTTP_HOST} ==", 15, "unexpected end"),
    ("(true", 5, "unexpected end"),
    ("true false", 5, "syntax error near 'false'"),
    ("%{NO_SUCH_VAR} == 'a'", 0, "variable 'NO_SUCH_VAR' does not exist"),
    ("'a' == 'b' && %{HTTP_HOST", 14, "unterminated %{"),
    ("'abc == 'b'", 10, "unterminated string"),
    ("-q 'x'", 0, "unknown unary operator '-q'"),
    ("'a' -foo 'b'", 4, "unknown binary operator '-foo'"),
    ("%{REQUEST_URI} =~ /a(/", 18, "cannot compile regular expression"),
    ("%{REQUEST_URI} =~ /abc", 18, "unterminated regular expression"),
    ("%{REQUEST_URI} =~ /a/q", 21, "unknown regular expression flag 'q'"),
    ("%{REQUEST_URI} =~ 'a'", 18, "a regular expression must follow"),
    ("nosuch('a') == 'a'", 0, "unknown function 'nosuch'"),
    ("'a' in {'a' 'b'}", 12, "syntax error near"),
    ("'a' ~ 'b'", 4, "unexpected character '~'"),
    ("-F '/x'", 0, "is not supported"),
])
def test_parse_errors_say_where(text: str, pos: int, words: str) -> None:
    with pytest.raises(ExprError) as info:
        compile_expr(text)
    assert info.value.pos == pos, (text, str(info.value))
    assert words in info.value.message


def test_if_parse_error_is_a_config_error_at_its_line() -> None:
    from mpmd.config.model import ConfigError
    with pytest.raises(ConfigError) as info:
        load_config(text='Listen 127.0.0.1:0\n\n<If "%{HTTP_HOST} =~ /a(/">\n</If>\n')
    assert info.value.line == 3
    assert "Cannot parse expression in <If>" in info.value.message


def test_if_sections_merge_last_and_chain(tmp_path: Path) -> None:
    text = (f'Listen 127.0.0.1:0\nDocumentRoot "{tmp_path}"\nServerSignature Off\n'
            '<If "%{HTTP_HOST} =~ /^www/">\n  ServerSignature On\n</If>\n'
            '<Location /a>\n  ServerSignature EMail\n'
            '  <If "%{REQUEST_METHOD} == \'POST\'">\n    SetHandler a\n  </If>\n'
            '  <ElseIf "true">\n    SetHandler b\n  </ElseIf>\n'
            '  <Else>\n    SetHandler c\n  </Else>\n</Location>\n')
    ctx = _ctx(tmp_path)
    server = load_config(text=text)
    ctx.server = server
    assert server.has_if
    plain = server.dir_config(ctx.filename, "/b")
    dc, evaluated = server.if_config(plain, ctx)
    assert evaluated and dc.server_signature == "On"
    located = server.dir_config(ctx.filename, "/a/b.html")
    dc, _ = server.if_config(located, ctx)
    assert dc.server_signature == "On"            # the server's <If> after <Location>
    assert dc.set_handler == "b" and located.set_handler is None
    assert server.if_config(located, ctx)[0] is dc          # the merge is cached
    assert not load_config(text="Listen 127.0.0.1:0\n").has_if
