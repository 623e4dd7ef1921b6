"""Loader: tables -> ServerConfig; read-time directives; errors in httpd's words."""

import os
import sys
import textwrap

import pytest

from mpmd.config.loader import ConfigError, canonical_module_name, load_config
from mpmd.config.model import ListenAddr


def load(text, **kw):
    kw.setdefault("server_root", "/tmp")
    return load_config(text=textwrap.dedent(text), **kw)


def error(text, **kw):
    with pytest.raises(ConfigError) as info:
        load(text, **kw)
    return info.value


def test_defaults_filled():
    cfg = load("Listen 80\n")
    assert cfg.keep_alive is True
    assert cfg.keep_alive_timeout == 5.0
    assert cfg.max_keep_alive_requests == 100
    assert cfg.timeout == 60.0
    assert cfg.limit_request_line == 8190
    assert cfg.limit_request_body == 1024 ** 3
    assert cfg.options == frozenset({"FollowSymLinks"})
    assert cfg.enable_sendfile is False
    assert cfg.server_tokens == "Full"
    assert cfg.document_root == "/tmp/htdocs"
    assert cfg.where("keep_alive") == "default"


def test_names_case_insensitive_last_wins_and_where():
    cfg = load("Listen 80\nkeepalivetimeout 7\nKEEPALIVETIMEOUT 300ms\nkeepalive off\n")
    assert cfg.keep_alive_timeout == pytest.approx(0.3)
    assert cfg.keep_alive is False
    assert cfg.where("keep_alive_timeout") == "(text):3"


def test_listen_forms():
    cfg = load("Listen 80\nListen 127.0.0.1:8080\nListen [::1]:81\nListen *:82 http\n")
    assert cfg.listen == [ListenAddr("*", 80), ListenAddr("127.0.0.1", 8080),
                          ListenAddr("::1", 81), ListenAddr("*", 82, "http")]
    assert str(cfg.listen[2]) == "[::1]:81"


def test_paths_resolved_against_server_root(tmp_path):
    (tmp_path / "htdocs").mkdir()
    cfg = load(f'ServerRoot "{tmp_path}"\nListen 80\nDocumentRoot htdocs\nPidFile run/x.pid\n'
               "ErrorLog stderr\n")
    assert cfg.server_root == str(tmp_path)
    assert cfg.document_root == str(tmp_path / "htdocs")
    assert cfg.pid_file == str(tmp_path / "run" / "x.pid")
    assert cfg.error_log == "stderr"


def test_define_substitution_and_undefine():
    cfg = load("Define PORT 8081\nListen ${PORT}\nUnDefine PORT\n<IfDefine !PORT>\nKeepAlive Off\n</IfDefine>\n")
    assert cfg.listen == [ListenAddr("*", 8081)]
    assert cfg.keep_alive is False


def test_undefined_variable_warns_and_is_left_as_written():
    # httpd: AH00111 "Config variable ${NOPE} is not defined", the text kept, Syntax OK
    cfg = load("Listen 80\nServerAdmin ${NOPE_NOT_DEFINED_X}@x${NOPE_2}\n")
    assert cfg.server_admin == "${NOPE_NOT_DEFINED_X}@x${NOPE_2}"
    warned = [p for p in cfg.problems if p.id == "MPMD0513"]
    assert [(p.level, p.text, p.line) for p in warned] == [
        ("warn", "Config variable ${NOPE_NOT_DEFINED_X} is not defined", 2),
        ("warn", "Config variable ${NOPE_2} is not defined", 2)]
    assert str(warned[0]) == "MPMD0513: Config variable ${NOPE_NOT_DEFINED_X} is not defined (line 2 of (text))"


def test_undefined_variable_warning_goes_to_warn_before_a_later_error():
    seen = []
    with pytest.raises(ConfigError) as info:
        load("Listen ${NOPE_PORT_X}\n", warn=seen.append)
    assert [p.text for p in seen] == ["Config variable ${NOPE_PORT_X} is not defined"]
    assert info.value.line == 1 and "Listen: must be [host:]port" in info.value.message


def test_ifdefine_with_command_line_defines():
    text = "Listen 80\n<IfDefine DEBUG>\nLogLevel debug\n</IfDefine>\n<IfDefine !DEBUG>\nLogLevel error\n</IfDefine>\n"
    assert load(text, defines=["DEBUG"]).log_level == "debug"
    assert load(text).log_level == "error"


def test_skipped_block_is_not_checked():
    cfg = load("Listen 80\n<IfDefine NOPE>\nNoSuchDirective 1\n<IfDefine X>\n</IfDefine>\n</IfDefine>\n")
    assert cfg.listen


@pytest.mark.parametrize("spelling", ["mime_module", "mod_mime.c", "mod_mime", "mod_mime.so"])
def test_ifmodule_spellings(spelling):
    cfg = load(f"Listen 80\n<IfModule {spelling}>\nKeepAlive Off\n</IfModule>\n")
    assert cfg.keep_alive is False
    cfg = load(f"Listen 80\n<IfModule !{spelling}>\nKeepAlive Off\n</IfModule>\n")
    assert cfg.keep_alive is True


def test_canonical_module_name():
    assert {canonical_module_name(n) for n in ("mime_module", "mod_mime.c", "mod_mime")} == {"mime"}


def test_mpm_selection_and_ifmodule():
    cfg = load("LoadModule mpm_prefork_module modules/mod_mpm_prefork.so\nListen 80\n"
               "<IfModule mpm_prefork_module>\nKeepAlive Off\n</IfModule>\n"
               "<IfModule mpm_event_module>\nKeepAlive On\nBogus\n</IfModule>\n")
    assert cfg.mpm_name == "prefork" and cfg.keep_alive is False


def test_two_mpms_is_an_error_naming_both_lines():
    e = error("LoadModule mpm_prefork_module modules/mod_mpm_prefork.so\n"
              "LoadModule mpm_event_module modules/mod_mpm_event.so\nListen 80\n")
    assert e.line == 2
    assert "mpm_prefork_module (line 1 of (text))" in e.message
    assert "mpm_event_module (line 2 of (text))" in e.message


def test_builtin_loadmodule_is_noop_and_unknown_so_is_an_error():
    load("LoadModule mime_module modules/mod_mime.so\nListen 80\n")
    e = error("LoadModule foo_module modules/mod_foo.so\n")
    assert e.line == 1 and e.message.startswith("LoadModule: mpmd has no module 'foo_module' (mod_foo.so); ")


def test_user_module(tmp_path, monkeypatch):
    (tmp_path / "my_ext_mod.py").write_text(textwrap.dedent('''
        from mpmd.config.directives import Args, Ctx, Directive
        from mpmd.config import values as v
        from mpmd.core.modules import Module

        class Hello(Module):
            name = "hello_module"
            DIRECTIVES = [Directive("HelloGreeting", Args.TAKE1, Ctx.ANY, v.string, "hi",
                                    "hello_greeting", "What to say.")]
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = load("LoadModule hello_module my_ext_mod:Hello\nListen 80\n<IfModule hello_module>\n"
               "<Location /x>\nHelloGreeting hey\n</Location>\n</IfModule>\n")
    assert cfg.modules[-1].name == "hello_module"
    assert ("hello_module", "shared") in cfg.loaded
    assert cfg.hello_greeting == "hi"
    assert cfg.dir_config(None, "/x/y").hello_greeting == "hey"
    # without the LoadModule line its directive is unknown
    e = error("Listen 80\nHelloGreeting hey\n")
    assert "Invalid command 'HelloGreeting'" in e.message


def test_include_glob_relative_to_server_root(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.conf").write_text("Listen 81\n")
    (tmp_path / "conf.d" / "b.conf").write_text("Listen 82\nKeepAliveTimeout nope\n")
    e = error(f'ServerRoot "{tmp_path}"\nListen 80\nInclude conf.d/*.conf\n')
    assert e.file == str(tmp_path / "conf.d" / "b.conf") and e.line == 2
    (tmp_path / "conf.d" / "b.conf").write_text("Listen 82\n")
    cfg = load(f'ServerRoot "{tmp_path}"\nListen 80\nInclude conf.d/*.conf\nIncludeOptional none/*.conf\n')
    assert [a.port for a in cfg.listen] == [80, 81, 82]
    e = error(f'ServerRoot "{tmp_path}"\nInclude none/*.conf\n')
    assert e.message == f"Include/IncludeOptional: Could not open directory {tmp_path}/none: No such file or directory"
    (tmp_path / "empty").mkdir()
    e = error(f'ServerRoot "{tmp_path}"\nInclude empty/*.conf\n')
    assert e.message == f"Include/IncludeOptional: No matches for the wildcard '*.conf' in '{tmp_path}/empty', failing"


def test_pre_and_post_directives():
    cfg = load("KeepAliveTimeout 7\nListen 80\n", pre=["KeepAliveTimeout 3", "Define X 1"], post=["Timeout 9"])
    assert cfg.keep_alive_timeout == 7.0 and cfg.timeout == 9.0 and cfg.defines["X"] == "1"
    cfg = load("KeepAliveTimeout 7\nListen 80\n", post=["KeepAliveTimeout 2"])
    assert cfg.keep_alive_timeout == 2.0


@pytest.mark.parametrize("text, line, message", [
    ("Listen 80\nKeepAlve On\n", 2, "Invalid command 'KeepAlve', perhaps misspelled or defined by a module "
                                    "not included in the server configuration"),
    ("KeepAliveTimeout 1 2\n", 1, "KeepAliveTimeout takes one argument, "),
    ("KeepAliveTimeout soon\n", 1, "KeepAliveTimeout: must be a duration"),
    ("KeepAlive maybe\n", 1, "KeepAlive: must be On or Off"),
    ("MaxKeepAliveRequests -1\n", 1, "MaxKeepAliveRequests: must be an integer between 0 and"),
    ("<Directory /a>\n<Directory /b>\n</Directory>\n</Directory>\n", 2, "<Directory not allowed in <Directory> context"),
    ("<Directory /a>\nListen 80\n</Directory>\n", 2, "Listen not allowed in <Directory> context"),
    ("\n<Directory /a>\nOptions None\n", 2, "<Directory> was not closed."),
    ("<Directory /a>\n</Files>\n", 2, "Expected </Directory> but saw </Files>"),
    ("</Location>\n", 1, "</Location> without matching <Location> section"),
    ("Options +Indexes FollowSymLinks\n", 1, "Either all Options must start with + or -"),
    ("<FilesMatch \"(\">\n</FilesMatch>\n", 1, "Regular expression could not be compiled."),
    ("<Bogus x>\n</Bogus>\n", 1, "Invalid command '<Bogus'"),
    ("<Location /x>\nLoadModule a b\n</Location>\n", 2, "LoadModule cannot occur within <Location> section"),
    ("Listen 80\nListen 80\n", 2, "Cannot define multiple Listeners on the same IP:port"),
    ("Listen 81\nTimeout 3\nListen *:81\nListen 81\n", 3, "Cannot define multiple Listeners on the same IP:port"),
    # context errors, each as Apache 2.4 words it (apache2 -t)
    ("<Files x>\nKeepAlive on\n</Files>\n", 2, "KeepAlive not allowed in <Files> context"),
    ("<directorymatch x>\nkeepalive on\n</directorymatch>\n", 2, "KeepAlive not allowed in <DirectoryMatch> context"),
    ("<Directory /x>\n<Location /y>\n</Location>\n</Directory>\n", 2, "<Location not allowed in <Directory> context"),
    ("<Location /x>\n<Files y>\n</Files>\n</Location>\n", 2, "<Files> cannot occur within <Location> section"),
    ("<Location /x>\n<FilesMatch y>\n</FilesMatch>\n</Location>\n", 2, "<FilesMatch> cannot occur within <Location> section"),
    ("<Files x>\n<Directory /y>\n</Directory>\n</Files>\n", 2, "<Directory not allowed in <Files> context"),
    ("<Location /x>\nListen 80\n</Location>\n", 2, "Listen not allowed in <Location> context"),
    ("<VirtualHost *:80>\nListen 80\n</VirtualHost>\n", 2, "Listen cannot occur within <VirtualHost> section"),
    ("<VirtualHost *:80>\n<VirtualHost *:81>\n</VirtualHost>\n</VirtualHost>\n", 2,
     "<VirtualHost> cannot occur within <VirtualHost> section"),
    ("<Directory /x>\n<VirtualHost *:81>\n</VirtualHost>\n</Directory>\n", 2,
     "<VirtualHost not allowed in <Directory> context"),
    ("<VirtualHost *:80>\nAllowOverride None\n</VirtualHost>\n", 2, "AllowOverride not allowed in <VirtualHost> context"),
    ("AllowOverride None\n", 1, "AllowOverride not allowed here"),
    ("ServerAlias x\n", 1, "ServerAlias only used in <VirtualHost>"),
])
def test_errors(text, line, message):
    e = error(text)
    assert e.line == line
    assert message in e.message
    assert e.file == "(text)"
    if line is not None:
        assert str(e).startswith(f"Syntax error on line {line} of (text):\n")


def test_options_merge_like_apache():
    cfg = load("""\
        Listen 80
        Options +Indexes
        <Directory /srv>
            Options -FollowSymLinks +ExecCGI
        </Directory>
        <Directory /srv/www/private>
            Options None
        </Directory>
        <Directory /srv/www>
            Options All
        </Directory>
        """)
    assert cfg.options == {"FollowSymLinks", "Indexes"}
    assert cfg.dir_config("/srv/x", "/").options == {"Indexes", "ExecCGI"}
    assert cfg.dir_config("/srv/www/a.html", "/").options == {
        "Indexes", "Includes", "FollowSymLinks", "SymLinksIfOwnerMatch", "ExecCGI"}
    assert cfg.dir_config("/srv/www/private/a", "/").options == frozenset()
    assert cfg.dir_config("/other/x", "/").options == {"FollowSymLinks", "Indexes"}


def test_dir_config_order_directory_files_location():
    cfg = load("""\
        Listen 80
        SetHandler server
        <Location /status>
            SetHandler location
        </Location>
        <Files *.py>
            SetHandler files
        </Files>
        <Directory /srv>
            SetHandler directory
            LimitRequestBody 10
            <Files secret.txt>
                SetHandler nested-files
            </Files>
        </Directory>
        <DirectoryMatch "^/srv/.*/cgi">
            SetHandler dirmatch
        </DirectoryMatch>
        <LocationMatch "\\.php$">
            SetHandler locmatch
        </LocationMatch>
        """)
    dc = cfg.dir_config
    assert dc("/elsewhere/x", "/x").set_handler == "server"
    assert dc("/srv/x", "/x").set_handler == "directory"
    assert dc("/srv/x", "/x").limit_request_body == 10
    assert dc("/srv/a/cgi/x", "/x").set_handler == "dirmatch"
    assert dc("/srv/app.py", "/x").set_handler == "files"
    assert dc("/srv/secret.txt", "/x").set_handler == "nested-files"
    assert dc("/other/secret.txt", "/x").set_handler == "server"
    assert dc("/srv/app.py", "/status/x").set_handler == "location"
    assert dc("/srv/app.py", "/statusx").set_handler == "files"
    assert dc(None, "/a/b.php").set_handler == "locmatch"
    assert dc("/srv/x", "/x") is dc("/srv/x", "/x")       # cached


def test_per_dir_storage_for_module_directive():
    cfg = load("Listen 80\n<Directory /srv>\nRequire all granted\n</Directory>\n")
    assert cfg.dir_config("/srv/a", "/a").require != cfg.dir_config("/x", "/a").require


def test_virtualhost_parsed_and_stored():
    cfg = load("Listen 80\n<VirtualHost *:80>\nServerName a.example\n<Directory /v>\nSetHandler v\n"
               "</Directory>\n</VirtualHost>\n")
    vhost = cfg.sections[0]
    assert vhost.kind == "VirtualHost" and vhost.arg == "*:80"
    assert vhost.ops[0].value == "a.example"
    assert cfg.dir_config("/v/x", "/").set_handler is None       # vhosts are not served yet


def test_alias_spelling_is_accepted_with_a_notice():
    cfg = load("Listen 80\nMaxRequestsPerChild 5\n")
    assert cfg.max_connections_per_child == 5
    assert any(p.id == "MPMD0511" for p in cfg.problems)


def test_mpm_directives_invalid_when_mpm_not_loaded():
    e = error("LoadModule mpm_nginx_module x.so\nListen 80\nStartServers 3\n")
    assert e.line == 3 and "Invalid command 'StartServers'" in e.message


def test_nested_files_is_accepted_but_never_applies_as_in_httpd():
    # Apache 2.4: Syntax OK, and a request for a.txt is not denied by the inner <Files>
    cfg = load("""\
        Listen 80
        <Files *.txt>
            SetHandler outer
            <Files a.txt>
                SetHandler inner
            </Files>
            <FilesMatch "a">
                SetHandler inner-match
            </FilesMatch>
        </Files>
        <Directory /srv>
            <Files *.txt>
                <Files *.txt>
                    SetHandler inner-in-directory
                </Files>
            </Files>
        </Directory>
        """)
    assert cfg.dir_config("/srv/a.txt", "/a.txt").set_handler == "outer"
    assert cfg.dir_config("/other/a.txt", "/a.txt").set_handler == "outer"
    notices = [p for p in cfg.problems if p.id == "MPMD0514"]
    assert [p.line for p in notices] == [4, 7, 13]


# Apache 2.4.68 says "Syntax OK" to each: core.c has no upper limit for these.
@pytest.mark.parametrize("line, field, value", [
    ("LimitRequestLine 100000", "limit_request_line", 100000),
    ("LimitRequestLine 0", "limit_request_line", 0),
    ("LimitRequestFieldSize 100000", "limit_request_field_size", 100000),
    ("LimitRequestFieldSize 0", "limit_request_field_size", 0),
    ("LimitRequestFields 40000", "limit_request_fields", 40000),
    ("LimitRequestFields 0", "limit_request_fields", 0),
    ("ListenBacklog 100000", "listen_backlog", 100000),
    ("ListenBacklog 1", "listen_backlog", 1),
])
def test_limits_without_made_up_upper_bounds(line, field, value):
    cfg = load(f"Listen 80\n{line}\n")
    assert getattr(cfg, field) == value


# httpd's messages, word for word (its "Fieldsize" spelling too); mpmd also refuses a
# non-number, which httpd's atoi() would take as 0 (or as its leading digits).
@pytest.mark.parametrize("line, message", [
    ("LimitRequestLine -1", 'LimitRequestLine "-1" must be a non-negative integer'),
    ("LimitRequestLine abc", 'LimitRequestLine "abc" must be a non-negative integer'),
    ("LimitRequestFieldSize -1", 'LimitRequestFieldsize "-1" must be a non-negative integer'),
    ("LimitRequestFields -1",
     'LimitRequestFields "-1" must be a non-negative integer (0 = no limit)'),
    ("LimitRequestLine 2147483648", 'LimitRequestLine "2147483648" must be a non-negative integer'),
    ("ListenBacklog 0", "ListenBacklog must be > 0"),
    ("ListenBacklog -1", "ListenBacklog must be > 0"),
    ("ListenBacklog abc", "ListenBacklog must be > 0"),
])
def test_limit_errors_in_httpd_words(line, message):
    e = error(f"Listen 80\n{line}\n")
    assert (e.line, e.message) == (2, message)


def test_types_config_that_cannot_be_opened_is_an_error_at_its_line(tmp_path):
    e = error(f"Listen 80\nTypesConfig {tmp_path}/nope.types\n")
    assert (e.line, e.message) == (2, f"could not open mime types config file {tmp_path}/nope.types.")
    e = error("Listen 80\nTypesConfig missing.types\n", server_root=str(tmp_path))
    assert e.message == f"could not open mime types config file {tmp_path}/missing.types."
    (tmp_path / "ok.types").write_text("text/x-ok ok\n")
    cfg = load("Listen 80\nTypesConfig ok.types\n", server_root=str(tmp_path))
    assert "MPMD0901" not in [p.id for p in cfg.problems]


def test_types_config_unset_with_no_default_file_is_fine(tmp_path):
    assert not (tmp_path / "conf" / "mime.types").exists()
    cfg = load("Listen 80\n", server_root=str(tmp_path))
    assert "MPMD0901" not in [p.id for p in cfg.problems]


@pytest.mark.parametrize("mpm, message_id", [("prefork", "MPMD0205"), ("worker", "MPMD0407"),
                                             ("event", "MPMD0407")])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_start_servers_below_one_is_clamped_with_httpds_warning(mpm, message_id, value):
    cfg = load(f"LoadModule mpm_{mpm}_module x.so\nListen 80\nStartServers {value}\n")
    problems = cfg.mpm_class.check_config(cfg)
    assert [(p.level, p.id, p.text) for p in problems] == [
        ("warn", message_id, f"WARNING: StartServers of {value} not allowed, increasing to 1.")]
    assert cfg.mpm_class.scoreboard_limits(cfg)[0] >= 1
