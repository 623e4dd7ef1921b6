"""Loader: parse tree + directive tables -> ServerConfig.  The sole author of config errors.

Order of work (httpd ap_read_config, then ap_process_config_tree):
  1. read the -C lines, the file and the -c lines; read-time directives run now
     (Define, Include, IfModule, IfDefine, ServerRoot, LoadModule: config/parser.py);
  2. instantiate the built-in modules, the LoadModule'd ones and pick the MPM;
  3. walk the tree with every loaded table: look each name up case-insensitively, check
     context and argument count, convert, resolve paths against ServerRoot, record an Op;
  4. replay the ops over the defaults (config/model.py) and run the cross checks.

Rule 1: an unknown name is "Invalid command" -- including directives of modules that are
        not loaded (e.g. prefork's StartServers while event is loaded).
Rule 2: exactly one MPM may be loaded; a second one is an error naming both lines.
Rule 3: a module or MPM whose class cannot be imported yet contributes no directives; a
        built-in one is reported as a warning (MPMD0510), never a crash.
Rule 4: every error is a ConfigError(message, file, line, directive) in httpd's words;
        a cross check's error carries the line that caused it (the second of two Listens).
Rule 8: one load reports every error (httpd stops at the first): the read (parser.py Rule 6),
        the walk (a refused line is skipped, the next is checked; a section whose own line is
        refused still has its body checked) and the cross checks each record theirs, and the
        load then raises them together: the one ConfigError itself when there is one (its
        text exactly as httpd's), else ``ConfigErrors``, in the order of the files' first
        reading and then of lines, each (file, line, message) once.
Rule 9: ``LoadModule name path.so`` (any path; the file need not exist) loads mpmd's built-in
        module or MPM of that name, as httpd's LoadModule loads a shared object; a name mpmd
        has no module for is one error naming it.  ``<IfModule>`` tests the same names, as
        ``x_module``, ``mod_x.c`` or ``mod_x``: the registries (mpmd.modules.BUILTIN_MODULES,
        mpmd.mpm.MPM_MODULES) are the list, so a module registered there is known to both.
        Once a LoadModule line has named an Apache module file of a built-in other than the
        MPM, the configuration is taken as Apache's own: a built-in that httpd loads from a
        .so is present for ``<IfModule>`` only after its LoadModule line, as in httpd (Debian's
        ports.conf binds 443 in ``<IfModule ssl_module>``, which must stay shut until
        ``a2enmod ssl``); mpmd.modules.STATIC_IN_HTTPD are present throughout.
Rule 6: context errors in httpd's words: "X not allowed here" at top level, "X not allowed
        in <Directory> context" in a section that cannot hold X, and "X cannot occur
        within <VirtualHost> section" / "<Files> cannot occur within <Location> section"
        for what httpd's ap_check_cmd_context refuses.  <IfModule>/<IfDefine> are not
        sections here: the parser has spliced their bodies in.
Rule 7: nothing accepted is ignored.  A directive that mpmd accepts but does not act on says
        so in its table (``extra["no_effect"] = (values, why)``: for those values, or any
        when ``values`` is None; ``extra["no_effect_in_vhost"] = why`` for a line in a
        <VirtualHost> that is no address's default), and each such line is named at -t with
        its file and line (MPMD0515).
Rule 10: a .htaccess file (config/htaccess.py) is walked by the same ``_Walker`` into a
        synthetic <Directory> section, with ``htaccess`` set: a directive or section whose
        override category (Directive.override) the directory's AllowOverride does not grant,
        and AllowOverrideList does not name, is "X not allowed here" (httpd's words).
        AllowOverride and AllowOverrideList are refused outside a plain <Directory>
        (<DirectoryMatch>, <If>), where httpd ignores them.  When some line allows
        overrides, each ServerConfig gets an htaccess.Reader (model.py Rule 6).
Rule 11: a directive with ``extra["bind"]`` has its converted value passed through
        ``bind(value, section)`` with the section holding the line (None at server level),
        before the section's lines are grouped: what a line means can depend on where it is
        (mod_rewrite's per-directory rules strip their <Directory>'s path).  A .htaccess file
        walked as a <Directory> section gets the same.  A ValueError refuses the line.
Rule 12: <Limit>, <LimitExcept>, <RequireAll>, <RequireAny> and <RequireNone> are not
        sections of their own: their lines go into the section that holds them, a <Limit>'s
        with its method mask (``extra["limited"]``), a <Require*>'s Require lines as one
        container value (``_inline``); no other section may occur inside them.  A section
        whose table says ``extra["inline"] == "expand"`` gives its lines to the section that
        holds it as its ``extra["expand"](args, lines)`` rewrites them (mod_proxy's <Proxy
        balancer://name> puts the balancer's URL on its BalancerMember and ProxySet lines).
Rule 5: relative paths -- ``path`` converters, <Directory> arguments, Include patterns -- are
        resolved against ServerRoot; a relative ServerRoot against the directory of the file
        that sets it; the default ServerRoot is the config file's directory (or ``-d``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Callable, Iterable

from mpmd.config import check
from mpmd.config.directives import Args, Ctx, Directive, Merge, Override
from mpmd.config.model import (IF_KINDS, CheckError, ConfigError, ConfigErrors, Op, Problem, Section,
                               ServerConfig, apply_ops)
from mpmd.config.parser import Node, ReadState, parse_file, parse_text
from mpmd.config.values import Worded
from mpmd.config.vhosts import VhostAddrError, VhostTable, parse_addr
from mpmd.core import core_directives
from mpmd.core.expr import ExprError, compile_expr
from mpmd.core.log import log_level_modules, module_key
from mpmd.modules import STATIC_IN_HTTPD

__all__ = ["ConfigError", "ConfigErrors", "load_config", "read_only", "Registry", "canonical_module_name"]

ARITY_TEXT: dict[Args, str] = {
    Args.NO_ARGS: "takes no arguments",
    Args.TAKE1: "takes one argument",
    Args.TAKE2: "takes two arguments",
    Args.TAKE12: "takes one or two arguments",
    Args.TAKE13: "takes one, two or three arguments",
    Args.TAKE23: "takes two or three arguments",
    Args.TAKE123: "takes one, two or three arguments",
    Args.ITERATE: "requires at least one argument",
    Args.RAW_ARGS: "takes any number of arguments",
}

# A Python module named by LoadModule without a colon: package.module.Class (not mod_x.so/.c).
DOTTED = re.compile(r"(?!.*\.(?:so|c)$)[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
LOADMODULE_FORMS = ("LoadModule takes a built-in module or MPM by its httpd name (mime_module, "
                    "mpm_event_module; the .so path is ignored) or a Python module as "
                    "package.module:attr or package.module.attr")
CHECK_FAILED = "MPMD0507: Configuration check failed"

INVALID = "Invalid command '{}', perhaps misspelled or defined by a module not included in the server configuration"
M_NESTED_FILES = "MPMD0514"
OVERRIDE_FIELDS = ("allow_override", "allow_override_list")
M_NO_EFFECT = "MPMD0515"


def canonical_module_name(name: str) -> str:
    """``mime_module``, ``mod_mime.c``, ``mod_mime`` and ``mod_mime.so`` -> ``mime``."""
    name = name.strip().lower()
    for suffix in (".c", ".so"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    name = name.rsplit("/", 1)[-1]
    if name.startswith("mod_"):
        name = name[4:]
    if name.endswith("_module"):
        name = name[: -len("_module")]
    return name


class Registry:
    """Built-in modules and MPMs, as the loader sees them (from core/core_directives.py)."""

    def __init__(self) -> None:
        self.core = core_directives.DIRECTIVES
        self.builtins = core_directives.builtin_modules()
        self.mpm_modules, self.default_mpm, self._load_mpm = core_directives.mpm_registry()

    def load_object(self, spec: str) -> Any:
        return core_directives.load_object(spec)

    def mpm_class(self, name: str) -> Any:
        """The MPM class, or None while it cannot be imported (Rule 3)."""
        try:
            return self._load_mpm(name)
        except (ImportError, AttributeError, KeyError):
            return None


class _Modules:
    """LoadModule bookkeeping during the read (Rule 2)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.mpm: tuple[str, str] | None = None          # (LoadModule name, "file:line")
        self.user: list[tuple[str, Any]] = []           # (name, Module instance)
        self.mentioned: set[str] = set()                # built-ins named by LoadModule
        self.apache_layout = False                      # Rule 9: Apache's .so files loaded

    def mpm_name(self) -> str:
        return self.registry.mpm_modules[self.mpm[0]] if self.mpm else self.registry.default_mpm

    def present(self, name: str) -> bool:
        want = canonical_module_name(name)
        builtins: Iterable[str] = self.registry.builtins
        if self.apache_layout:           # Rule 9: as httpd, a loadable one only once loaded
            builtins = [n for n in builtins if n in self.mentioned or n in STATIC_IN_HTTPD]
        names = [*builtins, *(n for n, _ in self.user), f"mpm_{self.mpm_name()}_module"]
        if want in {canonical_module_name(n) for n in names}:
            return True
        if want in (self.mpm_name(), f"mpm_{self.mpm_name()}"):
            return True                  # <IfModule prefork.c>
        return any(want in {canonical_module_name(a) for a in getattr(m, "aliases", ())} for _, m in self.user)

    def present_for_log_level(self, word: str) -> bool:
        """httpd's find_module for LogLevel: a module's name (``authz_core_module``), its file
        name (``mod_authz_core.c``) or the name without ``_module``; "core" and the MPM too."""
        key = module_key(word)
        if key.startswith("mod_"):
            return False                 # httpd does not know "mod_authz_core"
        mpm = self.mpm_name()            # mpm_prefork, mpm_prefork_module, prefork.c
        names = {"core", f"mpm_{mpm}", mpm, *(module_key(n) for n in self.registry.builtins),
                 *(module_key(n) for n, _ in self.user)}
        names |= {module_key(a) for _, m in self.user for a in getattr(m, "aliases", ())}
        return key in names

    def load(self, node: Node) -> None:
        name, spec = node.args
        if name in self.registry.builtins:
            self.mentioned.add(name)
            self.apache_layout = self.apache_layout or spec.endswith(".so")
        elif name in self.registry.mpm_modules:
            self._load_mpm(name, node)
        elif (":" in spec and not spec.endswith(".so")) or DOTTED.fullmatch(spec):
            self._load_user(name, spec, node)
        elif spec.endswith(".so"):       # Rule 9: an Apache module file mpmd has no module for
            raise ConfigError(f"LoadModule: mpmd has no module '{name}' ({os.path.basename(spec)}); "
                              "its <IfModule> sections are skipped and its directives are unknown; "
                              "mpmd -M lists the modules mpmd has, and a Python module loads as "
                              "package.module:attr", node.file, node.line, node.name)
        else:
            raise ConfigError(f"Cannot load {spec} into server: mpmd has no module named {name}; "
                              f"{LOADMODULE_FORMS}", node.file, node.line, node.name)

    def _load_mpm(self, name: str, node: Node) -> None:
        where = f"line {node.line} of {node.file}"
        if self.mpm is not None and self.mpm[0] != name:
            raise ConfigError(f"More than one MPM loaded: {self.mpm[0]} ({self.mpm[1]}) and {name} ({where})",
                              node.file, node.line, node.name)
        self.mpm = (name, where)

    def _load_user(self, name: str, spec: str, node: Node) -> None:
        if any(n == name for n, _ in self.user):
            return                       # httpd: "module x is already loaded, skipping"
        try:
            obj = self.registry.load_object(spec)
            module = obj() if isinstance(obj, type) else obj
        except Exception as exc:          # any import-time failure of the user's code
            raise ConfigError(f"Cannot load {spec} into server: {type(exc).__name__}: {exc}",
                              node.file, node.line, node.name) from None
        if not getattr(module, "name", ""):
            try:
                module.name = name
            except AttributeError:
                pass
        self.user.append((name, module))


def _parse_defines(defines: Any) -> dict[str, str]:
    if isinstance(defines, dict):
        return {str(k): str(v) for k, v in defines.items()}
    out: dict[str, str] = {}
    for item in defines or ():
        name, _, value = str(item).partition("=")
        out[name] = value
    return out


def _default_root(path: str | None) -> str:
    return os.path.dirname(os.path.abspath(path)) if path else os.getcwd()


def load_config(path: str | None = None, *, text: str | None = None, defines: Any = (),
                pre: Iterable[str] = (), post: Iterable[str] = (),
                server_root: str | None = None,
                warn: Callable[[Problem], None] | None = None) -> ServerConfig:
    """Read and check a configuration; raises ConfigError (see the module docstring).

    Warnings found while reading (an undefined ${NAME}) go to ``warn`` as they occur, so
    they are seen even when a later line fails (httpd logs AH00111 while reading); without
    ``warn`` they are the first of ``cfg.problems``.
    """
    registry = Registry()
    mods = _Modules(registry)
    read_problems: list[Problem] = []
    state = ReadState(defines=_parse_defines(defines), server_root=server_root or _default_root(path),
                      module_present=mods.present, load_module=mods.load,
                      warn=warn or read_problems.append)
    nodes = _read(path, text, list(pre), list(post), state)
    builtins, problems = _instantiate_builtins(registry)
    problems = read_problems + problems
    modules = builtins + [m for _, m in mods.user]
    mpm_name = mods.mpm_name()
    mpm_class = registry.mpm_class(mpm_name)
    index = _index(registry.core, modules, mpm_name, mpm_class, problems)
    walker = _Walker(index, state.server_root, problems)
    walker.walk(nodes, Ctx.SERVER, None)
    _check_log_level_modules(walker, mods)
    cfg = _build(walker, index, state, path, mods, mpm_name, mpm_class, modules)
    cfg.problems = problems + check.run(cfg)
    _raise_errors(state.errors + walker.errors + _check_errors(cfg.problems), state.files)
    return cfg


def read_only(path: str | None = None, *, defines: Any = (), pre: Iterable[str] = (),
              post: Iterable[str] = (), server_root: str | None = None
              ) -> tuple[str, str, ConfigError | None]:
    """Step 1 alone, for ``-V`` (httpd shows its settings after reading, before processing):
    (MPM name, ServerRoot, the read error or None).  The MPM is the one loaded before any error."""
    mods = _Modules(Registry())
    state = ReadState(defines=_parse_defines(defines), server_root=server_root or _default_root(path),
                      module_present=mods.present, load_module=mods.load)
    _read(path, None, list(pre), list(post), state)
    return mods.mpm_name(), state.server_root, _combined(state.errors, state.files)


def _read(path: str | None, text: str | None, pre: list[str], post: list[str],
          state: ReadState) -> list[Node]:
    nodes: list[Node] = []
    if pre:
        nodes += parse_text("\n".join(pre), "(-C)", state)
    if text is not None:
        nodes += parse_text(text, path or "(text)", state)
    elif path is not None:
        try:
            nodes += parse_file(os.path.abspath(path), state)
        except ConfigError as exc:       # the file cannot be read: nothing else of it to say
            state.fail(exc)
    if post:
        nodes += parse_text("\n".join(post), "(-c)", state)
    return nodes


def _instantiate_builtins(registry: Registry) -> tuple[list[Any], list[Problem]]:
    modules: list[Any] = []
    problems: list[Problem] = []
    for name, spec in registry.builtins.items():
        try:
            obj = registry.load_object(spec)
            modules.append(obj() if isinstance(obj, type) else obj)
        except (ImportError, AttributeError) as exc:
            problems.append(Problem("warn", "MPMD0510", f"built-in module {name} is not available: {exc}"))
    return modules, problems


def _index(core: list[Directive], modules: list[Any], mpm_name: str, mpm_class: Any,
           problems: list[Problem]) -> dict[str, Directive]:
    """Lower-case name (and alias) -> Directive, with ``owner`` set (Rule 1)."""
    owners: list[tuple[str, list[Directive]]] = [("core", core)]
    owners += [(getattr(m, "name", "") or type(m).__name__, list(getattr(m, "DIRECTIVES", []) or []))
               for m in modules]
    owners.append((f"mpm_{mpm_name}_module", list(getattr(mpm_class, "DIRECTIVES", []) or [])))
    index: dict[str, Directive] = {}
    for owner, table in owners:
        for d in table:
            if d.owner == "core" and owner != "core":
                d = dataclasses.replace(d, owner=owner)
            for key in (d.name, *d.aliases):
                if key.lower() in index:
                    problems.append(Problem("warn", "MPMD0512", f"{key} is declared by both "
                                            f"{index[key.lower()].owner} and {owner}; using {index[key.lower()].owner}'s"))
                    continue
                index[key.lower()] = d
    return index


def _arity_text(d: Directive) -> str:
    """httpd's wording for a wrong argument count."""
    if d.args is Args.FLAG or getattr(d.value, "kind", "") == "flag":
        return f"{d.name} must be On or Off"
    hint = f", {d.doc}" if d.doc else ""
    return f"{d.name} {ARITY_TEXT.get(d.args, 'takes a different number of arguments')}{hint}"


def _check_errors(problems: list[Problem]) -> list[ConfigError]:
    """The cross checks' errors (Rule 4).  A check failing is not a syntax error: without a
    line to blame httpd says so after the finding (AH00014)."""
    out: list[ConfigError] = []
    for p in problems:
        if p.level == "error":
            if p.file is not None:      # a line to blame: httpd's "Syntax error on line N"
                out.append(ConfigError(p.text, p.file, p.line))
            else:
                out.append(CheckError(f"{p.text}\n{CHECK_FAILED}"))
    return out


def _combined(errors: list[ConfigError], files: list[str]) -> ConfigError | None:
    """Rule 8: None, the one error, or every error in file-reading then line order, once each."""
    order = {name: i for i, name in reversed(list(enumerate(files)))}
    seen: set[tuple[Any, ...]] = set()
    unique: list[ConfigError] = []
    for exc in errors:
        key = (exc.file, exc.line, exc.message)
        if key not in seen:
            seen.add(key)
            unique.append(exc)
    if not unique:
        return None
    if len(unique) == 1:
        return unique[0]
    last = len(order)
    unique.sort(key=lambda e: (e.file is None, order.get(e.file, last) if e.file else 0,
                               e.file or "", e.line or 0))
    return ConfigErrors(unique)


def _raise_errors(errors: list[ConfigError], files: list[str]) -> None:
    error = _combined(errors, files)
    if error is not None:
        raise error


def _check_log_level_modules(walker: "_Walker", mods: _Modules) -> None:
    """LogLevel module:level words name loaded modules (httpd: "Cannot find module x")."""
    for op in walker.all_ops():
        if op.directive.field != "log_level":
            continue
        for module in log_level_modules(op.value):
            if not mods.present_for_log_level(module):
                walker.errors.append(ConfigError(f"Cannot find module {module}", op.file, op.line,
                                                 "LogLevel"))


class _Walker:
    """Step 3: the tree -> server ops and sections (nginx ngx_conf_handler)."""

    def __init__(self, index: dict[str, Directive], server_root: str, problems: list[Problem]) -> None:
        self.index = index
        self.server_root = server_root
        self.problems = problems
        self.server_ops: list[Op] = []
        self.sections: list[Section] = []
        self.errors: list[ConfigError] = []      # Rule 8: a refused line is skipped
        self.limited: Any = None                 # Rule 12: the <Limit> mask being walked
        self.inline: str | None = None           # the innermost <Limit>/<Require*> walked
        # names a line may use, as registered by the lines read before it (extra["known_names"])
        self.names: dict[str, set[str]] = {"authn_provider": {"file"}}
        self.htaccess: Any = None                # a .htaccess file's htaccess.Rules (Rule 10)

    def walk(self, nodes: list[Node], scope: Ctx, section: Section | None,
             within: str | None = None, group: bool = True) -> None:
        """``within``: the table name of the section holding ``nodes`` ("<Files>"), for messages;
        ``group``: fold the grouped directives of ``section`` once its lines are walked."""
        for node in nodes:
            try:
                if node.is_section:
                    self._section(node, scope, section, within)
                else:
                    op = self._directive(node, scope, within)
                    self._bind(op, node, section)
                    known = op.directive.extra.get("known_names")
                    if known is not None:
                        for name in op.value:
                            if name not in self.names[known[0]]:
                                self._fail(node, known[1].format(name))
                    limit = op.directive.extra.get("limited")
                    if self.limited is not None and limit is not None:
                        op.value = limit(op.value, self.limited)
                    if op.directive.field in OVERRIDE_FIELDS and section is not None \
                            and section.kind != "Directory":
                        self._fail(node, f"{op.directive.name} is only honoured in <Directory> "
                                         "sections without a regular expression (httpd ignores it "
                                         f"in <{section.kind}>)")
                    self._name_if_inert(op, section)
                    (section.ops if section is not None else self.server_ops).append(op)
            except ConfigError as exc:
                self.errors.append(exc)
        if group:
            self.errors += _group_ops(section.ops if section is not None else self.server_ops)

    def _bind(self, op: Op, node: Node, section: Section | None) -> None:
        """Rule 11: a directive whose value depends on the section it is written in."""
        bind = op.directive.extra.get("bind")
        if bind is not None:
            try:
                op.value = bind(op.value, section)
            except ValueError as exc:
                self._fail(node, f"{op.directive.name}: {exc}")

    def _name_if_inert(self, op: Op, section: Section | None) -> None:
        """Rule 7: a line mpmd accepts but does not act on is named, with its file and line."""
        d = op.directive
        why = None
        no_effect = d.extra.get("no_effect")
        if no_effect is not None:
            values, reason = no_effect
            if values is None or _words_of(op.value) & values:
                why = reason
        if why is not None:
            self.problems.append(Problem("warn", M_NO_EFFECT, f"{d.name} has no effect: {why}",
                                         op.file, op.line))

    def all_ops(self) -> list[Op]:
        """Every directive line walked, at server level and in every section."""
        ops = list(self.server_ops)
        todo = list(self.sections)
        while todo:
            section = todo.pop()
            ops += section.ops
            todo += section.sections
        return ops

    def _lookup(self, node: Node) -> Directive:
        key = f"<{node.name}>" if node.is_section else node.name
        d = self.index.get(key.lower())
        if d is None or bool(d.extra.get("section")) != node.is_section:
            shown = f"<{node.name}" if node.is_section else node.name
            raise ConfigError(INVALID.format(shown), node.file, node.line, node.name)
        return d

    def _directive(self, node: Node, scope: Ctx, within: str | None) -> Op:
        d = self._lookup(node)
        if self.htaccess is not None and not self.htaccess.allows(d):
            self._fail(node, f"{d.name} not allowed here")          # Rule 10
        if not d.context & scope:
            name = d.name if node.name.lower() == d.name.lower() else node.name     # httpd's spelling
            self._fail(node, _context_text(name, d, scope, within))
        n = len(node.args)
        if n < d.args.min or (d.args.max is not None and n > d.args.max):
            self._fail(node, _arity_text(d))
        if node.name.lower() != d.name.lower():
            self.problems.append(Problem("notice", "MPMD0511",
                                         f"{node.name} (line {node.line} of {node.file}) is deprecated; use {d.name}"))
        try:
            value = d.value(node.args)
        except Worded as exc:
            self._fail(node, str(exc))
        except ValueError as exc:
            self._fail(node, f"{d.name}: {exc}")
        value = self._resolve(d, value)
        if self.htaccess is not None:
            refused = self.htaccess.refuses(d, value)
            if refused:
                self._fail(node, refused)
        check_resolved = getattr(d.value, "check_resolved", None)
        if check_resolved is not None:       # a path that must exist once resolved
            try:
                check_resolved(value)
            except ValueError as exc:
                self._fail(node, str(exc))
        return Op(d, value, node.file, node.line)

    def _resolve(self, d: Directive, value: Any) -> Any:
        conv = d.value
        if getattr(conv, "kind", "") == "path" and isinstance(value, str) and conv.is_path(value):
            return os.path.normpath(os.path.join(self.server_root, value))
        return value

    def _fail(self, node: Node, message: str) -> None:
        raise ConfigError(message, node.file, node.line, node.name)

    def _section(self, node: Node, scope: Ctx, parent: Section | None, within: str | None) -> None:
        d = self._lookup(node)
        if d.extra.get("inline"):
            if self.htaccess is not None and not self.htaccess.allows(d):
                self._fail(node, f"{d.name[:-1]} not allowed here")     # Rule 10
            self._inline(node, d, scope, parent, within)
            return
        if self.inline is not None:
            where = "<Limit> or <LimitExcept>" if self.inline in ("Limit", "LimitExcept") \
                else f"<{self.inline}>"
            self._fail(node, f"<{node.name}> cannot occur within {where} section")
        try:
            if self.htaccess is not None and not self.htaccess.allows(d):
                self._fail(node, f"{d.name[:-1]} not allowed here")     # Rule 10
            if not d.context & scope:
                self._fail(node, _context_text(d.name[:-1], d, scope, within))
            if parent is not None and parent.kind in IF_KINDS and d.extra["section"] not in IF_KINDS:
                self._fail(node, f"<{node.name}> cannot occur within <{parent.kind}> section")
            kind, arg, regex = self._section_target(node, d)
            expr = self._if_target(node, kind, arg, parent) if kind in IF_KINDS else None
        except ConfigError as exc:
            # Rule 8: the body is still checked, in a section that is then dropped.
            self.errors.append(exc)
            detached = Section(d.extra["section"], "", node.file, node.line, None, parent=None)
            self.walk(node.children or [], d.extra["inner"], detached, d.name)
            return
        section = Section(kind, arg, node.file, node.line, regex, parent=parent, expr=expr)
        if parent is not None and parent.kind in ("Files", "FilesMatch"):
            # httpd accepts <Files> in <Files> but its file walk never looks inside the
            # outer one, so the inner section never applies (model.py skips it too).
            self.problems.append(Problem("notice", M_NESTED_FILES,
                                         f"<{node.name}> inside <{parent.kind}> never applies (as in httpd)",
                                         node.file, node.line))
        (parent.sections if parent is not None else self.sections).append(section)
        self.walk(node.children or [], d.extra["inner"], section, d.name)

    def _inline(self, node: Node, d: Directive, scope: Ctx, parent: Section | None,
                within: str | None) -> None:
        """Rule 12: <Limit>/<LimitExcept> and <RequireAll>/<RequireAny>/<RequireNone> are not
        walked per request: their lines go into the section holding them, a <Limit>'s with its
        method mask (on the lines that take one: ``extra["limited"]``), a <Require*>'s
        Require lines as one container (mod_authz_core.py)."""
        from mpmd.modules import mod_authz_core as authz
        kind = d.extra["section"]
        if not d.context & scope:
            self._fail(node, _context_text(d.name[:-1], d, scope, within))
        outer = (self.limited, self.inline)
        if d.extra["inline"] == "authn_alias":
            self._authn_alias(node, d, scope)
            return
        if d.extra["inline"] == "expand":            # its lines, as its table rewrites them
            try:                                     # (mod_proxy's <Proxy balancer://name>)
                children = d.extra["expand"](list(node.args), node.children or [])
            except ValueError as exc:
                self._fail(node, str(exc))
            self.walk(children, scope, parent, f"<{kind}>", group=False)
            return
        if d.extra["inline"] == "limit":
            try:
                mask = authz.limit_mask(list(node.args), kind, self.limited)
            except ValueError as exc:
                self._fail(node, str(exc))
            self.limited, self.inline = mask, kind
            try:
                self.walk(node.children or [], scope, parent, f"<{kind}>", group=False)
            finally:
                self.limited, self.inline = outer
            return
        if node.args:
            self._fail(node, f"<{kind}> directive doesn't take additional arguments")
        box = Section(kind, "", node.file, node.line, None, parent=parent)
        errors_before = len(self.errors)
        self.inline = kind
        try:
            self.walk(node.children or [], scope, box, f"<{kind}>", group=False)
        finally:
            self.limited, self.inline = outer
        target = parent.ops if parent is not None else self.server_ops
        children = []
        for op in box.ops:
            value = op.value
            if isinstance(value, (authz.Requirement, authz.AuthzSection)):
                try:
                    authz.check_child(kind, value)
                except ValueError as exc:
                    self.errors.append(ConfigError(str(exc), op.file, op.line, op.directive.name))
                    continue
                children.append(value)
            elif op.directive.override & Override.AUTHCONFIG:
                target.append(op)                # httpd: it sets the section around
            else:
                self.errors.append(ConfigError(f"{op.directive.name} not allowed in <{kind}> "
                                               "context", op.file, op.line, op.directive.name))
        if len(self.errors) > errors_before and not children:
            return                               # its lines were refused: said already
        try:
            authz.check_container(kind, tuple(children))
        except ValueError as exc:
            self._fail(node, str(exc))
        value = authz.make_section(kind, tuple(children))
        target.append(Op(self.index["require"], value, node.file, node.line))

    def _authn_alias(self, node: Node, d: Directive, scope: Ctx) -> None:
        """<AuthnProviderAlias provider alias>: its AuthConfig lines as the alias's values (a
        server-level op of ``d``'s field), and ``alias`` a provider name from here on."""
        args = list(node.args)
        if len(args) < 2:
            self._fail(node, "<AuthnProviderAlias> directive requires additional arguments")
        provider, alias = args[0], args[1]
        if provider not in self.names["authn_provider"]:
            self._fail(node, f"Unknown Authn provider: {provider}")
        box = Section("AuthnProviderAlias", alias, node.file, node.line, None, parent=None)
        self.inline = "AuthnProviderAlias"
        try:
            self.walk(node.children or [], Ctx.DIRECTORY, box, "<AuthnProviderAlias>", group=False)
        finally:
            self.inline = None
        kept = []
        for op in box.ops:
            if op.directive.override & Override.AUTHCONFIG:
                kept.append(op)
            else:
                self.errors.append(ConfigError(f"{op.directive.name} not allowed in "
                                               "<AuthnProviderAlias> context", op.file, op.line,
                                               op.directive.name))
        values = apply_ops({}, kept)
        if provider != "file":                  # an alias of an alias: the real one's lines
            base = next(v for n, _, v in self._aliases() if n == provider)
            values = {**base, **values}
        self.names["authn_provider"].add(alias)
        self.server_ops.append(Op(d, (alias, provider, values), node.file, node.line))

    def _aliases(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [op.value for op in self.server_ops if op.directive.field == "authn_aliases"]

    def _if_target(self, node: Node, kind: str, arg: str, parent: Section | None) -> Any:
        """<If>/<ElseIf>'s compiled expression (None for <Else>); <ElseIf> and <Else> must
        follow an <If> or <ElseIf> of the same container (httpd)."""
        if kind != "If":
            siblings = parent.sections if parent is not None else self.sections
            before = [s for s in siblings if s.kind in IF_KINDS]
            if not before or before[-1].kind == "Else":
                self._fail(node, "<Else> or <ElseIf> section without previous <If> or "
                                 "<ElseIf> section in same scope")
        if kind == "Else":
            return None
        try:
            return compile_expr(arg)
        except ExprError as exc:
            self._fail(node, f"Cannot parse expression in <{kind}>: {exc}: {arg}")

    def _section_target(self, node: Node, d: Directive) -> tuple[str, str, re.Pattern[str] | None]:
        kind: str = d.extra["section"]
        args = list(node.args)
        if kind == "Else":
            if args:
                self._fail(node, "<Else> does not take an argument")
            return kind, "", None
        if args and args[0] == "~" and kind in ("Directory", "Files", "Location"):
            kind, args = kind + "Match", args[1:]
        if kind == "VirtualHost":
            if not args:
                self._fail(node, "<VirtualHost> directive requires additional arguments")
            return kind, " ".join(args), None
        if len(args) != 1:
            self._fail(node, f"<{node.name}> takes one argument, {d.doc}")
        if kind.endswith("Match"):
            try:
                return kind, args[0], re.compile(args[0])
            except re.error:
                self._fail(node, "Regular expression could not be compiled.")
        arg = args[0]
        if kind == "Directory" and arg != "/":
            arg = os.path.normpath(os.path.join(self.server_root, arg))
        return kind, arg, None


def _group_ops(ops: list[Op]) -> list[ConfigError]:
    """The lines of a directive with ``extra["group"]`` in one section become one op at the
    first one's place: with ``group=True`` its value is the tuple of theirs; with a function,
    ``group([(value, op), ...])`` folds them (``Require`` lines and containers into one
    <RequireAny>, mod_authz_core.py; Order/Allow/Deny/Satisfy into one config,
    mod_access_compat.py).  A fold that raises is an error at the line it names (its
    ``op``), and the section then has none of those lines."""
    first: dict[str, int] = {}
    items: dict[str, list[tuple[Any, Op]]] = {}
    out: list[Op] = []
    for op in ops:
        d = op.directive
        how = d.extra.get("group")
        if not how:
            out.append(op)
            continue
        if how is True:
            values = op.value if isinstance(op.value, tuple) else (op.value,)
            if d.field in first:
                i = first[d.field]
                out[i] = Op(d, out[i].value + values, out[i].file, out[i].line)
            else:
                first[d.field] = len(out)
                out.append(Op(d, values, op.file, op.line))
            continue
        if d.field not in first:
            first[d.field] = len(out)
            out.append(op)
        items.setdefault(d.field, []).append((op.value, op))
    errors: list[ConfigError] = []
    dropped: set[int] = set()
    for field_name, got in items.items():
        i = first[field_name]
        head = out[i]
        try:
            out[i] = Op(head.directive, head.directive.extra["group"](got), head.file, head.line)
        except ValueError as exc:
            blame = getattr(exc, "op", None) or head
            errors.append(ConfigError(str(exc), blame.file, blame.line, blame.directive.name))
            dropped.add(i)
    ops[:] = [op for i, op in enumerate(out) if i not in dropped]
    return errors


def _words_of(value: Any) -> set[str]:
    """A converted value as lower-case words, to compare with a ``no_effect`` value set."""
    items = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
    return {str(v).lower() for v in items}


def _context_text(name: str, d: Directive, scope: Ctx, within: str | None) -> str:
    """httpd's words for ``name`` (``<Location`` for a section) where it may not be (Rule 6).

    httpd first checks the section's override mask ("not allowed in <X> context"); what
    passes it but is still refused (a server directive in a vhost, a per-directory one in
    the wrong kind of section) gets ap_check_cmd_context's words, with the ``>`` put back.
    """
    shown = name + (">" if name.startswith("<") else "")
    if within is None:
        return f"{name} only used in <VirtualHost>" if d.context == Ctx.VHOST else f"{name} not allowed here"
    if scope is Ctx.VHOST and d.context & Ctx.SERVER:
        return f"{shown} cannot occur within {within} section"
    if scope & Ctx.DIR and d.context & Ctx.DIR:
        return f"{shown} cannot occur within {within} section"
    return f"{name} not allowed in {within} context"


def _build(walker: _Walker, index: dict[str, Directive], state: ReadState, path: str | None,
           mods: _Modules, mpm_name: str, mpm_class: Any, modules: list[Any]) -> ServerConfig:
    from mpmd.core.modules import HookTable
    tables = {id(d): d for d in index.values() if d.field}
    server_defaults = {d.field: _default(d, walker) for d in tables.values() if not d.per_dir}
    dir_defaults = {d.field: _default(d, walker) for d in tables.values() if d.per_dir}
    server_ops = [op for op in walker.server_ops if op.directive.field]
    values = apply_ops(server_defaults, [op for op in server_ops if not op.directive.per_dir])
    dir_values = apply_ops(dir_defaults, [op for op in server_ops if op.directive.per_dir])
    values["server_root"] = state.server_root
    where = {op.directive.field: f"{op.file}:{op.line}" for op in server_ops}
    origins: dict[str, list[tuple[str, int]]] = {}
    for op in server_ops:
        if op.directive.merge is Merge.APPEND and not op.directive.per_dir:
            origins.setdefault(op.directive.field, []).append((op.file, op.line))
    where["server_root"] = state.server_root_where
    values.update(_loaded_defaults(modules, mods.mentioned, where))
    loaded = [("core_module", "static"), *((n, "static") for n in mods.registry.builtins if n != "core_module"),
              (f"mpm_{mpm_name}_module", "shared" if mods.mpm else "static"),
              *((n, "shared") for n, _ in mods.user)]
    shared = dict(server_root=state.server_root, config_file=os.path.abspath(path) if path else None,
                  defines=dict(state.defines), mpm_name=mpm_name, mpm_class=mpm_class,
                  modules=modules, loaded=loaded)
    main = ServerConfig(values=values, where=where, dir_defaults=dir_values, sections=walker.sections,
                        hooks=HookTable(modules, _with_fields_set(values, walker)), origins=origins,
                        **shared)
    vhosts = []
    for section in walker.sections:
        if section.kind == "VirtualHost":
            try:
                vhosts.append(_virtual_host(section, main, values, dir_values, where, walker, shared))
            except ConfigError as exc:
                walker.errors.append(exc)
    main.vhosts = VhostTable(main, vhosts)
    _enable_htaccess([main, *vhosts], walker, index, state, mods)
    for vhost in vhosts:
        vhost.vhosts = main.vhosts
        if not main.vhosts.is_default(vhost):
            _name_head_time_lines(vhost, walker.problems)
    return main


def _enable_htaccess(servers: list[ServerConfig], walker: _Walker, index: dict[str, Directive],
                     state: ReadState, mods: _Modules) -> None:
    """Rule 10: access files are read only when some line lets them say something."""
    if not _reads_htaccess(walker):
        return
    from mpmd.config.htaccess import LoadContext, Reader
    load = LoadContext(index, state.server_root, dict(state.defines), mods.present, walker.names)
    for server in servers:
        server.enable_htaccess(Reader(list(server.access_file_name), load))


def _with_fields_set(values: dict[str, Any], walker: _Walker) -> dict[str, Any]:
    """``values`` and, under SET_FIELDS, every field some line sets (core/modules.py), and
    every field a .htaccess file may set where some AllowOverride (or AllowOverrideList)
    lets it (Rule 10)."""
    from mpmd.core.modules import SET_FIELDS
    fields = {op.directive.field for op in walker.all_ops()}
    granted, listed = _overrides_granted(walker)
    if granted or listed:
        fields |= {d.field for d in walker.index.values()
                   if d.field and (d.override & granted or d.name.lower() in listed)}
    return {**values, SET_FIELDS: frozenset(fields)}


def _overrides_granted(walker: _Walker) -> tuple[Override, frozenset[str]]:
    """Every category some AllowOverride line grants, every name some AllowOverrideList
    line names (Rule 10): what any .htaccess file of the configuration may use."""
    granted, listed = Override.NONE, frozenset()
    for op in walker.all_ops():
        if op.directive.field == "allow_override":
            granted |= op.value.categories
        elif op.directive.field == "allow_override_list":
            listed |= op.value
    return granted, listed


def _reads_htaccess(walker: _Walker) -> bool:
    """Whether some AllowOverride or AllowOverrideList line allows anything (Rule 10)."""
    granted, listed = _overrides_granted(walker)
    return bool(granted or listed)


def _name_head_time_lines(vhost: ServerConfig, problems: list[Problem]) -> None:
    """Rule 7: what governs reading heads is the address's default server's (vhosts.py
    Rule 3), so in a vhost that is no address's default such a line has no effect."""
    for op in vhost.vhost.ops:
        why = op.directive.extra.get("no_effect_in_vhost")
        if why:
            problems.append(Problem("warn", M_NO_EFFECT, f"{op.directive.name} has no effect: {why}",
                                    op.file, op.line))


def _virtual_host(section: Section, main: ServerConfig, values: dict[str, Any],
                  dir_values: dict[str, Any], where: dict[str, str], walker: _Walker,
                  shared: dict[str, Any]) -> ServerConfig:
    """A <VirtualHost>'s own ServerConfig (model.py Rule 4): the main server's values with
    the vhost's lines over them, merged per directive as httpd's modules merge them."""
    from mpmd.core.modules import HookTable
    try:
        addrs = [parse_addr(word) for word in section.arg.split()]
    except VhostAddrError as exc:
        raise ConfigError(str(exc), section.file, section.line, "<VirtualHost>") from None
    ops = [op for op in section.ops if op.directive.field]
    own_values = _merge_vhost(values, [op for op in ops if not op.directive.per_dir])
    own_dir = _merge_vhost(dir_values, [op for op in ops if op.directive.per_dir])
    own_where = {**where, **{op.directive.field: f"{op.file}:{op.line}" for op in ops}}
    sections = [s for s in walker.sections if s.kind != "VirtualHost"] + section.sections
    return ServerConfig(values=own_values, where=own_where, dir_defaults=own_dir, sections=sections,
                        hooks=HookTable(main.modules, _with_fields_set(own_values, walker)), vhost=section,
                        vhost_addrs=addrs, **shared)


def _merge_vhost(base: dict[str, Any], ops: list[Op]) -> dict[str, Any]:
    """``base`` with a vhost's ``ops`` over it.  A repeatable directive adds the vhost's items
    after the main server's, unless its ``extra["vhost_merge"]`` says "first" (httpd's
    mod_alias tries the vhost's Alias lines first) or "own" (a vhost with its own CustomLog
    does not also write the main server's logs)."""
    out = dict(base)
    for field_name, how in {op.directive.field: op.directive.extra.get("vhost_merge")
                            for op in ops}.items():
        if how in ("first", "own"):
            out[field_name] = []
    apply_ops(out, ops)
    for field_name, how in {op.directive.field: op.directive.extra.get("vhost_merge")
                            for op in ops}.items():
        if how == "first":
            out[field_name] = [*out[field_name], *(base.get(field_name) or ())]
    return out


def _loaded_defaults(modules: list[Any], mentioned: set[str], where: dict[str, str]) -> dict[str, Any]:
    """What a built-in module named by a LoadModule line sets unless the config does (its
    ``defaults_when_loaded``): httpd's mod_status turns ExtendedStatus on in its pre_config."""
    out: dict[str, Any] = {}
    for module in modules:
        if getattr(module, "name", None) in mentioned:
            for name, value in (getattr(module, "defaults_when_loaded", None) or {}).items():
                if name not in where:
                    out[name] = value
    return out


def _default(d: Directive, walker: _Walker) -> Any:
    """A table default, with relative paths resolved like configured ones."""
    value = d.default
    if isinstance(value, list):
        return list(value)
    return walker._resolve(d, value) if value is not None else None
