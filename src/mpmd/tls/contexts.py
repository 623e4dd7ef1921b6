"""One ``ssl.SSLContext`` per TLS server, from its mod_ssl values (``ssl_*`` fields).

Theory: a server with ``SSLEngine on`` gets a server-side context (``PROTOCOL_TLS_SERVER``)
that carries everything mod_ssl's directives say: the protocol range, the cipher lists, the
options, the certificate, its key and chain, and the client verification.  Contexts are made
while the configuration is loaded (so ``mpmd -t`` reads every file and a restart with a bad
certificate keeps the running generation), in the master, before any child drops to
User/Group; children inherit them when they fork.

Rule 1: an error names the directive to blame (``TlsConfigError.field``), in httpd's words
        where httpd has some (AH02572 for SSLEngine on without a certificate).
Rule 2: options: no compression (CRIME), no client-initiated renegotiation (as mod_ssl refuses
        it), no session tickets when ``SSLSessionTickets off``, the server's cipher order only
        with ``SSLHonorCipherOrder on`` (the ssl module sets it by default: cleared otherwise).
Rule 3: ALPN offers ``http/1.1``, the one protocol the server speaks.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from typing import Any

from mpmd.tls import openssl
from mpmd.tls.settings import DEFAULT_PROTOCOLS, VERIFY_MODES, version_range

ALPN = ["http/1.1"]
DEFAULT_VERIFY_DEPTH = 1                     # httpd's SSLVerifyDepth default
_NO_VERSION = {"TLSv1": ssl.OP_NO_TLSv1, "TLSv1.1": ssl.OP_NO_TLSv1_1,
               "TLSv1.2": ssl.OP_NO_TLSv1_2, "TLSv1.3": ssl.OP_NO_TLSv1_3}


class TlsConfigError(Exception):
    """A server's TLS settings cannot make a context; ``field`` is the directive to blame."""

    def __init__(self, text: str, field: str) -> None:
        super().__init__(text)
        self.text = text
        self.field = field


def server_label(server: Any) -> str:
    """``name:port`` as httpd names a server in its messages (AH02572)."""
    name = str(getattr(server, "server_name", None) or "localhost").split("://", 1)[-1]
    return name if ":" in name.lstrip("[").split("]")[-1] else f"{name}:443"


def build_context(server: Any) -> ssl.SSLContext:
    """The context for ``server`` (SSLEngine on); TlsConfigError when it cannot be made."""
    if not getattr(server, "ssl_certificate_file", None):
        raise TlsConfigError(f"Failed to configure at least one certificate and key for "
                             f"{server_label(server)}", "ssl_engine")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _protocols(ctx, server)
    _ciphers(ctx, server)
    _options(ctx, server)
    _certificate(ctx, server)
    _verify(ctx, server)
    ctx.set_alpn_protocols(ALPN)
    return ctx


def _protocols(ctx: ssl.SSLContext, server: Any) -> None:
    protocols = getattr(server, "ssl_protocol", None) or DEFAULT_PROTOCOLS
    lo, hi, holes = version_range(protocols)
    try:
        ctx.minimum_version, ctx.maximum_version = lo, hi
    except (ValueError, ssl.SSLError) as exc:
        raise TlsConfigError(f"SSLProtocol cannot be applied: {exc}", "ssl_protocol") from None
    for name in holes:
        ctx.options |= _NO_VERSION[name]


def _ciphers(ctx: ssl.SSLContext, server: Any) -> None:
    for protocol, spec in getattr(server, "ssl_cipher_suite", None) or ():
        try:
            if protocol == "TLSv1.3":
                openssl.set_tls13_suites(ctx, spec)
            else:
                ctx.set_ciphers(spec)
        except RuntimeError as exc:              # openssl.py Rule 1: said, not ignored
            raise TlsConfigError(str(exc), "ssl_cipher_suite") from None
        except (ssl.SSLError, ValueError):
            raise TlsConfigError(f"Unable to configure permitted SSL ciphers: no cipher "
                                 f"matches '{spec}'", "ssl_cipher_suite") from None


def _options(ctx: ssl.SSLContext, server: Any) -> None:
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    openssl.set_session_cache_off(ctx)          # httpd has none without SSLSessionCache
    if not getattr(server, "ssl_session_tickets", True):
        # OP_NO_TICKET alone still lets TLS 1.3 hand out stateful tickets: issue none at all
        ctx.options |= ssl.OP_NO_TICKET
        ctx.num_tickets = 0
    if getattr(server, "ssl_honor_cipher_order", False):
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE


def _certificate(ctx: ssl.SSLContext, server: Any) -> None:
    cert = server.ssl_certificate_file
    key = getattr(server, "ssl_certificate_key_file", None)
    chain = getattr(server, "ssl_certificate_chain_file", None)
    _pem(cert, b"CERTIFICATE-----", "SSLCertificateFile", "ssl_certificate_file", "certificate")
    if key:
        _pem(key, b"PRIVATE KEY-----", "SSLCertificateKeyFile", "ssl_certificate_key_file",
             "private key")
    else:
        _pem(cert, b"PRIVATE KEY-----", "SSLCertificateFile", "ssl_certificate_file",
             "private key (and no SSLCertificateKeyFile is set)")
    if chain:
        _pem(chain, b"CERTIFICATE-----", "SSLCertificateChainFile", "ssl_certificate_chain_file",
             "certificate")
    try:
        if chain:
            _load_with_chain(ctx, cert, key, chain)
        else:
            ctx.load_cert_chain(cert, key, password=_no_passphrase)
    except _Encrypted:
        raise TlsConfigError(f"Private key {key or cert} is encrypted: mpmd has no "
                             f"SSLPassPhraseDialog; store the key unencrypted (mode 0600)",
                             "ssl_certificate_key_file" if key else "ssl_certificate_file") from None
    except ssl.SSLError as exc:
        raise TlsConfigError(_load_error(exc, cert, key), _blame(exc, key)) from None


def _pem(path: str, marker: bytes, directive: str, field: str, what: str) -> None:
    """The file can be read and holds a PEM ``what`` (httpd's ssl_cmd_check_file, and more)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise TlsConfigError(f"{directive}: file '{path}' cannot be read: "
                             f"{exc.strerror or exc}", field) from None
    if not data:
        raise TlsConfigError(f"{directive}: file '{path}' does not exist or is empty", field)
    if marker not in data:
        raise TlsConfigError(f"{directive}: file '{path}' holds no PEM {what}", field)


class _Encrypted(Exception):
    pass


def _no_passphrase() -> str:
    raise _Encrypted()


def _load_with_chain(ctx: ssl.SSLContext, cert: str, key: str | None, chain: str) -> None:
    """The ssl module reads the certificate and its chain from one file: join them in a
    private temporary file for the call (SSLCertificateChainFile, deprecated in httpd)."""
    with open(cert, "rb") as f:
        data = f.read()
    with open(chain, "rb") as f:
        data += b"\n" + f.read()
    fd, joined = tempfile.mkstemp(prefix="mpmd-chain-", suffix=".pem")
    try:
        os.write(fd, data)
        os.close(fd)
        ctx.load_cert_chain(joined, key or cert, password=_no_passphrase)
    finally:
        os.unlink(joined)


def _load_error(exc: ssl.SSLError, cert: str, key: str | None) -> str:
    reason = str(getattr(exc, "reason", "") or exc)
    if "KEY_VALUES_MISMATCH" in reason.upper():
        return (f"Certificate and private key from {cert} and {key or cert} do not match "
                f"(SSLCertificateFile, SSLCertificateKeyFile)")
    return f"Unable to load certificate or key from {cert}{' and ' + key if key else ''}: {exc}"


def _blame(exc: ssl.SSLError, key: str | None) -> str:
    reason = str(getattr(exc, "reason", "") or "").upper()
    if key and ("KEY" in reason or "MISMATCH" in reason):
        return "ssl_certificate_key_file"
    return "ssl_certificate_file"


def _verify(ctx: ssl.SSLContext, server: Any) -> None:
    level = str(getattr(server, "ssl_verify_client", None) or "none")
    if level == "optional_no_ca":
        raise TlsConfigError("SSLVerifyClient optional_no_ca is not supported: Python's ssl "
                             "module cannot accept a client certificate that does not verify",
                             "ssl_verify_client")
    ctx.verify_mode = VERIFY_MODES[level]
    ca = getattr(server, "ssl_ca_certificate_file", None)
    if ca:
        _pem(ca, b"CERTIFICATE-----", "SSLCACertificateFile", "ssl_ca_certificate_file",
             "certificate")
        try:
            ctx.load_verify_locations(cafile=ca)
        except ssl.SSLError as exc:
            raise TlsConfigError(f"SSLCACertificateFile: no certificate could be read from "
                                 f"'{ca}': {exc}", "ssl_ca_certificate_file") from None
    elif level != "none":
        raise TlsConfigError(f"SSLVerifyClient {level} needs SSLCACertificateFile: the CA "
                             "certificates client certificates are checked against",
                             "ssl_verify_client")
    depth = int(getattr(server, "ssl_verify_depth", DEFAULT_VERIFY_DEPTH))
    if level != "none":
        _verify_depth(ctx, depth)


def _verify_depth(ctx: ssl.SSLContext, depth: int) -> None:
    try:
        openssl.set_verify_depth(ctx, depth)
    except RuntimeError as exc:
        raise TlsConfigError(str(exc), "ssl_verify_depth") from None
