"""One load names every error of a config, each at its file and line (config/loader.py Rule 8,
parser.py Rule 6); LoadModule of Apache's .so files (loader.py Rule 9); <IfVersion>."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mpmd.config.loader import ConfigError, ConfigErrors, load_config
from mpmd.config.parser import APACHE_COMPAT_VERSION, version_matches


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def errors_of(conf: str) -> list[tuple[str, int, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(conf)
    err = info.value
    found = err.errors if isinstance(err, ConfigErrors) else [err]
    return [(e.file, e.line, e.message) for e in found]


def test_every_kind_of_error_in_one_load(tmp_path):
    conf = write(tmp_path / "httpd.conf", "\n".join([
        "Listen 127.0.0.1:0",                                   # 1
        f"DocumentRoot {tmp_path}",                             # 2
        "KeepAlve On",                                          # 3 unknown directive
        "KeepAlive maybe",                                      # 4 bad argument
        "<Location /x>",                                        # 5
        "  Listen 80",                                          # 6 wrong context
        "  KeepAliveTimeout 1 2",                               # 7 argument count
        "</Location>",                                          # 8
        "LoadModule headers_x_module modules/mod_headers_x.so",  # 9 no such module
        "Include nowhere.conf",                                 # 10 missing file
        "<IfModule>",                                           # 11 conditional, no argument
        "Nonsense here",                                        # 12 (skipped with the body)
        "</IfModule>",                                          # 13
        "LogLevel nosuch:debug",                                # 14 unknown module
        "Timeout forever",                                      # 15
        "",
    ]))
    found = errors_of(conf)
    assert [line for _, line, _ in found] == [3, 4, 6, 7, 9, 10, 11, 14, 15]
    assert all(file == conf for file, _, _ in found)
    messages = dict((line, msg) for _, line, msg in found)
    assert messages[3].startswith("Invalid command 'KeepAlve'")
    assert messages[4] == "KeepAlive: must be On or Off"
    assert messages[6] == "Listen not allowed in <Location> context"
    assert messages[9].startswith("LoadModule: mpmd has no module 'headers_x_module' (mod_headers_x.so)")
    assert messages[10].startswith("Could not open configuration file")
    assert messages[14] == "Cannot find module nosuch"


def test_str_is_each_error_in_httpd_words_then_the_count(tmp_path):
    conf = write(tmp_path / "httpd.conf", "Listen 127.0.0.1:0\nFoo 1\nBar 2\n")
    with pytest.raises(ConfigErrors) as info:
        load_config(conf)
    assert str(info.value).splitlines() == [
        f"Syntax error on line 2 of {conf}:",
        "Invalid command 'Foo', perhaps misspelled or defined by a module not included in the server configuration",
        f"Syntax error on line 3 of {conf}:",
        "Invalid command 'Bar', perhaps misspelled or defined by a module not included in the server configuration",
        "MPMD0516: 2 errors in the configuration",
    ]
    # the first error's place is the exception's own, as with one error
    assert (info.value.file, info.value.line) == (conf, 2)


def test_one_error_is_exactly_the_single_error(tmp_path):
    conf = write(tmp_path / "httpd.conf", "Listen 127.0.0.1:0\nFoo 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(conf)
    assert not isinstance(info.value, ConfigErrors)
    assert str(info.value) == (f"Syntax error on line 2 of {conf}:\nInvalid command 'Foo', perhaps "
                               "misspelled or defined by a module not included in the server configuration")


def test_included_files_in_reading_order_then_lines(tmp_path):
    write(tmp_path / "conf.d" / "a.conf", "Bad1 x\n\nBad2 y\n")
    write(tmp_path / "conf.d" / "b.conf", "Bad3 z\n")
    conf = write(tmp_path / "httpd.conf", "Listen 127.0.0.1:0\nBad0 w\n"
                 f"Include {tmp_path}/conf.d/*.conf\nBad4 v\n")
    found = errors_of(conf)
    a, b = str(tmp_path / "conf.d" / "a.conf"), str(tmp_path / "conf.d" / "b.conf")
    assert [(f, line) for f, line, _ in found] == [(conf, 2), (conf, 4), (a, 1), (a, 3), (b, 1)]


def test_the_same_error_twice_is_named_once(tmp_path):
    write(tmp_path / "same.conf", "Bad1 x\n")
    conf = write(tmp_path / "httpd.conf", f"Listen 127.0.0.1:0\nInclude {tmp_path}/same.conf\n"
                 f"Include {tmp_path}/same.conf\n")
    assert [(line, msg.split()[2]) for _, line, msg in errors_of(conf)] == [(1, "'Bad1',")]


def test_an_unclosed_section_stops_its_file_only(tmp_path):
    broken = write(tmp_path / "broken.conf", "Bad1 x\n<Directory /tmp>\nBad2 y\n")
    conf = write(tmp_path / "httpd.conf", f"Listen 127.0.0.1:0\nInclude {broken}\nBad3 z\n")
    found = errors_of(conf)
    assert [(f, line) for f, line, _ in found] == [(conf, 3), (broken, 1), (broken, 2), (broken, 3)]
    assert found[3][2] == "<Directory> was not closed." or found[2][2] == "<Directory> was not closed."


def test_a_wrong_close_stops_the_file_and_says_nothing_more_of_it(tmp_path):
    conf = write(tmp_path / "httpd.conf", "Listen 127.0.0.1:0\n<VirtualHost *:80>\n<Directory /tmp>\n"
                 "</VirtualHost>\nBad1 x\n")
    assert [(line, msg) for _, line, msg in errors_of(conf)] == [
        (4, "Expected </Directory> but saw </VirtualHost>")]


def test_a_stray_close_is_skipped(tmp_path):
    conf = write(tmp_path / "httpd.conf", "Listen 127.0.0.1:0\n</Directory>\nBad1 x\n")
    assert [line for _, line, _ in errors_of(conf)] == [2, 3]


def test_a_section_line_missing_its_bracket_is_read_as_meant(tmp_path):
    conf = write(tmp_path / "httpd.conf", f"Listen 127.0.0.1:0\n<Directory {tmp_path}\nBad1 x\n</Directory>\n")
    found = errors_of(conf)
    assert [(line, msg) for _, line, msg in found][0] == (2, "<Directory> directive missing closing '>'")
    assert [line for _, line, _ in found] == [2, 3]


def test_a_refused_section_still_has_its_body_checked(tmp_path):
    conf = write(tmp_path / "httpd.conf", "Listen 127.0.0.1:0\n<Directory a b>\nBad1 x\n</Directory>\n")
    assert [line for _, line, _ in errors_of(conf)] == [2, 3]


def test_check_errors_join_the_others(tmp_path):
    conf = write(tmp_path / "httpd.conf", "Listen 127.0.0.1:8081\nListen 127.0.0.1:8081\nBad1 x\n"
                 "ErrorLog /no/such/dir/error.log\n")
    found = errors_of(conf)
    assert [(line, msg.split(":")[0]) for _, line, msg in found][:2] == [
        (2, "Cannot define multiple Listeners on the same IP"), (3, "Invalid command 'Bad1', perhaps misspelled or defined by a module not included in the server configuration")]
    assert found[-1][0] is None and "MPMD0506" in found[-1][2]        # no line: after the rest


def test_cli_prints_every_error_and_exits_1(tmp_path):
    conf = write(tmp_path / "httpd.conf", "Listen 127.0.0.1:0\nFoo 1\nLoadModule foo_module /usr/lib/apache2/modules/mod_foo.so\n"
                 "LoadModule bar_module mod_bar.so\n")
    r = subprocess.run([sys.executable, "-m", "mpmd", "-t", "-f", conf], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert [line for line in lines if line.startswith("Syntax error")] == [
        f"Syntax error on line {n} of {conf}:" for n in (2, 3, 4)]
    assert "LoadModule: mpmd has no module 'foo_module' (mod_foo.so)" in r.stderr
    assert "LoadModule: mpmd has no module 'bar_module' (mod_bar.so)" in r.stderr
    assert lines[-1] == "MPMD0516: 3 errors in the configuration"
    assert "Syntax OK" not in r.stderr


# --- LoadModule of Apache's module files (loader.py Rule 9) ---------------------------------

@pytest.mark.parametrize("path", ["/usr/lib/apache2/modules/mod_mime.so", "modules/mod_mime.so",
                                  "/nonexistent/x.so"])
def test_loadmodule_so_loads_the_builtin_module(tmp_path, path):
    conf = write(tmp_path / "httpd.conf", f"Listen 127.0.0.1:0\nLoadModule mime_module {path}\n"
                 "<IfModule mime_module>\nAddType text/x-a .a\n</IfModule>\n")
    cfg = load_config(conf)
    assert "mime_module" in {name for name, _ in cfg.loaded}


def test_loadmodule_so_of_an_mpm_picks_it(tmp_path):
    conf = write(tmp_path / "httpd.conf", "Listen 127.0.0.1:0\n"
                 "LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so\n")
    assert load_config(conf).mpm_name == "prefork"


@pytest.mark.parametrize("name", ["mime_module", "mod_mime.c", "mod_mime", "!nothing_module",
                                  "mpm_event_module", "event.c", "version_module", "mod_version.c"])
def test_ifmodule_knows_the_registry_names(tmp_path, name):
    conf = write(tmp_path / "httpd.conf", f"Listen 127.0.0.1:0\n<IfModule {name}>\nBad1 x\n</IfModule>\n")
    assert [line for _, line, _ in errors_of(conf)] == [3]       # the body was read


def test_ifmodule_of_a_module_mpmd_lacks_is_skipped(tmp_path):
    conf = write(tmp_path / "httpd.conf", "Listen 127.0.0.1:0\n<IfModule mod_nothing_here.c>\nBad1 x\n"
                 "</IfModule>\n")
    load_config(conf)


def test_a_module_registered_later_is_known_to_loadmodule_and_ifmodule(tmp_path, monkeypatch):
    from mpmd import modules
    monkeypatch.setitem(modules.BUILTIN_MODULES, "gizmo_module", "mpmd.modules.mod_version:VersionModule")
    conf = write(tmp_path / "httpd.conf", "Listen 127.0.0.1:0\nLoadModule gizmo_module modules/mod_gizmo.so\n"
                 "<IfModule mod_gizmo.c>\nBad1 x\n</IfModule>\n")
    assert [line for _, line, _ in errors_of(conf)] == [4]


# --- <IfVersion> ----------------------------------------------------------------------------

@pytest.mark.parametrize("args, expected", [
    ([">=", "2.4"], True), (["<", "2.4"], False), (["2.4"], False), (["=", "2.4.62"], True),
    (["2.4.62"], True), (["==", "2.4.62"], True), ([">", "2.4.61"], True), (["<=", "2.2"], False),
    (["!=", "2.2"], True), (["!", "2.4.62"], False), (["~", r"^2\.4"], True), (["!~", r"^2\.2"], True),
    (["=", "/^2\\.4\\./"], True), (["/^2\\.2/"], False), ([">", "2"], True), (["<", "3"], True),
])
def test_ifversion_compares_with_apache_2_4(args, expected):
    assert APACHE_COMPAT_VERSION[:2] == (2, 4)
    assert version_matches(args) is expected


@pytest.mark.parametrize("args, message", [
    (["2.x"], "Version appears to be invalid"), (["=>", "2.4"], "unknown comparison operator '=>'"),
    ([], "<IfVersion> takes one or two arguments"), (["~", "("], "Regular expression could not be compiled."),
])
def test_ifversion_refuses_in_httpd_words(args, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        version_matches(args)


def test_ifversion_sections_in_a_config(tmp_path):
    conf = write(tmp_path / "httpd.conf", "Listen 127.0.0.1:0\n<IfVersion >= 2.4>\nTimeout 7\n</IfVersion>\n"
                 "<IfVersion < 2.4>\nBad1 x\n</IfVersion>\n<IfVersion !~ ^2\\.4>\nBad2 x\n</IfVersion>\n")
    assert load_config(conf).timeout == 7.0


def test_ifversion_bad_operator_is_an_error_at_its_line_and_the_body_is_skipped(tmp_path):
    conf = write(tmp_path / "httpd.conf", "Listen 127.0.0.1:0\n<IfVersion => 2.4>\nBad1 x\n</IfVersion>\nBad2 y\n")
    found = errors_of(conf)
    assert [(line, msg) for _, line, msg in found] == [
        (2, "unknown comparison operator '=>'"),
        (5, "Invalid command 'Bad2', perhaps misspelled or defined by a module not included in the server configuration")]
