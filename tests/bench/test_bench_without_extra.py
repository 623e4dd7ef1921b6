"""`mpmd bench` without the `bench` extra says how to install it instead of a traceback.

The CLI runs in a subprocess whose sitecustomize makes the extra's modules unimportable (a
``sys.meta_path`` finder that refuses them), so nothing is uninstalled.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

BLOCKER = '''
import sys

class _Blocked:
    """Refuse the bench extra's modules, as if they were not installed."""
    BLOCKED = {BLOCKED!r}

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _Blocked())
'''


def run(tmp_path: Path, blocked: set[str], *args: str) -> subprocess.CompletedProcess[str]:
    shim = tmp_path / "shim"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(BLOCKER.format(BLOCKED=sorted(blocked)))
    env = dict(os.environ, PYTHONPATH=f"{shim}{os.pathsep}{SRC}")
    return subprocess.run([sys.executable, "-m", "mpmd", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_shim_really_hides_the_modules(tmp_path):
    r = run(tmp_path, {"rich"}, "-v")
    assert r.returncode == 0
    shim_env = dict(os.environ, PYTHONPATH=f"{tmp_path / 'shim'}{os.pathsep}{SRC}")
    probe = subprocess.run([sys.executable, "-c", "import rich"], env=shim_env,
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode == 1 and "No module named 'rich'" in probe.stderr


@pytest.mark.parametrize("args, named", [
    (("bench", "--quick"), "rich, matplotlib"),
    (("bench", "--quick", "--no-charts"), "rich"),
])
def test_bench_without_the_extra_says_how_to_install_it(tmp_path, args, named):
    r = run(tmp_path, {"rich", "matplotlib"}, *args, "--out", str(tmp_path / "out"))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert f"the bench extra is not installed (no module {named})" in r.stderr
    assert "pip install 'mpmd[bench]'" in r.stderr
    assert "apt-get install wrk nginx apache2" in r.stderr
    assert not (tmp_path / "out").exists()


def test_compare_chart_needs_matplotlib_only(tmp_path):
    r = run(tmp_path, {"matplotlib"}, "bench", "--compare", "a.json", "b.json",
            "--compare-chart", "c.png")
    assert r.returncode == 2 and "(no module matplotlib)" in r.stderr, r.stderr


def test_write_configs_needs_no_extra(tmp_path):
    r = run(tmp_path, {"rich", "matplotlib"}, "bench", "--write-configs", str(tmp_path / "cfg"))
    assert r.returncode == 0, r.stderr
    assert any((tmp_path / "cfg").iterdir())
