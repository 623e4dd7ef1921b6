"""What the authentication modules refuse at -t, with file:line: nothing of Apache's access
control that mpmd does not do is accepted and ignored."""

from __future__ import annotations

import pytest

from mpmd.config.loader import load_config
from mpmd.config.model import ConfigError


def _load(tmp_path, body: str):
    conf = tmp_path / "httpd.conf"
    conf.write_text(f'ServerRoot "{tmp_path}"\nListen 127.0.0.1:0\n'
                    f'<Location /x>\n{body}\n</Location>\n')
    return load_config(str(conf))


@pytest.mark.parametrize("line,words", [
    ("<RequireAll>\nRequire valid-user\n</RequireAll>", "RequireAll"),
    ("Order deny,allow", "Order"),
    ("Deny from all", "Deny"),
    ("Satisfy Any", "Satisfy"),
    ("<Limit POST>\nRequire valid-user\n</Limit>", "Limit"),
    ("Require host example.com", "host"),
    ("Require env let_in", "env"),
    ("AuthType Digest", "mod_auth_digest"),
    ("AuthBasicProvider dbm", "dbm"),
    ("Require valid-user extra", "valid-user"),
    ("Require user", "user"),
])
def test_refused_with_file_and_line(tmp_path, line, words):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, line)
    text = str(info.value)
    assert words in text and "line 4" in text, text


def test_accepted(tmp_path):
    cfg = _load(tmp_path, 'AuthType Basic\nAuthName "Realm"\nAuthBasicProvider file\n'
                          'AuthUserFile conf/pw\nAuthGroupFile /etc/groups\n'
                          'Require user a b\nRequire group g\nRequire valid-user')
    dc = cfg.dir_config(None, "/x/y")
    assert dc.auth_user_file == str(tmp_path / "conf" / "pw")      # under ServerRoot
    assert [r.provider for r in dc.require] == ["user", "group", "valid-user"]   # one RequireAny
