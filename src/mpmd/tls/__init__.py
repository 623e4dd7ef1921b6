"""TLS as Apache's mod_ssl does it, on every MPM: contexts, SNI, variables, plain-HTTP refusal.

The parts (each I/O-free but for reading certificate files while a configuration loads):
  settings.py    SSLProtocol / SSLCipherSuite / SSLVerifyClient values, the secure defaults
  contexts.py    one ssl.SSLContext per TLS server (TlsConfigError names the directive)
  openssl.py     SSLVerifyDepth and TLS 1.3 suites, which the ssl module does not expose
  sites.py       TlsSites: per generation, which Listen addresses speak TLS, SNI callbacks
  variables.py   httpd's SSL_* variables for a connection (ConnInfo.tls)
  plain.py       plain HTTP on a TLS port: httpd's 400 page

``modules/mod_ssl.py`` declares the directives and builds the generation's ``TlsSites`` when
the configuration loads; the master gives each listener its ``ListenerTls``
(``Listener.tls``); the transports (mpm/conn.py, mpm/event/listener.py, mpm/nginx/) wrap or
hand the socket to uvloop with it.
"""

from __future__ import annotations

from typing import Any

from mpmd.tls.sites import ListenerTls, TlsSites

__all__ = ["ListenerTls", "TlsSites", "sites_of"]


def sites_of(cfg: Any) -> TlsSites | None:
    """The configuration's TlsSites (built by mod_ssl while it loaded), or None without TLS."""
    for module in getattr(cfg, "modules", ()) or ():
        sites = getattr(module, "tls_sites", None)
        if sites is not None and getattr(module, "loaded_for", None) is cfg:
            return sites if sites else None
    return None
