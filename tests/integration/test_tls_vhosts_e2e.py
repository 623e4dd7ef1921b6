"""Name-based TLS vhosts on every MPM: SNI picks the vhost and its certificate, and a Host
that names a vhost with other TLS settings than SNI's gets 421, as httpd's mod_ssl answers."""

from __future__ import annotations

import socket
import ssl
import textwrap
from pathlib import Path

import pytest

trustme = pytest.importorskip("trustme")


@pytest.fixture
def tls_sites(tmp_path: Path):
    ca = trustme.CA()
    out = {}
    for name in ("a.test", "b.test"):
        cert = ca.issue_cert(name)
        cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
        cert.cert_chain_pems[0].write_to_path(str(cert_path))
        cert.private_key_pem.write_to_path(str(key_path))
        root = tmp_path / name
        root.mkdir()
        (root / "index.html").write_text(f"{name}\n")
        out[name] = (cert_path, key_path, root)
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return ca_path, out


def _conf(conf, sites) -> None:
    conf.listen("127.0.0.1:0 https")
    blocks = []
    for name, (cert, key, root) in sites.items():
        blocks.append(f'''
            <VirtualHost *>
                ServerName {name}
                DocumentRoot "{root}"
                SSLEngine on
                SSLCertificateFile "{cert}"
                SSLCertificateKeyFile "{key}"
            </VirtualHost>''')
    conf.add(textwrap.dedent("\n".join(blocks)))


def _ask(port: int, ca: Path, sni: str, request: bytes) -> tuple[bytes, dict]:
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=sni) as tls:
            peer = tls.getpeercert()
            tls.sendall(request)
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    return data, peer


def _get(host: str | None, version: str = "1.1") -> bytes:
    host_line = f"Host: {host}\r\n" if host else ""
    return f"GET / HTTP/{version}\r\n{host_line}Connection: close\r\n\r\n".encode()


def test_sni_picks_the_vhost_and_its_certificate(conf, make_server, tls_sites):
    ca, sites = tls_sites
    _conf(conf, sites)
    server = make_server(conf)
    for name in sites:
        data, peer = _ask(server.port, ca, name, _get(name))
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(f"{name}\n".encode()), data
        names = [v for kind, v in peer["subjectAltName"] if kind == "DNS"]
        assert names == [name]


def test_host_for_a_vhost_sni_did_not_choose_is_421(conf, make_server, tls_sites):
    ca, sites = tls_sites
    _conf(conf, sites)
    server = make_server(conf)
    data, _ = _ask(server.port, ca, "a.test", _get("b.test"))
    assert data.startswith(b"HTTP/1.1 421 "), data[:200]
    assert b"b.test\n" not in data
    data, _ = _ask(server.port, ca, "a.test", _get(None, "1.0"))    # SNI, but no Host: 400
    assert data.startswith(b"HTTP/1.1 400 "), data[:200]
    data, _ = _ask(server.port, ca, "a.test", _get("A.TEST:443"))
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
