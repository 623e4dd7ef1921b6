"""A standalone apache2 for the tests that compare mpmd with Apache httpd (Debian's package):
its own config, loopback ports, stopped when the test is done."""

from __future__ import annotations

import shutil
import socket
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import pytest

from tests.support.harness import wait_for

APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
MODULES = Path("/usr/lib/apache2/modules")


def needs_apache(*modules: str) -> pytest.MarkDecorator:
    """Skip unless apache2 and these modules (file names, ``mod_ssl.so``) are installed."""
    wanted = ("mod_mpm_event.so", *modules)
    found = Path(APACHE).exists() and all((MODULES / m).exists() for m in wanted)
    return pytest.mark.skipif(not found, reason="apache2 (or one of its modules) is not installed")


def free_port(addr: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return int(s.getsockname()[1])


def answers(addrs: Iterable[tuple[str, int]]) -> bool:
    """Whether every (address, port) accepts a connection."""
    try:
        for addr in addrs:
            socket.create_connection(addr, timeout=1).close()
        return True
    except OSError:
        return False


@contextmanager
def running(conf: Path, addrs: Iterable[tuple[str, int]]) -> Iterator[None]:
    """apache2 -f conf in the foreground, until every address answers; stopped afterwards.
    In a session of its own: the prefork MPM's shutdown TERMs its whole process group."""
    addrs = list(addrs)
    proc = subprocess.Popen([APACHE, "-f", str(conf), "-DFOREGROUND"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_for(lambda: answers(addrs), timeout=15, message="apache2 to listen")
        yield
    finally:
        proc.terminate()
        proc.wait(10)


def config(root: Path, port: int, htdocs: Path, *, modules: Iterable[str] = (),
           listen: str = "", extra: str = "", mpm: str = "event") -> str:
    """A standalone httpd.conf: the ``mpm`` MPM (event), authz_core and ``modules`` (their
    module names, ``ssl``), one loopback Listen (``listen``: its protocol word), its own
    PidFile and ErrorLog under ``root``, ``htdocs`` served to all; then ``extra``."""
    loads = [f"LoadModule {name}_module {MODULES}/mod_{name}.so"
             for name in (f"mpm_{mpm}", "authz_core", *modules)]
    return "\n".join([
        f'ServerRoot "{root}"', "ServerName localhost",
        f"Listen 127.0.0.1:{port} {listen}".rstrip(), *loads,
        f'PidFile "{root}/httpd.pid"', f'ErrorLog "{root}/error.log"',
        f'DocumentRoot "{htdocs}"', f'<Directory "{htdocs}">', "    Require all granted",
        "</Directory>", extra, ""])
