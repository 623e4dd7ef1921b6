"""The import rules of docs/architecture.md, checked on the source (lazy imports included).

Rule 1: ``mpmd.http`` is sans-I/O: stdlib and httptools only, and no sockets, threads or clocks.
Rule 2: ``mpmd.config`` knows MPMs and modules only through their registries (``mpmd.mpm``,
        ``mpmd.modules``), never their code.
Rule 3: one MPM never imports another; shared code lives in base/common/conn/threaded/timeouts.
Rule 4: the scoreboard depends on nothing of mpmd but itself; modules reach MPMs only via Query.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mpmd"
MPM_NAMES = ("prefork", "worker", "event", "nginx")
NO_IO = {"socket", "threading", "time", "selectors", "asyncio", "select", "ssl"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def files_of(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


def owner_mpm(path: Path) -> str | None:
    rel = path.relative_to(SRC / "mpm").parts
    name = rel[0].removesuffix(".py")
    return name if name in MPM_NAMES else None


@pytest.mark.parametrize("path", files_of("http"), ids=lambda p: p.name)
def test_http_core_is_sans_io(path: Path) -> None:
    for name in imports_of(path):
        top = name.split(".")[0]
        assert top in ("mpmd", "httptools") or top in sys.stdlib_module_names, name
        assert top not in NO_IO, f"{path.name} imports {name}"
        if top == "mpmd":
            assert name.startswith("mpmd.http"), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", files_of("config"), ids=lambda p: p.name)
def test_config_knows_mpms_and_modules_only_by_registry(path: Path) -> None:
    for name in imports_of(path):
        assert not name.startswith(("mpmd.mpm.", "mpmd.modules.", "mpmd.scoreboard")), \
            f"{path.name} imports {name}"


@pytest.mark.parametrize("path", files_of("mpm"), ids=lambda p: str(p.relative_to(SRC)))
def test_one_mpm_never_imports_another(path: Path) -> None:
    mine = owner_mpm(path)
    for name in imports_of(path):
        parts = name.split(".")
        if parts[:2] == ["mpmd", "mpm"] and len(parts) > 2 and parts[2] in MPM_NAMES:
            assert parts[2] == mine, f"{path.relative_to(SRC)} imports {name}"


@pytest.mark.parametrize("path", files_of("scoreboard"), ids=lambda p: p.name)
def test_scoreboard_stands_alone(path: Path) -> None:
    for name in imports_of(path):
        if name.startswith("mpmd"):
            assert name.startswith("mpmd.scoreboard"), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", files_of("modules"), ids=lambda p: p.name)
def test_modules_reach_mpms_only_through_query(path: Path) -> None:
    for name in imports_of(path):
        if name.startswith("mpmd.mpm"):
            assert name == "mpmd.mpm.base", f"{path.name} imports {name}"
