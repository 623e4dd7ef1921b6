"""The import rules of docs/architecture.md, checked on the source (lazy imports included).

Rule 1: ``mpmd.http`` is sans-I/O: stdlib, httptools and wsproto only, and no sockets, threads
        or clocks.
Rule 2: ``mpmd.config`` knows MPMs and modules only through their registries (``mpmd.mpm``,
        ``mpmd.modules``), never their code.
Rule 3: one MPM never imports another; shared code lives in base/common/conn/threaded/timeouts.
Rule 4: the scoreboard depends on nothing of mpmd but itself; modules reach MPMs only via Query.
Rule 5: the request pipeline (``mpmd.http``, ``mpmd.core``, ``mpmd.modules``) sits below the
        MPMs and the supervisor (master, signals, PidFile, listeners) above them: nothing below
        imports what is above, and no MPM imports the supervisor.
Rule 6: no private name (``_x``) is imported from another package.
Rule 7: no module names an MPM: it asks the MPM's query interface (``mpmd.mpm.base.Query``).
Rule 8: ``mpmd.tls`` (contexts, SNI, SSL variables) sits with the pipeline: the MPMs' transports
        and mod_ssl use it, and it imports nothing of mpmd but the core, the HTTP core and itself.
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
        assert top in ("mpmd", "httptools", "wsproto") or top in sys.stdlib_module_names, name
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


def _packages_below() -> list[Path]:
    return [*files_of("http"), *files_of("core"), *files_of("modules"), *files_of("tls")]


@pytest.mark.parametrize("path", files_of("tls"), ids=lambda p: p.name)
def test_tls_imports_only_the_core_and_itself(path: Path) -> None:
    for name in imports_of(path):
        if name.startswith("mpmd"):
            assert name.startswith(("mpmd.tls", "mpmd.core", "mpmd.http")), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", _packages_below(), ids=lambda p: str(p.relative_to(SRC)))
def test_the_pipeline_never_imports_what_is_above_it(path: Path) -> None:
    for name in imports_of(path):
        assert not name.startswith(("mpmd.supervisor", "mpmd.cli", "mpmd.bench")), \
            f"{path.relative_to(SRC)} imports {name}"
        if name.startswith("mpmd.mpm."):      # the registry (mpmd.mpm) and Query (base) only
            assert name == "mpmd.mpm.base", f"{path.relative_to(SRC)} imports {name}"


@pytest.mark.parametrize("path", files_of("mpm"), ids=lambda p: str(p.relative_to(SRC)))
def test_mpms_never_import_the_supervisor(path: Path) -> None:
    for name in imports_of(path):
        assert not name.startswith(("mpmd.supervisor", "mpmd.cli")), \
            f"{path.relative_to(SRC)} imports {name}"


def _package_of(module: str) -> str:
    """The package a dotted module name belongs to (itself when it is a package)."""
    as_dir = SRC.parent.joinpath(*module.split("."))
    return module if as_dir.is_dir() else module.rsplit(".", 1)[0]


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_private_name_is_imported_from_another_package(path: Path) -> None:
    mine = ".".join(path.relative_to(SRC.parent).parts[:-1])
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                and node.module.startswith("mpmd")):
            continue
        for alias in node.names:
            private = alias.name.startswith("_") and not alias.name.startswith("__")
            assert not (private and _package_of(node.module) != mine), \
                f"{path.relative_to(SRC)} imports {alias.name} from {node.module}"


@pytest.mark.parametrize("path", files_of("modules"), ids=lambda p: p.name)
def test_modules_never_name_an_mpm(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert node.value.lower() not in MPM_NAMES, \
                f"{path.name}:{node.lineno} names the {node.value} MPM; ask mpm.query() instead"
