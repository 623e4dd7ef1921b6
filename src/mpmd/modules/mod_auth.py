"""Basic authentication: mod_authn_core, mod_auth_basic, mod_authn_file, mod_authz_user,
mod_authz_groupfile and mod_authz_host, each registered under httpd's name.

Rule 1: these modules hold the directives (AuthType, AuthName, AuthBasicProvider,
        AuthUserFile, AuthGroupFile); mod_authz_core.py runs the one access_checker, as
        httpd's authz_core does: the Require lines are judged without a user first; when the
        answer depends on who the user is (``user``, ``valid-user``, ``group``), ``authenticate``
        below finds the user, and the Require lines are judged again with it.
Rule 2: ``authenticate`` is httpd's check_user_id for AuthType Basic: no AuthType -> 500
        (AH01796), no AuthName -> 500 (AH01615), no AuthUserFile -> 500 (AH01806); no or a
        malformed ``Authorization: Basic`` header, an unknown user or a wrong password -> 401
        with ``WWW-Authenticate: Basic realm="AuthName"``.  A found user is
        ``ctx.notes["remote_user"]`` (the access log's %u, WSGI's REMOTE_USER) and
        ``ctx.notes["auth_type"]`` is "Basic" (AUTH_TYPE).
Rule 3: AuthType takes Basic and None (httpd 2.4's "off"); Digest and Form are refused at -t
        (mpmd has neither module).  AuthBasicProvider takes ``file`` and the names of
        <AuthnProviderAlias> sections read before it (httpd registers an alias as its line is
        read); any other name is "Unknown Authn provider" at -t.
Rule 4: ``<AuthnProviderAlias file name>`` (server config only) holds AuthConfig lines, such
        as its own AuthUserFile; a provider list is tried in order, as httpd's auth_basic: a
        user a provider does not know goes to the next one, a wrong password ends the search.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, ClassVar

from mpmd.config import values as V
from mpmd.config.directives import Args, Ctx, Directive, Merge, Override
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.modules import Module
from mpmd.core.request import error, log_error
from mpmd.modules import htpasswd


def _auth_type(args: list[str]) -> str:
    word = args[0].lower()
    if word in ("basic", "none"):
        return "Basic" if word == "basic" else "None"
    if word in ("digest", "form"):
        raise ValueError(f"AuthType {args[0]} needs mod_auth_{word}, which mpmd does not have; "
                         "Basic and None are supported")
    raise ValueError(f"must be Basic or None, not {args[0]!r}")


def _providers(args: list[str]) -> tuple[str, ...]:
    return tuple(args)          # the names are checked as read (Rule 3, ``known_names``)


def challenge(ctx: RequestContext) -> Response:
    realm = getattr(ctx.dir_config, "auth_name", None) or ""
    return error(401, ctx, [("WWW-Authenticate", f'Basic realm="{realm}"')])


def _fail(ctx: RequestContext, message: str) -> Response:
    msg_id, _, text = message.partition(": ")
    log_error(ctx, msg_id, f"{text}: {ctx.uri_path}")
    return challenge(ctx)


def authenticate(ctx: RequestContext) -> Response | None:
    """Rule 2: set the request's user, or answer 401/500."""
    dc = ctx.dir_config
    auth_type = getattr(dc, "auth_type", None)
    if auth_type != "Basic":
        log_error(ctx, "AH01796", f"AuthType not set!: {ctx.uri_path}")
        return error(500, ctx)
    if not getattr(dc, "auth_name", None):
        log_error(ctx, "AH01615", f"need AuthName: {ctx.uri_path}")
        return error(500, ctx)
    raw = ctx.request.header(b"authorization")
    if not raw:
        return challenge(ctx)
    scheme, _, token = raw.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "basic":
        return _fail(ctx, "AH01614: client used wrong authentication scheme")
    try:
        decoded = base64.b64decode(token.strip() + "=" * (-len(token.strip()) % 4))
    except (binascii.Error, ValueError):
        return _fail(ctx, "AH01617: invalid Basic credentials")
    user, _, password = decoded.decode("utf-8", "surrogateescape").partition(":")
    ctx.notes["remote_user"] = user          # httpd's r->user, logged (%u) even when refused
    hashed = None
    aliases = None
    for provider in getattr(dc, "auth_basic_provider", None) or ("file",):    # Rule 4
        if provider == "file":
            user_file = getattr(dc, "auth_user_file", None)
        else:
            if aliases is None:
                aliases = {name: values for name, _, values in
                           getattr(ctx.server, "authn_aliases", None) or ()}
            user_file = aliases[provider].get("auth_user_file")
        if not user_file:
            log_error(ctx, "AH01806", f"AuthUserFile not specified in the configuration: {ctx.uri_path}")
            return error(500, ctx)
        try:
            hashed = htpasswd.user_hash(user_file, user)
        except OSError as exc:
            log_error(ctx, "AH01620", f"Could not open password file: {user_file}: {exc}")
            return error(500, ctx)
        if hashed is not None:
            break
    if hashed is None:
        return _fail(ctx, f"AH01618: user {user} not found")
    if not htpasswd.verify(password, hashed):
        return _fail(ctx, f"AH01617: user {user}: authentication failure")
    ctx.notes["auth_type"] = "Basic"
    return None


def in_group(ctx: RequestContext, names: frozenset[str]) -> bool:
    user = ctx.notes.get("remote_user")
    path = getattr(ctx.dir_config, "auth_group_file", None)
    if not path:
        log_error(ctx, "AH01664", f"No group file was specified in the configuration: {ctx.uri_path}")
        return False
    try:
        return bool(htpasswd.groups_of(path, user) & names)
    except OSError as exc:
        log_error(ctx, "AH01666", f"Could not open group file: {path}: {exc}")
        return False


class _Auth(Module):
    route_pure: ClassVar[bool] = True
    builtin: ClassVar[bool] = True


class AuthnCoreModule(_Auth):
    name: ClassVar[str] = "authn_core_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_authn_core.c",)
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("AuthType", Args.TAKE1, Ctx.DIR, _auth_type, None, "auth_type",
                  "The authentication scheme: Basic, or None to turn it off.",
                  syntax="AuthType Basic|None", owner="authn_core_module", override=Override.AUTHCONFIG),
        Directive("AuthName", Args.TAKE1, Ctx.DIR, V.string, None, "auth_name",
                  "The realm in WWW-Authenticate: Basic realm=\"...\".",
                  syntax="AuthName realm", owner="authn_core_module", override=Override.AUTHCONFIG),
        Directive("<AuthnProviderAlias>", Args.RAW_ARGS, Ctx.SERVER, list, [], "authn_aliases",
                  "An authentication provider under another name, with its own lines (its "
                  "AuthUserFile), for AuthBasicProvider.",
                  syntax="<AuthnProviderAlias file alias> ... </AuthnProviderAlias>",
                  owner="authn_core_module", merge=Merge.APPEND,
                  extra={"section": "AuthnProviderAlias", "inner": Ctx.DIR,
                         "inline": "authn_alias"}),
    ]


class AuthBasicModule(_Auth):
    name: ClassVar[str] = "auth_basic_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_auth_basic.c",)
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("AuthBasicProvider", Args.ITERATE, Ctx.DIR, _providers, None,
                  "auth_basic_provider", "Where users are looked up: file (the default).",
                  syntax="AuthBasicProvider file|alias ...", owner="auth_basic_module",
                  override=Override.AUTHCONFIG,
                  extra={"known_names": ("authn_provider", "Unknown Authn provider: {}")}),
    ]


class AuthnFileModule(_Auth):
    name: ClassVar[str] = "authn_file_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_authn_file.c",)
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("AuthUserFile", Args.TAKE1, Ctx.DIR, V.path, None, "auth_user_file",
                  "An htpasswd file: bcrypt, apr1-MD5, SHA1 or crypt hashes.",
                  syntax="AuthUserFile file-path", owner="authn_file_module",
                  override=Override.AUTHCONFIG),
    ]


class AuthzUserModule(_Auth):
    name: ClassVar[str] = "authz_user_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_authz_user.c",)
    DIRECTIVES: ClassVar[list[Directive]] = []


class AuthzGroupfileModule(_Auth):
    name: ClassVar[str] = "authz_groupfile_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_authz_groupfile.c",)
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("AuthGroupFile", Args.TAKE1, Ctx.DIR, V.path, None, "auth_group_file",
                  "A group file (group: user user ...) for Require group.",
                  syntax="AuthGroupFile file-path", owner="authz_groupfile_module",
                  override=Override.AUTHCONFIG),
    ]


class AuthzHostModule(_Auth):
    """``Require ip``, ``local``, ``host`` and ``env`` (judged in mod_authz_core.py)."""
    name: ClassVar[str] = "authz_host_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_authz_host.c",)
    DIRECTIVES: ClassVar[list[Directive]] = []

