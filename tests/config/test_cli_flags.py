"""The mpmd command line, run as a real subprocess (python -m mpmd)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")


def mpmd(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "mpmd", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=60)


def write(tmp_path, text, name="httpd.conf"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_t_ok(tmp_path):
    (tmp_path / "htdocs").mkdir()
    conf = write(tmp_path, "Listen 127.0.0.1:0\nDocumentRoot htdocs\nPidFile mpmd.pid\n")
    r = mpmd("-t", "-f", str(conf))
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().endswith("Syntax OK")


def test_t_prints_warnings_first(tmp_path):
    conf = write(tmp_path, "Listen 127.0.0.1:0\nDocumentRoot missing\nPidFile mpmd.pid\n")
    r = mpmd("-t", "-f", str(conf))
    assert r.returncode == 0
    lines = r.stderr.strip().splitlines()
    assert lines[-1] == "Syntax OK"
    assert any("MPMD0503" in line and "DocumentRoot" in line for line in lines[:-1])


def test_t_error_names_file_and_line(tmp_path):
    conf = write(tmp_path, "Listen 127.0.0.1:0\n# comment\nKeepAlve On\n")
    r = mpmd("-t", "-f", str(conf))
    assert r.returncode == 1
    assert f"Syntax error on line 3 of {conf}:" in r.stderr
    assert "Invalid command 'KeepAlve'" in r.stderr
    assert "Syntax OK" not in r.stderr


def test_error_without_t_also_exits_1(tmp_path):
    conf = write(tmp_path, "Listen 127.0.0.1:0\nKeepAliveTimeout 1 2\n")
    r = mpmd("-f", str(conf))
    assert r.returncode == 1 and "Syntax error on line 2" in r.stderr


def test_missing_file(tmp_path):
    r = mpmd("-t", "-f", str(tmp_path / "nope.conf"))
    assert r.returncode == 1 and "Could not open configuration file" in r.stderr


def test_V_reports_mpm_and_config_file(tmp_path):
    conf = write(tmp_path, "LoadModule mpm_prefork_module modules/mod_mpm_prefork.so\nListen 127.0.0.1:0\n")
    r = mpmd("-V", "-f", str(conf))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Server version: mpmd/0.1.0" in out
    assert "Server MPM:     prefork" in out
    assert "threaded:     no" in out and "forked:     yes" in out
    assert "Python version:" in out and "httptools version:" in out
    assert f"SERVER_CONFIG_FILE={conf}" in out


def test_D_selects_ifdefine_block(tmp_path):
    conf = write(tmp_path, "Listen 127.0.0.1:0\n<IfDefine BROKEN>\nNoSuchThing\n</IfDefine>\n")
    assert mpmd("-t", "-f", str(conf)).returncode == 0
    r = mpmd("-t", "-D", "BROKEN", "-f", str(conf))
    assert r.returncode == 1 and "Invalid command 'NoSuchThing'" in r.stderr


def test_C_and_c(tmp_path):
    conf = write(tmp_path, "Listen 127.0.0.1:0\n<IfDefine FROM_C>\nBogus\n</IfDefine>\n")
    r = mpmd("-t", "-C", "Define FROM_C", "-f", str(conf))
    assert r.returncode == 1 and "Invalid command 'Bogus'" in r.stderr
    r = mpmd("-t", "-c", "KeepAliveTimeout never", "-f", str(conf))
    assert r.returncode == 1 and "Syntax error on line 1 of (-c):" in r.stderr


def test_M_lists_modules(tmp_path):
    conf = write(tmp_path, "Listen 127.0.0.1:0\n")
    r = mpmd("-M", "-f", str(conf))
    assert r.returncode == 0
    assert r.stdout.splitlines()[0] == "Loaded Modules:"
    assert " core_module (static)" in r.stdout.splitlines()


def test_L_lists_directives():
    r = mpmd("-L")
    assert r.returncode == 0 and "KeepAliveTimeout (core)" in r.stdout


def test_embedded_config_and_shipped_conf_pass_t():
    root = Path(__file__).resolve().parents[2]
    r = mpmd("-t")
    assert r.returncode == 0, r.stderr
    r = mpmd("-t", "-f", str(root / "conf" / "httpd.conf"))
    assert r.returncode == 0, r.stderr


def test_non_utf8_config_gives_a_config_error_not_a_traceback(tmp_path):
    conf = tmp_path / "bin.conf"
    conf.write_bytes(b"\xff\xfe bad\n")
    r = mpmd("-t", "-f", str(conf))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr == (f"Syntax error on line 1 of {conf}:\nInvalid command '\\xff\\xfe', perhaps misspelled "
                        "or defined by a module not included in the server configuration\n")


def test_duplicate_listen_names_the_second_line(tmp_path):
    conf = write(tmp_path, "Listen 18082\nServerAdmin x@y\nListen 18082\n")
    r = mpmd("-t", "-f", str(conf))
    assert r.returncode == 1
    assert r.stderr == f"Syntax error on line 3 of {conf}:\nCannot define multiple Listeners on the same IP:port\n"


def test_undefined_variable_warns_and_syntax_ok(tmp_path):
    (tmp_path / "htdocs").mkdir()
    conf = write(tmp_path, "Listen 127.0.0.1:0\nDocumentRoot htdocs\nPidFile mpmd.pid\nServerAdmin ${NOPE}\n")
    r = mpmd("-t", "-f", str(conf))
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [f"MPMD0513: Config variable ${{NOPE}} is not defined (line 4 of {conf})",
                                     "Syntax OK"]


def test_embedded_config_read_with_f_warns_then_fails_on_serverroot():
    # Without the CLI's MPMD_DEMO define the text stays "${MPMD_DEMO}", as httpd would keep it.
    conf = Path(SRC) / "mpmd" / "conf" / "embedded.conf"
    r = mpmd("-t", "-f", str(conf))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    warnings = [line for line in lines if line.startswith("MPMD0513: ")]
    assert warnings and lines[:len(warnings)] == warnings
    assert all("${MPMD_DEMO} is not defined (line " in line for line in warnings)
    # every error of the file, in one run: the ServerRoot first, then the app under it
    errors = lines[len(warnings):]
    assert errors[:2] == [f"Syntax error on line {_line_of(conf, 'ServerRoot')} of {conf}:",
                          "ServerRoot must be a valid directory"]
    assert errors[-1] == f"MPMD0516: {sum(e.startswith('Syntax error') for e in errors)} errors in the configuration"


def _line_of(path, prefix):
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(prefix))


def test_server_starts_with_an_undefined_variable_and_says_so(tmp_path):
    from tests.support.confbuilder import ConfBuilder
    from tests.support.harness import Server
    conf = ConfBuilder(tmp_path).set("ServerAdmin", "${MPMD_NOT_DEFINED_ANYWHERE}")
    with Server(conf) as server:
        assert server.port
    out = server.out_file.read_text()
    assert "MPMD0513: Config variable ${MPMD_NOT_DEFINED_ANYWHERE} is not defined (line " in out


def test_missing_types_config_fails_t_and_start(tmp_path):
    """httpd AH01597 "could not open mime types config file"; exit 1, the server does not start."""
    (tmp_path / "htdocs").mkdir()
    conf = write(tmp_path, "Listen 127.0.0.1:0\nDocumentRoot htdocs\nPidFile mpmd.pid\n"
                           f"TypesConfig {tmp_path}/nonexist/mime.types\n")
    for args in (("-t",), ()):
        r = mpmd(*args, "-f", str(conf))
        assert r.returncode == 1, r.stderr
        assert r.stderr == (f"Syntax error on line 4 of {conf}:\n"
                            f"could not open mime types config file {tmp_path}/nonexist/mime.types.\n")
    assert not (tmp_path / "mpmd.pid").exists()


# --- start-up and CLI behaviour as httpd 2.4 (the audit's list) ----------------------------------

def test_t_fails_when_the_error_log_directory_is_missing(tmp_path):
    # httpd: "(2)...: AH02291: Cannot access directory '/x/' for main error log", AH00014, exit 1.
    missing = tmp_path / "nonexist"
    conf = write(tmp_path, f"Listen 127.0.0.1:0\nDocumentRoot {tmp_path}\nPidFile mpmd.pid\n"
                           f"ErrorLog {missing}/error.log\n")
    r = mpmd("-t", "-f", str(conf))
    assert r.returncode == 1, r.stderr
    assert f"Cannot access directory '{missing}/' for main error log" in r.stderr
    assert f"{conf}:4" in r.stderr                    # the directive's file:line
    assert "Configuration check failed" in r.stderr and "Syntax OK" not in r.stderr
    assert "Traceback" not in r.stderr


def test_t_passes_with_a_missing_pid_directory_as_httpd(tmp_path):
    # httpd -t does not look at the PidFile; mpmd warns, and still says Syntax OK.
    conf = write(tmp_path, f"Listen 127.0.0.1:0\nDocumentRoot {tmp_path}\n")
    r = mpmd("-t", "-f", str(conf))
    assert r.returncode == 0 and r.stderr.strip().endswith("Syntax OK"), r.stderr
    assert "MPMD0504" in r.stderr and "PidFile" in r.stderr


LEVEL_ERROR = ("Log level keyword must be one of emerg/alert/crit/error/warn/notice/info/debug/"
               "trace1/.../trace8")


@pytest.mark.parametrize("words, message", [
    ("bogus", LEVEL_ERROR),
    ("warn foo:bar", f"foo:bar: {LEVEL_ERROR}"),
    ("core:trace9", f"core:trace9: {LEVEL_ERROR}"),
    ("core:", "Module specifier 'core' must be followed by a log level keyword"),
    ("warn nomod:debug", "Cannot find module nomod"),
    ("mod_authz_core:debug", "Cannot find module mod_authz_core"),
])
def test_t_rejects_bad_loglevel_words_with_file_and_line(tmp_path, words, message):
    conf = write(tmp_path, f"Listen 127.0.0.1:0\nPidFile mpmd.pid\nLogLevel {words}\n")
    r = mpmd("-t", "-f", str(conf))
    assert r.returncode == 1, r.stderr
    assert f"Syntax error on line 3 of {conf}:\n{message}" in r.stderr


@pytest.mark.parametrize("words", ["WARN", "info warn", "warn authz_core:debug",
                                   "authz_core_module:debug", "mod_authz_core.c:trace3",
                                   "core:info mpm_prefork:debug"])
def test_t_accepts_loglevel_words_httpd_accepts(tmp_path, words):
    (tmp_path / "htdocs").mkdir()
    conf = write(tmp_path, "LoadModule mpm_prefork_module modules/mod_mpm_prefork.so\n"
                           f"Listen 127.0.0.1:0\nPidFile mpmd.pid\nLogLevel {words}\n")
    r = mpmd("-t", "-f", str(conf))
    assert r.returncode == 0, r.stderr


def test_relative_f_is_under_the_d_server_root(tmp_path):
    # httpd: "cd /; httpd -d /tmp/x -f srv/p.conf" reads /tmp/x/srv/p.conf.
    (tmp_path / "srv").mkdir()
    (tmp_path / "htdocs").mkdir()
    write(tmp_path, "Listen 127.0.0.1:0\nPidFile mpmd.pid\n", name="srv/p.conf")
    r = mpmd("-d", str(tmp_path), "-f", "srv/p.conf", "-t", cwd="/")
    assert r.returncode == 0, r.stderr
    v = mpmd("-d", str(tmp_path), "-f", "srv/p.conf", "-V", cwd="/")
    assert f'SERVER_CONFIG_FILE="{tmp_path / "srv" / "p.conf"}"' in v.stdout


def test_V_with_a_directive_error_still_prints_the_version_block(tmp_path):
    # httpd -V reads the config (for the MPM) without processing it: exit 0, no error shown.
    conf = write(tmp_path, "LoadModule mpm_prefork_module modules/mod_mpm_prefork.so\n"
                           "Listen 127.0.0.1:0\nKeepAlve On\n")
    r = mpmd("-V", "-f", str(conf))
    assert r.returncode == 0, r.stderr
    assert "Server version: mpmd/" in r.stdout and "Server MPM:     prefork" in r.stdout


def test_V_with_an_unreadable_config_reports_it_then_the_version_block(tmp_path):
    # httpd: the read error, then the build settings anyway, exit 1.
    r = mpmd("-V", "-f", str(tmp_path / "nope.conf"))
    assert r.returncode == 1
    assert "Could not open configuration file" in r.stderr
    assert "Server version: mpmd/" in r.stdout and "Server MPM:" in r.stdout
    unclosed = write(tmp_path, "Listen 127.0.0.1:0\n<Directory /tmp>\n")
    r = mpmd("-V", "-f", str(unclosed))
    assert r.returncode == 1 and "not closed" in r.stderr and "Server MPM:" in r.stdout


def test_k_stop_when_not_running_says_so_and_succeeds(tmp_path):
    # httpd: "httpd (no pid file) not running" / "httpd (pid N?) not running", exit 0.
    conf = write(tmp_path, f"Listen 127.0.0.1:0\nPidFile {tmp_path}/mpmd.pid\n")
    r = mpmd("-f", str(conf), "-k", "stop")
    assert r.returncode == 0 and r.stdout.strip() == "mpmd (no pid file) not running", r
    dead = 4194304 + 1         # above Linux pid_max: never a live process
    (tmp_path / "mpmd.pid").write_text(f"{dead}\n")
    r = mpmd("-f", str(conf), "-k", "graceful-stop")
    assert r.returncode == 0 and r.stdout.strip() == f"mpmd (pid {dead}?) not running", r


def test_loadmodule_accepts_a_plain_dotted_path(tmp_path):
    (tmp_path / "hello_mod.py").write_text(
        "from mpmd.core.modules import Module\nclass Hello(Module):\n    name = 'hello_module'\n")
    (tmp_path / "htdocs").mkdir()
    conf = write(tmp_path, "LoadModule hello_module hello_mod.Hello\nListen 127.0.0.1:0\n"
                           "PidFile mpmd.pid\n<IfModule hello_module>\nKeepAlive Off\n</IfModule>\n")
    env_path = f"{tmp_path}"
    r = subprocess.run([sys.executable, "-m", "mpmd", "-M", "-f", str(conf)], capture_output=True,
                       text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": SRC + os.pathsep + env_path})
    assert r.returncode == 0, r.stderr
    assert "hello_module (shared)" in r.stdout


def test_loadmodule_unknown_name_says_which_forms_are_accepted(tmp_path):
    conf = write(tmp_path, "LoadModule dav_module modules/mod_dav.so\nListen 127.0.0.1:0\n")
    r = mpmd("-t", "-f", str(conf))
    assert r.returncode == 1
    assert "LoadModule: mpmd has no module 'dav_module' (mod_dav.so)" in r.stderr
    assert "a Python module loads as package.module:attr" in r.stderr
