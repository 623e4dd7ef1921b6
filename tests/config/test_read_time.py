"""Read-time behaviour checked against Apache httpd 2.4 (``apache2 -t``): conditionals are
transparent, Include reads whole trees, any bytes load, ${NAME} only warns."""

import os
import textwrap

import pytest

from mpmd.config.loader import ConfigError, load_config


def load(text, **kw):
    kw.setdefault("server_root", "/tmp")
    return load_config(text=textwrap.dedent(text), **kw)


def error(text, **kw):
    with pytest.raises(ConfigError) as info:
        load(text, **kw)
    return info.value


# --- conditionals are transparent to context checks -----------------------------------

def test_loadmodule_and_serverroot_inside_conditionals_at_top_level(tmp_path):
    # httpd: Syntax OK
    cfg = load(f"""\
        <IfModule !mpm_prefork_module>
        LoadModule mpm_prefork_module modules/mod_mpm_prefork.so
        </IfModule>
        <IfDefine !FOO>
        <IfModule mpm_prefork_module>
        ServerRoot {tmp_path}
        </IfModule>
        </IfDefine>
        Listen 80
        """)
    assert cfg.mpm_name == "prefork"
    assert cfg.server_root == str(tmp_path)
    assert cfg.where("server_root") == "(text):6"


def test_loadmodule_in_ifmodule_is_run_when_reached(tmp_path, monkeypatch):
    (tmp_path / "cond_mod.py").write_text(textwrap.dedent('''
        from mpmd.config.directives import Args, Ctx, Directive
        from mpmd.config import values as v
        from mpmd.core.modules import Module

        class Cond(Module):
            name = "cond_module"
            DIRECTIVES = [Directive("CondWord", Args.TAKE1, Ctx.ANY, v.string, "", "cond_word", "A word.")]
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = load("""\
        Listen 80
        <IfModule cond_module>
        NotReadBecauseNotLoadedYet x
        </IfModule>
        <IfModule !cond_module>
        LoadModule cond_module cond_mod:Cond
        </IfModule>
        <IfModule cond_module>
        CondWord loaded
        </IfModule>
        <IfModule !cond_module>
        LoadModule other_module no_such_mod:Nope
        </IfModule>
        """)
    assert cfg.cond_word == "loaded"
    assert [n for n, kind in cfg.loaded if kind == "shared"] == ["cond_module"]


def test_top_level_only_still_refused_in_a_real_section_through_a_conditional():
    e = error("<Location /x>\n<IfModule mod_mime.c>\n<IfDefine !X>\nLoadModule a b\n</IfDefine>\n</IfModule>\n</Location>\n")
    assert e.line == 4 and e.message == "LoadModule cannot occur within <Location> section"


def test_conditionals_do_not_count_as_the_context_of_other_directives():
    # httpd: the message names the real section around the <IfModule>
    e = error("<Directory /x>\n<IfModule mod_mime.c>\nKeepAlive on\n</IfModule>\n</Directory>\n")
    assert e.line == 3 and e.message == "KeepAlive not allowed in <Directory> context"
    e = error("<IfModule mod_mime.c>\nAllowOverride None\n</IfModule>\n")
    assert e.line == 2 and e.message == "AllowOverride not allowed here"


# --- Include reads directories whole ------------------------------------------------------

def _tree(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_include_directory_recurses_into_subdirectories(tmp_path):
    _tree(tmp_path, {"inc/a.conf": "Listen 81\n", "inc/sub/bad.conf": "# x\nKeepAlve on\n"})
    e = error(f'ServerRoot "{tmp_path}"\nInclude inc\n')
    assert (e.file, e.line) == (str(tmp_path / "inc" / "sub" / "bad.conf"), 2)
    assert e.message.startswith("Invalid command 'KeepAlve', perhaps misspelled")


def test_include_directory_order_is_sorted_depth_first_dot_files_included(tmp_path):
    # httpd reads a.conf, m/ (whole), sub/ (whole), z.conf; and .hidden first
    _tree(tmp_path, {
        "inc/.hidden": "Listen 80\n",
        "inc/a.conf": "Listen 81\n",
        "inc/m/m.conf": "Listen 82\n",
        "inc/sub/deep/d.conf": "Listen 83\n",
        "inc/sub/s.conf": "Listen 84\n",
        "inc/z.conf": "Listen 85\n",
    })
    cfg = load(f'ServerRoot "{tmp_path}"\nInclude inc\n')
    assert [a.port for a in cfg.listen] == [80, 81, 82, 83, 84, 85]


def test_include_wildcard_matching_a_directory_reads_it(tmp_path):
    _tree(tmp_path, {"g/0.conf": "Listen 80\n", "g/e.conf/y": "Listen 81\n", "g/f.txt": "Bogus\n",
                     "g/.h.conf": "Bogus\n"})
    cfg = load(f'ServerRoot "{tmp_path}"\nInclude g/*.conf\n')
    assert [a.port for a in cfg.listen] == [80, 81]          # a wildcard skips dot files


def test_include_wildcard_inside_the_path(tmp_path):
    _tree(tmp_path, {"s/a/x.conf": "Listen 80\n", "s/b/x.conf": "Listen 81\n", "s/c.conf": "Bogus\n"})
    cfg = load(f'ServerRoot "{tmp_path}"\nInclude s/*/x.conf\n')
    assert [a.port for a in cfg.listen] == [80, 81]
    (tmp_path / "s" / "d").mkdir()
    e = error(f'ServerRoot "{tmp_path}"\nInclude s/*/x.conf\n')    # httpd: every match must have it
    assert e.line == 2 and e.message == (f"Could not open configuration file {tmp_path}/s/d/x.conf: "
                                         "No such file or directory")
    cfg = load(f'ServerRoot "{tmp_path}"\nIncludeOptional s/*/x.conf\nIncludeOptional none/*.conf\n')
    assert [a.port for a in cfg.listen] == [80, 81]


# --- any bytes --------------------------------------------------------------------------

def test_non_utf8_config_is_a_config_error_not_a_traceback(tmp_path):
    conf = tmp_path / "bin.conf"
    conf.write_bytes(b"Listen 80\n\xff\xfe bad\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(conf))
    assert (info.value.file, info.value.line) == (str(conf), 2)
    # httpd escapes the bytes it cannot print the same way
    assert str(info.value) == (f"Syntax error on line 2 of {conf}:\nInvalid command '\\xff\\xfe', perhaps "
                               "misspelled or defined by a module not included in the server configuration")


def test_non_utf8_bytes_in_values_and_file_names_round_trip(tmp_path):
    latin = os.fsdecode(b"caf\xe9")                    # not UTF-8: kept by surrogateescape
    (tmp_path / latin).mkdir()
    (tmp_path / latin / "x.conf").write_bytes(b"ServerAdmin \xe9t\xe9@example\n")
    conf = tmp_path / "httpd.conf"
    conf.write_bytes(b'Listen 80\nDocumentRoot "caf\xe9"\nInclude caf\xe9/*.conf\n')
    cfg = load_config(str(conf))
    assert os.fsencode(cfg.document_root) == os.fsencode(str(tmp_path)) + b"/caf\xe9"
    assert os.path.isdir(cfg.document_root)
    assert cfg.server_admin.encode("utf-8", "surrogateescape") == b"\xe9t\xe9@example"


# --- continuation -----------------------------------------------------------------------

def test_backslash_continuation_joins_without_a_space():
    cfg = load("Listen 80\nServerAdmin a\\\nb\n")
    assert cfg.server_admin == "ab"
    e = error("Listen 80\nServerAdmin a\\\n    b\n")       # httpd keeps the next line's blanks
    assert e.line == 3 and e.message.startswith("ServerAdmin takes one argument")


# --- ${NAME} ------------------------------------------------------------------------------

def test_undefined_variable_in_a_skipped_block_is_not_reported():
    cfg = load("Listen 80\n<IfDefine NOPE>\nServerAdmin ${NOPE_UNDEFINED}\n</IfDefine>\n")
    assert not [p for p in cfg.problems if p.id == "MPMD0513"]
