"""httpd's SSL variables for one connection (mod_ssl ``SSLOptions +StdEnvVars``).

Theory: after the handshake, a transport asks ``connection_vars(sslobj, server_vars)`` once
per connection; the dict goes into ``ConnInfo.tls`` and from there into the WSGI environ (and
the ASGI TLS extension).  The server's own certificate does not change per connection: its
part (``SSL_SERVER_*``) is made once per context (``server_vars``).

Rule 1: formats are httpd 2.4's: a DN in RFC 2253 form, most specific RDN first
        (``CN=client,O=Example``), special characters escaped with ``\\``; dates as OpenSSL
        prints them (``Jan  1 00:00:00 2030 GMT``); serials in upper-case hex.
Rule 2: ``SSL_CLIENT_VERIFY`` is ``NONE`` without a client certificate and ``SUCCESS`` with one:
        a certificate that does not verify never gets this far (the handshake refuses it).
Rule 3: ``SSL_TLS_SNI`` is the name the client sent, as the SNI callback saw it (``SNI_ATTR``
        on the SSL object), and absent when it sent none.
"""

from __future__ import annotations

import ssl
import time
from typing import Any

SNI_ATTR = "mpmd_sni"              # set on the SSLSocket / SSLObject by the SNI callback
VERSION_INTERFACE = "mpmd/mod_ssl"
# getpeercert() long names -> the short names X509_NAME_print_ex prints (XN_FLAG_FN_SN).
SHORT_NAMES = {
    "commonName": "CN", "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST",
    "organizationName": "O", "organizationalUnitName": "OU", "streetAddress": "STREET",
    "domainComponent": "DC", "userId": "UID", "emailAddress": "emailAddress",
    "surname": "SN", "givenName": "GN", "title": "title", "serialNumber": "serialNumber",
}
# The DN components httpd exports one by one (SSL_CLIENT_S_DN_CN ...).
COMPONENTS = {"CN": "CN", "C": "C", "L": "L", "ST": "ST", "O": "O", "OU": "OU",
              "emailAddress": "Email", "UID": "UID", "SN": "S", "GN": "G", "title": "T"}
_ESCAPE = {c: "\\" + c for c in ',+"\\<>;'}


def library_vars() -> dict[str, str]:
    """What is the same for every connection of every server."""
    name, _, rest = ssl.OPENSSL_VERSION.partition(" ")
    return {"HTTPS": "on", "SSL_VERSION_INTERFACE": VERSION_INTERFACE,
            "SSL_VERSION_LIBRARY": f"{name}/{rest.split()[0] if rest else ''}",
            "SSL_COMPRESS_METHOD": "NULL", "SSL_CIPHER_EXPORT": "false"}


def server_vars(decoded: dict[str, Any] | None) -> dict[str, str]:
    """SSL_SERVER_* from the server certificate, decoded as getpeercert() decodes one."""
    return cert_vars("SSL_SERVER", decoded) if decoded else {}


def connection_vars(sslobj: Any, fixed: dict[str, str]) -> dict[str, str]:
    """Every variable for one connection (``fixed``: the library's and the server's)."""
    out = dict(fixed)
    name, protocol, bits = sslobj.cipher() or ("", "", 0)
    out["SSL_PROTOCOL"] = sslobj.version() or protocol
    out["SSL_CIPHER"] = name
    out["SSL_CIPHER_USEKEYSIZE"] = out["SSL_CIPHER_ALGKEYSIZE"] = str(bits)
    out["SSL_SESSION_RESUMED"] = "Resumed" if sslobj.session_reused else "Initial"
    sni = getattr(sslobj, SNI_ATTR, None)
    if sni:
        out["SSL_TLS_SNI"] = sni
    out.update(client_vars(sslobj))
    return out


def client_vars(sslobj: Any) -> dict[str, str]:
    """SSL_CLIENT_*: the verified client certificate, or SSL_CLIENT_VERIFY=NONE (Rule 2)."""
    der = sslobj.getpeercert(binary_form=True)
    decoded = sslobj.getpeercert() if der else None
    if not der or not decoded:
        return {"SSL_CLIENT_VERIFY": "NONE"}
    out = cert_vars("SSL_CLIENT", decoded)
    out["SSL_CLIENT_VERIFY"] = "SUCCESS"
    out["SSL_CLIENT_CERT"] = ssl.DER_cert_to_PEM_cert(der)
    return out


def cert_vars(prefix: str, decoded: dict[str, Any]) -> dict[str, str]:
    """``{prefix}_S_DN``, ``_I_DN``, their components, serial, validity, version."""
    out: dict[str, str] = {}
    for part, key in (("S", "subject"), ("I", "issuer")):
        rdns = decoded.get(key) or ()
        out[f"{prefix}_{part}_DN"] = rfc2253(rdns)
        for short, value in _attributes(rdns):
            label = COMPONENTS.get(short)
            if label is not None:
                out.setdefault(f"{prefix}_{part}_DN_{label}", value)
    if "serialNumber" in decoded:
        out[f"{prefix}_M_SERIAL"] = str(decoded["serialNumber"]).upper()
    if "version" in decoded:
        out[f"{prefix}_M_VERSION"] = str(decoded["version"])
    for var, key in (("V_START", "notBefore"), ("V_END", "notAfter")):
        if key in decoded:
            out[f"{prefix}_{var}"] = str(decoded[key])
    if "notAfter" in decoded:
        left = ssl.cert_time_to_seconds(decoded["notAfter"]) - time.time()
        out[f"{prefix}_V_REMAIN"] = str(max(0, int(left // 86400)))
    return out


def _attributes(rdns: Any) -> list[tuple[str, str]]:
    return [(SHORT_NAMES.get(name, name), value) for rdn in rdns for name, value in rdn]


def rfc2253(rdns: Any) -> str:
    """A DN as RFC 2253 prints it: last RDN first, ``+`` inside a multi-valued RDN."""
    return ",".join("+".join(f"{SHORT_NAMES.get(name, name)}={escape(value)}"
                             for name, value in rdn) for rdn in reversed(tuple(rdns)))


def escape(value: str) -> str:
    """RFC 2253 2.4: the specials, a leading ``#`` or space, a trailing space."""
    out = "".join(_ESCAPE.get(c, c) for c in value)
    if out.startswith(("#", " ")):
        out = "\\" + out
    if out.endswith(" ") and not out.endswith("\\ "):
        out = out[:-1] + "\\ "
    return out


TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def asgi_extension(tls: dict[str, str]) -> dict[str, Any]:
    """The ASGI TLS extension (``scope["extensions"]["tls"]``) from the httpd variables."""
    cert = tls.get("SSL_CLIENT_CERT")
    return {
        "server_cert": None,
        "client_cert_chain": [cert] if cert else [],
        "client_cert_name": tls.get("SSL_CLIENT_S_DN"),
        "client_cert_error": None,
        "tls_version": TLS_VERSIONS.get(tls.get("SSL_PROTOCOL", "")),
        "cipher_suite": None,
    }
