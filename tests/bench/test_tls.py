"""The https workloads' certificate and TLS probe, against a stdlib TLS server (no peers)."""

import shutil
import socket
import ssl
import subprocess
import threading

import pytest

from mpmd.bench import tls

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return tls.make_certificate(tmp_path_factory.mktemp("tls"))


def test_the_certificate_is_ecdsa_p256_for_loopback(cert):
    text = subprocess.run(["openssl", "x509", "-in", str(cert.cert), "-noout", "-text"],
                          capture_output=True, text=True, check=True, timeout=30).stdout
    assert "id-ecPublicKey" in text and "prime256v1" in text
    assert "IP Address:127.0.0.1" in text and "DNS:localhost" in text
    assert cert.key.read_text().startswith("-----BEGIN PRIVATE KEY-----")   # PKCS#8
    again = tls.make_certificate(cert.cert.parent)             # made once, then kept
    assert again == cert and again.cert.stat().st_mtime == cert.cert.stat().st_mtime


def test_without_openssl_the_certificate_is_an_error_that_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(tls.CertificateError, match="openssl not found"):
        tls.make_certificate(tmp_path / "tls")


class _TLSServer:
    """Answers each connection with one small response, then closes it (six at most: the
    probe's first connection and its five attempts to resume)."""

    def __init__(self, cert, tickets: bool):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert.cert, cert.key)
        if not tickets:
            self.ctx.options |= ssl.OP_NO_TICKET
            self.ctx.num_tickets = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        for _ in range(6):
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(raw, server_side=True) as conn:
                    conn.settimeout(5)
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                 b"Connection: close\r\n\r\nok")
            except OSError:
                pass

    def close(self):
        self.sock.close()
        self.thread.join(5)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("tickets", [True, False])
def test_probe_finds_the_protocol_and_whether_the_server_resumes(cert, tickets):
    server = _TLSServer(cert, tickets)
    try:
        facts = tls.probe(server.port, "/", cafile=cert.cert)
    finally:
        server.close()
    assert facts["version"] == "TLSv1.3" and facts["status"] == "HTTP/1.1 200 OK"
    assert facts["cipher"].startswith("TLS_")
    assert facts["resumed"] is tickets
    assert facts["resumptions"] == ("5/5" if tickets else "0/5")
    assert tls.describe(facts).endswith("resumes sessions (5/5)" if tickets
                                        else "no resumption (0/5)")


def test_a_failed_probe_is_recorded_not_raised():
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    facts = tls.probe(port, "/", timeout_s=1)        # nothing listens there now
    assert "error" in facts and tls.describe(facts).startswith("probe failed:")
    assert tls.describe(None) == "–"
