"""mod_ssl's directives and contexts, without sockets: httpd's parsing, the secure defaults,
the options each directive sets, and every config error at its file and line."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

trustme = pytest.importorskip("trustme")

from mpmd.config.loader import load_config  # noqa: E402
from mpmd.config.model import ConfigError  # noqa: E402
from mpmd.tls import openssl, settings, sites_of  # noqa: E402
from mpmd.tls.plain import PAGE, PlainHttpOnTls, is_plain_http, refusal_bytes  # noqa: E402
from mpmd.tls.variables import escape, rfc2253  # noqa: E402
from tests.support.tlscerts import make_pki, ssl_lines  # noqa: E402


@pytest.mark.parametrize("line, expected", [
    ("all", {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}),
    ("all -SSLv3 -TLSv1 -TLSv1.1", {"TLSv1.2", "TLSv1.3"}),
    ("+TLSv1.3", {"TLSv1.3"}),                     # each line starts from nothing (httpd)
    ("TLSv1.2 TLSv1.3", {"TLSv1.3"}),              # a bare word replaces (httpd AH02532)
    ("TLSv1.2 +TLSv1.3", {"TLSv1.2", "TLSv1.3"}),
    ("-all +tlsv1.2", {"TLSv1.2"}),
])
def test_ssl_protocol_as_httpd_parses_it(line, expected):
    assert settings.parse_protocols(line.split()) == expected


@pytest.mark.parametrize("line, message", [
    ("-all", "No SSL protocols available"), ("+SSLv3", "SSLv3 not supported"),
    ("TLSv9", "Illegal protocol 'TLSv9'"),
])
def test_ssl_protocol_errors(line, message):
    with pytest.raises(ValueError, match=message):
        settings.parse_protocols(line.split())


def test_a_hole_in_the_protocols_is_closed_with_an_option():
    lo, hi, holes = settings.version_range(frozenset({"TLSv1", "TLSv1.2"}))
    assert (lo, hi, holes) == (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_2, ["TLSv1.1"])


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "pki")


def _load(tmp_path: Path, text: str):
    conf = tmp_path / "httpd.conf"
    conf.write_text(f"Listen 127.0.0.1:0\nServerName localhost\nDocumentRoot {tmp_path}\n{text}\n")
    return load_config(str(conf))


def _context(cfg) -> ssl.SSLContext:
    return sites_of(cfg).for_listen("127.0.0.1", 0).default


def test_secure_defaults(tmp_path, pki):
    ctx = _context(_load(tmp_path, ssl_lines(pki)))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.maximum_version == ssl.TLSVersion.TLSv1_3
    assert ctx.options & ssl.OP_NO_COMPRESSION and ctx.options & ssl.OP_NO_RENEGOTIATION
    assert not ctx.options & ssl.OP_NO_TICKET                     # httpd: tickets on
    assert not ctx.options & ssl.OP_CIPHER_SERVER_PREFERENCE      # SSLHonorCipherOrder off
    assert ctx.verify_mode == ssl.CERT_NONE
    tls12 = [c for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 and all(c["name"].startswith("ECDHE-") and c["aead"] for c in tls12)


def test_each_directive_sets_its_option(tmp_path, pki):
    ctx = _context(_load(tmp_path, ssl_lines(
        pki, "SSLProtocol -all +TLSv1.3", "SSLSessionTickets off", "SSLHonorCipherOrder on",
        "SSLCipherSuite TLSv1.3 TLS_AES_256_GCM_SHA384", f'SSLCACertificateFile "{pki.ca_path}"',
        "SSLVerifyClient optional", "SSLVerifyDepth 3")))
    assert ctx.minimum_version == ctx.maximum_version == ssl.TLSVersion.TLSv1_3
    assert ctx.options & ssl.OP_NO_TICKET and ctx.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.3"] == \
        ["TLS_AES_256_GCM_SHA384"]
    assert ctx.verify_mode == ssl.CERT_OPTIONAL
    assert openssl.available()
    lib = openssl._libssl()
    assert lib.SSL_CTX_get_verify_depth(openssl._ctx_pointer(ctx)) == 3


def test_cipher_suite_lines_keep_one_list_per_protocol(tmp_path, pki):
    cfg = _load(tmp_path, ssl_lines(pki, "SSLCipherSuite ECDHE-RSA-AES128-GCM-SHA256",
                                    "SSLCipherSuite TLSv1.3 TLS_AES_128_GCM_SHA256"))
    assert dict(cfg.ssl_cipher_suite) == {"SSL": "ECDHE-RSA-AES128-GCM-SHA256",
                                          "TLSv1.3": "TLS_AES_128_GCM_SHA256"}


def test_no_tls_no_contexts(tmp_path):
    assert sites_of(_load(tmp_path, "")) is None


def _error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    return info.value


def _other_key(tmp_path: Path) -> Path:
    path = tmp_path / "other.key"
    trustme.CA().issue_cert("other").private_key_pem.write_to_path(str(path))
    return path


@pytest.mark.parametrize("case", ["no_cert", "missing", "mismatch", "not_a_key", "protocols",
                                  "no_ca", "no_ca_words", "bad_ciphers", "https_plain"])
def test_config_errors_name_the_line(tmp_path, pki, case):
    cert, key = f'SSLCertificateFile "{pki.cert}"', f'SSLCertificateKeyFile "{pki.key}"'
    cases = {   # (lines after the 3 first ones, the line to blame, words of the message)
        "no_cert": (["SSLEngine on"], 4, "Failed to configure at least one certificate and key "
                                         "for localhost:443"),
        "missing": (["SSLEngine on", 'SSLCertificateFile "/nonexistent.pem"'], 5, "cannot be read"),
        "mismatch": (["SSLEngine on", cert, f'SSLCertificateKeyFile "{_other_key(tmp_path)}"'], 6,
                     "do not match"),
        "not_a_key": (["SSLEngine on", cert, f'SSLCertificateKeyFile "{pki.ca_path}"'], 6,
                      "holds no PEM private key"),
        "protocols": (["SSLEngine on", cert, key, "SSLProtocol -all"], 7, "No SSL protocols"),
        "no_ca": (["SSLEngine on", cert, key, "SSLVerifyClient require"], 7,
                  "needs SSLCACertificateFile"),
        "no_ca_words": (["SSLEngine on", cert, key, "SSLVerifyClient optional_no_ca"], 7,
                        "optional_no_ca is not supported"),
        "bad_ciphers": (["SSLEngine on", cert, key, "SSLCipherSuite RC4-MD5"], 7,
                        "no cipher matches"),
        "https_plain": (["Listen 127.0.0.2:0 https"], 4, "no server for this address has SSLEngine on"),
    }
    lines, line, words = cases[case]
    exc = _error(tmp_path, "\n".join(lines))
    assert exc.line == line and words in exc.message, str(exc)


def test_encrypted_key_is_refused(tmp_path, pki):
    from cryptography.hazmat.primitives import serialization
    leaf = pki.ca.issue_cert("localhost")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    locked = tmp_path / "locked.key"
    locked.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.BestAvailableEncryption(b"secret")))
    cert = tmp_path / "locked.crt"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    exc = _error(tmp_path, f'SSLEngine on\nSSLCertificateFile "{cert}"\nSSLCertificateKeyFile "{locked}"')
    assert exc.line == 6 and "is encrypted" in exc.message


def test_chain_file_is_sent_after_the_certificate(tmp_path, pki):
    ctx = _context(_load(tmp_path, ssl_lines(pki, f'SSLCertificateChainFile "{pki.ca_path}"')))
    assert ctx is not None                     # loaded: certificate, chain and key agree


def test_rfc2253_distinguished_names():
    rdns = ((("countryName", "DE"),), (("organizationName", "A+B, Inc."),),
            (("commonName", " lead"),))
    assert rfc2253(rdns) == "CN=\\ lead,O=A\\+B\\, Inc.,C=DE"
    assert escape("#x ") == "\\#x\\ "


def test_plain_http_is_told_by_its_first_bytes():
    assert all(is_plain_http(b) for b in (b"GET /", b"POST ", b"HEAD ", b"PUT /"))
    assert not any(is_plain_http(b) for b in (b"\x16\x03\x01\x02\x00", b"OPTIO", b"CONNE", b""))
    answer = refusal_bytes(PlainHttpOnTls())
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n") and answer.endswith(PAGE)
    assert b"\r\nConnection: close\r\n" in answer and b"Content-Length: 402\r\n" in answer
