"""ErrorLogFormat (core/log.py Rule 6), TraceEnable, DefaultRuntimeDir and EnableMMAP at -t."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from mpmd.config.loader import ConfigError, load_config
from mpmd.core.exchange import ConnInfo, RequestContext
from mpmd.core.log import ErrorLog, ErrorLogFormat
from mpmd.http.events import Request

DEBIAN_LIKE = r"[%{cu}t] [%-m:%l] [pid %P:tid %T] %7F: %E: [client\ %a] %M% ,\ referer\ %{Referer}i"


def facts(ctx=None, level="error", module="core"):
    return {"now": 0.5, "level": level, "module": module, "message": "MPMD0301: boom", "ctx": ctx,
            "server_name": "www.example.com"}


def a_request(headers=((b"host", b"h.example:8080"),)):
    request = Request("GET", b"/x", b"/x", b"", "1.1", headers, True, False, None, False)
    return RequestContext(request=request, conn=ConnInfo(("10.0.0.9", 4711), ("127.0.0.1", 8080)),
                          server=None)


def test_fields_with_an_empty_item_are_left_out():
    line = ErrorLogFormat(DEBIAN_LIKE).render(facts(), 3)
    pid, tid = os.getpid(), threading.get_ident()
    assert line.endswith(f"] [core:error] [pid {pid}:tid {tid}] MPMD0301: boom")
    assert line.startswith("[19") and ".500000] " in line          # %{cu}t: compact, microseconds


def test_request_fields_appear_on_a_request_line():
    ctx = a_request(((b"host", b"h"), (b"referer", b"http://r/")))
    line = ErrorLogFormat(DEBIAN_LIKE).render(facts(ctx), 3)
    assert line.endswith("[client 10.0.0.9:4711] MPMD0301: boom, referer http://r/")


def test_level_condition_and_hyphen_and_literals():
    fmt = ErrorLogFormat(r"%t %7F: %-{X-None}i %{u}t [%v] %% %M")
    debug = fmt.render(facts(level="debug"), 7)
    assert "test_error_log_format.py(" not in fmt.render(facts(), 3)
    assert " - " in debug and " [www.example.com] % MPMD0301: boom" in debug
    assert "): - " in debug          # %7F at debug: the file and line of the code that logged


@pytest.mark.parametrize("text, message", [
    ("%Z %M", "Unrecognized error log format directive %Z"),
    ("%l x", "main ErrorLogFormat must contain message format string '%M'"),
    ("%+a %M", "The '+' flag cannot be used in the main error log format"),
    ("%{x}l %M", "ErrorLogFormat: %{x}l is not supported by mpmd"),
])
def test_refused_in_httpd_words(text, message):
    with pytest.raises(ValueError, match=message.replace("+", r"\+").replace("{", r"\{").replace("}", r"\}")):
        ErrorLogFormat(text)


def conf(tmp_path: Path, text: str) -> str:
    path = tmp_path / "httpd.conf"
    path.write_text(f"Listen 127.0.0.1:0\nDocumentRoot {tmp_path}\n{text}\n")
    return str(path)


def test_t_refuses_at_file_and_line(tmp_path):
    path = conf(tmp_path, 'ErrorLogFormat "%Q %M"\nErrorLogFormat request "%L"\nTraceEnable extended\n'
                "DefaultRuntimeDir no/such/dir\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = [(e.line, e.message) for e in info.value.errors]
    assert found == [
        (3, "Unrecognized error log format directive %Q"),
        (4, "ErrorLogFormat request is refused: mpmd writes no once-per-connection or "
            "once-per-request lines; give the main format only"),
        (5, "TraceEnable extended is refused: mpmd does not echo a TRACE's body (a TRACE with a "
            "body gets 413, as with On); use On or Off"),
        (6, "DefaultRuntimeDir must be a valid directory, absolute or relative to ServerRoot"),
    ]


def test_runtime_dir_and_mmap_are_named_as_having_no_effect(tmp_path):
    (tmp_path / "run").mkdir()
    cfg = load_config(conf(tmp_path, "DefaultRuntimeDir run\nEnableMMAP On\nEnableMMAP Off\n"))
    named = [(p.line, p.text.split()[0]) for p in cfg.problems if p.id == "MPMD0515"]
    assert named == [(3, "DefaultRuntimeDir"), (4, "EnableMMAP")]
    assert cfg.default_runtime_dir == str(tmp_path / "run")


def test_the_log_writes_the_format_and_vhosts_keep_theirs(tmp_path):
    logfile = tmp_path / "error.log"
    cfg = load_config(conf(tmp_path, f'ErrorLog {logfile}\nErrorLogFormat "[%l] %M [%v]"\n'
                                     "ServerName main.example:8080\n"))
    from mpmd.core.log import from_config
    log = from_config(cfg)
    log.error("MPMD0301", "boom")
    log.log("error", "MPMD0302", "about a request", ctx=a_request())
    log.close()
    assert logfile.read_text().splitlines() == ["[error] MPMD0301: boom [main.example]",
                                                "[error] MPMD0302: about a request [main.example]"]


def test_v_names_the_request_s_vhost(tmp_path):
    cfg = load_config(conf(tmp_path, 'ErrorLogFormat "%M [%v]"\nServerName main.example\n'
                                     "<VirtualHost *>\nServerName v.example:8080\n</VirtualHost>\n"))
    vhost = cfg.vhosts.vhosts[0]
    ctx = a_request()
    ctx.server = vhost
    fmt = ErrorLogFormat("%M [%v]")
    assert fmt.render({**facts(ctx), "server_name": "main.example"}, 3) == "MPMD0301: boom [v.example]"
    assert fmt.render({**facts(), "server_name": "main.example"}, 3) == "MPMD0301: boom [main.example]"


def test_without_a_format_the_line_is_unchanged(tmp_path):
    logfile = tmp_path / "e.log"
    log = ErrorLog(str(logfile), "warn")
    log.error("MPMD0301", "boom")
    log.close()
    line = logfile.read_text()
    assert line.startswith("[") and line.endswith(f"] [core:error] [pid {os.getpid()}] MPMD0301: boom\n")
