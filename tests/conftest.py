"""Shared fixtures: the ``mpm`` matrix and a ``server`` factory for integration tests.

``mpm`` is parametrized over every MPM in ``mpmd.mpm.MPMS`` whose class imports today, so the
integration suite runs against each new MPM without copying a test.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT), str(ROOT / "src")):
    if p not in sys.path:
        sys.path.insert(0, p)
# Every `python -m mpmd` a test starts runs this checkout's code, not whichever copy of mpmd is
# installed (a second worktree, a stale editable install).
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT / "src"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])

from mpmd.mpm import MPMS, load_mpm_class  # noqa: E402
from tests.support.confbuilder import ConfBuilder  # noqa: E402
from tests.support.harness import Server  # noqa: E402


def available_mpms() -> list[str]:
    names = []
    for name in MPMS:
        try:
            load_mpm_class(name)
        except Exception:
            continue
        names.append(name)
    return names


@pytest.fixture(params=available_mpms())
def mpm(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``make_server(conf_builder, *args)`` starts a server; every one is stopped at teardown."""
    started: list[Server] = []

    def factory(conf: ConfBuilder, *args: str) -> Server:
        server = Server(conf, tuple(args))
        started.append(server)
        return server.start()

    yield factory
    for server in started:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()


@pytest.fixture
def conf(tmp_path: Path, mpm: str) -> ConfBuilder:
    """A config for ``mpm`` on 127.0.0.1:0 with a small document root."""
    builder = ConfBuilder(tmp_path, mpm=mpm)
    builder.htdocs.mkdir(parents=True, exist_ok=True)
    (builder.htdocs / "index.html").write_bytes(b"<h1>hello</h1>\n")
    (builder.htdocs / "1k.bin").write_bytes(bytes(range(256)) * 4)
    return builder
