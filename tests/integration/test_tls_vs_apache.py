"""mod_ssl's observable behaviour, checked against apache2 with mod_ssl itself.

The same certificates (trustme) serve a standalone apache2 on a loopback port and mpmd on every
MPM: plain HTTP on the TLS port must get the same 400 (status, fields but Date and Server,
page byte for byte), and a client certificate must reach the application as the same httpd
SSL variables (apache2 shows them with mod_headers' ``%{VAR}s``, mpmd's WSGI app its environ).
"""

from __future__ import annotations

import json

import pytest

trustme = pytest.importorskip("trustme")

from tests.integration.wsgi_support import REPO  # noqa: E402
from tests.support.apache import config, free_port, needs_apache, running  # noqa: E402
from tests.support.rawclient import RawConn, TlsConn, get  # noqa: E402
from tests.support.tlscerts import Pki, make_pki, ssl_lines  # noqa: E402

pytestmark = needs_apache("mod_ssl.so", "mod_headers.so", "mod_socache_shmcb.so")
# The variables compared (httpd's StdEnvVars names).
VARIABLES = ("HTTPS", "SSL_PROTOCOL", "SSL_CIPHER", "SSL_TLS_SNI", "SSL_CLIENT_VERIFY",
             "SSL_CLIENT_S_DN", "SSL_CLIENT_I_DN", "SSL_CLIENT_S_DN_CN", "SSL_CLIENT_S_DN_O",
             "SSL_CLIENT_M_SERIAL", "SSL_CLIENT_V_START", "SSL_CLIENT_V_END",
             "SSL_SERVER_S_DN", "SSL_SERVER_I_DN", "SSL_SESSION_RESUMED")


@pytest.fixture(scope="module")
def shared_pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def apache(tmp_path_factory, shared_pki):
    root = tmp_path_factory.mktemp("apache")
    (root / "htdocs").mkdir()
    (root / "htdocs" / "index.html").write_text("hi\n")
    port = free_port()
    headers = "\n".join(f'Header always set X-{v.replace("_", "-")} "%{{{v}}}s"' for v in VARIABLES)
    tls = f'SSLVerifyClient optional\nSSLCACertificateFile "{shared_pki.ca_path}"\n'
    (root / "httpd.conf").write_text(config(
        root, port, root / "htdocs", modules=("socache_shmcb", "ssl", "headers"), listen="https",
        extra=tls + ssl_lines(shared_pki) + "\n" + headers))
    with running(root / "httpd.conf", [("127.0.0.1", port)]):
        yield port


def _plain_answer(port: int) -> tuple[bytes, dict[str, str], bytes]:
    with RawConn(port) as c:
        c.send(get("/index.html"))
        assert c.is_closed(timeout=10)
        data = c.buf
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    fields = dict(line.decode().split(": ", 1) for line in lines)
    # apache2's "Header always set X-SSL-..." lines show on its error pages too: not compared
    return status, {k: v for k, v in fields.items()
                    if k not in ("Date", "Server") and not k.startswith("X-")}, body


def test_plain_http_on_a_tls_port_as_apache(apache, conf, make_server, shared_pki):
    conf.add(ssl_lines(shared_pki))
    server = make_server(conf)
    theirs, ours = _plain_answer(apache), _plain_answer(server.port)
    assert theirs[0] == b"HTTP/1.1 400 Bad Request"     # the comparison means something
    assert ours == theirs


def _apache_vars(port: int, context) -> dict[str, str]:
    with TlsConn(port, context) as c:
        c.send(get("/index.html", extra="Connection: close\r\n"))
        resp = c.read_response()
    return {v: resp.header(f"x-{v.replace('_', '-').lower()}") for v in VARIABLES}


def _mpmd_vars(port: int, context) -> dict[str, str]:
    with TlsConn(port, context) as c:
        c.send(get("/env", extra="Connection: close\r\n"))
        env = json.loads(c.read_response().body)
    return {v: env.get(v, "(null)") for v in VARIABLES}


def test_client_certificate_variables_as_apache(apache, conf, make_server, shared_pki):
    conf.add(ssl_lines(shared_pki, "SSLVerifyClient optional",
                       f'SSLCACertificateFile "{shared_pki.ca_path}"'))
    conf.add(f'WSGIPythonPath "{REPO}"\nWSGIApp /env tests.apps.tls_apps:wsgi_env')
    server = make_server(conf)
    client = shared_pki.ca.issue_cert("client.example", common_name="Jane, Doe+Q",
                                      organization_name="Example; Org")
    for context in (shared_pki.client_context(client), shared_pki.client_context()):
        theirs, ours = _apache_vars(apache, context), _mpmd_vars(server.port, context)
        assert ours == theirs
    assert theirs["SSL_CLIENT_VERIFY"] == "NONE"
