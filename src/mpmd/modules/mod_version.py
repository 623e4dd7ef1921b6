"""mod_version: ``<IfVersion [[!]operator] version>``, compiled in as in Debian's apache2.

The section is decided while the file is read (config/parser.py ``version_matches``), against
the Apache httpd release whose configuration language mpmd reads (``APACHE_COMPAT_VERSION``,
2.4.62); this module makes ``LoadModule version_module ...`` and ``<IfModule version_module>``
name it.  It has no directives of its own and no hooks.
"""

from __future__ import annotations

from mpmd.core.modules import Module


class VersionModule(Module):
    name = "version_module"
    builtin = True
    route_pure = True
