"""mod_ssl's directive values, parsed: pure functions, no files, no sockets.

Rule 1: ``SSLProtocol`` is read as httpd's ssl_cmd_protocol_parse does: each line starts from
        nothing; a bare word sets the set, ``+word`` adds and ``-word`` removes; ``all`` is
        every protocol this OpenSSL speaks (TLSv1 .. TLSv1.3).  SSLv3 may only be removed
        (httpd's words when OpenSSL has no SSLv3).  A line that leaves nothing is an error.
Rule 2: ``SSLCipherSuite [protocol] spec``: protocol ``SSL`` (the default: TLS 1.2 and older)
        or ``TLSv1.3``; each protocol keeps its own list, so a ``TLSv1.3`` line never undoes
        an ``SSL`` line (httpd keeps the two strings apart too).
Rule 3: the defaults are secure: TLS 1.2 and 1.3 only, Mozilla's "intermediate" ECDHE + AEAD
        suites for TLS 1.2, OpenSSL's own TLS 1.3 suites (all AEAD).
"""

from __future__ import annotations

import ssl

# Names as SSLProtocol spells them, in order, with the version the ssl module knows.
VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
ORDER = list(VERSIONS)
ALL = frozenset(VERSIONS)
DEFAULT_PROTOCOLS = frozenset({"TLSv1.2", "TLSv1.3"})
NOTHING_LEFT = "No SSL protocols available [hint: SSLProtocol]"

# Mozilla server-side TLS "intermediate", ECDHE only (no DH parameters to manage).
DEFAULT_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                   "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                   "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")
CIPHER_PROTOCOLS = ("SSL", "TLSv1.3")

# SSLVerifyClient level -> the ssl module's verify mode.  optional_no_ca has none: the ssl
# module cannot accept a certificate that does not verify (it has no verify callback).
VERIFY_MODES: dict[str, ssl.VerifyMode] = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "require": ssl.CERT_REQUIRED,
}
VERIFY_WORDS = ("none", "optional", "require", "optional_no_ca")


def parse_protocols(words: list[str]) -> frozenset[str]:
    """One SSLProtocol line -> the set of protocol names it allows (Rule 1)."""
    chosen: set[str] = set()
    for word in words:
        action, name = (word[0], word[1:]) if word[:1] in "+-" else ("", word)
        names = _protocol_names(name, action)
        if action == "-":
            chosen -= names
        elif action == "+":
            chosen |= names
        else:
            chosen = set(names)
    if not chosen:
        raise ValueError(NOTHING_LEFT)
    return frozenset(chosen)


def _protocol_names(name: str, action: str) -> frozenset[str]:
    lowered = name.lower()
    if lowered == "all":
        return ALL
    if lowered == "sslv3":
        if action != "-":
            raise ValueError("SSLv3 not supported by this version of OpenSSL")
        return frozenset()
    for known in VERSIONS:
        if known.lower() == lowered:
            return frozenset({known})
    raise ValueError(f"Illegal protocol '{name}'")


def render_protocols(value: frozenset[str]) -> str:
    """The line that gives ``value``: the first name bare, the others added (Rule 1)."""
    names = [name for name in ORDER if name in value]
    return " ".join([names[0], *("+" + name for name in names[1:])])


def version_range(protocols: frozenset[str]) -> tuple[ssl.TLSVersion, ssl.TLSVersion, list[str]]:
    """(minimum, maximum, names inside that range that are not allowed): the ssl module sets
    a range; a hole in it (``TLSv1 TLSv1.2``) is closed with the OP_NO_* option."""
    present = [name for name in ORDER if name in protocols]
    lo, hi = ORDER.index(present[0]), ORDER.index(present[-1])
    holes = [name for name in ORDER[lo:hi + 1] if name not in protocols]
    return VERSIONS[present[0]], VERSIONS[present[-1]], holes


def parse_cipher_suite(words: list[str]) -> tuple[str, str]:
    """One SSLCipherSuite line -> (protocol, spec) (Rule 2)."""
    if len(words) == 1:
        return "SSL", words[0]
    protocol = {p.lower(): p for p in CIPHER_PROTOCOLS}.get(words[0].lower())
    if protocol is None:
        raise ValueError(f"protocol '{words[0]}' not supported: use SSL or TLSv1.3")
    return protocol, words[1]


def parse_verify(word: str) -> str:
    lowered = word.lower()
    if lowered not in VERIFY_WORDS:
        raise ValueError("Invalid argument '%s'" % word)
    return lowered
