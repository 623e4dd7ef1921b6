"""What the authentication modules refuse at -t, with file:line: nothing of Apache's access
control that mpmd does not do is accepted and ignored."""

from __future__ import annotations

import re

import pytest

from mpmd.config.loader import load_config
from mpmd.config.model import ConfigError


def _load(tmp_path, body: str):
    conf = tmp_path / "httpd.conf"
    conf.write_text(f'ServerRoot "{tmp_path}"\nListen 127.0.0.1:0\n'
                    f'<Location /x>\n{body}\n</Location>\n')
    return load_config(str(conf))


@pytest.mark.parametrize("line,words", [
    ("AuthType Digest", "mod_auth_digest"),
    ("AuthBasicProvider dbm", "dbm"),
    ("Require valid-user extra", "valid-user"),
    ("Require user", "user"),
    # httpd's own refusals (apache2 -t, 2.4), word for word
    ("Require not ip 10.1", "negative Require directive has no effect in <RequireAny> directive"),
    ("<RequireNone>\nRequire ip 10.1\n</RequireNone>",
     "<RequireNone> directive has no effect in <RequireAny> directive"),
    ("<RequireAll>\nRequire all granted\n<RequireNone>\nRequire not ip 10.1\n</RequireNone>"
     "\n</RequireAll>", "negative Require directive has no effect in <RequireNone> directive"),
    ("<RequireAll>\n</RequireAll>", "<RequireAll> directive contains no authorization directives"),
    ("<RequireAll>\nRequire not ip 10.1\n</RequireAll>",
     "<RequireAll> directive contains only negative authorization directives"),
    ("<RequireAll x>\nRequire ip 10.1\n</RequireAll>",
     "<RequireAll> directive doesn't take additional arguments"),
    ("<RequireAll>\nOptions None\n</RequireAll>", "Options not allowed in <RequireAll> context"),
    ("<Limit>\nRequire all denied\n</Limit>", "<Limit> directive requires additional arguments"),
    ("<Limit GET>\n<Limit POST>\nRequire all denied\n</Limit>\n</Limit>",
     "<Limit> directive excludes all methods"),
    ("<Limit TRACE>\nRequire all denied\n</Limit>", "TRACE cannot be controlled by <Limit>"),
    ("<Limit GET>\n<Files x>\n</Files>\n</Limit>",
     "<Files> cannot occur within <Limit> or <LimitExcept> section"),
    ("Order deny, allow", "order takes one argument"),
    ("Order foo", "unknown order"),
    ("Allow 10.1", "allow requires at least two arguments"),
    ("Deny to all", "allow and deny must be followed by 'from'"),
    ("Allow from 10.1/foo", "The specified IP address is invalid."),
    ("Satisfy some", "Satisfy either 'any' or 'all'."),
    ("AuthMerging xor", "AuthMerging must be one of: Off | And | Or"),
])
def test_refused_with_file_and_line(tmp_path, line, words):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, line)
    text = str(info.value)
    assert words in text and re.search(r"line [4-7] of", text), text


def test_accepted(tmp_path):
    cfg = _load(tmp_path, 'AuthType Basic\nAuthName "Realm"\nAuthBasicProvider file\n'
                          'AuthUserFile conf/pw\nAuthGroupFile /etc/groups\n'
                          'Require user a b\nRequire group g\nRequire valid-user')
    dc = cfg.dir_config(None, "/x/y")
    assert dc.auth_user_file == str(tmp_path / "conf" / "pw")      # under ServerRoot
    assert dc.require.kind == "RequireAny"                                   # one RequireAny
    assert [r.provider for r in dc.require.children] == ["user", "group", "valid-user"]


def test_containers_limits_and_access_compat_accepted(tmp_path):
    cfg = _load(tmp_path, "<RequireAny>\n<RequireAll>\nRequire ip 10.1\nRequire not ip 10.1.2\n"
                          "</RequireAll>\n<Limit GET POST>\n<LimitExcept POST>\nRequire env ok\n"
                          "</LimitExcept>\n</Limit>\n</RequireAny>\nRequire host localhost\n"
                          "AuthMerging And\nOrder Allow,Deny\nAllow from 10.1 env=!bad\n"
                          "Deny from .example.com\nSatisfy Any")
    tree = cfg.dir_config(None, "/x/y").require
    assert tree.merging == "and" and tree.volatile
    any_, host = tree.children
    assert host.provider == "host" and host.arg == ("localhost",)
    all_, env = any_.children
    assert [r.negate for r in all_.children] == [False, True]
    assert env.provider == "env" and env.limited.allows("GET") and env.limited.allows("HEAD")
    assert not env.limited.allows("POST") and not env.limited.allows("PUT")
    compat = cfg.dir_config(None, "/x/y").access_compat
    assert [e.kind for e in compat.allows] == ["ip", "nenv"] and compat.denies[0].kind == "host"
    assert compat.satisfy_any("GET") and compat.volatile
    assert str(compat.allows[0].value) == "10.1.0.0/16"


def test_limit_keeps_other_lines_for_every_method(tmp_path):
    cfg = _load(tmp_path, "<Limit POST>\nRequire valid-user\nAuthName \"R\"\n</Limit>")
    dc = cfg.dir_config(None, "/x/y")
    assert dc.auth_name == "R"
    assert not dc.require.limited.allows("GET")


def _load_top(tmp_path, body: str):
    conf = tmp_path / "httpd.conf"
    conf.write_text(f'ServerRoot "{tmp_path}"\nListen 127.0.0.1:0\n{body}\n')
    return load_config(str(conf))


@pytest.mark.parametrize("body,words,line", [
    ("<Location /x>\n<AuthnProviderAlias file f1>\n</AuthnProviderAlias>\n</Location>",
     "<AuthnProviderAlias not allowed in <Location> context", 4),
    ("<AuthnProviderAlias dbm f1>\n</AuthnProviderAlias>", "Unknown Authn provider: dbm", 3),
    ("<AuthnProviderAlias file>\n</AuthnProviderAlias>",
     "<AuthnProviderAlias> directive requires additional arguments", 3),
    ("<AuthnProviderAlias file f1>\nAuthUserFile /x\nOptions None\n</AuthnProviderAlias>",
     "Options not allowed in <AuthnProviderAlias> context", 5),
    ("<Location /x>\nAuthBasicProvider f1 file\n</Location>\n<AuthnProviderAlias file f1>\n"
     "AuthUserFile /x\n</AuthnProviderAlias>", "Unknown Authn provider: f1", 4),
])
def test_authn_provider_alias_refused_as_httpd(tmp_path, body, words, line):
    with pytest.raises(ConfigError) as info:
        _load_top(tmp_path, body)
    assert words in str(info.value) and f"line {line} of" in str(info.value), str(info.value)


def test_authn_provider_alias_keeps_its_lines(tmp_path):
    cfg = _load_top(tmp_path, "<AuthnProviderAlias file f1>\nAuthUserFile conf/pw\n"
                              "</AuthnProviderAlias>\n<Location /x>\nAuthBasicProvider f1 file\n"
                              "AuthUserFile /etc/pw\n</Location>")
    assert cfg.authn_aliases == [("f1", "file", {"auth_user_file": str(tmp_path / "conf" / "pw")})]
    dc = cfg.dir_config(None, "/x/y")
    assert dc.auth_basic_provider == ("f1", "file") and dc.auth_user_file == "/etc/pw"
