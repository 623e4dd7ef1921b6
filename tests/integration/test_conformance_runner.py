"""The shared HTTP/1.1 conformance corpus (../shared/conformance) against every MPM.

The corpus lives next to the clone (CI: ``<clone>/../shared``); without it the test is skipped.
Every case must pass; the assertion names the failing case ids and their reasons.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.confbuilder import ConfBuilder

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO.parent / "shared" / "conformance" / "run.py"

pytestmark = pytest.mark.skipif(not RUNNER.is_file(),
                                reason=f"conformance corpus not found at {RUNNER} (CI has it at <clone>/../shared)")


def make_docroot(root: Path) -> Path:
    htdocs = root / "conformance" / "htdocs"
    subprocess.run([sys.executable, str(RUNNER), "--make-docroot", str(htdocs)], check=True,
                   capture_output=True, timeout=60)
    return htdocs


def failures(report: dict) -> list[str]:
    return [f"{r['id']}: {'; '.join(r.get('reasons') or [])}"
            for r in report.get("results", []) if not r.get("passed")]


@pytest.mark.timeout(300)
def test_conformance_corpus_passes(mpm, tmp_path, make_server):
    htdocs = make_docroot(tmp_path)
    conf = ConfBuilder(tmp_path, mpm=mpm)
    conf.set("DocumentRoot", f'"{htdocs}"').set("DirectoryIndex", "index.html")
    server = make_server(conf)
    out = tmp_path / "conformance.json"
    proc = subprocess.run([sys.executable, str(RUNNER), "--port", str(server.port), "--docroot", str(htdocs),
                           "--json", str(out)], capture_output=True, text=True, timeout=240)
    assert out.is_file(), f"runner wrote no report (exit {proc.returncode})\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    report = json.loads(out.read_text())
    failed = failures(report)
    assert not failed and proc.returncode == 0, (
        f"{mpm}: {report.get('passed')}/{report.get('total')} passed; failing cases:\n  "
        + "\n  ".join(failed) + f"\n{server.diagnostics()}")
    assert report["passed"] == report["total"] > 0
