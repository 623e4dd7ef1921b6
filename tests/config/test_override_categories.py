"""Every directive's .htaccess category (Directive.override) is httpd's "Override" line."""

from __future__ import annotations

import pytest

from mpmd.config.directives import Ctx, Override, override_text
from mpmd.config.docs import collect

TABLES = {d.name: d for _, table in collect()[0] for d in table}

# httpd 2.4's directive docs ("Override:" line), for the directives mpmd has.
HTTPD = {
    "Options": Override.OPTIONS, "ErrorDocument": Override.FILEINFO, "SetHandler": Override.FILEINFO,
    "FileETag": Override.FILEINFO, "LimitRequestBody": Override.ALL, "<Files>": Override.ALL,
    "<FilesMatch>": Override.ALL, "<If>": Override.ALL, "<Else>": Override.ALL,
    "AddType": Override.FILEINFO, "ForceType": Override.FILEINFO, "AddDefaultCharset": Override.FILEINFO,
    "Header": Override.FILEINFO, "RequestHeader": Override.FILEINFO, "SetEnvIf": Override.FILEINFO,
    "BrowserMatch": Override.FILEINFO, "SetEnv": Override.FILEINFO,
    "AddOutputFilterByType": Override.FILEINFO, "LanguagePriority": Override.FILEINFO,
    "ExpiresActive": Override.INDEXES, "ExpiresByType": Override.INDEXES,
    "DirectoryIndex": Override.INDEXES, "DirectorySlash": Override.INDEXES,
    "IndexOptions": Override.INDEXES, "AddIcon": Override.INDEXES, "ReadmeName": Override.INDEXES,
    "AuthType": Override.AUTHCONFIG, "AuthName": Override.AUTHCONFIG, "AuthUserFile": Override.AUTHCONFIG,
    "AuthGroupFile": Override.AUTHCONFIG, "AuthBasicProvider": Override.AUTHCONFIG,
    "Require": Override.AUTHCONFIG,
    "RewriteEngine": Override.FILEINFO, "RewriteRule": Override.FILEINFO,
    "RewriteCond": Override.FILEINFO, "RewriteBase": Override.FILEINFO,
    "RewriteOptions": Override.FILEINFO, "RewriteMap": Override.NONE,
    # never in .htaccess
    "AllowOverride": Override.NONE, "<Directory>": Override.NONE, "<Location>": Override.NONE,
    "DocumentRoot": Override.NONE, "Alias": Override.NONE, "HostnameLookups": Override.NONE,
    "CustomLog": Override.NONE, "DeflateCompressionLevel": Override.NONE,
}


@pytest.mark.parametrize("name", sorted(HTTPD))
def test_category_is_httpds(name):
    assert TABLES[name].override == HTTPD[name], name


def test_a_category_needs_a_directory_context():
    """A .htaccess file is read as a <Directory> section: whatever it may hold must be
    allowed in one."""
    for d in TABLES.values():
        if d.override:
            assert d.context & Ctx.DIRECTORY, d.name


def test_default_is_not_in_htaccess():
    assert TABLES["Listen"].override is Override.NONE


def test_override_text():
    assert override_text(Override.ALL) == "All"
    assert override_text(Override.FILEINFO | Override.INDEXES) == "FileInfo, Indexes"
    assert override_text(Override.NONE) == "None"
