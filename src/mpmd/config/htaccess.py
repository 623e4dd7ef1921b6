""".htaccess files: read, checked and cached per process, as httpd's ap_parse_htaccess.

Theory: config/model.py (Rule 6) says where along a request's directory walk an access
file is consulted and with which overrides; ``Reader.lookup`` answers what that file says
now.  Parsing goes through the loader's own walker, so a .htaccess line is checked and
converted exactly as the same line in a <Directory> section.

Rule 1: ``AccessFileName`` names are tried in order in the directory; the first that exists
        is read, the others are not (httpd).  A name that does not exist (ENOENT, ENOTDIR)
        costs one stat(2) per request and is otherwise free.
Rule 2: a file is parsed once per version: its (mtime, ctime, size, inode) and the overrides
        it was parsed under key the cache, so an edit (or a chmod) takes effect on the next
        request, and a file not changed is never read again.  The cache is per process and
        per generation (a reload builds new ServerConfigs with new readers).
Rule 3: a line is refused where httpd refuses it: a name no loaded module declares is
        "Invalid command 'X', perhaps misspelled ...", a directive whose override category
        (Directive.override) AllowOverride does not grant and AllowOverrideList does not
        name is "X not allowed here", an ``Options`` word outside ``AllowOverride
        Options=...`` is "Option X not allowed here", bad arguments as in the main config.
        The request then gets a 500 and the error log an alert naming the file and line:
        "/srv/www/.htaccess:3: Invalid command 'Foo', ..." (httpd: "<file>: <message>").
        Requests whose walk does not pass through that directory are unaffected.
Rule 4: a file that exists but cannot be read (EACCES) is a 403 with httpd's AH00529
        wording, "denying access to be safe".
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any, Callable

from mpmd.config.directives import Ctx, Directive, Override
from mpmd.config.model import ConfigError, Section, _if_chains
from mpmd.config.parser import ReadState, parse_text

CACHE_SIZE = 4096                      # parsed files kept per server (versions x overrides)
_serials = itertools.count(1)


@dataclass(frozen=True, slots=True)
class LoadContext:
    """What parsing needs from the load that built the server: its directive index (the
    loaded modules' tables), ServerRoot, the Define'd names, the <IfModule> test, and the
    names the configuration registered (<AuthnProviderAlias>: loader ``_Walker.names``)."""

    index: dict[str, Directive]
    server_root: str
    defines: dict[str, str]
    module_present: Callable[[str], bool]
    names: dict[str, set[str]]
    # names the configuration registered (<AuthnProviderAlias>: loader's _Walker.names)
    names: dict[str, set[str]] | None = None


class HtFile:
    """One version of one access file under one set of overrides: its synthetic <Directory>
    section, its <If> chains (model._if_chains), its top-level <Files> sections, or the
    error it gives (status, log text)."""

    __slots__ = ("serial", "stamp", "section", "chains", "files", "error")

    def __init__(self, stamp: Any, section: Section | None, error: tuple[int, str] | None) -> None:
        self.serial = next(_serials)
        self.stamp = stamp
        self.section = section
        self.error = error
        self.chains = _if_chains([section]) if section is not None else {}
        self.files = [s for s in section.sections if s.kind in ("Files", "FilesMatch")] \
            if section is not None else []


class Rules:
    """What the walker lets a .htaccess line do (Rule 3), from the directory's AllowOverride
    (``allowed``, config.values.Overrides) and AllowOverrideList (``names``)."""

    def __init__(self, allowed: Any, names: frozenset[str]) -> None:
        self.categories = allowed.categories if allowed is not None else Override.NONE
        self.options = allowed.options if allowed is not None else None
        self.names = names

    def allows(self, d: Directive) -> bool:
        return bool(d.override & self.categories) or d.name.lower() in self.names

    def refuses(self, d: Directive, value: Any) -> str | None:
        """httpd's set_options check: each option named must be in AllowOverride Options=."""
        if d.field != "options" or self.options is None or d.name.lower() in self.names:
            return None
        named = set()
        for part in ("absolute", "add", "remove"):
            named |= set(getattr(value, part, None) or ())
        for option in sorted(named):
            if option not in self.options:
                return f"Option {option} not allowed here"
        return None


class Reader:
    """A server's access files (Rules 1, 2): ``lookup(consult)`` for model.py's walk."""

    def __init__(self, names: list[str], load: LoadContext) -> None:
        self.names = tuple(names)
        self.load = load
        self._parsed: dict[tuple[str, int], HtFile] = {}
        self._rules: dict[tuple[Any, frozenset[str]], int] = {}

    def rules_id(self, allowed: Any, names: frozenset[str]) -> int:
        """A small int for (AllowOverride, AllowOverrideList): part of the cache key, hashed
        once per walk instead of once per request."""
        return self._rules.setdefault((allowed, names), len(self._rules))

    def lookup(self, consult: Any) -> HtFile | None:
        for path in consult.paths:
            try:
                st = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError:
                return self._unreadable(path, consult.directory)
            key = (path, consult.rules)
            hit = self._parsed.get(key)
            if hit is not None and hit.stamp == (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino):
                return hit
            ht = self._parse(path, consult, (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino))
            if len(self._parsed) >= CACHE_SIZE:
                self._parsed.clear()
            self._parsed[key] = ht
            return ht
        return None

    def _unreadable(self, path: str, directory: str) -> HtFile:
        return HtFile(None, None, (403, f"{path} pcfg_openfile: unable to check htaccess file, "
                                        f"ensure it is readable and that '{directory}' is "
                                        "executable (Server unable to read htaccess file, "
                                        "denying access to be safe)"))

    def _parse(self, path: str, consult: Any, stamp: Any) -> HtFile:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except IsADirectoryError:
            return HtFile(stamp, Section("Directory", consult.directory, path, 0), None)
        except OSError:
            return self._unreadable(path, consult.directory)
        try:
            section = parse(data.decode("utf-8", "surrogateescape"), path, consult.directory,
                            Rules(consult.allowed, consult.names), self.load)
        except ConfigError as exc:
            return HtFile(stamp, None, (500, f"{exc.file}:{exc.line}: {exc.message}"))
        return HtFile(stamp, section, None)


def parse(text: str, path: str, directory: str, rules: Rules, load: LoadContext) -> Section:
    """A .htaccess file's text -> its synthetic <Directory> section (model.py Rule 6);
    raises the first ConfigError, by line (Rule 3)."""
    from mpmd.config.loader import _Walker
    state = ReadState(defines=dict(load.defines), server_root=load.server_root,
                      module_present=load.module_present, htaccess=True)
    nodes = parse_text(text, path, state)
    walker = _Walker(load.index, load.server_root, [])
    walker.htaccess = rules
    walker.names = {kind: set(names) for kind, names in load.names.items()}
    if load.names:
        walker.names = {key: set(found) for key, found in load.names.items()}
    section = Section("Directory", directory, path, 0)
    walker.walk(nodes, Ctx.DIRECTORY, section, "<Directory>")
    errors = state.errors + walker.errors
    if errors:
        raise min(errors, key=lambda e: e.line or 0)
    return section
