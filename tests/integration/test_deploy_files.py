"""docs/deploy/: the Kubernetes Deployment parses and its probes, ports and stop timing agree
with mpmd.conf (the image's configuration) and the Dockerfile; mpmd.conf itself passes
``mpmd -t`` and, started, answers the probes' port without a PROXY header and the balancer's
port only with one."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest

from mpmd.http.proxy_protocol import v2_header
from tests.support.deploy import DEPLOY, free_ports, mpmd_conf
from tests.support.harness import Server

yaml = pytest.importorskip("yaml")


def _conf_text():
    return (DEPLOY / "mpmd.conf").read_text()


def _container():
    docs = [d for d in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()) if d]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    return spec, container


def test_the_probes_ask_the_health_endpoint_on_the_port_without_proxy_protocol():
    spec, container = _container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    text = _conf_text()
    listens = {int(m) for m in re.findall(r"(?m)^Listen (\d+)$", text)}
    assert set(ports.values()) == listens
    for probe in ("readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
        vhost = re.search(rf"<VirtualHost \*:{port}>(.*?)</VirtualHost>", text, re.S)
        assert vhost, f"{probe}: no <VirtualHost *:{port}> in mpmd.conf"
        assert "RemoteIPProxyProtocol Off" in vhost.group(1)
        assert f'<Location "{get["path"]}">' in vhost.group(1)
        assert "SetHandler server-health" in vhost.group(1)
    assert "RemoteIPProxyProtocol On" in text


def test_the_stop_fits_in_the_grace_period():
    spec, container = _container()
    text = _conf_text()
    delay = float(re.search(r"(?m)^GracefulStopDelay (\S+)$", text).group(1))
    drain = float(re.search(r"(?m)^GracefulShutdownTimeout (\S+)$", text).group(1))
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert float(pre_stop[1]) + delay + drain < spec["terminationGracePeriodSeconds"]


def test_the_dockerfile_ships_this_config_and_exposes_its_ports():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "COPY mpmd.conf /etc/mpmd/mpmd.conf" in text
    assert '"-f", "/etc/mpmd/mpmd.conf"' in text
    exposed = {int(p) for p in re.search(r"(?m)^EXPOSE (.+)$", text).group(1).split()}
    assert exposed == {int(m) for m in re.findall(r"(?m)^Listen (\d+)$", _conf_text())}


def _get(port, preamble=b""):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(preamble + b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    return data.split(b"\r\n", 1)[0]


def test_the_sample_config_serves_both_ports(tmp_path):
    main, probe = free_ports(2)
    conf = mpmd_conf(tmp_path, main, probe)
    path = conf.write()
    checked = subprocess.run([sys.executable, "-m", "mpmd", "-t", "-f", str(path)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    server = Server(conf).start()
    try:
        assert _get(probe) == b"HTTP/1.1 200 OK"
        assert _get(main, v2_header(None, None)) == b"HTTP/1.1 200 OK"
        assert _get(main) == b""                       # no PROXY header: closed
    finally:
        server.stop()
