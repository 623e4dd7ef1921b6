"""Certificates made at test time (trustme): a CA, server certificates, client certificates."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass
class Pki:
    ca: trustme.CA
    ca_path: Path
    cert: Path                      # the server's certificate for localhost / 127.0.0.1
    key: Path
    root: Path

    def client_context(self, client_cert: "trustme.LeafCert | None" = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_path))
        if client_cert is not None:
            client_cert.configure_cert(ctx)
        return ctx

    def issue(self, name: str, *names: str, **kw) -> tuple[Path, Path]:
        """A server certificate for ``name`` (and ``names``): (cert path, key path)."""
        leaf = self.ca.issue_cert(name, *names, **kw)
        cert, key = self.root / f"{name}.crt", self.root / f"{name}.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        return cert, key


def make_pki(root: Path) -> Pki:
    root.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    ca_path = root / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    pki = Pki(ca, ca_path, root / "server.crt", root / "server.key", root)
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(pki.cert))
    leaf.private_key_pem.write_to_path(str(pki.key))
    return pki


def ssl_lines(pki: Pki, *extra: str) -> str:
    """The main server's mod_ssl lines for ``pki``'s localhost certificate."""
    lines = ["SSLEngine on", f'SSLCertificateFile "{pki.cert}"', f'SSLCertificateKeyFile "{pki.key}"',
             *extra]
    return "\n".join(lines)
