"""httpd.conf parsing: logical lines -> a tree of ``Node``s, running read-time directives.

Like httpd's ap_build_config, some directives take effect *while* the file is read, in
order, because they change what is read next:

Rule 1: ``Define``/``UnDefine`` change the variables; ``${NAME}`` in any later line is
        replaced by its value (then by the environment's); an undefined name is left as
        written, with a warning (httpd AH00111).
Rule 2: ``<IfDefine [!]NAME>`` and ``<IfModule [!]name>`` keep or drop their body at
        once; a dropped body is only scanned for its matching close (httpd
        ap_soak_end_container), so directives in it are never checked.  A kept body is
        spliced into the enclosing section: conditionals are transparent to context
        checks (``LoadModule`` inside ``<IfModule>`` at top level is at top level).
Rule 3: ``Include``/``IncludeOptional`` splice in files (globs and directories relative
        to ServerRoot); a directory is read whole, subdirectories included, each level
        sorted by name, dot files too (httpd process_resource_config_nofnmatch); a
        wildcard matching a directory reads that directory.  ``ServerRoot`` and
        ``LoadModule`` run at read time, in order, so later Includes and IfModules see
        them.  Sections may not span files.
Rule 4: every other line becomes a ``Node`` with its file and line; the loader checks it
        against the directive tables once every module is loaded.
Rule 5: a file is read as bytes and decoded as UTF-8 with surrogateescape, so any bytes
        load (httpd reads bytes) and file names in it round-trip through os.fsencode.
Rule 6: an error does not stop the reading (httpd stops at the first): each is recorded in
        ``ReadState.errors`` and the next line is read, so one run names them all.  A line
        that breaks the nesting (a ``</X>`` that closes nothing, ``<X>`` never closed) ends
        the reading of its file only, keeping what was read; the files that include it go
        on.  A section line missing its ``>`` is read as if it had one.
Rule 7: a .htaccess file (``ReadState.htaccess``) keeps <IfModule>, <IfDefine> and
        <IfVersion> (httpd's OR_ALL) and ${NAME}; the other read-time directives are "not
        allowed here", as httpd says of them there.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Iterator

from mpmd.config.lexer import LexError, Line, Token, logical_lines, tokenize
from mpmd.config.model import ConfigError, Problem

MAX_INCLUDE_DEPTH = 128          # httpd AP_MAX_INCLUDE_DIR_DEPTH
VAR_RE = re.compile(r"\$\{([^}]*)\}")
M_UNDEFINED_VAR = "MPMD0513"
WILDCARD = re.compile(r"[*?\[]")


@dataclass(slots=True)
class Node:
    name: str                       # as written ("KeepAlive"; "Directory" for <Directory>)
    args: list[str]
    file: str
    line: int
    children: list["Node"] | None = None     # None: a directive; a list: a section

    @property
    def is_section(self) -> bool:
        return self.children is not None


@dataclass
class ReadState:
    """What read-time directives change; shared by every file of one load."""

    defines: dict[str, str]
    server_root: str
    server_root_where: str = "default"
    module_present: Callable[[str], bool] = lambda name: False
    load_module: Callable[[Node], None] = lambda node: None
    warn: Callable[[Problem], None] = lambda problem: None      # read-time warnings, as they occur
    files: list[str] = field(default_factory=list)
    depth: int = 0
    errors: list[ConfigError] = field(default_factory=list)     # Rule 6, in the order found
    htaccess: bool = False          # a .htaccess file: no Include, Define, LoadModule... (Rule 7)

    def fail(self, error: ConfigError) -> None:
        self.errors.append(error)


class _Cursor:
    def __init__(self, lines: Iterator[Line]) -> None:
        self._lines = lines
        self.stopped = False         # the nesting broke: the rest of the file is not read

    def next(self) -> Line | None:
        return None if self.stopped else next(self._lines, None)

    def stop(self) -> None:
        self.stopped = True


def parse_text(text: str, file: str, state: ReadState) -> list[Node]:
    """Parse one file's text; returns its top-level nodes."""
    state.files.append(file)
    return _block(_Cursor(logical_lines(text, file)), state, None, None)


def parse_file(path: str, state: ReadState) -> list[Node]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(f"Could not open configuration file {path}: {exc.strerror}") from None
    except ValueError as exc:          # a NUL byte in an Include'd name
        raise ConfigError(f"Could not open configuration file {path}: {exc}") from None
    return parse_text(data.decode("utf-8", "surrogateescape"), path, state)


def _block(cur: _Cursor, state: ReadState, opener: Node | None, within: Node | None) -> list[Node]:
    """Nodes up to the close of ``opener`` (or end of file when ``opener`` is None).

    ``within`` is the innermost enclosing section that is not a conditional: what the
    read-time directives' context checks see (Rule 2).
    """
    nodes: list[Node] = []
    while (line := cur.next()) is not None:
        token = _token(line, state)
        if token is None:
            continue
        if token.kind == "close":
            if opener is None:           # closes nothing: skipped (Rule 6)
                state.fail(ConfigError(f"</{token.name}> without matching <{token.name}> section",
                                       line.file, line.line, token.name))
                continue
            if token.name.lower() != opener.name.lower():
                state.fail(ConfigError(f"Expected </{opener.name}> but saw </{token.name}>",
                                       line.file, line.line, token.name))
                cur.stop()
            return nodes
        try:
            if token.kind == "open":
                nodes.extend(_open(token, line, cur, state, within))
                continue
            handler = READ_TIME.get(token.name.lower())
            node = Node(token.name, token.args, line.file, line.line)
            if handler is not None and state.htaccess:      # Rule 7
                raise ConfigError(f"{_canonical(token.name)} not allowed here", line.file, line.line,
                                  token.name)
            if handler is None:
                nodes.append(node)
            else:
                nodes.extend(handler(node, state, within))
        except ConfigError as exc:
            state.fail(exc)
    if opener is not None and not cur.stopped:
        state.fail(ConfigError(f"<{opener.name}> was not closed.", opener.file, opener.line, opener.name))
        cur.stop()                       # the sections around it say nothing more
    return nodes


def _token(line: Line, state: ReadState) -> Token | None:
    """The line's token; a malformed line is recorded, and read as it most likely meant."""
    try:
        return tokenize(substitute(line, state.defines, state.warn))
    except LexError as exc:
        state.fail(ConfigError(str(exc), line.file, line.line))
        return exc.token


def substitute(line: Line, defines: dict[str, str],
               warn: Callable[[Problem], None] = lambda problem: None) -> str:
    """Replace ``${NAME}`` by a Define'd value, else the environment's (Rule 1)."""
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in defines:
            return defines[name]
        if name in os.environ:
            return os.environ[name]
        # httpd only warns and keeps "${NAME}", so a later check (ServerRoot, Listen...)
        # reports the line if the text does not make sense as it stands.
        warn(Problem("warn", M_UNDEFINED_VAR, f"Config variable ${{{name}}} is not defined",
                     line.file, line.line))
        return m.group(0)
    return VAR_RE.sub(repl, line.text) if "${" in line.text else line.text


def _open(token: Token, line: Line, cur: _Cursor, state: ReadState, within: Node | None) -> list[Node]:
    node = Node(token.name, token.args, line.file, line.line, [])
    test = CONDITIONALS.get(token.name.lower())
    if test is None:
        node.children = _block(cur, state, node, node)
        return [node]
    try:
        keep = test(state, token.args, node)
    except ConfigError as exc:           # the body is skipped, the reading goes on (Rule 6)
        state.fail(exc)
        keep = False
    if keep:
        return _block(cur, state, node, within)
    _soak(cur, node, state)
    return []


def _soak(cur: _Cursor, opener: Node, state: ReadState) -> None:
    """Skip to the matching close of ``opener``, counting only same-named sections (Rule 2)."""
    depth = 1
    name = opener.name.lower()
    opening = re.compile(rf"<{re.escape(name)}[\s>]", re.I)
    while (line := cur.next()) is not None:
        text = line.text.lower()
        if opening.match(text):
            depth += 1
        elif text.startswith(f"</{name}") and text[len(name) + 2:].strip() == ">":
            depth -= 1
            if depth == 0:
                return
    state.fail(ConfigError(f"<{opener.name}> was not closed.", opener.file, opener.line, opener.name))
    cur.stop()


def _one_name(args: list[str], node: Node) -> tuple[str, bool]:
    """``[!]name``, the one argument of <IfDefine>/<IfModule>: (name, negated)."""
    if len(args) != 1:
        raise ConfigError(f"<{node.name}> takes exactly one argument", node.file, node.line, node.name)
    return args[0].lstrip("!"), args[0].startswith("!")


def _if_define(state: ReadState, args: list[str], node: Node) -> bool:
    name, negate = _one_name(args, node)
    return (name in state.defines) != negate


def _if_module(state: ReadState, args: list[str], node: Node) -> bool:
    name, negate = _one_name(args, node)
    return state.module_present(name) != negate


def _if_version(state: ReadState, args: list[str], node: Node) -> bool:
    try:
        return version_matches(args)
    except ValueError as exc:
        raise ConfigError(str(exc), node.file, node.line, node.name) from None


# The Apache httpd release whose configuration language mpmd reads: what <IfVersion> compares
# (httpd's mod_version compares its own version; mpmd is not one, so it claims this one).
APACHE_COMPAT_VERSION = (2, 4, 62)
VERSION_OPS = {"=", "==", "<", "<=", ">", ">=", "~"}
VERSION_RE = re.compile(r"\d+(?:\.\d+){0,2}")


def version_matches(args: list[str], version: tuple[int, int, int] = APACHE_COMPAT_VERSION) -> bool:
    """<IfVersion [[!]operator] version> as httpd's mod_version: ``version`` is
    major[.minor[.patch]] (missing parts are 0), compared with =, ==, <, <=, >, >=; with ``~``,
    or written as ``/regex/`` after = or alone, a regular expression searched in
    "2.4.62"; a leading ``!`` negates.  ValueError in httpd's words."""
    if not 1 <= len(args) <= 2:
        raise ValueError("<IfVersion> takes one or two arguments, a comparison operator and a version")
    op, want = (args[0], args[1]) if len(args) == 2 else ("=", args[0])
    negate = op.startswith("!")
    if negate:
        op = op[1:] or "="
    if op not in VERSION_OPS:
        raise ValueError(f"unknown comparison operator '{op}'")
    text = ".".join(map(str, version))
    regex = op == "~" or (op in ("=", "==") and len(want) > 1 and want[0] == want[-1] == "/")
    if regex:
        pattern = want if op == "~" else want[1:-1]
        try:
            found = re.search(pattern, text) is not None
        except re.error:
            raise ValueError("Regular expression could not be compiled.") from None
        return found != negate
    if not VERSION_RE.fullmatch(want):
        raise ValueError("Version appears to be invalid. It must have the format "
                         "major[.minor[.patch]] where major, minor and patch are numbers.")
    parts = [int(p) for p in want.split(".")]
    wanted = tuple(parts + [0] * (3 - len(parts)))
    result = {"=": version == wanted, "==": version == wanted, "<": version < wanted,
              "<=": version <= wanted, ">": version > wanted, ">=": version >= wanted}[op]
    return result != negate


CONDITIONALS: dict[str, Callable[[ReadState, list[str], Node], bool]] = {
    "ifdefine": _if_define,
    "ifmodule": _if_module,
    "ifversion": _if_version,
}


# --- read-time directives ---------------------------------------------------------------

def _nargs(node: Node, lo: int, hi: int, what: str) -> None:
    if not lo <= len(node.args) <= hi:
        raise ConfigError(f"{node.name} {what}", node.file, node.line, node.name)


def _top_level_only(node: Node, within: Node | None) -> None:
    """``within`` is never a conditional (Rule 2): <IfModule>/<IfDefine> do not count."""
    if within is not None:
        raise ConfigError(f"{node.name} cannot occur within <{within.name}> section",
                          node.file, node.line, node.name)


def _define(node: Node, state: ReadState, within: Node | None) -> list[Node]:
    _nargs(node, 1, 2, "takes one or two arguments, Define a variable, optionally to a value.")
    name = node.args[0]
    if ":" in name:
        raise ConfigError(f"Variable name must not contain ':': {name}", node.file, node.line, node.name)
    state.defines[name] = node.args[1] if len(node.args) > 1 else ""
    return []


def _undefine(node: Node, state: ReadState, within: Node | None) -> list[Node]:
    _nargs(node, 1, 1, "takes one argument, Undefine the existence of a variable.")
    state.defines.pop(node.args[0], None)
    return []


def _server_root(node: Node, state: ReadState, within: Node | None) -> list[Node]:
    _nargs(node, 1, 1, "takes one argument, Common directory of server-related files (logs, confs, etc.)")
    _top_level_only(node, within)
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(node.file)), node.args[0])
                            if os.path.isfile(node.file) else os.path.abspath(node.args[0]))
    if not os.path.isdir(root):
        raise ConfigError("ServerRoot must be a valid directory", node.file, node.line, node.name)
    state.server_root = root
    state.server_root_where = f"{node.file}:{node.line}"
    return []


def _load_module(node: Node, state: ReadState, within: Node | None) -> list[Node]:
    _nargs(node, 2, 2, "takes two arguments, a module name and the name of a shared object file to load it from")
    _top_level_only(node, within)
    state.load_module(node)
    return []


def _include(node: Node, state: ReadState, within: Node | None, optional: bool = False) -> list[Node]:
    _nargs(node, 1, 1, "takes one argument, Name(s) of the config file(s) to be included; fails if the wildcard does not match at least one file")
    if state.depth >= MAX_INCLUDE_DEPTH:
        raise ConfigError(f"Exceeded the maximum include directory nesting level of {MAX_INCLUDE_DEPTH}",
                          node.file, node.line, node.name)
    nodes: list[Node] = []
    state.depth += 1
    try:
        # Lazily: each file is read before the next name is looked up, as httpd does; a name
        # that cannot be read ends the Include, keeping the files read before it (Rule 6).
        for path in _include_files(node, os.path.join(state.server_root, node.args[0]), optional):
            try:
                nodes.extend(parse_file(path, state))
            except ConfigError as exc:
                state.fail(exc)
    except ConfigError as exc:
        state.fail(exc)
    finally:
        state.depth -= 1
    return nodes


def _include_optional(node: Node, state: ReadState, within: Node | None) -> list[Node]:
    return _include(node, state, within, optional=True)


def _include_files(node: Node, pattern: str, optional: bool) -> Iterator[str]:
    """The files an Include names (httpd ap_process_fnmatch_configs, Rule 3)."""
    parts = pattern.split("/")
    first = next((i for i, part in enumerate(parts) if WILDCARD.search(part)), None)
    if first is None:
        yield from _tree(node, pattern, optional, 0)
        return
    yield from _matches(node, "/".join(parts[:first]) or "/", parts[first:], optional)


def _matches(node: Node, directory: str, parts: list[str], optional: bool) -> Iterator[str]:
    """Expand ``parts`` (the first is a wildcard) under ``directory``, one component at a time."""
    wildcard, rest = parts[0], parts[1:]
    if not WILDCARD.search(wildcard):
        path = os.path.join(directory, wildcard)
        yield from (_matches(node, path, rest, optional) if rest else _tree(node, path, optional, 0))
        return
    try:
        names = _listdir(directory)
    except OSError as exc:
        if optional and isinstance(exc, FileNotFoundError):
            return
        raise ConfigError(f"Include/IncludeOptional: Could not open directory {directory}: {exc.strerror}",
                          node.file, node.line, node.name) from None
    found = [os.path.join(directory, n) for n in names if _fnmatch_period(n, wildcard)]
    if rest:      # a wildcard inside the path only matches directories
        found = [p for p in found if os.path.isdir(p)]
    if not found and not optional:
        raise ConfigError(f"Include/IncludeOptional: No matches for the wildcard '{wildcard}' in "
                          f"'{directory}', failing", node.file, node.line, node.name)
    for path in found:
        yield from (_matches(node, path, rest, optional) if rest else _tree(node, path, optional, 0))


def _tree(node: Node, path: str, optional: bool, depth: int) -> Iterator[str]:
    """``path`` itself, or every file below it when it is a directory (sorted, dot files too)."""
    if depth > MAX_INCLUDE_DEPTH:
        raise ConfigError(f"Directory {path} exceeds the maximum include directory nesting level of "
                          f"{MAX_INCLUDE_DEPTH}. You have probably a recursion somewhere.",
                          node.file, node.line, node.name)
    if os.path.isdir(path):
        try:
            names = _listdir(path)
        except OSError as exc:
            raise ConfigError(f"Could not open config directory {path}: {exc.strerror}",
                              node.file, node.line, node.name) from None
        for name in names:
            yield from _tree(node, os.path.join(path, name), optional, depth + 1)
        return
    if not os.path.exists(path):
        if optional:
            return
        raise ConfigError(f"Could not open configuration file {path}: No such file or directory",
                          node.file, node.line, node.name)
    if not os.path.isfile(path) and path != os.devnull:
        # Opening a FIFO or a socket would block or fail; httpd refuses them by name.
        raise ConfigError(f"Access to file {path} denied by server: not a regular file",
                          node.file, node.line, node.name)
    yield path


def _listdir(directory: str) -> list[str]:
    """Entry names in byte order (httpd sorts with strcmp)."""
    return sorted(os.listdir(directory), key=os.fsencode)


def _fnmatch_period(name: str, wildcard: str) -> bool:
    """fnmatch with APR_FNM_PERIOD: a leading dot is only matched by a leading dot."""
    if name.startswith(".") and not wildcard.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, wildcard)


READ_TIME: dict[str, Callable[[Node, ReadState, Node | None], list[Node]]] = {
    "define": _define,
    "undefine": _undefine,
    "serverroot": _server_root,
    "loadmodule": _load_module,
    "include": _include,
    "includeoptional": _include_optional,
}


def _canonical(name: str) -> str:
    """A read-time directive's name as its table spells it (httpd's message uses cmd->name)."""
    return next((n for n in READ_TIME_NAMES if n.lower() == name.lower()), name)


READ_TIME_NAMES = ("Define", "UnDefine", "ServerRoot", "LoadModule", "Include", "IncludeOptional")
