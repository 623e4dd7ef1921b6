"""Debian's stock /etc/apache2 in one `mpmd -t` run: every line mpmd cannot take is named at
its file and line, and what is left is only modules mpmd does not have and directives of no
module it has (the loader itself refuses none of Debian's lines)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mpmd.config.loader import Registry

TREE = Path("/etc/apache2")
pytestmark = pytest.mark.skipif(not (TREE / "apache2.conf").exists() or not (TREE / "envvars").exists(),
                                reason="Debian's apache2 configuration is not installed")


def envvars(run_dir: Path) -> dict[str, str]:
    """The environment apache2ctl gives apache2: /etc/apache2/envvars sourced."""
    out = subprocess.run(["sh", "-c", f"set -a; . {shlex.quote(str(TREE / 'envvars'))}; env -0"],
                         capture_output=True, check=True).stdout.decode()
    env = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
    env["APACHE_RUN_DIR"] = str(run_dir)          # apache2ctl creates it; the test cannot
    return env


def test_one_run_names_every_line_and_only_what_mpmd_lacks(tmp_path):
    src = str(Path(__file__).resolve().parents[2] / "src")       # this checkout's mpmd
    env = {**os.environ, **envvars(tmp_path), "PYTHONPATH": src}
    r = subprocess.run([sys.executable, "-m", "mpmd", "-t", "-f", str(TREE / "apache2.conf")],
                       capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    if r.returncode == 0:
        assert lines[-1] == "Syntax OK"
        return
    assert r.returncode == 1
    heads = [(i, line) for i, line in enumerate(lines) if line.startswith("Syntax error on line ")]
    assert heads, r.stderr
    if len(heads) > 1:
        assert lines[-1] == f"MPMD0516: {len(heads)} errors in the configuration"
    registry = Registry()
    known = {*registry.builtins, *registry.mpm_modules}
    for i, head in heads:
        place = re.fullmatch(r"Syntax error on line (\d+) of (/etc/apache2/\S+):", head)
        assert place, head
        message = lines[i + 1]
        loaded = re.match(r"LoadModule: mpmd has no module '(\w+)' \((mod_\w+\.so)\)", message)
        unknown = re.match(r"Invalid command '(\w+)'", message)
        assert loaded or unknown, message             # nothing else is refused
        if loaded:
            assert loaded.group(1) not in known
        else:                                          # a directive of no module mpmd has
            assert unknown.group(1) not in {"DefaultRuntimeDir", "TraceEnable", "ErrorLogFormat",
                                            "EnableMMAP", "ServerTokens", "ServerSignature"}
