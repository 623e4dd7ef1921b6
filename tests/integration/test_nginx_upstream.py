"""nginx (the Debian package) in front of two mpmd servers, with docs/deploy/nginx.conf and
mpmd-behind-nginx.conf (ports and paths replaced): under a client loop, each mpmd in turn is
restarted gracefully and nothing is lost; the access logs show the client's address from
X-Forwarded-For (127.0.0.3), with nginx's (127.0.0.2) as the connection's peer."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from tests.support.deploy import DEPLOY, FileConf, free_ports
from tests.support.harness import Server, wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(not os.path.exists(NGINX), reason="needs nginx")


def _mpmd_conf(root, port):
    root.mkdir(parents=True, exist_ok=True)
    conf = FileConf(root, "")
    conf.htdocs.mkdir(parents=True, exist_ok=True)
    (conf.htdocs / "index.html").write_bytes(b"<h1>hello</h1>\n")
    text = (DEPLOY / "mpmd-behind-nginx.conf").read_text()
    text = re.sub(r"(?m)^Listen 8081$", f"Listen 127.0.0.1:{port}", text)
    text = text.replace('DocumentRoot "/srv/www"', f'DocumentRoot "{conf.htdocs}"')
    text = text.replace('ErrorLog "/dev/stderr"', f'ErrorLog "{conf.error_log}"')
    text = text.replace('PidFile "/tmp/mpmd.pid"', f'PidFile "{conf.pid_file}"')
    text = text.replace('CustomLog "/dev/stdout"', f'CustomLog "{root / "access_log"}"')
    text = text.replace("RemoteIPInternalProxy 127.0.0.1", "RemoteIPInternalProxy 127.0.0.2")
    conf.body = text + "StartServers 1\nMinSpareThreads 4\nThreadsPerChild 8\n"
    return conf


def _nginx_conf(tmp, front, backs):
    text = (DEPLOY / "nginx.conf").read_text()
    text = text.replace("pid /run/nginx-mpmd.pid;", f"pid {tmp}/nginx.pid;")
    text = text.replace("error_log /var/log/nginx/error.log;", f"error_log {tmp}/nginx-error.log;")
    text = text.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{front};")
    for i, port in enumerate(backs, 1):
        text = text.replace(f"127.0.0.1:808{i}", f"127.0.0.1:{port}")
    temps = "".join(f"    {name}_temp_path {tmp}/{name};\n" for name in
                    ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # nginx connects from another address than the client's (the logs tell them apart)
    text = text.replace("http {\n", "http {\n" + temps + "    proxy_bind 127.0.0.2;\n", 1)
    if os.geteuid() == 0:
        text = "user root;\n" + text
    assert not re.search(r"\b808[0-2]\b", text)
    return text


def _get(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5,
                                      source_address=("127.0.0.3", 0)) as sock:
            sock.sendall(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return int(data.split(b" ", 2)[1]) if data else 0
    except (OSError, ValueError, IndexError):
        return 0


def test_rolling_restart_behind_nginx_upstream(tmp_path):
    front, *backs = free_ports(3)
    servers = {}
    proc = None
    results: list[int] = []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            results.append(_get(front))

    try:
        for i, port in enumerate(backs):
            servers[i] = Server(_mpmd_conf(tmp_path / f"web{i + 1}", port)).start()
        cfg = tmp_path / "nginx.conf"
        cfg.write_text(_nginx_conf(tmp_path, front, backs))
        proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(cfg), "-g", "daemon off;"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                start_new_session=True)
        wait_for(lambda: _get(front) == 200, timeout=10, message="nginx up")
        threads = [threading.Thread(target=client) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        for server in servers.values():
            generation = int(server.ready.get("generation", 0))
            server.signal(signal.SIGUSR1)
            server.ready = server.wait_ready(15, generation=generation + 1)
            time.sleep(0.7)
        stop.set()
        for t in threads:
            t.join(10)
    finally:
        stop.set()
        if proc is not None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        for server in servers.values():
            if server.proc is not None and server.proc.poll() is None:
                server.stop()
    assert len(results) > 100 and set(results) == {200}, (len(results), sorted(set(results)))
    logged = 0
    for i in range(2):
        for line in (tmp_path / f"web{i + 1}" / "access_log").read_text().splitlines():
            ua, peer, _ = line.split(" ", 2)
            assert (ua, peer) == ("127.0.0.3", "127.0.0.2"), line
            logged += 1
    assert logged >= len(results)
