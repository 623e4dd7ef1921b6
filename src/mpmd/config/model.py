"""The configuration model: what the loader builds and the rest of the server reads.

Theory: the loader records every directive line as an ``Op`` (directive, converted value,
file, line) in the scope it appeared in: the server itself or a ``Section``
(<Directory>, <Files>, <Location>, <VirtualHost>, ...).  Values are computed by replaying
ops over the table defaults (nginx's conf merge, in order):

Rule 1: a REPLACE directive's last line wins; an APPEND directive accumulates a list; a
        directive with ``extra["combine"]`` (Options, FileETag) folds each line into the
        inherited value.
Rule 2: per-directory directives at server level make the server's default ``DirConfig``;
        ``ServerConfig.dir_config(filename, uri_path)`` replays, over it, the <Directory>
        sections whose path contains ``filename`` (shortest first), then <DirectoryMatch>,
        then <Files>/<FilesMatch> on the base name, then <Location>/<LocationMatch> on the
        URL path (httpd's directory_walk, file_walk, location_walk), and caches the result.
        A <Files> inside a <Files> is kept but never applies, as in httpd.
Rule 3: models are read-only after loading; every attribute has a value (defaults filled).
Rule 4: a <VirtualHost> is a ServerConfig of its own (httpd's server_rec): the main server's
        values with the vhost's lines over them, and for its walks the main server's sections
        followed by its own (so at equal depth, and for <Location>, the vhost's come later and
        win).  The main server never walks inside a <VirtualHost> (config/vhosts.py chooses).
Rule 5: <If>, <ElseIf> and <Else> sections are not walked by ``dir_config``: a chain of
        them (an <If>, its <ElseIf>s and <Else>, siblings in order) is recorded on the merged
        DirConfig when its container applies (server level and <VirtualHost> always, else the
        <Directory>/<Files>/<Location> holding it), in walk order; ``if_config(dc, ctx)``
        evaluates them per request and merges the branches taken last, after <Location>
        (httpd's ap_if_walk).  A chain inside a taken branch is evaluated after its lines.
Rule 6: .htaccess files (config/htaccess.py) join the <Directory> walk as httpd's
        ap_directory_walk: for each directory from "/" down to the file's own (the last path
        component too, in case it is a directory), the <Directory> sections of that depth
        are applied, then, when the values merged so far allow overrides (AllowOverride,
        AllowOverrideList), that directory's access file.  A .htaccess file is parsed as a
        synthetic ``Section("Directory", <its directory>, <its path>, 0)`` through the
        loader's normal per-directive conversion, so its lines get their directory exactly
        as those of a <Directory> section written for that directory do (mod_rewrite's
        per-directory prefix, relative paths); its <Files>/<FilesMatch> are walked after the
        configuration's, its <If> chains in walk order.  ``dir_config`` then caches the walk
        (the static sections between the access files) per (filename, URL path), and the
        merged result per version of each access file it consulted; such a DirConfig has
        ``_htaccess`` set (its route is reused only while the walk gives it again:
        core/request.py Rule 8), and
        ``_htaccess_error`` (status, log text) when an access file is broken or unreadable.
        A configuration where no AllowOverride/AllowOverrideList allows anything never
        stats a .htaccess file (``reads_htaccess`` is False).
Rule 7: a directive with ``extra["phase_merge"]`` (Require, whose AuthMerging is not
        associative) is joined as httpd's file and location walks join: the <Files> sections
        of a request among themselves first, the result then onto the directory's value, and
        the same for <Location>; <Directory> sections join one by one.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable


@dataclass(frozen=True, slots=True)
class ListenAddr:
    host: str                 # "*" = every address; IPv6 without brackets
    port: int                 # 0 = kernel picks (tests)
    proto: str | None = None  # "http" / "https" as written after the address

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Problem:
    """A cross-check finding printed by ``-t`` (httpd logs these at startup)."""

    level: str      # "warn" | "notice" | "error"
    id: str         # stable message id, MPMDnnnn
    text: str
    file: str | None = None     # the line that caused it, when one did: an "error" is
    line: int | None = None     # raised as ConfigError(text, file, line)

    def __str__(self) -> str:
        where = f" (line {self.line} of {self.file})" if self.file is not None else ""
        return printable(f"{self.id}: {self.text}{where}")


class ConfigError(Exception):
    """A configuration error, worded as httpd words it; ``str()`` is what -t prints."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 directive: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.directive = directive

    def __str__(self) -> str:
        if self.file is None:
            return printable(self.message)
        return printable(f"Syntax error on line {self.line} of {self.file}:\n{self.message}")


def printable(text: str) -> str:
    """Bytes that are not UTF-8 (kept by surrogateescape) shown as ``\\xff``, as httpd
    escapes them in its messages; str() of a config message is then always printable."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:          # a surrogate no decoding made (a module's text)
        raw = text.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


class CheckError(ConfigError):
    """A cross check's error (config/check.py): printed as is, with no "mpmd:" in front."""


class ConfigErrors(ConfigError):
    """Every error of one load (config/loader.py Rule 8), in order; ``file``, ``line`` and
    ``message`` are the first's.  ``str()`` is each error's own text, one after the other,
    then the count; ``lines()`` gives them as -t prints them."""

    def __init__(self, errors: list[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.message, first.file, first.line, first.directive)
        self.errors = list(errors)

    def lines(self, bare: Any = None) -> list[str]:
        """Each error's text, ``bare(error)`` deciding its prefix (the CLI adds "mpmd: " to
        one with no line), then the count."""
        shown = [bare(e) if bare is not None else str(e) for e in self.errors]
        return [*shown, f"{M_ERRORS}: {len(self.errors)} errors in the configuration"]

    def __str__(self) -> str:
        return "\n".join(self.lines())


M_ERRORS = "MPMD0516"


@dataclass(slots=True)
class Op:
    """One directive line, converted: replayed over defaults to compute values."""

    directive: Any            # mpmd.config.directives.Directive
    value: Any
    file: str
    line: int


def apply_ops(values: dict[str, Any], ops: Iterable[Op]) -> dict[str, Any]:
    """Replay ``ops`` over ``values`` (modified in place and returned); see Rule 1."""
    for op in ops:
        d = op.directive
        combine = d.extra.get("combine")
        if combine is not None:
            values[d.field] = combine(values.get(d.field, d.default), op.value)
        elif d.merge.value == "append":
            values[d.field] = [*(values.get(d.field) or ()), op.value]
        else:
            values[d.field] = op.value
    return values


@dataclass(slots=True)
class Section:
    """A container: ``kind`` is "Directory", "Files", "VirtualHost" ..., ``arg`` as written."""

    kind: str
    arg: str
    file: str
    line: int
    regex: re.Pattern[str] | None = None
    ops: list[Op] = field(default_factory=list)
    sections: list["Section"] = field(default_factory=list)
    parent: "Section | None" = None
    expr: Any = None          # <If>/<ElseIf>: the compiled condition (core/expr.py)

    def matches_directory(self, filename: str) -> bool:
        """<Directory /a/b> applies to /a/b and everything under it (wildcards per component)."""
        if self.regex is not None:
            return self.regex.search(filename) is not None
        want = [p for p in self.arg.rstrip("/").split("/")]
        have = filename.split("/")
        if len(have) < len(want):
            return False
        return all(fnmatch.fnmatchcase(h, w) for h, w in zip(have, want))

    def matches_file(self, basename: str) -> bool:
        if self.regex is not None:
            return self.regex.search(basename) is not None
        return fnmatch.fnmatchcase(basename, self.arg)

    def matches_location(self, uri_path: str) -> bool:
        if self.regex is not None:
            return self.regex.search(uri_path) is not None
        loc = self.arg
        if any(c in loc for c in "*?["):
            return fnmatch.fnmatchcase(uri_path, loc) or fnmatch.fnmatchcase(uri_path, loc.rstrip("/") + "/*")
        if loc.endswith("/") and loc != "/":
            return uri_path.startswith(loc)
        return uri_path == loc or uri_path.startswith(loc.rstrip("/") + "/")

    def depth(self) -> int:
        return len([p for p in self.arg.split("/") if p])


class DirConfig:
    """Merged per-directory values; attributes are the directives' fields (read-only)."""

    __slots__ = ("_values", "__dict__")

    def __init__(self, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_values", dict(values))
        # Fields also live in the instance dict, so reading one (a few per request) is a plain
        # attribute lookup; __getattr__ is only reached for a name that is not a field.
        self.__dict__.update(self._values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"DirConfig has no field {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("DirConfig is read-only")

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        return f"DirConfig({self._values!r})"


DIR_CACHE_SIZE = 1024

IF_KINDS = frozenset({"If", "ElseIf", "Else"})
IF_CACHE_SIZE = 1024

# (section kind, phase): Directory sections first, then Files, then Location (httpd walks).
PHASE_OF_KIND: dict[str, int] = {
    "Directory": 0, "DirectoryMatch": 1, "Files": 2, "FilesMatch": 2,
    "Location": 3, "LocationMatch": 3,
}


class ServerConfig:
    """The loaded configuration of the main server (see the module docstring).

    Attributes: every server directive's field; per-directory fields read the server's
    default DirConfig.  Plus ``listen``, ``mpm_name``, ``mpm_class``, ``modules``, ``hooks``,
    ``problems``, ``config_file``, ``defines``, ``server_root``, ``sections``.
    """

    def __init__(self, *, values: dict[str, Any], where: dict[str, str], dir_defaults: dict[str, Any],
                 sections: list[Section], server_root: str, config_file: str | None,
                 defines: dict[str, str], mpm_name: str, mpm_class: Any, modules: list[Any],
                 hooks: Any, loaded: list[tuple[str, str]],
                 origins: dict[str, list[tuple[str, int]]] | None = None,
                 vhost: Section | None = None, vhost_addrs: list[Any] | None = None) -> None:
        self._values = values
        self._where = where
        self._origins = origins or {}
        self.default_dir = DirConfig(dir_defaults)
        self.sections = sections
        self.server_root = server_root
        self.config_file = config_file
        self.defines = defines
        self.mpm_name = mpm_name
        self.mpm_class = mpm_class
        self.modules = modules
        self.hooks = hooks
        self.loaded = loaded              # [(module name, "static"|"shared")] for -M
        self.problems: list[Problem] = []
        self.vhost = vhost                          # the <VirtualHost> section, None for main
        self.is_virtual = vhost is not None
        self.vhost_addrs = list(vhost_addrs or ())  # config.vhosts.VhostAddr of its line
        self.vhosts: Any = None                     # config.vhosts.VhostTable, set by the loader
        self._dir_cache: dict[tuple[str | None, str | None], DirConfig] = {}
        self._walk = _walk_order(sections)
        self._if_chains = _if_chains(sections)         # Rule 5: {id(container): [chain]}
        self.has_if = bool(self._if_chains)
        self._if_cache: dict[tuple[int, ...], DirConfig] = {}
        self.reads_htaccess = False                     # Rule 6: see enable_htaccess
        self.htaccess: Any = None
        # Materialize the fields (per-dir defaults first, server values over them) as instance
        # attributes: the hot path reads several per request, and __getattr__ is slow.
        # The values never change after loading (a reload builds a new ServerConfig).
        for name, value in {**dir_defaults, **values}.items():
            if name not in self.__dict__ and not hasattr(type(self), name):
                self.__dict__[name] = value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        default_dir = self.__dict__.get("default_dir")
        if default_dir is not None and name in default_dir._values:
            return default_dir._values[name]
        raise AttributeError(f"ServerConfig has no field {name!r}")

    def defined_at(self) -> str:
        """``file:line`` of a vhost's <VirtualHost> line; the config file for the main one."""
        if self.vhost is not None:
            return f"{self.vhost.file}:{self.vhost.line}"
        return self.config_file or "(text)"

    @property
    def listen(self) -> list[ListenAddr]:
        return list(self._values.get("listen") or [])

    def where(self, field_name: str) -> str:
        """``file:line`` of the line that set ``field_name`` ("default" if none did)."""
        return self._where.get(field_name, "default")

    def origins(self, field_name: str) -> list[tuple[str, int]]:
        """(file, line) of each server-level line of a repeatable directive, in order: the
        n-th is where the n-th item of the list (``cfg.listen[n]``) was written."""
        return list(self._origins.get(field_name, ()))

    def values(self) -> dict[str, Any]:
        return {**self.default_dir.as_dict(), **self._values}

    def section_values(self, field_name: str) -> list[Any]:
        """The values ``field_name`` is given in the sections a request can be served under
        (those ``dir_config`` walks), in walk order."""
        walked = [section for _, sections in self._walk for section in sections]
        walked += [s for chains in self._if_chains.values() for chain in chains for s in chain]
        return [op.value for section in walked
                for op in section.ops if op.directive.field == field_name]

    def enable_htaccess(self, reader: Any) -> None:
        """Rule 6: read access files with ``reader`` (config/htaccess.Reader), set by the
        loader when some AllowOverride or AllowOverrideList line allows anything."""
        self.htaccess = reader
        self.reads_htaccess = True
        self.has_if = True                # a .htaccess file may hold <If> sections
        self._dir_cache.clear()

    def dir_config(self, filename: str | None, uri_path: str | None = None) -> DirConfig:
        key = (filename, uri_path)
        cached = self._dir_cache.get(key)
        if cached is None:
            cached = self._merge(filename, uri_path)
            if len(self._dir_cache) >= DIR_CACHE_SIZE:
                self._dir_cache.pop(next(iter(self._dir_cache)))
            self._dir_cache[key] = cached
        if self.reads_htaccess and type(cached) is _Walk:
            return self._replay(cached, filename)
        return cached

    def _merge(self, filename: str | None, uri_path: str | None) -> "DirConfig | _Walk":
        steps = self._steps(filename, uri_path)
        if any(type(step) is _Consult for step in steps):
            return _Walk(steps)
        values = self.default_dir.as_dict()
        chains = list(self._if_chains.get(0, ()))
        join = _Joiner(values)
        for section in steps:
            if section is not _FILES:
                join.apply(section)
                chains += self._if_chains.get(id(section), ())
        join.flush()
        merged = DirConfig(values)
        if chains:
            merged.__dict__["_if_chains"] = tuple(chains)
        return merged

    def _steps(self, filename: str | None, uri_path: str | None) -> list[Any]:
        """The sections that apply, in walk order, with a ``_Consult`` where an access file
        is to be read and ``_FILES`` where its <Files> sections are walked (Rule 6)."""
        steps: list[Any] = []
        applied: set[int] = set()
        dirs = _walk_dirs(filename) if self.reads_htaccess and filename is not None else ()
        values = self.default_dir.as_dict() if dirs else None

        def take(section: Section, phase: int) -> None:
            if _applies(section, phase, filename, uri_path, applied):
                applied.add(id(section))
                steps.append(section)
                if values is not None:
                    apply_ops(values, section.ops)

        for phase, sections in self._walk:
            if phase == 0 and values is not None:
                i = 0
                for depth, directory in enumerate(dirs):
                    while i < len(sections) and sections[i].depth() <= depth:
                        take(sections[i], phase)
                        i += 1
                    allowed = values.get("allow_override")
                    names = values.get("allow_override_list")
                    if (allowed is not None and allowed.categories) or names:
                        steps.append(_Consult(directory, allowed, names or frozenset(),
                                              self.htaccess))
                sections = sections[i:]
            for section in sections:
                take(section, phase)
            if phase == 2 and values is not None:
                steps.append(_FILES)
        return steps

    def _replay(self, walk: "_Walk", filename: str | None) -> DirConfig:
        """A walk with its access files as they are now (Rule 6)."""
        lookup = self.htaccess.lookup
        found = []
        serials = []
        for step in walk.consults:
            ht = lookup(step)
            found.append(ht)
            if ht is None:
                serials.append(0)
                continue
            serials.append(ht.serial)
            if ht.error is not None:
                break
        key = tuple(serials)
        cached = walk.merged.get(key)
        if cached is not None:
            return cached
        values = self.default_dir.as_dict()
        join = _Joiner(values)
        chains = list(self._if_chains.get(0, ()))
        nested: dict[int, Any] = {}
        files: list[Any] = []
        error = None
        results = iter(found)
        for step in walk.steps:
            if type(step) is _Consult:
                ht = next(results, _DONE)
                if ht is _DONE:
                    break
                if ht is None:
                    continue
                if ht.error is not None:
                    error = ht.error
                    break
                join.apply(ht.section)
                chains += ht.chains.get(id(ht.section), ())
                nested.update(ht.chains)
                files.append(ht)
            elif step is _FILES:
                base = os.path.basename(filename or "")
                for ht in files:
                    for section in ht.files:
                        if section.matches_file(base):
                            join.apply(section)
                            chains += ht.chains.get(id(section), ())
            else:
                join.apply(step)
                chains += self._if_chains.get(id(step), ())
        join.flush()
        merged = DirConfig(values)
        merged.__dict__["_htaccess"] = True
        if error is not None:
            merged.__dict__["_htaccess_error"] = error
        if chains:
            merged.__dict__["_if_chains"] = tuple(chains)
        if nested:
            merged.__dict__["_if_nested"] = nested
        if len(walk.merged) >= 8:             # a few versions of its files at most
            walk.merged.clear()
        walk.merged[key] = merged
        return merged

    def if_config(self, dc: DirConfig, ctx: Any) -> tuple[DirConfig, bool]:
        """Rule 5: ``dc`` with the <If> branches taken for request ``ctx`` merged over it,
        and whether any <If> was evaluated (the request's route then depends on more than
        its path).  Raises core.expr.ExprEvalError when a condition cannot be evaluated."""
        chains = dc.__dict__.get("_if_chains")
        if not chains:
            return dc, False
        taken: list[Section] = []
        self._take(chains, ctx, taken, dc.__dict__.get("_if_nested") or {})
        if not taken:
            return dc, True
        key = (id(dc), *map(id, taken))
        cached = self._if_cache.get(key)
        if cached is None:
            values = dc.as_dict()
            for section in taken:
                apply_ops(values, section.ops)
            cached = DirConfig(values)
            if len(self._if_cache) >= IF_CACHE_SIZE:
                self._if_cache.pop(next(iter(self._if_cache)))
            self._if_cache[key] = cached
        return cached, True

    def _take(self, chains: Iterable[list[Section]], ctx: Any, taken: list[Section],
              nested: dict[int, Any]) -> None:
        for chain in chains:
            for section in chain:
                if section.expr is None or section.expr.evaluate(ctx):
                    taken.append(section)
                    inner = self._if_chains.get(id(section)) or nested.get(id(section), ())
                    self._take(inner, ctx, taken, nested)
                    break


class _Joiner:
    """Rule 7: sections applied in walk order, the ``phase_merge`` lines of the <Files> and
    of the <Location> sections joined among themselves, then onto the values."""

    __slots__ = ("values", "phase", "joined")

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.phase = 0
        self.joined: dict[str, tuple[Any, Any]] = {}

    def apply(self, section: Section) -> None:
        phase = PHASE_OF_KIND.get(section.kind, 0)
        if phase != self.phase:
            self.flush()
            self.phase = phase
        if phase < 2:
            apply_ops(self.values, section.ops)
            return
        for op in section.ops:
            if op.directive.extra.get("phase_merge"):
                combine = op.directive.extra["combine"]
                before = self.joined.get(op.directive.field, (None, None))[0]
                self.joined[op.directive.field] = (combine(before, op.value), combine)
            else:
                apply_ops(self.values, (op,))

    def flush(self) -> None:
        for name, (value, combine) in self.joined.items():
            self.values[name] = combine(self.values.get(name), value)
        self.joined.clear()


class _Consult:
    """Rule 6: read ``directory``'s access file with these overrides allowed; ``paths`` are
    its candidate files (AccessFileName order), ``rules`` a small int naming (allowed,
    names) for the reader's cache (a parse depends on both)."""

    __slots__ = ("directory", "allowed", "names", "paths", "rules")

    def __init__(self, directory: str, allowed: Any, names: frozenset[str], reader: Any) -> None:
        self.directory = directory
        self.allowed = allowed
        self.names = names
        base = directory.rstrip("/")
        self.paths = tuple(f"{base}/{name}" for name in reader.names)
        self.rules = reader.rules_id(allowed, names)


_FILES = object()                 # Rule 6: where the access files' <Files> sections are walked
_DONE = object()


class _Walk:
    """Rule 6: a walk that reads access files; ``merged`` caches its result per version of them."""

    __slots__ = ("steps", "consults", "merged")

    def __init__(self, steps: list[Any]) -> None:
        self.steps = steps
        self.consults = [step for step in steps if type(step) is _Consult]
        self.merged: dict[tuple[int, ...], DirConfig] = {}


def _walk_dirs(filename: str) -> list[str]:
    """"/", "/a", "/a/b", "/a/b/c" for "/a/b/c": each directory an access file may sit in
    (the last component too: a request for a directory names it without a slash)."""
    parts = [p for p in filename.split("/") if p]
    return ["/"] + ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]


# Sections whose inner sections are never walked: httpd's file_walk only reads the <Files>
# sections of the directory config it starts from, never those inside a <Files> (core.c
# filesection adds them to the outer one's list).  A <VirtualHost>'s sections are walked by
# that vhost's ServerConfig alone (Rule 4).
NOT_WALKED_INSIDE = frozenset({"Files", "FilesMatch"})


def _walk_order(sections: list[Section]) -> list[tuple[int, list[Section]]]:
    """Sections grouped by phase; <Directory> sorted by depth, shortest first (stable)."""
    phases: dict[int, list[Section]] = {0: [], 1: [], 2: [], 3: []}
    for section in _flatten(sections):
        phase = PHASE_OF_KIND.get(section.kind)
        if phase is not None and (section.parent is None or section.parent.kind not in NOT_WALKED_INSIDE):
            phases[phase].append(section)
    phases[0].sort(key=Section.depth)
    return sorted(phases.items())


def _if_chains(sections: list[Section]) -> dict[int, list[list[Section]]]:
    """Rule 5: the <If> chains of each container, by id(container); 0 for server level and a
    <VirtualHost>'s own level."""
    out: dict[int, list[list[Section]]] = {}

    def collect(key: int, children: list[Section]) -> None:
        for child in children:
            if child.kind == "If":
                out.setdefault(key, []).append([child])
            elif child.kind in ("ElseIf", "Else") and key in out:
                out[key][-1].append(child)

    collect(0, sections)              # a vhost's list holds its own sections after the main's
    for section in _flatten(sections):
        collect(id(section), section.sections)
    return out


def _flatten(sections: list[Section]) -> list[Section]:
    out: list[Section] = []
    for section in sections:
        if section.kind == "VirtualHost":
            continue
        out.append(section)
        out.extend(_flatten(section.sections))
    return out


def _applies(section: Section, phase: int, filename: str | None, uri_path: str | None,
             applied: set[int]) -> bool:
    parent = section.parent
    if parent is not None and parent.kind != "VirtualHost" and id(parent) not in applied:
        return False          # <Files> inside a <Directory> that did not match
    if phase <= 1:
        return filename is not None and section.matches_directory(filename)
    if phase == 2:
        return filename is not None and section.matches_file(os.path.basename(filename))
    return uri_path is not None and section.matches_location(uri_path)
