"""Directive records: every directive is declared once, as data, next to its owner.

The loader, ``mpmd -t``, ``mpmd -L`` and docs/directives.md are all built from these
records (gunicorn's Setting table, httpd's command_rec).  An owner (core, an MPM, a
module) exposes ``DIRECTIVES: list[Directive]``.

Rule 1: a converter takes the directive's argument strings and returns the value, or
        raises ``ValueError("must be ...")``; the loader adds file, line and name.
Rule 2: ``context`` says where the directive may appear; any directive allowed in a
        per-directory context (Directory/Files/Location) is stored in a DirConfig,
        the others in the ServerConfig.
Rule 3: ``default`` must be accepted by the converter's domain (tested).
Rule 4: ``override`` is the directive's httpd override category (the "Override" line of
        httpd's directive docs, its ``OR_*`` bits): which ``AllowOverride`` word lets a
        .htaccess file use it.  The default, ``Override.NONE``, means never in .htaccess
        ("X not allowed here"); ``Override.ALL`` (httpd's OR_ALL) means under any
        AllowOverride but None.  A directive of a per-directory context with a category
        is accepted in .htaccess (config/htaccess.py) when AllowOverride grants one of its
        bits, or AllowOverrideList names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, IntFlag
from typing import Any, Callable


class Ctx(IntFlag):
    SERVER = 1        # main server config, outside any section
    VHOST = 2         # inside <VirtualHost>
    DIRECTORY = 4     # inside <Directory>/<DirectoryMatch>
    FILES = 8         # inside <Files>/<FilesMatch>
    LOCATION = 16     # inside <Location>/<LocationMatch>
    DIR = DIRECTORY | FILES | LOCATION
    SERVER_ONLY = SERVER
    ANY = SERVER | VHOST | DIR


class Override(IntFlag):
    """httpd's override categories (OR_LIMIT, OR_OPTIONS, OR_FILEINFO, OR_AUTHCFG,
    OR_INDEXES), named as AllowOverride spells them (Rule 4)."""

    NONE = 0
    LIMIT = 1
    OPTIONS = 2
    FILEINFO = 4
    AUTHCONFIG = 8
    INDEXES = 16
    ALL = LIMIT | OPTIONS | FILEINFO | AUTHCONFIG | INDEXES


# AllowOverride's words (lower case) -> categories.
OVERRIDE_WORDS: dict[str, Override] = {
    "all": Override.ALL, "none": Override.NONE, "limit": Override.LIMIT,
    "options": Override.OPTIONS, "fileinfo": Override.FILEINFO,
    "authconfig": Override.AUTHCONFIG, "indexes": Override.INDEXES,
}


def override_text(override: Override) -> str:
    """"AuthConfig", "FileInfo, Indexes", "All", "None": as httpd's docs name them."""
    if override == Override.ALL:
        return "All"
    names = {Override.LIMIT: "Limit", Override.OPTIONS: "Options", Override.FILEINFO: "FileInfo",
             Override.AUTHCONFIG: "AuthConfig", Override.INDEXES: "Indexes"}
    return ", ".join(label for flag, label in names.items() if override & flag) or "None"


class Args(Enum):
    """Argument shapes, as httpd's TAKE1/FLAG/ITERATE...: ``(name, min, max)``; max None = unbounded.

    The name keeps each member distinct (FLAG and TAKE1 share their counts).
    """

    NO_ARGS = ("NO_ARGS", 0, 0)
    TAKE1 = ("TAKE1", 1, 1)
    TAKE2 = ("TAKE2", 2, 2)
    TAKE12 = ("TAKE12", 1, 2)
    TAKE13 = ("TAKE13", 1, 3)
    TAKE23 = ("TAKE23", 2, 3)
    TAKE123 = ("TAKE123", 1, 3)
    FLAG = ("FLAG", 1, 1)          # On|Off
    ITERATE = ("ITERATE", 1, None)  # one or more, each converted
    RAW_ARGS = ("RAW_ARGS", 0, None)

    @property
    def min(self) -> int:
        return self.value[1]

    @property
    def max(self) -> int | None:
        return self.value[2]


class Merge(Enum):
    """How a repeated directive, or an inner section, combines with what came before."""

    REPLACE = "replace"   # last one wins (httpd default for single-value directives)
    APPEND = "append"     # values accumulate in a list (Listen, AddType, Alias, ...)


@dataclass(frozen=True)
class Directive:
    name: str                                   # spelled as in httpd: "KeepAliveTimeout"
    args: Args
    context: Ctx
    value: Callable[[list[str]], Any]           # converter (see config/values.py)
    default: Any
    field: str                                  # snake_case attribute on the config model
    doc: str                                    # one line, shown by -L and in docs/directives.md
    aliases: tuple[str, ...] = ()               # deprecated spellings (MaxClients)
    merge: Merge = Merge.REPLACE
    owner: str = "core"                         # module name, set by the registry
    syntax: str = ""                            # e.g. "KeepAliveTimeout seconds", for docs
    extra: dict[str, Any] = field(default_factory=dict)
    override: Override = Override.NONE          # Rule 4: .htaccess category

    @property
    def per_dir(self) -> bool:
        return bool(self.context & Ctx.DIR)
