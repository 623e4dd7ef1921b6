"""Built-in modules: compiled in, as httpd's static modules are.

Each is loaded without a LoadModule line; Apache's ``LoadModule mime_module modules/mod_mime.so``
lines naming them (any path ending in .so) are accepted and change nothing, and
``<IfModule mime_module>`` / ``<IfModule mod_mime.c>`` test the names here: registering a
module in this table is all it takes for both (config/loader.py Rule 9).  Order is the hook
order.  In a configuration that loads Apache's module files (``LoadModule x_module ....so``
for a module other than the MPM, as Debian's tree does), ``<IfModule>`` answers as httpd
would: a module httpd builds as a loadable one is present once its LoadModule line has been
read; those in ``STATIC_IN_HTTPD`` are present throughout.
"""

from __future__ import annotations

import importlib
from typing import Any

BUILTIN_MODULES: dict[str, str] = {
    "core_module": "mpmd.modules.mod_core:CoreModule",          # static files (default-handler)
    "remoteip_module": "mpmd.modules.mod_remoteip:RemoteIPModule",   # first: the client's address
    "rewrite_module": "mpmd.modules.mod_rewrite:RewriteModule",   # translate_name, fixups: first
    "alias_module": "mpmd.modules.mod_alias:AliasModule",
    "dir_module": "mpmd.modules.mod_dir:DirModule",
    "mime_module": "mpmd.modules.mod_mime:MimeModule",
    "negotiation_module": "mpmd.modules.mod_negotiation:NegotiationModule",   # after mime
    "authz_core_module": "mpmd.modules.mod_authz_core:AuthzCoreModule",
    "authn_core_module": "mpmd.modules.mod_auth:AuthnCoreModule",
    "auth_basic_module": "mpmd.modules.mod_auth:AuthBasicModule",
    "authn_file_module": "mpmd.modules.mod_auth:AuthnFileModule",
    "authz_user_module": "mpmd.modules.mod_auth:AuthzUserModule",
    "authz_groupfile_module": "mpmd.modules.mod_auth:AuthzGroupfileModule",
    "authz_host_module": "mpmd.modules.mod_auth:AuthzHostModule",
    "access_compat_module": "mpmd.modules.mod_access_compat:AccessCompatModule",
    "autoindex_module": "mpmd.modules.mod_autoindex:AutoindexModule",
    "log_config_module": "mpmd.modules.mod_log_config:LogConfigModule",
    "wsgi_module": "mpmd.modules.mod_wsgi:WSGIModule",
    "asgi_module": "mpmd.modules.mod_asgi:ASGIModule",
    "proxy_module": "mpmd.modules.mod_proxy:ProxyModule",
    "proxy_http_module": "mpmd.modules.mod_proxy:ProxyHttpModule",
    "proxy_balancer_module": "mpmd.modules.mod_proxy:ProxyBalancerModule",
    "proxy_wstunnel_module": "mpmd.modules.mod_proxy:ProxyWstunnelModule",
    "lbmethod_byrequests_module": "mpmd.modules.mod_proxy:LbmethodByrequests",
    "lbmethod_bybusyness_module": "mpmd.modules.mod_proxy:LbmethodBybusyness",
    "lbmethod_bytraffic_module": "mpmd.modules.mod_proxy:LbmethodBytraffic",
    "status_module": "mpmd.modules.mod_status:StatusModule",
    "health_module": "mpmd.modules.mod_health:HealthModule",       # SetHandler server-health
    "ssl_module": "mpmd.modules.mod_ssl:SSLModule",
    "socache_shmcb_module": "mpmd.modules.mod_ssl:SocacheShmcbModule",
    "reqtimeout_module": "mpmd.modules.mod_reqtimeout:ReqtimeoutModule",
    "filter_module": "mpmd.modules.mod_filter:FilterModule",       # DEFLATE, BROTLI_COMPRESS
    "deflate_module": "mpmd.modules.mod_deflate:DeflateModule",
    "brotli_module": "mpmd.modules.mod_brotli:BrotliModule",
    "setenvif_module": "mpmd.modules.mod_setenvif:SetEnvIfModule",     # header_parser: first
    "env_module": "mpmd.modules.mod_env:EnvModule",                    # SetEnv after SetEnvIf
    "expires_module": "mpmd.modules.mod_expires:ExpiresModule",
    "headers_module": "mpmd.modules.mod_headers:HeadersModule",
    "version_module": "mpmd.modules.mod_version:VersionModule",     # <IfVersion>
}

# compiled into Debian's apache2 binary (`apache2 -l`), or mpmd's own with no Apache .so
STATIC_IN_HTTPD = frozenset({"core_module", "log_config_module", "version_module",
                             "wsgi_module", "asgi_module"})


def load_module_class(spec: str) -> Any:
    """Import ``"package.module:attr"`` or ``"package.module.attr"`` and return the attribute.

    A dotted path that is itself importable is a module object used as the module (its
    functions are the hooks); otherwise its last component is the attribute.
    """
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        return getattr(importlib.import_module(module_name), attr)
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name != spec or "." not in spec:
            raise                # a package on the way is missing: that is the real error
    module_name, _, attr = spec.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)
