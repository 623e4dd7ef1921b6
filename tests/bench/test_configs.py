"""Config rendering: the same knobs everywhere, and configs the real peers accept."""

import os
import shutil
import subprocess

import pytest

from mpmd.bench import configs
from mpmd.bench.configs import Paths, Sizing


@pytest.fixture
def paths(tmp_path):
    for d in ("work", "htdocs", "apps"):
        (tmp_path / d).mkdir()
    os.chmod(tmp_path, 0o755)
    return Paths(tmp_path / "work", tmp_path / "htdocs", tmp_path / "apps")


@pytest.mark.parametrize("mpm,directive", [("prefork", "MaxSpareServers"),
                                           ("worker", "ThreadsPerChild"),
                                           ("event", "ThreadsPerChild"),
                                           ("nginx", "WorkerConnections")])
def test_mpmd_config_loads_one_mpm_with_its_block(paths, mpm, directive):
    text = configs.render_mpmd(mpm, "static-1k", paths, Sizing())
    assert f"LoadModule mpm_{mpm}_module modules/mod_mpm_{mpm}.so" in text
    assert f"<IfModule mpm_{mpm}_module>" in text and directive in text
    assert "Listen 127.0.0.1:0" in text
    assert "KeepAliveTimeout 30" in text and "MaxKeepAliveRequests 1000" in text
    assert "WSGIScriptAlias" not in text


def test_mpmd_app_workloads_mount_their_app(paths):
    wsgi = configs.render_mpmd("worker", "wsgi-hello", paths, Sizing())
    assert f'WSGIScriptAlias /app "{paths.appdir / "hello_wsgi.py"}"' in wsgi
    assert "faulty_wsgi.py" in configs.render_mpmd("prefork", "faults", paths, Sizing())
    assert "ASGIApp /asgi hello_asgi:app" in configs.render_mpmd("nginx", "asgi-hello", paths,
                                                                 Sizing())


def test_the_nginx_mpm_runs_as_many_processes_as_the_peer_of_the_workload(paths):
    s = Sizing(loop_processes=1, gunicorn_workers=2)
    for workload, count in (("static-1k", 1), ("asgi-hello", 1), ("idle", 1),
                            ("wsgi-hello", 2), ("faults", 2)):      # nginx/uvicorn vs gunicorn
        assert f"WorkerProcesses {count}" in configs.render_mpmd("nginx", workload, paths, s)
    assert "worker_processes 1;" in configs.render_nginx(paths, s, 8080)
    assert "--workers 1" in " ".join(configs.uvicorn_argv("hello_asgi:app", paths, s, 8080))
    assert "--workers 2" in " ".join(configs.gunicorn_argv("gthread", "m:app", paths, s, 8080))
    # granian stands beside both: gunicorn's workers for WSGI, uvicorn's one process for ASGI
    assert "--workers 2" in " ".join(configs.granian_argv("wsgi", "m:app", paths, s, 8080))
    assert "--workers 1" in " ".join(configs.granian_argv("asgi", "m:app", paths, s, 8080))


def test_peers_share_the_keepalive_knobs(paths):
    s = Sizing(keep_alive_timeout_s=7, max_keep_alive_requests=55)
    nginx = configs.render_nginx(paths, s, 8080)
    apache = configs.render_apache("event", paths, s, 8080)
    assert "keepalive_timeout 7s;" in nginx and "keepalive_requests 55;" in nginx
    assert "KeepAliveTimeout 7" in apache and "MaxKeepAliveRequests 55" in apache
    assert "--keep-alive" in configs.gunicorn_argv("gthread", "m:a", paths, s, 1)
    assert configs.uvicorn_argv("m:app", paths, s, 1)[-3:] == ["--timeout-keep-alive", "7",
                                                               "m:app"]
    granian = configs.granian_argv("wsgi", "m:app", paths, s, 1)
    assert granian[granian.index("--http1-header-read-timeout") + 1] == "7000"
    long = configs.granian_argv("asgi", "m:app", paths, Sizing(keep_alive_timeout_s=300), 1)
    assert long[long.index("--http1-header-read-timeout") + 1] == "60000"   # granian's maximum


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
def test_granian_serves_http1_on_loopback_with_the_peers_threads(paths, interface):
    s = Sizing(gunicorn_threads=8)
    argv = configs.granian_argv(interface, "m:app", paths, s, 8080)
    opts = dict(zip(argv, argv[1:]))
    assert argv[1:3] == ["-m", "granian"] and argv[-1] == "m:app"
    assert opts["--interface"] == interface and opts["--http"] == "1"
    assert opts["--host"] == "127.0.0.1" and opts["--port"] == "8080"
    assert opts["--working-dir"] == str(paths.appdir)
    if interface == "wsgi":
        assert opts["--blocking-threads"] == "8"        # as gunicorn gthread's threads
    else:
        assert "--blocking-threads" not in opts and opts["--loop"] == "uvloop"  # as uvicorn


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx not installed")
def test_nginx_accepts_its_config(paths):
    (paths.workdir / "nginx.conf").write_text(configs.render_nginx(paths, Sizing(), 18080))
    proc = subprocess.run(["nginx", "-t", "-c", str(paths.workdir / "nginx.conf"), "-p",
                           str(paths.workdir)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(not shutil.which("apache2"), reason="apache2 not installed")
@pytest.mark.parametrize("mpm", ["prefork", "worker", "event"])
def test_apache_accepts_its_config(paths, mpm):
    conf = paths.workdir / "apache2.conf"
    conf.write_text(configs.render_apache(mpm, paths, Sizing(), 18080))
    proc = subprocess.run(["apache2", "-t", "-d", str(paths.workdir), "-f", str(conf)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("connections", [64, 200])
def test_prefork_starts_a_process_for_every_wrk_connection(paths, connections):
    # fewer would leave connections in the backlog while the pool grows (a flattering rate)
    s = Sizing.for_connections(connections)
    for text in (configs.render_mpmd("prefork", "static-1k", paths, s),
                 configs.render_apache("prefork", paths, s, 0)):
        assert f"StartServers {connections}\n" in text
        limit = int(text.split("MaxRequestWorkers ")[1].split()[0])
        assert limit >= connections


def test_the_reference_copies_in_benchmarks_peers_are_what_the_lab_renders():
    """benchmarks/peers/ is regenerated with `mpmd bench --write-configs benchmarks/peers`."""
    from pathlib import Path
    peers = Path(__file__).resolve().parents[2] / "benchmarks" / "peers"
    files = configs.reference_configs()
    assert sorted(p.name for p in peers.iterdir()) == sorted(files)
    stale = [name for name, text in files.items() if (peers / name).read_text() != text]
    assert stale == [], f"rerun: python3 -m mpmd.bench --write-configs benchmarks/peers ({stale})"
    assert "user root;" not in files["nginx.conf"] and "www-data" not in files["apache-event.conf"]
    assert "python3 -m granian --interface asgi" in files["commands.txt"]


def test_write_configs_needs_no_wrk_and_starts_nothing(tmp_path, monkeypatch, capsys):
    import mpmd.bench
    monkeypatch.setenv("PATH", str(tmp_path))            # no wrk, no servers on PATH
    assert mpmd.bench.main(["--write-configs", str(tmp_path / "peers")]) == 0
    assert (tmp_path / "peers" / "mpmd-nginx-static.conf").read_text() == \
        configs.reference_configs()["mpmd-nginx-static.conf"]
    assert "wrote 23 files" in capsys.readouterr().out


# ---- the https workloads ---------------------------------------------------------------

@pytest.fixture
def tls_paths(paths):
    from mpmd.bench import tls
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    cert = tls.make_certificate(paths.workdir.parent / "tls")
    return Paths(paths.workdir, paths.docroot, paths.appdir, cert.cert, cert.key)


@pytest.mark.parametrize("mpm", ["nginx", "event"])
def test_mpmd_https_config_uses_mod_ssl_directives(tls_paths, mpm):
    p = tls_paths
    text = configs.render_mpmd(mpm, "tls-static-1k", p, Sizing(), 8443)
    assert "Listen 127.0.0.1:8443 https\n" in text
    for line in ("SSLEngine on", f'SSLCertificateFile "{p.cert}"',
                 f'SSLCertificateKeyFile "{p.key}"', "SSLSessionTickets off"):
        assert line + "\n" in text
    assert "ASGIApp /asgi hello_asgi:app" in configs.render_mpmd(mpm, "tls-asgi-hello", p,
                                                                 Sizing())
    plain = configs.render_mpmd(mpm, "static-1k", p, Sizing(), 8080)
    assert "SSL" not in plain and "Listen 127.0.0.1:8080\n" in plain


def test_an_https_config_without_a_certificate_is_refused(paths):
    with pytest.raises(ValueError, match="Paths.cert"):
        configs.render_mpmd("nginx", "tls-static-1k", paths, Sizing())
    with pytest.raises(ValueError):
        configs.render_nginx(paths, Sizing(), 8443, tls=True)


def test_peers_turn_session_resumption_off_where_they_can(tls_paths):
    p, s = tls_paths, Sizing()
    nginx = configs.render_nginx(p, s, 8443, tls=True)
    assert "listen 127.0.0.1:8443 ssl;" in nginx
    assert "ssl_session_cache off;" in nginx and "ssl_session_tickets off;" in nginx
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in nginx     # 1.22's default leaves 1.3 out
    apache = configs.render_apache("event", p, s, 8443, tls=True)
    assert "Listen 127.0.0.1:8443 https\n" in apache and "mod_ssl.so" in apache
    assert "SSLSessionTickets off\n" in apache and "\nSSLSessionCache" not in apache
    assert "ssl" not in configs.render_nginx(p, s, 8080) and \
        "SSL" not in configs.render_apache("event", p, s, 8080)
    script = configs.uvicorn_tls_script("hello_asgi:app", p, s, 8443)
    compile(script, "uvicorn_tls.py", "exec")
    assert "context.num_tickets = 0" in script and "ssl.OP_NO_TICKET" in script
    assert f"ssl_certfile={str(p.cert)!r}" in script and "port=8443" in script
    argv = configs.granian_argv("asgi", "hello_asgi:app", p, s, 8443, tls=True)
    opts = dict(zip(argv, argv[1:]))
    assert opts["--ssl-certificate"] == str(p.cert) and opts["--ssl-keyfile"] == str(p.key)
    assert "--ssl-certificate" not in configs.granian_argv("asgi", "m:a", p, s, 8443)


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx not installed")
def test_nginx_accepts_its_https_config(tls_paths):
    p = tls_paths
    (p.workdir / "nginx.conf").write_text(configs.render_nginx(p, Sizing(), 18443, tls=True))
    proc = subprocess.run(["nginx", "-t", "-c", str(p.workdir / "nginx.conf"), "-p",
                           str(p.workdir)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(not (configs.APACHE_MODULES_DIR / "mod_ssl.so").exists(),
                    reason="apache2 with mod_ssl not installed")
def test_apache_accepts_its_https_config(tls_paths):
    p = tls_paths
    conf = p.workdir / "apache2.conf"
    conf.write_text(configs.render_apache("event", p, Sizing(), 18443, tls=True))
    proc = subprocess.run(["apache2", "-t", "-d", str(p.workdir), "-f", str(conf)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_the_reference_configs_include_the_https_ones():
    files = configs.reference_configs()
    assert {"nginx-tls.conf", "apache-event-tls.conf", "mpmd-event-tls.conf",
            "mpmd-nginx-tls.conf", "uvicorn-tls.py"} <= set(files)
    assert "SSLEngine on" in files["mpmd-nginx-tls.conf"]
    assert "--ssl-certificate /srv/bench/tls/cert.pem" in files["commands.txt"]
    assert "openssl req -x509 -newkey ec" in files["commands.txt"]
