"""Config files and command lines for every server in the lab, rendered from one SIZING.

Rule 1: rendering is pure: (target, paths, port, sizing) -> text or argv. Nothing here starts
a process or touches the network, so the exact configs are unit-tested and shown in docs.
Rule 2: every server gets the same knobs from ``Sizing`` (keep-alive timeout and request cap,
process and thread counts, sendfile on, logging off) so differences come from the servers,
not from their configs. Where a knob has no equivalent the renderer says so in a comment.
Rule 3: the mpmd config is plain Apache syntax; only the MPM's LoadModule line and its
``<IfModule>`` block differ between prefork, worker, event and nginx.
Rule 4: the https workloads (``TLS_WORKLOADS``) add TLS to the same configs: the lab's one
certificate (``Paths.cert``/``Paths.key``), and session resumption off wherever the server
has a knob for it (tickets and the session cache), so a new connection is a full handshake.
Rule 5: the reliability workloads (``RELIABILITY_WORKLOADS``: reloads, killed children, slow
clients, soak) run with Debian's default pools (``Sizing.debian``, the same for mpmd and
Apache, as issue 18's harness), not the throughput sizing, and Apache loads mod_reqtimeout
there, as Debian enables it; ``sizing_for`` picks the sizing of a workload.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from mpmd.bench.tls import openssl_argv


@dataclass(frozen=True)
class Sizing:
    """Knobs shared by all servers (see docs/benchmarks.md, "Method")."""

    keep_alive_timeout_s: int = 30
    max_keep_alive_requests: int = 1000
    # StartServers for prefork: one process per wrk connection (see for_connections), so every
    # keep-alive connection is served from the first second.  With fewer, the connections
    # beyond them wait in the backlog while the pool grows: fewer hot processes give a higher
    # rate, and the waiting ones a p99 of over a second and wrk timeouts.
    prefork_start: int = 64
    prefork_max: int = 128          # MaxRequestWorkers for prefork (processes)
    threads_per_child: int = 32
    thread_start_servers: int = 2
    thread_max: int = 128           # MaxRequestWorkers for worker/event (threads)
    loop_processes: int = 1         # nginx worker_processes, uvicorn, granian ASGI, mpmd
    #                                 WorkerProcesses (beside gunicorn: gunicorn_workers, see
    #                                 loop_processes())
    loop_connections: int = 8192    # nginx worker_connections, mpmd WorkerConnections
    gunicorn_workers: int = 2       # gunicorn, granian WSGI
    gunicorn_threads: int = 8       # gunicorn gthread threads, granian WSGI blocking threads
    # Min/MaxSpareServers (prefork) and Min/MaxSpareThreads (worker, event); None: the
    # spare servers follow prefork_start (half and twice), the spare threads are not written
    prefork_spare: tuple[int, int] | None = None
    thread_spare: tuple[int, int] | None = None

    @classmethod
    def for_connections(cls, connections: int) -> "Sizing":
        """The default sizing, with a prefork process for each of ``connections``."""
        return cls(prefork_start=connections, prefork_max=max(cls.prefork_max, connections))

    @classmethod
    def debian(cls) -> "Sizing":
        """Debian's default pools (/etc/apache2/mods-available/mpm_*.conf; nginx's
        ``worker_processes auto`` on 2 CPUs, ``worker_connections 768``), the lab's keep-alive
        settings; gunicorn keeps the lab's 2 workers x 8 threads."""
        return cls(prefork_start=5, prefork_spare=(5, 10), prefork_max=150,
                   thread_start_servers=2, threads_per_child=25, thread_spare=(25, 75),
                   thread_max=150, loop_processes=2, loop_connections=768)


@dataclass(frozen=True)
class Paths:
    """Where one server instance keeps its files (a private temp dir per instance)."""

    workdir: Path      # config, pid, logs of this instance
    docroot: Path      # shared static files (1k.bin, 1m.bin)
    appdir: Path       # shared app shims (hello_wsgi.py, hello_asgi.py, faulty_wsgi.py)
    cert: Path | None = None   # the lab's certificate and key (PEM), for the https workloads
    key: Path | None = None

    def tls_files(self) -> tuple[Path, Path]:
        """(certificate, key); a ValueError when this instance was given none."""
        if self.cert is None or self.key is None:
            raise ValueError("an https workload needs Paths.cert and Paths.key")
        return self.cert, self.key


# Which URL each workload requests (servers mount the apps at these paths).
WORKLOAD_PATHS: dict[str, str] = {
    "static-1k": "/1k.bin",
    "static-1m": "/1m.bin",
    "wsgi-hello": "/app/",
    "asgi-hello": "/asgi/",
    "idle": "/1k.bin",
    "faults": "/app/",
    "tls-static-1k": "/1k.bin",
    "tls-asgi-hello": "/asgi/",
    "reload": "/1k.bin",
    "kill": "/1k.bin",
    "slowloris": "/1k.bin",
    "slowbody": "/app/",
    "soak": "/1k.bin",
}

# The reliability workloads (issue 18): graceful reloads and killed children under wrk load,
# slow headers and slow bodies beside a probing client, and a soak of mpmd's MPMs.
RELIABILITY_WORKLOADS = ("reload", "kill", "slowloris", "slowbody", "soak")

# Where a server without the lab's apps (nginx, Apache) is sent a workload's requests instead:
# a slow body is POSTed to the 1 KiB file, which nginx and Apache read (and discard) before
# answering 405.
STATIC_PATHS: dict[str, str] = {"slowbody": "/1k.bin"}


def workload_path(workload: str, family: str) -> str:
    """The URL path a server of ``family`` is sent ``workload``'s requests on."""
    if family in ("nginx", "apache"):
        return STATIC_PATHS.get(workload, WORKLOAD_PATHS[workload])
    return WORKLOAD_PATHS[workload]


def sizing_for(workload: str, s: Sizing) -> Sizing:
    """The lab's sizing ``s``, or Debian's default pools for a reliability workload."""
    return Sizing.debian() if workload in RELIABILITY_WORKLOADS else s

# The https workloads: the 1 KiB file and the ASGI hello world over TLS.
TLS_WORKLOADS = ("tls-static-1k", "tls-asgi-hello")

_MPMD_MPM_BLOCKS: dict[str, str] = {
    "prefork": """<IfModule mpm_prefork_module>
    StartServers {s.prefork_start}
    MinSpareServers {min_spare}
    MaxSpareServers {max_spare}
    ServerLimit {s.prefork_max}
    MaxRequestWorkers {s.prefork_max}
</IfModule>""",
    "worker": """<IfModule mpm_worker_module>
    StartServers {s.thread_start_servers}
    ThreadsPerChild {s.threads_per_child}{thread_spare}
    MaxRequestWorkers {s.thread_max}
</IfModule>""",
    "event": """<IfModule mpm_event_module>
    StartServers {s.thread_start_servers}
    ThreadsPerChild {s.threads_per_child}{thread_spare}
    MaxRequestWorkers {s.thread_max}
</IfModule>""",
    "nginx": """<IfModule mpm_nginx_module>
    WorkerProcesses {loop_processes}
    WorkerConnections {s.loop_connections}
</IfModule>""",
}

# The same blocks for Apache httpd (nginx is not an Apache MPM).
_APACHE_MPM_BLOCKS = {k: v for k, v in _MPMD_MPM_BLOCKS.items() if k != "nginx"}


# Workloads whose peer is gunicorn: there mpmd's nginx MPM runs as many processes as gunicorn
# has workers (and as the worker/event MPMs start), where nginx and uvicorn are its peers it
# runs as many as they do (Sizing.loop_processes).
GUNICORN_WORKLOADS = frozenset({"wsgi-hello", "faults"})


def loop_processes(workload: str, s: Sizing) -> int:
    """WorkerProcesses of mpmd's nginx MPM for ``workload``: the peer's process count."""
    return s.gunicorn_workers if workload in GUNICORN_WORKLOADS else s.loop_processes


def _mpm_block(blocks: dict[str, str], mpm: str, s: Sizing, workload: str = "static-1k") -> str:
    min_spare, max_spare = s.prefork_spare or (max(1, s.prefork_start // 2), s.prefork_start * 2)
    thread_spare = ("" if s.thread_spare is None else
                    "\n    MinSpareThreads {}\n    MaxSpareThreads {}".format(*s.thread_spare))
    return blocks[mpm].format(s=s, min_spare=min_spare, max_spare=max_spare,
                              thread_spare=thread_spare,
                              loop_processes=loop_processes(workload, s))


def _app_lines(workload: str, p: Paths) -> list[str]:
    """The app-mounting directives an mpmd config needs for one workload."""
    table = {
        "wsgi-hello": [f'WSGIScriptAlias /app "{p.appdir / "hello_wsgi.py"}"'],
        "faults": [f'WSGIScriptAlias /app "{p.appdir / "faulty_wsgi.py"}"'],
        "asgi-hello": ["ASGIApp /asgi hello_asgi:app"],
        "tls-asgi-hello": ["ASGIApp /asgi hello_asgi:app"],
        "slowbody": [f'WSGIScriptAlias /app "{p.appdir / "body_wsgi.py"}"'],
        "soak": [f'WSGIScriptAlias /app "{p.appdir / "hello_wsgi.py"}"'],
    }
    return table.get(workload, [])


def _mpmd_tls_lines(p: Paths) -> list[str]:
    """mod_ssl's directives, as Apache takes them, for the main server."""
    cert, key = p.tls_files()
    return ["SSLEngine on", f'SSLCertificateFile "{cert}"', f'SSLCertificateKeyFile "{key}"',
            "SSLSessionTickets off"]


def render_mpmd(mpm: str, workload: str, p: Paths, s: Sizing, port: int = 0) -> str:
    """httpd.conf text for mpmd running ``mpm`` for ``workload``."""
    tls = workload in TLS_WORKLOADS
    lines = [
        f"# mpmd {mpm} for the {workload} benchmark (generated by mpmd.bench.configs)",
        f"ServerRoot \"{p.workdir}\"",
        f"Listen 127.0.0.1:{port}" + (" https" if tls else ""),
        f"LoadModule mpm_{mpm}_module modules/mod_mpm_{mpm}.so",
        _mpm_block(_MPMD_MPM_BLOCKS, mpm, s, workload),
        f'DocumentRoot "{p.docroot}"',
        "KeepAlive On",
        f"KeepAliveTimeout {s.keep_alive_timeout_s}",
        f"MaxKeepAliveRequests {s.max_keep_alive_requests}",
        "EnableSendfile On",
        f'ErrorLog "{p.workdir / "error.log"}"',
        f'PidFile "{p.workdir / "mpmd.pid"}"',
        *_app_lines(workload, p),
        *(_mpmd_tls_lines(p) if tls else []),
    ]
    return "\n".join(lines) + "\n"


def _nginx_tls(p: Paths) -> str:
    cert, key = p.tls_files()
    return f"""
        # nginx 1.22's default ssl_protocols leave TLSv1.3 out; the others offer 1.2 and 1.3
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;"""


def render_nginx(p: Paths, s: Sizing, port: int, tls: bool = False) -> str:
    """nginx.conf for static files; worker_processes as Sizing.loop_processes; with ``tls``
    the server listens with ssl (the https workloads)."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""# nginx peer (generated by mpmd.bench.configs)
{user}worker_processes {s.loop_processes};
worker_rlimit_nofile {s.loop_connections * 2};
pid {p.workdir}/nginx.pid;
error_log {p.workdir}/error.log warn;
events {{ worker_connections {s.loop_connections}; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout {s.keep_alive_timeout_s}s;
    keepalive_requests {s.max_keep_alive_requests};
    default_type application/octet-stream;
    client_body_temp_path {p.workdir}/client_body;
    proxy_temp_path {p.workdir}/proxy;
    fastcgi_temp_path {p.workdir}/fastcgi;
    uwsgi_temp_path {p.workdir}/uwsgi;
    scgi_temp_path {p.workdir}/scgi;
    server {{
        listen 127.0.0.1:{port}{" ssl" if tls else ""};
        root {p.docroot};{_nginx_tls(p) if tls else ""}
    }}
}}
"""


APACHE_MODULES_DIR = Path("/usr/lib/apache2/modules")


def _apache_tls(p: Paths, modules_dir: Path) -> str:
    cert, key = p.tls_files()
    return f"""LoadModule ssl_module {modules_dir}/mod_ssl.so
# no SSLSessionCache: mod_ssl turns OpenSSL's session cache off
SSLEngine on
SSLCertificateFile "{cert}"
SSLCertificateKeyFile "{key}"
SSLSessionTickets off
"""


def render_apache(mpm: str, p: Paths, s: Sizing, port: int,
                  modules_dir: Path = APACHE_MODULES_DIR, tls: bool = False,
                  reqtimeout: bool = False) -> str:
    """apache2.conf for static files with ``mpm`` (prefork, worker or event); with ``tls``,
    mod_ssl on the same listener (the https workloads); with ``reqtimeout``, mod_reqtimeout
    at its default (``header=20-40,MinRate=500 body=20,MinRate=500``), as Debian enables it."""
    reqtimeout_line = (f"LoadModule reqtimeout_module {modules_dir}/mod_reqtimeout.so\n"
                       if reqtimeout else "")
    user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
    return f"""# Apache httpd peer, MPM {mpm} (generated by mpmd.bench.configs)
ServerRoot "{p.workdir}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}{" https" if tls else ""}
LoadModule mpm_{mpm}_module {modules_dir}/mod_mpm_{mpm}.so
LoadModule authz_core_module {modules_dir}/mod_authz_core.so
{reqtimeout_line}{_mpm_block(_APACHE_MPM_BLOCKS, mpm, s)}
{user}PidFile "{p.workdir}/httpd.pid"
ErrorLog "{p.workdir}/error.log"
LogLevel warn
Mutex file:{p.workdir}
DefaultRuntimeDir "{p.workdir}"
DocumentRoot "{p.docroot}"
<Directory "{p.docroot}">
    Require all granted
</Directory>
KeepAlive On
KeepAliveTimeout {s.keep_alive_timeout_s}
MaxKeepAliveRequests {s.max_keep_alive_requests}
EnableSendfile On
{_apache_tls(p, modules_dir) if tls else ""}"""


def gunicorn_argv(kind: str, module: str, p: Paths, s: Sizing, port: int) -> list[str]:
    """gunicorn sync or gthread serving ``module`` (e.g. 'hello_wsgi:application')."""
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--workers", str(s.gunicorn_workers), "--worker-class", kind,
            "--keep-alive", str(s.keep_alive_timeout_s), "--chdir", str(p.appdir),
            "--pid", str(p.workdir / "gunicorn.pid"), "--log-level", "warning",
            "--error-logfile", str(p.workdir / "error.log")]
    if kind == "gthread":
        argv += ["--threads", str(s.gunicorn_threads)]
    return argv + [module]


def uvicorn_argv(module: str, p: Paths, s: Sizing, port: int) -> list[str]:
    """uvicorn with httptools and uvloop, one process (Sizing.loop_processes)."""
    return [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
            "--http", "httptools", "--loop", "uvloop", "--workers", str(s.loop_processes),
            "--app-dir", str(p.appdir), "--no-access-log", "--log-level", "warning",
            "--timeout-keep-alive", str(s.keep_alive_timeout_s), module]


UVICORN_TLS_SCRIPT = '''"""uvicorn over TLS for the mpmd benchmark lab (generated by mpmd.bench.configs).

The settings of the lab's uvicorn command line, plus session tickets off, which uvicorn's
command line has no option for: its ssl_context_factory hook, with no tickets issued (TLS 1.3)
and none accepted (TLS 1.2), as nginx's "ssl_session_tickets off".
"""

import ssl

import uvicorn


def no_tickets(config, default_factory):
    context = default_factory()
    context.options |= ssl.OP_NO_TICKET
    context.num_tickets = 0
    return context


uvicorn.run({module!r}, host="127.0.0.1", port={port}, http="httptools", loop="uvloop",
            workers={workers}, app_dir={appdir!r}, access_log=False, log_level="warning",
            timeout_keep_alive={keep_alive}, ssl_certfile={cert!r},
            ssl_keyfile={key!r}, ssl_context_factory=no_tickets)
'''


def uvicorn_tls_script(module: str, p: Paths, s: Sizing, port: int) -> str:
    """A Python script that runs uvicorn as ``uvicorn_argv`` does, over TLS, without
    session tickets (run as ``python3 SCRIPT``)."""
    cert, key = p.tls_files()
    return UVICORN_TLS_SCRIPT.format(module=module, port=port, workers=s.loop_processes,
                                     appdir=str(p.appdir), keep_alive=s.keep_alive_timeout_s,
                                     cert=str(cert), key=str(key))


# Longest header read timeout granian accepts (--http1-header-read-timeout, in ms).
GRANIAN_MAX_HEADER_TIMEOUT_MS = 60_000


def granian_argv(interface: str, module: str, p: Paths, s: Sizing, port: int,
                 tls: bool = False) -> list[str]:
    """granian serving ``module`` with ``interface`` "wsgi" or "asgi", HTTP/1.1 only; with
    ``tls``, over TLS with the lab's certificate (granian has no knob for session
    resumption: it resumes sessions).

    It runs as many processes as the peer it stands beside: gunicorn's workers (with as many
    blocking threads as gthread has threads) for WSGI, uvicorn's one process (on uvloop) for
    ASGI. granian has no idle keep-alive timeout for HTTP/1; its header read timeout, the
    nearest knob, gets the same seconds (capped at granian's 60 s)."""
    asgi = interface == "asgi"
    argv = [sys.executable, "-m", "granian", "--interface", interface, "--http", "1",
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(s.loop_processes if asgi else s.gunicorn_workers)]
    argv += ["--loop", "uvloop"] if asgi else ["--blocking-threads", str(s.gunicorn_threads)]
    header_ms = min(s.keep_alive_timeout_s * 1000, GRANIAN_MAX_HEADER_TIMEOUT_MS)
    if tls:
        cert, key = p.tls_files()
        argv += ["--ssl-certificate", str(cert), "--ssl-keyfile", str(key)]
    return argv + ["--http1-header-read-timeout", str(header_ms),
                   "--working-dir", str(p.appdir), "--no-access-log", "--log-level", "warning",
                   module]


# Where reference_configs() pretends the files are, and its port: the copies in
# benchmarks/peers/ are for reading, comparing and starting by hand.
REFERENCE_PATHS = Paths(Path("/srv/bench/run"), Path("/srv/bench/htdocs"),
                        Path("/srv/bench/apps"), Path("/srv/bench/tls/cert.pem"),
                        Path("/srv/bench/tls/key.pem"))
REFERENCE_PORT = 8080


def reference_configs(s: Sizing | None = None) -> dict[str, str]:
    """File name -> text of every config and command line the lab renders (default Sizing),
    with placeholder paths and port 8080 (``mpmd bench --write-configs DIR``).  The lab itself
    renders them per instance; the user lines a root run adds are left out."""
    s, p, port = s or Sizing(), REFERENCE_PATHS, REFERENCE_PORT
    files = {"nginx.conf": render_nginx(p, s, port).replace("user root;\n", "")}
    for mpm in ("prefork", "worker", "event"):
        files[f"apache-{mpm}.conf"] = render_apache(mpm, p, s, port).replace(
            "User www-data\nGroup www-data\n", "")
    for mpm in ("prefork", "worker", "event", "nginx"):
        files[f"mpmd-{mpm}.conf"] = render_mpmd(mpm, "wsgi-hello", p, s, port)
    # The nginx MPM runs as many processes as the workload's peer: nginx/uvicorn 1, gunicorn 2.
    files["mpmd-nginx-static.conf"] = render_mpmd("nginx", "static-1k", p, s, port)
    # The https workloads (tls-static-1k; tls-asgi-hello adds the ASGIApp line of asgi-hello).
    files["nginx-tls.conf"] = render_nginx(p, s, port, tls=True).replace("user root;\n", "")
    files["apache-event-tls.conf"] = render_apache("event", p, s, port, tls=True).replace(
        "User www-data\nGroup www-data\n", "")
    for mpm in ("event", "nginx"):
        files[f"mpmd-{mpm}-tls.conf"] = render_mpmd(mpm, "tls-static-1k", p, s, port)
    files["uvicorn-tls.py"] = uvicorn_tls_script("hello_asgi:app", p, s, port)
    # The reliability workloads: Debian's pools, mod_reqtimeout in Apache (slowbody adds the
    # WSGIScriptAlias of body_wsgi.py to mpmd's; soak that of hello_wsgi.py).
    d = Sizing.debian()
    files["nginx-reliability.conf"] = render_nginx(p, d, port).replace("user root;\n", "")
    for mpm in ("prefork", "worker", "event"):
        files[f"apache-{mpm}-reliability.conf"] = render_apache(
            mpm, p, d, port, reqtimeout=True).replace("User www-data\nGroup www-data\n", "")
    for mpm in ("prefork", "worker", "event", "nginx"):
        files[f"mpmd-{mpm}-reliability.conf"] = render_mpmd(mpm, "reload", p, d, port)
    argv = {"gunicorn-sync": gunicorn_argv("sync", "hello_wsgi:application", p, s, port),
            "gunicorn-gthread": gunicorn_argv("gthread", "hello_wsgi:application", p, s, port),
            "uvicorn": uvicorn_argv("hello_asgi:app", p, s, port),
            "granian (wsgi-hello)": granian_argv("wsgi", "hello_wsgi:application", p, s, port),
            "granian (asgi-hello)": granian_argv("asgi", "hello_asgi:app", p, s, port),
            "granian (tls-asgi-hello)": granian_argv("asgi", "hello_asgi:app", p, s, port,
                                                     tls=True)}
    lines = [f"# {name}\n{' '.join(['python3'] + a[1:])}\n" for name, a in argv.items()]
    lines.append("# uvicorn (tls-asgi-hello)\npython3 uvicorn-tls.py\n")
    lines.append("# the certificate of the https workloads (ECDSA P-256, self-signed)\n"
                 + " ".join(openssl_argv(p.tls_files()[0].parent)) + "\n")
    files["commands.txt"] = "".join(lines)
    return files
