""".htaccess files in the per-directory walk (config/model.py Rule 6, config/htaccess.py):
where they are merged, what they may say, and when they are read again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mpmd.config.loader import load_config


def _cfg(tmp_path: Path, sections: str, server: str = ""):
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    return load_config(text=f"Listen 127.0.0.1:0\nDocumentRoot {docs}\n{server}\n"
                            f"<Directory />\nAllowOverride None\n</Directory>\n{sections}",
                       server_root=str(tmp_path)), docs


def _headers(dc) -> list[str]:
    return [rule.value[0] for rule in dc.header]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_none_reads_nothing(tmp_path):
    cfg, docs = _cfg(tmp_path, "<Directory /srv>\nAllowOverride None\nAllowOverrideList None\n"
                               "</Directory>\n")
    assert cfg.reads_htaccess is False and cfg.htaccess is None
    _write(docs / ".htaccess", "Bogus\n")
    dc = cfg.dir_config(str(docs / "x.html"), "/x.html")
    assert "_htaccess" not in dc.__dict__


def test_walk_order_as_httpd(tmp_path):
    """Each depth: <Directory> sections, then that directory's .htaccess; <DirectoryMatch>,
    <Files>, <Location> after every .htaccess."""
    cfg, docs = _cfg(tmp_path, (
        "<Directory {d}>\nAllowOverride All\nHeader append X dir\n</Directory>\n"
        "<Directory {d}/sub>\nHeader append X subdir\n</Directory>\n"
        "<DirectoryMatch ^{d}/sub>\nHeader append X match\n</DirectoryMatch>\n"
        "<Files x.html>\nHeader append X files\n</Files>\n").format(d=tmp_path / "docs"))
    _write(docs / ".htaccess", "Header append X ht-docs\n")
    _write(docs / "sub" / ".htaccess", "Header append X ht-sub\n<Files x.html>\n"
                                       "Header append X ht-files\n</Files>\n")
    dc = cfg.dir_config(str(docs / "sub" / "x.html"), "/sub/x.html")
    assert _headers(dc) == ["dir", "ht-docs", "subdir", "ht-sub", "match", "files", "ht-files"]
    assert dc.__dict__["_htaccess"] is True


def test_a_deeper_allowoverride_none_stops_reading(tmp_path):
    cfg, docs = _cfg(tmp_path, "<Directory {d}>\nAllowOverride FileInfo\n</Directory>\n"
                               "<Directory {d}/closed>\nAllowOverride None\n</Directory>\n"
                               .format(d=tmp_path / "docs"))
    _write(docs / "closed" / ".htaccess", "Header set X closed\n")
    _write(docs / ".htaccess", "Header set X open\n")
    assert _headers(cfg.dir_config(str(docs / "closed" / "a"), "/closed/a")) == ["open"]


@pytest.mark.parametrize("allow, text, error", [
    ("AuthConfig", "Header set X y\n", "Header not allowed here"),
    ("FileInfo", "AuthType Basic\n", "AuthType not allowed here"),
    ("All", "Include /etc/hostname\n", "Include not allowed here"),
    ("All", "Define X\n", "Define not allowed here"),
    ("All", "LoadModule x_module x.so\n", "LoadModule not allowed here"),
    ("All", "<Directory /x>\n</Directory>\n", "<Directory not allowed here"),
    ("All", "<Location /x>\n</Location>\n", "<Location not allowed here"),
    ("All", "AllowOverride All\n", "AllowOverride not allowed here"),
    ("All", "Listen 80\n", "Listen not allowed here"),
    ("All", "Nope\n", "Invalid command 'Nope', perhaps misspelled"),
    ("All", "ExpiresActive maybe\n", "ExpiresActive: must be On or Off"),
    ("Options=Indexes", "Options +FollowSymLinks\n", "Option FollowSymLinks not allowed here"),
    ("Options", "Options MultiViews\n", "Option MultiViews not allowed here"),
    ("Indexes", "<Files x>\nHeader set X y\n</Files>\n", "Header not allowed here"),
    ("None\nAllowOverrideList AuthType authname", "AuthType Basic\nAuthName x\nHeader set X y\n",
     ".htaccess:4: Header not allowed here"),
])
def test_refused_lines(tmp_path, allow, text, error):
    cfg, docs = _cfg(tmp_path, f"<Directory {tmp_path / 'docs'}>\nAllowOverride {allow}\n"
                               "</Directory>\n")
    _write(docs / ".htaccess", "# first line\n" + text)
    dc = cfg.dir_config(str(docs / "x.html"), "/x.html")
    status, message = dc.__dict__["_htaccess_error"]
    assert status == 500
    assert message.startswith(f"{docs / '.htaccess'}:")
    assert error in message


@pytest.mark.parametrize("allow, text", [
    ("AuthConfig", "AuthType Basic\nAuthName x\nRequire valid-user\n"),
    ("Options=Indexes,MultiViews", "Options -Indexes +MultiViews\n"),
    ("Indexes", "<IfModule dir_module>\nDirectoryIndex a.html\n</IfModule>\nExpiresActive On\n"),
    ("FileInfo", "<If \"-f '/etc/hostname'\">\nHeader set X y\n</If>\n"),
    ("AuthConfig FileInfo", "<FilesMatch \\.txt$>\nRequire all denied\nAddType text/x .q\n</FilesMatch>\n"),
])
def test_allowed_lines(tmp_path, allow, text):
    cfg, docs = _cfg(tmp_path, f"<Directory {tmp_path / 'docs'}>\nAllowOverride {allow}\n</Directory>\n")
    _write(docs / ".htaccess", text)
    dc = cfg.dir_config(str(docs / "x.html"), "/x.html")
    assert "_htaccess_error" not in dc.__dict__


def test_parsed_once_per_version(tmp_path):
    cfg, docs = _cfg(tmp_path, f"<Directory {tmp_path / 'docs'}>\nAllowOverride All\n</Directory>\n")
    ht = docs / ".htaccess"
    _write(ht, "Header set X one\n")
    first = cfg.dir_config(str(docs / "a"), "/a")
    assert cfg.dir_config(str(docs / "a"), "/a") is first        # same file: same merge
    assert _headers(first) == ["one"]
    _write(ht, "Header set X two\n")
    assert _headers(cfg.dir_config(str(docs / "a"), "/a")) == ["two"]
    _write(ht, "Header set X 333\n")                              # same size, new ctime
    os.utime(ht, ns=(1, 1))
    assert _headers(cfg.dir_config(str(docs / "a"), "/a")) == ["333"]
    ht.unlink()
    dc = cfg.dir_config(str(docs / "a"), "/a")
    assert dc.header == [] and dc.__dict__["_htaccess"] is True


def test_first_access_file_name_that_exists(tmp_path):
    cfg, docs = _cfg(tmp_path, f"<Directory {tmp_path / 'docs'}>\nAllowOverride All\n</Directory>\n",
                     server="AccessFileName .config .htaccess")
    _write(docs / ".htaccess", "Header set X htaccess\n")
    assert _headers(cfg.dir_config(str(docs / "a"), "/a")) == ["htaccess"]
    _write(docs / ".config", "Header set X config\n")
    assert _headers(cfg.dir_config(str(docs / "a"), "/a")) == ["config"]


def test_htaccess_lines_get_their_directory(tmp_path):
    """A .htaccess is a synthetic <Directory> section of its directory; relative paths are
    ServerRoot's, as in the main config."""
    cfg, docs = _cfg(tmp_path, f"<Directory {tmp_path / 'docs'}>\nAllowOverride All\n</Directory>\n")
    _write(docs / "sub" / ".htaccess", "AuthUserFile users\n")
    dc = cfg.dir_config(str(docs / "sub" / "a"), "/sub/a")
    assert dc.auth_user_file == str(tmp_path / "users")
    from mpmd.config.model import _Consult
    allowed = cfg.dir_config(str(docs), "/").allow_override
    ht = cfg.htaccess.lookup(_Consult(str(docs / "sub"), allowed, frozenset(), cfg.htaccess))
    assert (ht.section.kind, ht.section.arg, ht.section.file) == ("Directory", str(docs / "sub"),
                                                                   str(docs / "sub" / ".htaccess"))


def test_the_embedded_config_never_serves_ht_files(tmp_path):
    from mpmd.cli import EMBEDDED_CONF, PACKAGE_DIR
    demo = PACKAGE_DIR / "demo"
    cfg = load_config(str(EMBEDDED_CONF), defines={"MPMD_DEMO": str(demo), "MPMD_RUNDIR": str(tmp_path),
                                                   "MPMD_LISTEN": "127.0.0.1:0"})
    for name in (".htaccess", ".htpasswd", "docs/.htgroups"):
        (req,) = cfg.dir_config(str(demo / "htdocs" / name), "/" + name).require.children
        assert (req.provider, req.arg, req.negate) == ("all", False, False)
    (req,) = cfg.dir_config(str(demo / "htdocs" / "index.html"), "/index.html").require.children
    assert (req.provider, req.arg) == ("all", True)


def test_a_provider_alias_of_the_config_may_be_named(tmp_path):
    """<AuthnProviderAlias> sections of the configuration are known to every .htaccess."""
    cfg, docs = _cfg(tmp_path, f"<AuthnProviderAlias file staff>\nAuthUserFile {tmp_path}/u\n"
                               f"</AuthnProviderAlias>\n<Directory {tmp_path / 'docs'}>\n"
                               "AllowOverride AuthConfig\n</Directory>\n")
    _write(docs / ".htaccess", "AuthType Basic\nAuthName x\nAuthBasicProvider staff\n"
                               "Require valid-user\n")
    assert "_htaccess_error" not in cfg.dir_config(str(docs / "a"), "/a").__dict__
    _write(docs / ".htaccess", "AuthBasicProvider nobody\n")
    status, text = cfg.dir_config(str(docs / "a"), "/a").__dict__["_htaccess_error"]
    assert status == 500 and "Unknown Authn provider: nobody" in text


def test_access_file_name_per_virtual_host(tmp_path):
    cfg, docs = _cfg(tmp_path, f"<Directory {tmp_path / 'docs'}>\nAllowOverride All\n</Directory>\n"
                               "<VirtualHost *:80>\nServerName other.test\nAccessFileName .vhconf\n"
                               "</VirtualHost>\n")
    _write(docs / ".htaccess", "Header set X main\n")
    _write(docs / ".vhconf", "Header set X vhost\n")
    main, vhost = cfg.vhosts.servers()
    assert _headers(main.dir_config(str(docs / "a"), "/a")) == ["main"]
    assert _headers(vhost.dir_config(str(docs / "a"), "/a")) == ["vhost"]
