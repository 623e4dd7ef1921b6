"""The PEP 3333 environ, built with as little work per request as possible.

Theory: everything that is the same for every request of a mount (wsgi.version, url scheme,
multithread/multiprocess, SCRIPT_NAME, file_wrapper, wsgi.errors) lives in a ``base`` dict made
once per mount and process; a request copies it (one C-level dict copy) and adds its own keys.

Rule 1: header names map to CGI keys through a cache (``b"user-agent" -> "HTTP_USER_AGENT"``);
        a name containing "_" is dropped, as Apache does, so "X_Forwarded_For" cannot spoof
        "X-Forwarded-For".  Content-Type and Content-Length lose the HTTP_ prefix (CGI, RFC 3875
        4.1.2/4.1.3).  Repeated headers are joined with ", " (RFC 9110 5.3).
Rule 2: SCRIPT_NAME is the mount point without a trailing "/" ("" for a mount at "/"), PATH_INFO
        the rest of the decoded path; both are "bytes as latin-1" strings (PEP 3333 "native
        strings").  A request for the bare mount ("/app") gets PATH_INFO "".
Rule 3: wsgi.multithread / wsgi.multiprocess are the MPM's answers to ``IS_THREADED`` and
        ``IS_FORKED`` (httpd ap_mpm_query); an MPM that awaits handlers on its loop runs the
        blocking ones in a thread pool, so it is multithread too.  With no MPM to ask (a tool),
        both are True: the safe assumption for an application.
Rule 4: ``ctx.env`` (httpd's subprocess_env: SetEnv, SetEnvIf, an ErrorDocument's REDIRECT_*)
        reaches the environ as mod_wsgi copies it, without replacing a CGI key the request
        sets; ``HTTPS`` on or 1 there (``SetEnv HTTPS on`` behind a TLS proxy) makes
        wsgi.url_scheme "https", as mod_wsgi.
"""

from __future__ import annotations

from typing import Any

# Header names with their own CGI variables (no HTTP_ prefix).
_SPECIAL = {b"content-type": "CONTENT_TYPE", b"content-length": "CONTENT_LENGTH"}
_header_keys: dict[bytes, str | None] = {}
_HEADER_CACHE_MAX = 512


def header_key(name: bytes) -> str | None:
    """CGI variable for a (lower-case) header name, or None when it must be dropped (Rule 1)."""
    key = _header_keys.get(name, "")
    if key != "":
        return key
    if b"_" in name:
        key = None
    else:
        key = _SPECIAL.get(name) or "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
    if len(_header_keys) < _HEADER_CACHE_MAX:
        _header_keys[name] = key
    return key


def mpm_flags(mpm: Any) -> tuple[bool, bool]:
    """(multithread, multiprocess) for the running MPM (Rule 3)."""
    from mpmd.mpm.base import Query
    query = getattr(mpm, "query", None)
    if query is None:
        return True, True
    return (bool(query(Query.IS_THREADED) or query(Query.AWAITS_HANDLERS)),
            bool(query(Query.IS_FORKED)))


def make_base(*, script_name: str, scheme: str, multithread: bool, multiprocess: bool,
              errors: Any, file_wrapper: Any, server_software: str = "mpmd") -> dict[str, Any]:
    """The per-mount part of every environ (see module docstring)."""
    return {
        "SCRIPT_NAME": script_name,
        "SERVER_SOFTWARE": server_software,
        "GATEWAY_INTERFACE": "CGI/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.errors": errors,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": file_wrapper,
    }


def native_path(uri_path: str) -> str:
    """A decoded path as PEP 3333 wants it: its bytes, as latin-1 characters."""
    if uri_path.isascii():
        return uri_path
    return uri_path.encode("utf-8", "surrogateescape").decode("latin-1")


def split_mount(path: str, script_name: str) -> str:
    """PATH_INFO for ``path`` under the mount ``script_name`` (Rule 2)."""
    return path[len(script_name):]


def build_environ(ctx: Any, base: dict[str, Any], wsgi_input: Any,
                  server_name: str = "") -> dict[str, Any]:
    """The environ of one request: a copy of ``base`` plus the request's own keys."""
    req = ctx.request
    conn = ctx.conn
    env = base.copy()
    env["REQUEST_METHOD"] = req.method
    env["PATH_INFO"] = native_path(ctx.uri_path)[len(base["SCRIPT_NAME"]):]
    env["QUERY_STRING"] = req.query.decode("latin-1")
    env["REQUEST_URI"] = req.target.decode("latin-1")
    env["SERVER_PROTOCOL"] = "HTTP/" + req.http_version
    client = conn.client_addr
    env["REMOTE_ADDR"] = client[0] if ctx.useragent is None else ctx.useragent[0]   # mod_remoteip
    env["REMOTE_PORT"] = str(client[1])
    server = conn.server_addr
    env["SERVER_PORT"] = str(server[1])
    env["wsgi.input"] = wsgi_input
    for name, value in req.headers:
        key = _header_keys[name] if name in _header_keys else header_key(name)
        if key is None:
            continue
        sval = value.decode("latin-1")
        if key in env and key.startswith("HTTP_"):
            env[key] = env[key] + ", " + sval
        else:
            env[key] = sval
    host = env.get("HTTP_HOST")
    env["SERVER_NAME"] = _host_name(host) if host else (server_name or server[0])
    admin = getattr(ctx.server, "server_admin", None)     # the request's vhost's (CGI's var)
    if admin:
        env["SERVER_ADMIN"] = admin
    user = ctx.notes.get("remote_user")
    if user is not None:                         # mod_auth.py: the authenticated user
        env["REMOTE_USER"] = user
        env["AUTH_TYPE"] = ctx.notes.get("auth_type", "Basic")
    tls = conn.tls
    if tls is not None:                          # mod_ssl's variables: HTTPS=on, SSL_* ...
        env.update(tls)
    if ctx.env:                                  # Rule 4: subprocess_env (SetEnv, SetEnvIf ...)
        for key, value in ctx.env.items():
            env.setdefault(key, value)
        if ctx.env.get("HTTPS", "").lower() in ("on", "1") and tls is None:
            env["wsgi.url_scheme"] = "https"
    return env


def _host_name(host: str) -> str:
    """The host part of a Host header value (``[::1]:8080`` -> ``::1``)."""
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if ":" in host else host
