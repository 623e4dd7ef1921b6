"""TLS on every MPM with real clients (curl, httpx, openssl s_client, raw TLS sockets).

Certificates are made per test with trustme (tests/support/tlscerts.py).  What each test
shows: a client gets pages over TLS with SNI and ALPN http/1.1; plain HTTP on the TLS port
gets httpd's 400 page; old protocols are refused and the refusal costs that connection
only (logged at info); the project's raw protocol exchanges behave over TLS as over TCP;
apps see https and httpd's SSL variables; client certificates are required, optional or
refused as SSLVerifyClient says; a graceful restart reads the certificates again and a bad
one keeps the running generation serving.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import ssl
import subprocess
import textwrap
from pathlib import Path

import pytest

trustme = pytest.importorskip("trustme")

from tests.integration.wsgi_support import REPO  # noqa: E402
from tests.support.harness import wait_for  # noqa: E402
from tests.support.rawclient import RawConn, TlsConn, get  # noqa: E402
from tests.support.tlscerts import make_pki, ssl_lines  # noqa: E402
from mpmd.tls.plain import PAGE  # noqa: E402

CURL = shutil.which("curl")
OPENSSL = shutil.which("openssl")


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "pki")


@pytest.fixture
def tls_conf(conf, pki):
    conf.add(ssl_lines(pki))
    return conf


def _https_get(port: int, pki, path: str = "/index.html", context=None) -> bytes:
    with TlsConn(port, context or pki.client_context()) as c:
        c.send(get(path, extra="Connection: close\r\n"))
        resp = c.read_response()
    assert resp.status == 200, resp
    return resp.body


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_gets_a_page_over_tls_with_sni(tls_conf, make_server, pki):
    server = make_server(tls_conf)
    port = server.port
    out = subprocess.run([CURL, "-sS", "--cacert", str(pki.ca_path), "--resolve",
                          f"localhost:{port}:127.0.0.1", "-w", "\n%{http_version} %{ssl_verify_result}",
                          f"https://localhost:{port}/index.html"], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    body, _, facts = out.stdout.rpartition(b"\n")
    assert body == b"<h1>hello</h1>\n"
    assert facts == b"1.1 0"                 # ALPN chose http/1.1; the chain verified


def test_httpx_keeps_one_connection_and_files_skip_sendfile(tls_conf, make_server, pki):
    httpx = pytest.importorskip("httpx")
    tls_conf.set("EnableSendfile", "On")       # sendfile cannot pass TLS: buffered writes
    big = bytes(range(256)) * 4096             # 1 MiB, more than one TLS record and write
    (tls_conf.htdocs / "big.bin").write_bytes(big)
    server = make_server(tls_conf)
    with httpx.Client(verify=pki.client_context(), timeout=20) as client:
        first = client.get(f"https://localhost:{server.port}/big.bin")
        second = client.get(f"https://localhost:{server.port}/1k.bin")
    assert first.status_code == 200 and first.content == big
    assert second.status_code == 200 and len(second.content) == 1024
    assert first.http_version == "HTTP/1.1"


def _plain(port: int, request: bytes) -> bytes:
    with RawConn(port) as c:
        c.send(request)
        assert c.is_closed(timeout=10)
        return c.buf


def test_plain_http_on_the_tls_port_gets_httpds_400(tls_conf, make_server):
    server = make_server(tls_conf)
    for request in (get("/index.html"), b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"):
        data = _plain(server.port, request)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), data
        assert b"\r\nConnection: close" in head and b"Content-Length: 402" in head
        assert body == PAGE                    # a HEAD too: httpd answers a faked GET
    assert "MPMD1004" in server.error_log_text()
    assert _https_get(server.port, _pki_of(tls_conf)) == b"<h1>hello</h1>\n"


def _pki_of(conf):
    from tests.support.tlscerts import Pki
    root = conf.root / "pki"
    return Pki(None, root / "ca.pem", root / "server.crt", root / "server.key", root)


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
def test_old_protocols_are_refused_and_cost_one_connection(tls_conf, make_server, pki):
    server = make_server(tls_conf)

    def s_client(flag: str) -> str:
        out = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{server.port}",
                              flag, "-CAfile", str(pki.ca_path)], input=b"",
                             capture_output=True, timeout=30)
        return (out.stdout + out.stderr).decode(errors="replace")

    for old in ("-tls1", "-tls1_1"):
        assert "Cipher is (NONE)" in s_client(old)
    assert "New, TLSv1.2, Cipher is ECDHE-" in s_client("-tls1_2")
    assert "New, TLSv1.3, Cipher is TLS_" in s_client("-tls1_3")
    wait_for(lambda: "MPMD1003" in server.error_log_text(), 10, message="the info line")
    assert _https_get(server.port, pki) == b"<h1>hello</h1>\n"


def test_slow_or_broken_handshakes_cost_only_their_connection(tls_conf, make_server, pki):
    tls_conf.set("Timeout", "2")
    tls_conf.set("StartServers", "2") if tls_conf.mpm == "prefork" else None
    server = make_server(tls_conf)
    stalled = socket.create_connection(("127.0.0.1", server.port))
    stalled.sendall(b"\x16\x03\x01")           # a record header that never ends
    with RawConn(server.port) as junk:
        junk.send(b"\x16\x03\x01\x00\x05hello")   # not a ClientHello
        assert junk.is_closed(timeout=10)
    assert _https_get(server.port, pki) == b"<h1>hello</h1>\n"
    stalled.settimeout(10)
    assert stalled.recv(100) == b""            # closed once Timeout passed
    stalled.close()
    wait_for(lambda: "timed out" in server.error_log_text(), 10, message="the timeout line")


def test_raw_protocol_exchanges_over_tls(tls_conf, make_server, pki):
    server = make_server(tls_conf)
    context = pki.client_context()
    with TlsConn(server.port, context) as c:          # keep-alive, then pipelining
        c.send(get("/index.html"))
        assert c.read_response().body == b"<h1>hello</h1>\n"
        c.send(get("/1k.bin") + get("/index.html") + get("/nope"))
        statuses = [c.read_response().status for _ in range(3)]
        assert statuses == [200, 200, 404]
        c.send(b"HEAD /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n")
        head = c.read_response(head_only=True)
        assert head.status == 200 and head.header("content-length") == "15"
    with TlsConn(server.port, context) as c:          # a refused request closes
        c.send(b"GET /index.html HTTP/1.1\r\n\r\n")   # no Host
        assert c.read_response().status == 400
        assert c.is_closed()
    with TlsConn(server.port, context) as c:          # a request in many small records
        for piece in (b"GET /index", b".html HTTP/1.1\r\nHo", b"st: localhost\r\n\r\n"):
            c.send(piece)
        assert c.read_response().status == 200


def _apps(conf) -> None:
    conf.add(f'WSGIPythonPath "{REPO}"')
    conf.add("WSGIApp /env tests.apps.tls_apps:wsgi_env")
    conf.add("ASGIApp /scope tests.apps.tls_apps:asgi_scope")


def _json(port: int, pki, path: str, context=None) -> dict:
    return json.loads(_https_get(port, pki, path, context))


def test_apps_see_https_and_httpds_ssl_variables(tls_conf, make_server, pki):
    _apps(tls_conf)
    server = make_server(tls_conf)
    env = _json(server.port, pki, "/env")
    assert env["wsgi.url_scheme"] == "https" and env["HTTPS"] == "on"
    assert env["SSL_PROTOCOL"] == "TLSv1.3" and env["SSL_CIPHER"].startswith("TLS_")
    assert env["SSL_TLS_SNI"] == "localhost" and env["SSL_CLIENT_VERIFY"] == "NONE"
    assert env["SSL_SESSION_RESUMED"] == "Initial"
    assert env["SSL_SERVER_I_DN"].startswith("OU=Testing CA") and ",O=trustme" in env["SSL_SERVER_I_DN"]
    scope = _json(server.port, pki, "/scope")
    assert scope["scheme"] == "https" and scope["tls"]["tls_version"] == 0x0304
    assert scope["tls"]["client_cert_chain"] == []


def _client_auth(conf, pki, mode: str) -> None:
    _apps(conf)
    conf.add(f'SSLVerifyClient {mode}\nSSLCACertificateFile "{pki.ca_path}"\nSSLVerifyDepth 2')


def _refused(port: int, context) -> bool:
    """TLS 1.3 tells a refused client certificate after the handshake: at the first read."""
    try:
        with TlsConn(port, context) as c:
            c.send(get("/env", extra="Connection: close\r\n"))
            return c.read_response().status != 200
    except (ssl.SSLError, ConnectionError, OSError):
        return True


def test_required_client_certificate_reaches_the_app(conf, make_server, pki):
    conf.add(ssl_lines(pki))
    _client_auth(conf, pki, "require")
    server = make_server(conf)
    client = pki.ca.issue_cert("client.example", common_name="Client, One")
    env = _json(server.port, pki, "/env", pki.client_context(client))
    assert env["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert env["SSL_CLIENT_S_DN_CN"] == "Client, One"
    assert env["SSL_CLIENT_S_DN"].startswith("CN=Client\\, One,OU=Testing cert")
    assert env["SSL_CLIENT_I_DN"] == env["SSL_SERVER_I_DN"]
    assert env["SSL_CLIENT_CERT"].startswith("-----BEGIN CERTIFICATE-----")
    assert _refused(server.port, pki.client_context())                 # no certificate
    stranger = trustme.CA().issue_cert("client.example")
    assert _refused(server.port, pki.client_context(stranger))         # another CA's
    assert _https_get(server.port, pki, "/env", pki.client_context(client))


def test_optional_client_certificate(conf, make_server, pki):
    conf.add(ssl_lines(pki))
    _client_auth(conf, pki, "optional")
    server = make_server(conf)
    assert _json(server.port, pki, "/env")["SSL_CLIENT_VERIFY"] == "NONE"
    client = pki.ca.issue_cert("client.example")
    assert _json(server.port, pki, "/env", pki.client_context(client))["SSL_CLIENT_VERIFY"] == "SUCCESS"


def test_tls_and_plain_listeners_side_by_side(conf, make_server, pki):
    conf.listen("127.0.0.1:0", "127.0.0.2:0 https")
    conf.add(textwrap.dedent(f'''
        <VirtualHost 127.0.0.2:*>
            ServerName localhost
            {ssl_lines(pki)}
        </VirtualHost>'''))
    server = make_server(conf)
    (plain_host, plain_port), (tls_host, tls_port) = server.ready["listeners"]
    with RawConn(plain_port, plain_host) as c:
        c.send(get("/index.html", extra="Connection: close\r\n"))
        assert c.read_response().status == 200
    context = pki.client_context()
    context.check_hostname = False
    with TlsConn(tls_port, context, host=tls_host) as c:
        c.send(get("/index.html", extra="Connection: close\r\n"))
        assert c.read_response().status == 200


def test_graceful_restart_reads_certificates_again_and_keeps_a_good_one(tls_conf, make_server,
                                                                      pki, tmp_path):
    server = make_server(tls_conf)
    path = tls_conf.write()
    good = path.read_text()
    path.write_text(good.replace(str(pki.cert), str(tmp_path / "missing.crt")))
    server.signal(signal.SIGUSR1)
    wait_for(lambda: "MPMD0004" in server.error_log_text(), 10, message="the failed reload")
    assert server.wait_ready()["generation"] == 0                    # nothing restarted
    assert _https_get(server.port, pki) == b"<h1>hello</h1>\n"       # the old certificate
    fresh = make_pki(tmp_path / "fresh")                              # another CA's
    path.write_text(good.replace(str(pki.cert), str(fresh.cert)).replace(str(pki.key), str(fresh.key)))
    server.signal(signal.SIGUSR1)
    server.wait_ready(generation=1)
    wait_for(lambda: _serves_with(server.port, fresh), 15, message="the new certificate")
    assert _refused(server.port, pki.client_context())               # the old CA no more


def _serves_with(port: int, pki) -> bool:
    try:
        return _https_get(port, pki) == b"<h1>hello</h1>\n"
    except (ssl.SSLError, OSError):
        return False


def _resumed(port: int, pki) -> bool:
    """A second connection offering the first one's session: did the server resume it?"""
    context = pki.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(get("/index.html", extra="Connection: close\r\n"))
            while tls.recv(65536):           # TLS 1.3 tickets come after the handshake
                pass
            session = tls.session
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            return tls.session_reused


@pytest.mark.parametrize("tickets", ["On", "Off"])
def test_session_tickets_off_means_no_resumption(tls_conf, make_server, pki, tickets):
    """httpd without SSLSessionCache resumes only through tickets: SSLSessionTickets Off
    leaves a client nothing to resume with, under TLS 1.3 too."""
    tls_conf.set("SSLSessionTickets", tickets)
    server = make_server(tls_conf)
    # the contexts (and their ticket keys) are made in the master: every child resumes
    assert _resumed(server.port, pki) is (tickets == "On")
