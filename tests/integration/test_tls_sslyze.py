"""A real scanner (sslyze) checks the default TLS configuration on every MPM: no SSL 2/3, no
TLS 1.0 or 1.1, TLS 1.2 only with ECDHE and AEAD suites, no compression, secure renegotiation
and no client-initiated renegotiation."""

from __future__ import annotations

import pytest

pytest.importorskip("trustme")
sslyze = pytest.importorskip("sslyze")

from tests.support.tlscerts import make_pki, ssl_lines  # noqa: E402

OLD = ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites",
       "tls_1_1_cipher_suites")


def _scan(port: int):
    from sslyze import (Scanner, ScanCommand, ServerNetworkLocation, ServerScanRequest,
                        ServerScanStatusEnum)
    commands = {ScanCommand.SSL_2_0_CIPHER_SUITES, ScanCommand.SSL_3_0_CIPHER_SUITES,
                ScanCommand.TLS_1_0_CIPHER_SUITES, ScanCommand.TLS_1_1_CIPHER_SUITES,
                ScanCommand.TLS_1_2_CIPHER_SUITES, ScanCommand.TLS_1_3_CIPHER_SUITES,
                ScanCommand.TLS_COMPRESSION, ScanCommand.SESSION_RENEGOTIATION}
    location = ServerNetworkLocation("localhost", port, ip_address="127.0.0.1")
    scanner = Scanner()
    scanner.queue_scans([ServerScanRequest(server_location=location, scan_commands=commands)])
    (result,) = list(scanner.get_results())
    assert result.scan_status == ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    return result.scan_result


def test_default_tls_configuration_passes_a_scanner(conf, make_server, tmp_path):
    conf.add(ssl_lines(make_pki(tmp_path / "pki")))
    server = make_server(conf)
    scan = _scan(server.port)
    for name in OLD:
        attempt = getattr(scan, name)
        assert attempt.result is not None, (name, attempt.error_trace)
        assert attempt.result.accepted_cipher_suites == [], name
    tls12 = [s.cipher_suite.name for s in scan.tls_1_2_cipher_suites.result.accepted_cipher_suites]
    assert tls12, "TLS 1.2 must be accepted"
    assert all("_ECDHE_" in n and ("_GCM_" in n or "CHACHA20" in n) for n in tls12), tls12
    assert scan.tls_1_3_cipher_suites.result.accepted_cipher_suites
    assert scan.tls_compression.result.supports_compression is False
    reneg = scan.session_renegotiation.result
    assert reneg.supports_secure_renegotiation is True
    assert reneg.is_vulnerable_to_client_renegotiation_dos is False
