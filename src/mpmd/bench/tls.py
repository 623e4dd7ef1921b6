"""TLS for the https workloads: the lab's certificate, and what a handshake with a server shows.

Rule 1: one self-signed ECDSA P-256 certificate per lab run, made by ``openssl req`` into the
run's temp dir when the first https server starts, valid for 127.0.0.1 and localhost. Every
server gets the same certificate and key (PKCS#8 PEM, which granian requires).
Rule 2: resumption is the server's choice. wrk offers the session of a connection's previous
TLS connection on its next one (it keeps its ``SSL`` object across reconnects: SSL_shutdown
and SSL_clear keep the session), so with ``Connection: close`` every handshake is a resumed
one wherever the server allows it. ``probe`` checks each server the same way: new
connections, each offering the previous one's session, and records how many resumed.
Rule 3: probing is a plain client on the loopback (stdlib ``ssl``), bounded by its timeout;
a failure is recorded as the probe's ``error``, never raised into the lab.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CERT_NAME, KEY_NAME = "cert.pem", "key.pem"
SUBJECT_ALT_NAMES = "IP:127.0.0.1,DNS:localhost"


class CertificateError(Exception):
    """The lab's certificate could not be made; str() says why."""


@dataclass(frozen=True)
class Certificate:
    """Where a certificate and its key are."""

    cert: Path
    key: Path


def openssl_argv(directory: Path, days: int = 7) -> list[str]:
    """The ``openssl req`` command that makes the lab's certificate in ``directory``."""
    return ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", str(days),
            "-subj", "/CN=localhost", "-addext", f"subjectAltName={SUBJECT_ALT_NAMES}",
            "-keyout", str(directory / KEY_NAME), "-out", str(directory / CERT_NAME)]


def make_certificate(directory: Path) -> Certificate:
    """A self-signed ECDSA P-256 certificate for 127.0.0.1/localhost in ``directory``
    (kept if already there)."""
    found = Certificate(directory / CERT_NAME, directory / KEY_NAME)
    if found.cert.exists() and found.key.exists():
        return found
    if not shutil.which("openssl"):
        raise CertificateError("openssl not found on PATH (it makes the lab's certificate)")
    directory.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(openssl_argv(directory), capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CertificateError(f"openssl req failed: {exc}") from exc
    if proc.returncode != 0 or not (found.cert.exists() and found.key.exists()):
        raise CertificateError(f"openssl req failed ({proc.returncode}): "
                               f"{proc.stderr.strip()[-300:]}")
    return found


def client_context(cafile: Path | None = None) -> ssl.SSLContext:
    """A client context that trusts ``cafile`` (the lab's certificate), or anything."""
    if cafile is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=str(cafile))


def _request(ctx: ssl.SSLContext, port: int, path: str, timeout_s: float,
             session: ssl.SSLSession | None = None) -> dict[str, Any]:
    """One GET with ``Connection: close`` over a new TLS connection, read to the end: its
    handshake facts (version, cipher, session, resumed) and the answer's status line."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    try:
        sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
    except BaseException:
        raw.close()
        raise
    with sock:
        cipher = sock.cipher()      # now: after the peer's close they may read as None
        facts = {"version": sock.version(), "cipher": cipher[0] if cipher else None,
                 "resumed": bool(sock.session_reused)}
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Connection: close\r\n\r\n".encode())
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ssl.SSLEOFError:      # closed without close_notify: the answer is complete
                break
            if not chunk:
                break
            data += chunk
        # the session after the answer: a TLS 1.3 server sends its tickets after the handshake
        return {**facts, "session": sock.session,
                "status": data.split(b"\r\n", 1)[0].decode("latin-1")}


def probe(port: int, path: str, cafile: Path | None = None, timeout_s: float = 3.0,
          attempts: int = 5) -> dict[str, Any]:
    """https requests on new connections, each offering the previous one's session, as wrk
    does: the protocol and cipher the server chose, the status line, and how many of the
    ``attempts`` later connections it resumed (a server of several processes may resume
    only on the one that issued the session)."""
    ctx = client_context(cafile)
    try:
        first = last = _request(ctx, port, path, timeout_s)
        resumed = 0
        for _ in range(attempts):
            last = _request(ctx, port, path, timeout_s, session=last["session"])
            resumed += last["resumed"]
    except (OSError, ValueError) as exc:      # ssl.SSLError is an OSError
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"version": first["version"], "cipher": first["cipher"], "status": first["status"],
            "resumed": resumed > 0, "resumptions": f"{resumed}/{attempts}"}


def describe(facts: dict[str, Any] | None) -> str:
    """'TLSv1.3 TLS_AES_256_GCM_SHA384, no resumption' for a probe's result."""
    if not facts:
        return "–"
    if "error" in facts:
        return f"probe failed: {facts['error']}"
    resumption = "resumes sessions" if facts.get("resumed") else "no resumption"
    if facts.get("resumptions"):
        resumption += f" ({facts['resumptions']})"
    return f"{facts.get('version')} {facts.get('cipher')}, {resumption}"
