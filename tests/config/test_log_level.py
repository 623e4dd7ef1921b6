"""LogLevel per module and ErrorLog targets, on mpmd.core.log itself (httpd set_loglevel)."""

from __future__ import annotations

import os

import pytest

from mpmd.config.loader import load_config
from mpmd.core import log as log_mod
from mpmd.core.log import ErrorLog, parse_log_level


def lines(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_module_word_sets_only_that_module(tmp_path):
    path = tmp_path / "error_log"
    log = ErrorLog(str(path), "authz_core:debug")
    assert log.level == log_mod.LEVELS["warn"]           # the server's level is unchanged
    log.debug("MPMD9001", "from core")                    # core stays at warn: dropped
    log.debug("MPMD9002", "from authz", "authz_core")
    assert log.enabled("debug", "authz_core") and not log.enabled("debug")
    text = path.read_text()
    assert "MPMD9001" not in text and "[authz_core:debug]" in text and "MPMD9002" in text


def test_a_bare_level_resets_the_module_levels_before_it():
    assert parse_log_level("core:info warn") == (log_mod.LEVELS["warn"], {})
    assert parse_log_level("warn core:info") == (log_mod.LEVELS["warn"], {"core": 6})


@pytest.mark.parametrize("word", ["authz_core", "authz_core_module", "mod_authz_core.c"])
def test_module_spellings_share_one_level(word):
    _, modules = parse_log_level(f"{word}:trace2")
    assert modules == {"authz_core": log_mod.LEVELS["trace2"]}


def test_mpm_messages_follow_the_mpm_module_level(tmp_path):
    log = ErrorLog(str(tmp_path / "e"), "error mpm_prefork:info")
    assert log.enabled("info", "prefork") and log.enabled("info", "mpm_prefork")
    assert not log.enabled("info", "core")


def test_loglevel_module_word_keeps_the_loaded_servers_level(tmp_path):
    cfg = load_config(text="Listen 80\nLogLevel authz_core:debug\n", path=str(tmp_path / "x.conf"))
    log = log_mod.from_config(cfg)
    assert log.level == log_mod.LEVELS["warn"]


def test_syslog_target_uses_the_syslog_module(monkeypatch, tmp_path):
    import syslog
    calls: list[tuple] = []
    monkeypatch.setattr(syslog, "openlog", lambda *a, **k: calls.append(("open", *a)))
    monkeypatch.setattr(syslog, "syslog", lambda *a: calls.append(("log", *a)))
    monkeypatch.chdir(tmp_path)
    log = ErrorLog("syslog:local3:web", "info")
    log.error("MPMD9003", "boom")
    log.debug("MPMD9004", "dropped")
    assert calls[0][:2] == ("open", "web") and calls[0][3] == syslog.LOG_LOCAL3
    assert calls[1][0] == "log" and calls[1][1] == syslog.LOG_ERR and "MPMD9003: boom" in calls[1][2]
    assert len(calls) == 2 and not os.listdir(tmp_path)     # no file named "syslog"


def test_syslog_default_facility_is_local7(monkeypatch):
    import syslog
    seen: list[tuple] = []
    monkeypatch.setattr(syslog, "openlog", lambda *a, **k: seen.append(a))
    ErrorLog("syslog", "warn")
    assert seen[0][0] == "mpmd" and seen[0][2] == syslog.LOG_LOCAL7


def test_unknown_syslog_facility_is_an_oserror():
    with pytest.raises(OSError, match="could not open syslog error log bogus"):
        ErrorLog("syslog:bogus")
