"""Start and stop the servers under test, each in its own process group.

Rule 1: every server is started with ``start_new_session=True`` so the whole tree (master,
children, threads) is one process group; stopping is TERM to the group, a bounded wait, then
KILL to the group. ``ServerPool`` is a context manager that stops whatever is still running
on exit -- including Ctrl-C and exceptions -- so no server outlives the lab.
Rule 2: readiness is a condition polled with a deadline (ready file for mpmd, an HTTP
response for the peers); a server that exits or misses the deadline is "unavailable" with
the reason (its stderr / error log tail), never a crash of the lab.
Rule 3: each target is one row of ``TARGETS``: how to check it exists, which workloads it
serves, how to render its config and argv. Adding a peer is adding a row.
Rule 4: an https workload's server gets the pool's one certificate (made when the first of
them starts) and, once ready, a TLS probe (``tls.probe``: protocol, cipher, whether it
resumes a session), kept as ``Server.tls`` for the samples.
Rule 5: a reliability workload's server gets Debian's default pools (``configs.sizing_for``);
each target says which signal makes its master reload gracefully (``Target.reload_signal``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mpmd.bench import configs, tls
from mpmd.bench.configs import RELIABILITY_WORKLOADS, TLS_WORKLOADS, Paths, Sizing

STATIC = ("static-1k", "static-1m", "idle")
WSGI = ("wsgi-hello", "faults")
ASGI = ("asgi-hello",)
TLS_STATIC = ("tls-static-1k",)
TLS_ASGI = ("tls-asgi-hello",)
# The reliability workloads every server runs (the soak is mpmd's alone: it needs a file and
# a WSGI app from one server).
RELIABLE = ("reload", "kill", "slowloris", "slowbody")
MPMD_MPMS = ("prefork", "worker", "event", "nginx")
APACHE_MPMS = ("prefork", "worker", "event")


class Unavailable(Exception):
    """A target cannot run a workload here; str() is the reason recorded in the results."""


@dataclass
class Launch:
    """What to run for one instance: argv, files to write, and how to find its port."""

    argv: list[str]
    files: dict[str, str] = field(default_factory=dict)
    port: int | None = None           # None: read it from the ready file
    ready_file: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """One server flavour in the lab (a row of TARGETS)."""

    name: str
    family: str                       # mpmd, nginx, apache, gunicorn, uvicorn or granian
    workloads: tuple[str, ...]
    check: Callable[[], str | None]   # None when runnable, else why not
    launch: Callable[[str, Paths, Sizing], Launch]
    # the signal that makes the master reload gracefully (httpd's and mpmd's graceful restart
    # is SIGUSR1; nginx and gunicorn reload on SIGHUP)
    reload_signal: int = signal.SIGUSR1


def free_port() -> int:
    """A currently free loopback port for peers that cannot report a port-0 bind."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _need(program: str) -> Callable[[], str | None]:
    return lambda: None if shutil.which(program) else f"{program} not found on PATH"


def _need_module(module: str) -> Callable[[], str | None]:
    def check() -> str | None:
        import importlib.util
        return None if importlib.util.find_spec(module) else f"python module {module} missing"
    return check


def _apache_check(mpm: str) -> Callable[[], str | None]:
    def check() -> str | None:
        if not shutil.which("apache2"):
            return "apache2 not found on PATH"
        so = configs.APACHE_MODULES_DIR / f"mod_mpm_{mpm}.so"
        return None if so.exists() else f"{so} missing"
    return check


def _mpmd_launch(mpm: str) -> Callable[[str, Paths, Sizing], Launch]:
    def launch(workload: str, p: Paths, s: Sizing) -> Launch:
        conf = p.workdir / "httpd.conf"
        ready = p.workdir / "ready.json"
        src = str(Path(__file__).resolve().parents[2])
        pythonpath = os.pathsep.join(x for x in (src, str(p.appdir),
                                                 os.environ.get("PYTHONPATH", "")) if x)
        return Launch(argv=[sys.executable, "-m", "mpmd", "-f", str(conf),
                            "--ready-file", str(ready)],
                      files={"httpd.conf": configs.render_mpmd(mpm, workload, p, s)},
                      ready_file=ready, env={"PYTHONPATH": pythonpath})
    return launch


def _nginx_launch(workload: str, p: Paths, s: Sizing) -> Launch:
    port = free_port()
    text = configs.render_nginx(p, s, port, tls=workload in TLS_WORKLOADS)
    return Launch(argv=["nginx", "-c", str(p.workdir / "nginx.conf"), "-p", str(p.workdir),
                        "-g", "daemon off;"],
                  files={"nginx.conf": text}, port=port)


def _apache_launch(mpm: str) -> Callable[[str, Paths, Sizing], Launch]:
    def launch(workload: str, p: Paths, s: Sizing) -> Launch:
        port = free_port()
        return Launch(argv=["apache2", "-d", str(p.workdir), "-f",
                            str(p.workdir / "apache2.conf"), "-DFOREGROUND"],
                      files={"apache2.conf": configs.render_apache(
                          mpm, p, s, port, tls=workload in TLS_WORKLOADS,
                          reqtimeout=workload in RELIABILITY_WORKLOADS)},
                      port=port, env={"APACHE_RUN_DIR": str(p.workdir),
                                      "APACHE_LOCK_DIR": str(p.workdir),
                                      "APACHE_LOG_DIR": str(p.workdir)})
    return launch


_APP_MODULES = {"wsgi-hello": "hello_wsgi:application", "faults": "faulty_wsgi:application",
                "asgi-hello": "hello_asgi:app", "tls-asgi-hello": "hello_asgi:app",
                **{w: "hello_wsgi:application" for w in RELIABLE},
                "slowbody": "body_wsgi:application"}


def _gunicorn_launch(kind: str) -> Callable[[str, Paths, Sizing], Launch]:
    def launch(workload: str, p: Paths, s: Sizing) -> Launch:
        port = free_port()
        return Launch(argv=configs.gunicorn_argv(kind, _APP_MODULES[workload], p, s, port),
                      port=port)
    return launch


def _uvicorn_launch(workload: str, p: Paths, s: Sizing) -> Launch:
    port = free_port()
    if workload in TLS_WORKLOADS:       # its command line cannot turn session tickets off
        script = configs.uvicorn_tls_script(_APP_MODULES[workload], p, s, port)
        return Launch(argv=[sys.executable, str(p.workdir / "uvicorn_tls.py")],
                      files={"uvicorn_tls.py": script}, port=port)
    return Launch(argv=configs.uvicorn_argv(_APP_MODULES[workload], p, s, port), port=port)


def _granian_launch(workload: str, p: Paths, s: Sizing) -> Launch:
    port = free_port()
    interface = "asgi" if workload in ASGI + TLS_ASGI else "wsgi"
    return Launch(argv=configs.granian_argv(interface, _APP_MODULES[workload], p, s, port,
                                            tls=workload in TLS_WORKLOADS),
                  port=port)


def _mpmd_check() -> str | None:
    return None


TARGETS: dict[str, Target] = {
    **{f"mpmd-{m}": Target(f"mpmd-{m}", "mpmd", STATIC + WSGI + ASGI + TLS_STATIC + TLS_ASGI
                           + RELIABLE + ("soak",), _mpmd_check, _mpmd_launch(m))
       for m in MPMD_MPMS},
    "nginx": Target("nginx", "nginx", STATIC + TLS_STATIC + RELIABLE, _need("nginx"),
                    _nginx_launch, signal.SIGHUP),
    **{f"apache-{m}": Target(f"apache-{m}", "apache", STATIC + TLS_STATIC + RELIABLE,
                             _apache_check(m), _apache_launch(m)) for m in APACHE_MPMS},
    "gunicorn-sync": Target("gunicorn-sync", "gunicorn", WSGI, _need_module("gunicorn"),
                            _gunicorn_launch("sync")),
    "gunicorn-gthread": Target("gunicorn-gthread", "gunicorn", WSGI + RELIABLE,
                               _need_module("gunicorn"), _gunicorn_launch("gthread"),
                               signal.SIGHUP),
    "uvicorn": Target("uvicorn", "uvicorn", ASGI + TLS_ASGI, _need_module("uvicorn"),
                      _uvicorn_launch),
    "granian": Target("granian", "granian", ("wsgi-hello",) + ASGI + TLS_ASGI,
                      _need_module("granian"), _granian_launch),
}


# mpmd's last line after configuration errors ("MPMD0516: 2 errors in the configuration")
_ERROR_COUNT = re.compile(r"\d+ errors? in the configuration$")


def _tail(path: Path, limit: int = 800) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def http_ready(port: int, path: str, timeout_s: float = 0.5, https: bool = False) -> bool:
    """True when the server answers one HTTP request on ``path`` with any status line (over
    TLS with ``https``, any certificate accepted)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as raw:
            sock = (tls.client_context().wrap_socket(raw, server_hostname="127.0.0.1")
                    if https else raw)
            with sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Connection: close\r\n\r\n".encode())
                return sock.recv(16).startswith(b"HTTP/")
    except OSError:                     # ssl.SSLError included
        return False


@dataclass
class Server:
    """A running server instance."""

    target: Target
    workload: str
    proc: subprocess.Popen[bytes]
    port: int
    pid: int            # the root of the process tree (the master)
    workdir: Path
    tls: dict[str, object] | None = None    # tls.probe() of an https workload's server

    @property
    def https(self) -> bool:
        return self.workload in TLS_WORKLOADS

    @property
    def url(self) -> str:
        scheme = "https" if self.https else "http"
        return f"{scheme}://127.0.0.1:{self.port}{self.path}"

    @property
    def path(self) -> str:
        """The URL path this server is sent its workload's requests on."""
        return configs.workload_path(self.workload, self.target.family)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace_s: float = 5.0) -> None:
        """TERM the process group, wait up to grace_s, then KILL it."""
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        _kill_group_leftovers(self.proc.pid)


def _kill_group_leftovers(pgid: int) -> None:
    """Children may outlive a dead master; the group id still finds them."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_ready(path: Path) -> tuple[int, int] | None:
    try:
        data = json.loads(path.read_text())
        return int(data["listeners"][0][1]), int(data["pid"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


class ServerPool:
    """Starts servers and guarantees they are stopped (context manager)."""

    def __init__(self, root: Path, docroot: Path, appdir: Path, sizing: Sizing) -> None:
        self.root, self.docroot, self.appdir, self.sizing = root, docroot, appdir, sizing
        self.running: list[Server] = []
        self._count = 0
        self._certificate: tls.Certificate | None = None

    def __enter__(self) -> "ServerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def stop_all(self) -> None:
        while self.running:
            self.running.pop().stop()

    def stop(self, server: Server) -> None:
        if server in self.running:
            self.running.remove(server)
        server.stop()

    def start(self, target: Target, workload: str, timeout_s: float = 20.0) -> Server:
        """Start target for workload; raises Unavailable with the reason."""
        reason = target.check()
        if reason:
            raise Unavailable(reason)
        if workload not in target.workloads:
            raise Unavailable(f"{target.name} does not serve {workload}")
        self._count += 1
        workdir = self.root / f"{self._count:03d}-{target.name}-{workload}"
        workdir.mkdir(parents=True)
        os.chmod(workdir, 0o755)
        cert = self.certificate() if workload in TLS_WORKLOADS else None
        paths = Paths(workdir, self.docroot, self.appdir, cert and cert.cert, cert and cert.key)
        launch = target.launch(workload, paths, configs.sizing_for(workload, self.sizing))
        for name, text in launch.files.items():
            (workdir / name).write_text(text)
        server = self._spawn(target, workload, launch, workdir, timeout_s)
        if cert is not None:
            server.tls = tls.probe(server.port, configs.WORKLOAD_PATHS[workload], cert.cert)
        return server

    def certificate(self) -> tls.Certificate:
        """The pool's certificate for the https workloads, made on first use."""
        if self._certificate is None:
            try:
                self._certificate = tls.make_certificate(self.root / "tls")
            except tls.CertificateError as exc:
                raise Unavailable(str(exc)) from exc
        return self._certificate

    def _spawn(self, target: Target, workload: str, launch: Launch, workdir: Path,
               timeout_s: float) -> Server:
        stderr = open(workdir / "stderr.txt", "wb")
        try:
            proc = subprocess.Popen(launch.argv, cwd=workdir, stdin=subprocess.DEVNULL,
                                    stdout=stderr, stderr=stderr, start_new_session=True,
                                    env={**os.environ, **launch.env})
        except OSError as exc:
            raise Unavailable(f"cannot execute {launch.argv[0]}: {exc}") from exc
        finally:
            stderr.close()
        server = Server(target, workload, proc, launch.port or 0, proc.pid, workdir)
        self.running.append(server)
        try:
            self._wait_ready(server, launch, timeout_s)
        except Unavailable:
            self.stop(server)
            raise
        return server

    def _wait_ready(self, server: Server, launch: Launch, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        path = server.path
        while time.monotonic() < deadline:
            if not server.alive():
                raise Unavailable(self._why(server, f"exited with {server.proc.returncode}"))
            if launch.ready_file is not None and not server.port:
                found = _read_ready(launch.ready_file)
                if found:
                    server.port, server.pid = found
            if server.port and http_ready(server.port, path, https=server.https):
                return
            time.sleep(0.05)
        raise Unavailable(self._why(server, f"not ready within {timeout_s:.0f}s"))

    @staticmethod
    def _why(server: Server, what: str) -> str:
        detail = (_tail(server.workdir / "stderr.txt", 600).strip()
                  or _tail(server.workdir / "error.log", 600).strip())
        # the last line that says what went wrong, not mpmd's closing count of the errors
        lines = [x for x in detail.splitlines() if x.strip() and not _ERROR_COUNT.search(x)]
        last = lines[-1] if lines else ""
        return f"{server.target.name} {what}" + (f": {last}" if last else "")
