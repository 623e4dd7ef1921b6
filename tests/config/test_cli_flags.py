"""The mpmd command line, run as a real subprocess (python -m mpmd)."""

import os
import subprocess
import sys
from pathlib import Path

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
    assert lines[0].startswith("MPMD0513: Config variable ${MPMD_DEMO} is not defined (line ")
    assert lines[1:] == [f"Syntax error on line {_line_of(conf, 'ServerRoot')} of {conf}:",
                         "ServerRoot must be a valid directory"]


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
