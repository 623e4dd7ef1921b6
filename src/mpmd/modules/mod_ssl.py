"""mod_ssl: TLS for the servers that say ``SSLEngine on`` (httpd's directives and checks).

Theory: this module declares the directives and, while a configuration loads, builds the
generation's ``TlsSites`` (mpmd/tls/sites.py): every TLS server's ``ssl.SSLContext``, and
which Listen addresses speak TLS.  So ``mpmd -t`` reads every certificate and key, and a
graceful restart whose new certificate is bad fails to load: the running generation goes on
serving (supervisor/master.py).  The master hands each listener its part (``Listener.tls``)
and the MPMs' transports do the handshakes (docs/tls.md).

Rule 1: config errors carry the file and line of the directive to blame: a certificate or key
        that cannot be read or does not match, ``SSLEngine on`` without a certificate
        (httpd's AH02572 words), an ``SSLProtocol`` that leaves nothing, ``Listen ... https``
        on an address whose default server has no SSLEngine on.
Rule 2: directives apply per server (main server and <VirtualHost>); a vhost's value replaces
        the main server's, and ``SSLCipherSuite`` keeps one list per protocol (``SSL`` and
        ``TLSv1.3``), as httpd does.
Rule 3: no request phase: the connection's variables come from the transport (ConnInfo.tls).
Rule 4: the lines of Debian's ssl.conf and default-ssl.conf that mpmd has no use for are
        accepted and named at -t (MPMD0515), each with its reason: SSLRandomSeed (OpenSSL
        seeds itself from the system), SSLPassPhraseDialog (keys are read unencrypted),
        SSLSessionCache and SSLSessionCacheTimeout (no server-side cache: sessions resume
        through tickets, docs/tls.md), SSLOptions [+]StdEnvVars (every
        application gets the SSL_* variables); SSLOptions' other options are refused.
        ``socache_shmcb_module`` (which ``a2enmod ssl`` enables with it) is a module with no
        directives, so its LoadModule line loads.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mpmd.config import values as v
from mpmd.config.directives import Args, Ctx, Directive, Override
from mpmd.config.model import Problem
from mpmd.core.core_directives import no_effect
from mpmd.core.modules import Module
from mpmd.tls import settings
from mpmd.tls.contexts import TlsConfigError
from mpmd.tls.sites import TlsSites

SRV = Ctx.SERVER | Ctx.VHOST
M_CONFIG = "MPMD1001"
M_LISTEN = "MPMD1002"


class Protocols(v.Converter):
    kind = "words"
    describe = "[+|-]protocol ..."

    def __call__(self, args: list[str]) -> frozenset[str]:
        return settings.parse_protocols(args)

    def render(self, value: Any) -> str:
        return settings.render_protocols(value)


class CipherSuite(v.Converter):
    """One line -> ``(protocol, spec)``; ``combine_ciphers`` folds it into the per-protocol lists."""

    kind = "words"
    describe = "[protocol] cipher-spec"

    def __call__(self, args: list[str]) -> tuple[str, str]:
        return settings.parse_cipher_suite(args)

    def render(self, value: Any) -> str:
        return dict(value).get("SSL", "")


def combine_ciphers(old: Any, change: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    """Rule 2: a line replaces its protocol's list and keeps the other's."""
    lists = dict(old or ())
    lists[change[0]] = change[1]
    return tuple(sorted(lists.items()))


class VerifyClient(v.Converter):
    describe = "none|optional|require|optional_no_ca"

    def __call__(self, args: list[str]) -> str:
        return settings.parse_verify(args[0])


class StdEnvVarsOnly(v.Converter):
    """SSLOptions: [+|-]StdEnvVars (Rule 4); httpd's other options are refused by name."""

    kind = "words"
    describe = "[+|-]StdEnvVars"

    def __call__(self, args: list[str]) -> str:
        for word in args:
            name = word.lstrip("+-")
            if name.lower() != "stdenvvars":
                known = {"exportcertdata", "fakebasicauth", "strictrequire", "optrenegotiate",
                         "legacydnstringformat"}
                if name.lower() in known:
                    raise ValueError(f"SSLOptions {name} is not supported by mpmd (only StdEnvVars)")
                raise ValueError(f"Illegal SSLOptions option '{name}'")
        return " ".join(args)


NO_EFFECT_SSL = {
    "SSLRandomSeed": "OpenSSL seeds its generator from the operating system",
    "SSLPassPhraseDialog": "mpmd reads unencrypted keys only (an encrypted one is refused)",
    "SSLSessionCache": "no server-side session cache is kept: sessions resume through tickets "
                       "(SSLSessionTickets), whose keys every child shares",
    "SSLSessionCacheTimeout": "no server-side session cache is kept (sessions resume through tickets)",
    "SSLOptions": "every request's application gets the SSL_* variables (StdEnvVars is always on)",
}


def _d(name: str, args: Args, value: Any, default: Any, field: str, doc: str,
       **kw: Any) -> Directive:
    return Directive(name, args, SRV, value, default, field, doc, owner="ssl_module", **kw)


DIRECTIVES = [
    _d("SSLEngine", Args.FLAG, v.flag, False, "ssl_engine",
       "Speak TLS on the addresses whose default server this is (SNI picks among the others)."),
    _d("SSLCertificateFile", Args.TAKE1, v.path, None, "ssl_certificate_file",
       "PEM server certificate, optionally followed by its chain (and the key when "
       "SSLCertificateKeyFile is not set)."),
    _d("SSLCertificateKeyFile", Args.TAKE1, v.path, None, "ssl_certificate_key_file",
       "PEM private key of the certificate (unencrypted; read by the master before it drops "
       "privileges)."),
    _d("SSLCertificateChainFile", Args.TAKE1, v.path, None, "ssl_certificate_chain_file",
       "PEM intermediate certificates sent after the server certificate (deprecated in httpd: "
       "append them to SSLCertificateFile)."),
    _d("SSLCACertificateFile", Args.TAKE1, v.path, None, "ssl_ca_certificate_file",
       "PEM CA certificates that client certificates are verified against."),
    _d("SSLProtocol", Args.ITERATE, Protocols(), settings.DEFAULT_PROTOCOLS, "ssl_protocol",
       "TLS versions offered: all, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3, each with + or - "
       "(SSLv3 may only be removed).", syntax="SSLProtocol [+|-]protocol ..."),
    _d("SSLCipherSuite", Args.TAKE12, CipherSuite(), (("SSL", settings.DEFAULT_CIPHERS),),
       "ssl_cipher_suite", "OpenSSL cipher list for TLS 1.2 and older (protocol SSL, the "
       "default) or the TLS 1.3 suites (protocol TLSv1.3).",
       syntax="SSLCipherSuite [SSL|TLSv1.3] cipher-spec", extra={"combine": combine_ciphers}),
    _d("SSLHonorCipherOrder", Args.FLAG, v.flag, False, "ssl_honor_cipher_order",
       "Choose the cipher by the server's order instead of the client's."),
    _d("SSLSessionTickets", Args.FLAG, v.flag, True, "ssl_session_tickets",
       "Issue TLS session tickets (resumption without server-side state)."),
    _d("SSLVerifyClient", Args.TAKE1, VerifyClient(), "none", "ssl_verify_client",
       "Client certificates: none, optional or require (verified against "
       "SSLCACertificateFile); optional_no_ca is refused (the ssl module cannot accept an "
       "unverified certificate).", syntax="SSLVerifyClient none|optional|require"),
    _d("SSLVerifyDepth", Args.TAKE1, v.int_range(0, 100), 1, "ssl_verify_depth",
       "How many CA certificates may stand between a client certificate and a trusted CA."),
    # Rule 4: accepted, no effect, named at -t
    Directive("SSLRandomSeed", Args.TAKE23, Ctx.SERVER, v.words, None, "ssl_random_seed",
              "Accepted with no effect: " + NO_EFFECT_SSL["SSLRandomSeed"] + ".",
              owner="ssl_module", syntax="SSLRandomSeed context source [bytes]",
              extra=no_effect(None, NO_EFFECT_SSL["SSLRandomSeed"])),
    Directive("SSLPassPhraseDialog", Args.TAKE1, Ctx.SERVER, v.string, None, "ssl_pass_phrase_dialog",
              "Accepted with no effect: " + NO_EFFECT_SSL["SSLPassPhraseDialog"] + ".",
              owner="ssl_module", syntax="SSLPassPhraseDialog type",
              extra=no_effect(None, NO_EFFECT_SSL["SSLPassPhraseDialog"])),
    Directive("SSLSessionCache", Args.TAKE1, Ctx.SERVER, v.string, None, "ssl_session_cache",
              "Accepted with no effect: " + NO_EFFECT_SSL["SSLSessionCache"] + ".",
              owner="ssl_module", syntax="SSLSessionCache type",
              extra=no_effect(None, NO_EFFECT_SSL["SSLSessionCache"])),
    _d("SSLSessionCacheTimeout", Args.TAKE1, v.int_range(0, 2 ** 31 - 1), None, "ssl_session_cache_timeout",
       "Accepted with no effect: " + NO_EFFECT_SSL["SSLSessionCacheTimeout"] + ".",
       syntax="SSLSessionCacheTimeout seconds", extra=no_effect(None, NO_EFFECT_SSL["SSLSessionCacheTimeout"])),
    Directive("SSLOptions", Args.RAW_ARGS, SRV | Ctx.DIR, StdEnvVarsOnly(), None, "ssl_options",
              "[+|-]StdEnvVars, accepted with no effect: " + NO_EFFECT_SSL["SSLOptions"] +
              "; httpd's other options are refused.", owner="ssl_module",
              syntax="SSLOptions [+|-]StdEnvVars", override=Override.OPTIONS,
              extra=no_effect(None, NO_EFFECT_SSL["SSLOptions"])),
]


class SocacheShmcbModule(Module):
    """``socache_shmcb_module``: loaded by ``a2enmod ssl``; no directives (Rule 4)."""

    name = "socache_shmcb_module"
    aliases = ("mod_socache_shmcb.c",)
    builtin = True


class SSLModule(Module):
    name = "ssl_module"
    aliases = ("mod_ssl.c",)
    builtin = True
    DIRECTIVES: ClassVar[list[Directive]] = DIRECTIVES

    def __init__(self) -> None:
        self.tls_sites: TlsSites | None = None
        self.loaded_for: Any = None

    def check_config(self, cfg: Any) -> list[Problem]:
        """Build the generation's contexts (Rule 1): every file is read here, at load."""
        self.loaded_for = cfg
        try:
            self.tls_sites = TlsSites(cfg)
        except TlsConfigError as exc:
            self.tls_sites = None
            return [_problem(exc)]
        return https_without_tls(cfg, self.tls_sites)


def _problem(exc: TlsConfigError) -> Problem:
    server = getattr(exc, "server", None)
    where = server.where(exc.field) if server is not None and hasattr(server, "where") else "default"
    if where == "default" and server is not None and hasattr(server, "where"):
        where = server.where("ssl_engine")           # a default value: blame SSLEngine on
    file, _, line = where.rpartition(":")
    if not file or not line.isdigit():
        return Problem("error", M_CONFIG, f"{M_CONFIG}: {exc.text}")
    return Problem("error", M_CONFIG, exc.text, file, int(line))


def https_without_tls(cfg: Any, sites: TlsSites) -> list[Problem]:
    """``Listen addr https`` whose address has no TLS default server (Rule 1)."""
    out: list[Problem] = []
    origins = cfg.origins("listen")
    for i, addr in enumerate(cfg.listen):
        if (addr.proto or "").lower() != "https" or sites.for_listen(addr.host, addr.port):
            continue
        file, line = origins[i] if i < len(origins) else (None, None)
        out.append(Problem("error", M_LISTEN, f"Listen {addr} https: no server for this address "
                           "has SSLEngine on (its default server must)", file, line))
    return out
