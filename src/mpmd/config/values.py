"""Converters: argument strings of one directive line -> a Python value.

Every ``Directive.value`` is one of these.  A converter is called with the list of argument
strings (already split and unquoted) and returns the value, or raises ``ValueError`` whose
text completes the sentence "KeepAliveTimeout: must be ...", or ``Worded`` whose text is the
whole message (httpd's own wording, printed as is).  ``render(value)`` is the
inverse used by docs and the defaults test: ``conv(render(default).split()) == default``.

Rule 1: converters are pure; they never look at files, ServerRoot or other directives.
        A converter whose ``kind`` is ``"path"`` returns the path as written and the loader
        resolves it against ServerRoot (httpd ap_server_root_relative).
Rule 2: words are matched case-insensitively (On/on/ON), values are returned canonical.
Rule 3: set-valued per-directory directives (Options, FileETag) return a ``SetChange`` and
        are merged with ``apply_set_change`` (Apache: "+X -Y" edits the inherited set; a list
        without signs replaces it; mixing the two forms is an error).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from mpmd.config.directives import OVERRIDE_WORDS, Override, override_text
from mpmd.config.model import ListenAddr


class Worded(ValueError):
    """A converter's error whose text is the whole message, in httpd's words: the loader prints
    it as is, without the "Name: " in front."""


class Converter:
    """Base: one argument, returned as written."""

    kind = "string"
    describe = "a string"

    def __call__(self, args: list[str]) -> Any:
        return args[0]

    def render(self, value: Any) -> str:
        return render(value)


class String(Converter):
    pass


class Words(Converter):
    """All arguments, as a list of strings (ITERATE / RAW_ARGS / TAKE2 ...)."""

    kind = "words"
    describe = "words"

    def __call__(self, args: list[str]) -> list[str]:
        return list(args)


class Joined(Converter):
    """All arguments joined by one space (LogLevel "warn mod_x:debug")."""

    kind = "words"
    describe = "words"

    def __call__(self, args: list[str]) -> str:
        return " ".join(args)


class LogLevel(Joined):
    """LogLevel words, each checked as httpd's set_loglevel does (core/log.py parse_log_level)."""

    describe = "level [module:level] ..."

    def __call__(self, args: list[str]) -> str:
        from mpmd.core.log import parse_log_level
        text = " ".join(args)
        try:
            parse_log_level(text)
        except ValueError as exc:
            raise Worded(str(exc)) from None
        return text


class Flag(Converter):
    kind = "flag"
    describe = "On|Off"
    WORDS = {"on": True, "off": False}

    def __call__(self, args: list[str]) -> bool:
        try:
            return self.WORDS[args[0].lower()]
        except KeyError:
            raise ValueError("must be On or Off") from None


class IntRange(Converter):
    kind = "int"

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.describe = f"integer {lo}..{hi}"

    def __call__(self, args: list[str]) -> int:
        try:
            n = int(args[0], 10)
        except ValueError:
            n = None
        if n is None or not self.lo <= n <= self.hi:
            raise ValueError(f"must be an integer between {self.lo} and {self.hi}")
        return n


INT_MAX = 2 ** 31 - 1          # httpd keeps these values in a C int


class IntAtLeast(Converter):
    """An integer >= ``lo`` (and <= INT_MAX) where httpd has no upper limit, refused in httpd's
    own words: ``text`` is its message, with ``{arg}`` for the argument as written.

    httpd reads these with atoi(), so it also takes "abc" as 0 and "10x" as 10; mpmd refuses a
    word that is not a whole decimal number, with the same message.
    """

    kind = "int"

    def __init__(self, lo: int, text: str) -> None:
        self.lo, self.text = lo, text
        self.describe = f"integer >= {lo}"

    def __call__(self, args: list[str]) -> int:
        try:
            n = int(args[0], 10)
        except ValueError:
            n = None
        if n is None or not self.lo <= n <= INT_MAX:
            raise Worded(self.text.format(arg=args[0]))
        return n


SIZE_UNITS: dict[str, int] = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


class Size(Converter):
    """Bytes: ``1073741824`` or ``1G`` / ``512K``; 0 may mean "unlimited" (the doc says)."""

    kind = "size"
    describe = "bytes"

    def __init__(self, hi: int = 2 ** 63 - 1) -> None:
        self.hi = hi

    def __call__(self, args: list[str]) -> int:
        m = re.fullmatch(r"(\d+)([kKmMgG]?)", args[0])
        n = int(m.group(1)) * SIZE_UNITS[m.group(2).lower()] if m else -1
        if not 0 <= n <= self.hi:
            raise ValueError(f"must be a size in bytes between 0 and {self.hi} (e.g. 1048576 or 1M)")
        return n

    def render(self, value: Any) -> str:
        return str(value)


# httpd ap_timeout_parameter_parse: the unit defaults to seconds.
DURATION_UNITS: dict[str, float] = {"": 1.0, "s": 1.0, "ms": 0.001, "mi": 60.0, "h": 3600.0}


class Duration(Converter):
    """Seconds as a float: ``5`` -> 5.0, ``300ms`` -> 0.3 (``s``, ``mi``, ``h`` also)."""

    kind = "duration"
    describe = "seconds (or 300ms)"

    def __call__(self, args: list[str]) -> float:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|mi|s|h)?", args[0].strip().lower())
        if not m:
            raise ValueError("must be a duration: a number of seconds, or with a unit (300ms, 2mi, 1h)")
        return float(m.group(1)) * DURATION_UNITS[m.group(2) or ""]

    def render(self, value: Any) -> str:
        seconds = float(value)
        if seconds and seconds < 1:
            return f"{round(seconds * 1000)}ms"
        return f"{seconds:g}"


class Choice(Converter):
    kind = "choice"

    def __init__(self, *names: str) -> None:
        self.names = {n.lower(): n for n in names}
        self.describe = "|".join(names)

    def __call__(self, args: list[str]) -> str:
        try:
            return self.names[args[0].lower()]
        except KeyError:
            raise ValueError(f"must be one of {', '.join(self.names.values())}") from None


class Path(Converter):
    """A file system path; relative paths are resolved against ServerRoot by the loader."""

    kind = "path"
    describe = "path"
    # Values that name something other than a file (ErrorLog stderr, piped logs).
    NOT_PATHS = ("stderr", "stdout", "syslog", "/dev/stderr", "/dev/stdout")

    def __call__(self, args: list[str]) -> str:
        if not args[0]:
            raise ValueError("must be a non-empty path")
        return args[0]

    def is_path(self, value: str) -> bool:
        return value not in self.NOT_PATHS and not value.startswith(("|", "syslog:"))


class Listen(Converter):
    """``80``, ``host:80``, ``[::1]:80``, ``*:80``, with an optional protocol word."""

    kind = "listen"
    describe = "[host:]port [protocol]"

    def __call__(self, args: list[str]) -> ListenAddr:
        text = args[0]
        m = re.fullmatch(r"(?:\[([0-9A-Fa-f:.%a-zA-Z]+)\]:|([^:\[\]]+):)?(\d+)", text)
        if not m:
            raise ValueError(f"must be [host:]port, [ipv6]:port or *:port, not {text!r}")
        port = int(m.group(3))
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {port}")
        host = m.group(1) or m.group(2) or "*"
        proto = args[1].lower() if len(args) > 1 else None
        return ListenAddr(host, port, proto)

    def render(self, value: Any) -> str:
        return str(value)


class ListenRemapArgs(Converter):
    """``ListenRemap 80 127.0.0.1:8080``: (the Listen port, the address bound for it)."""

    kind = "listen"
    describe = "port [host:]port"

    def __call__(self, args: list[str]) -> tuple[int, ListenAddr]:
        if not args[0].isdigit() or not 0 < int(args[0]) < 65536:
            raise ValueError(f"the first argument must be the port of a Listen line, not {args[0]!r}")
        return int(args[0]), Listen()(args[1:])

    def render(self, value: Any) -> str:
        return f"{value[0]} {value[1]}"


@dataclass(frozen=True, slots=True)
class SetChange:
    """One Options/FileETag line: either an absolute set, or additions and removals."""

    absolute: frozenset[str] | None
    add: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()


def apply_set_change(old: frozenset[str] | None, change: Any) -> frozenset[str]:
    """Merge a SetChange into the inherited set (``Directive.extra["combine"]``)."""
    if not isinstance(change, SetChange):
        return frozenset(change)
    if change.absolute is not None:
        return change.absolute
    return (frozenset(old or ()) | change.add) - change.remove


class WordSet(Converter):
    """Apache's Options/FileETag grammar over a fixed vocabulary; All/None are shorthands."""

    kind = "set"

    def __init__(self, label: str, names: Iterable[str], all_names: Iterable[str]) -> None:
        self.label = label
        self.names = {n.lower(): n for n in names}
        self.all = frozenset(all_names)
        self.describe = " ".join(["All", "None", *self.names.values()])

    def _expand(self, word: str) -> frozenset[str]:
        lower = word.lower()
        if lower == "all":
            return self.all
        if lower == "none":
            return frozenset()
        if lower not in self.names:
            raise ValueError(f"Illegal option {word}")
        return frozenset({self.names[lower]})

    def __call__(self, args: list[str]) -> SetChange:
        signed = [a[0] in "+-" for a in args]
        if any(signed) and not all(signed):
            raise ValueError(f"Either all {self.label} must start with + or -, or no {self.label[:-1]} may.")
        if not any(signed):
            absolute: frozenset[str] = frozenset()
            for word in args:
                absolute |= self._expand(word)
            return SetChange(absolute)
        add = frozenset().union(*(self._expand(a[1:]) for a in args if a[0] == "+"))
        remove = frozenset().union(*(self._expand(a[1:]) for a in args if a[0] == "-"))
        return SetChange(None, add, remove)

    def render(self, value: Any) -> str:
        return " ".join(sorted(value)) if value else "None"


def render(value: Any) -> str:
    """Apache spelling of a value, for docs and ``-L``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "On" if value else "Off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (frozenset, set)):
        return " ".join(sorted(value))
    if isinstance(value, (list, tuple)):
        return " ".join(render(v) for v in value)
    return str(value)


# Short names used by the directive tables.
string = String()
words = Words()
joined = Joined()
log_level = LogLevel()
flag = Flag()
size = Size()
duration = Duration()
path = Path()
listen_addr = Listen()
listen_remap = ListenRemapArgs()


def int_range(lo: int, hi: int) -> IntRange:
    return IntRange(lo, hi)


def int_at_least(lo: int, text: str) -> IntAtLeast:
    return IntAtLeast(lo, text)


def choice(*names: str) -> Choice:
    return Choice(*names)


def word_set(label: str, names: Iterable[str], all_names: Iterable[str]) -> WordSet:
    return WordSet(label, names, all_names)


class ExistingDir(Path):
    """A directory that must exist when the config is read (httpd's DefaultRuntimeDir); the
    loader resolves a relative one against ServerRoot, then calls ``check_resolved``."""

    describe = "directory"

    def __init__(self, message: str) -> None:
        self.message = message

    def check_resolved(self, value: str) -> None:
        import os
        if not os.path.isdir(value):
            raise Worded(self.message)


class TraceEnable(Converter):
    """TraceEnable on|off (httpd's words for anything else); ``extended`` (a TRACE with a
    body, echoed) is refused: mpmd does not echo request bodies."""

    kind = "choice"
    describe = "On|Off"

    def __call__(self, args: list[str]) -> str:
        word = args[0].lower()
        if word in ("on", "off"):
            return word.capitalize()
        if word == "extended":
            raise Worded("TraceEnable extended is refused: mpmd does not echo a TRACE's body "
                         "(a TRACE with a body gets 413, as with On); use On or Off")
        raise Worded("TraceEnable must be one of 'on', 'off', or 'extended'")


class ErrorLogFormatText(Converter):
    """ErrorLogFormat's main format, checked as httpd checks it (core/log.py Rule 6); the
    once-per-connection and once-per-request formats are refused."""

    kind = "string"
    describe = "format"

    def __call__(self, args: list[str]) -> str:
        from mpmd.core.log import parse_error_log_format
        if len(args) == 2:
            if args[0].lower() in ("connection", "request"):
                raise Worded(f"ErrorLogFormat {args[0]} is refused: mpmd writes no "
                             "once-per-connection or once-per-request lines; give the main "
                             "format only")
            raise Worded("ErrorLogFormat type must be one of request, connection")
        try:
            parse_error_log_format(args[0])
        except ValueError as exc:
            raise Worded(str(exc)) from None
        return args[0]


trace_enable = TraceEnable()
error_log_format = ErrorLogFormatText()


@dataclass(frozen=True)
class Overrides:
    """An AllowOverride line: the categories a .htaccess file may use (directives.Override)
    and, for Options, which options it may set (None: all of them)."""

    categories: Override
    options: frozenset[str] | None = None

    def __str__(self) -> str:
        return override_text(self.categories)


OPTION_NAMES = {n.lower(): n for n in ("Indexes", "Includes", "IncludesNOEXEC", "FollowSymLinks",
                                       "SymLinksIfOwnerMatch", "ExecCGI", "MultiViews")}
# httpd's OPT_ALL: what "AllowOverride Options" (no list) lets Options set.
OPTIONS_ALL = frozenset({"Indexes", "Includes", "IncludesNOEXEC", "FollowSymLinks", "ExecCGI"})


class AllowOverride(Converter):
    """AllowOverride All|None|directive-type[=options] ... as httpd's set_override: the words
    are read in order, None and All reset what came before; ``Options=list`` restricts the
    options a .htaccess ``Options`` line may name.  ``Nonfatal=...`` is refused: it turns
    errors in .htaccess files into ignored lines."""

    kind = "overrides"
    describe = "All|None|AuthConfig|FileInfo|Indexes|Limit|Options[=option,...]"

    def __call__(self, args: list[str]) -> Overrides:
        categories = Override.NONE
        options: frozenset[str] | None = None
        for word in args:
            key, eq, value = word.partition("=")
            key = key.lower()
            if key == "nonfatal":
                raise Worded(f"AllowOverride {word} is refused: mpmd does not ignore a .htaccess "
                             "line it cannot honour (every error in a .htaccess file is a 500)")
            if key not in OVERRIDE_WORDS or (eq and key != "options"):
                raise Worded(f"Illegal override option {word}")
            flag = OVERRIDE_WORDS[key]
            if key in ("none", "all"):
                categories, options = flag, None
                continue
            categories |= flag
            if key == "options":
                options = self._options(value) if eq else OPTIONS_ALL
        return Overrides(categories, options)

    @staticmethod
    def _options(text: str) -> frozenset[str]:
        out: set[str] = set()
        for word in text.split(","):
            if word.lower() == "all":
                out |= OPTIONS_ALL
            elif word.lower() in OPTION_NAMES:
                out.add(OPTION_NAMES[word.lower()])
            elif word.lower() != "none":
                raise Worded(f"Illegal option {word}")
        return frozenset(out)

    def render(self, value: Any) -> str:
        return str(value)


class NameList(Converter):
    """AllowOverrideList None | directive ...: directive names, matched case-insensitively."""

    kind = "names"
    describe = "None|directive [directive] ..."

    def __call__(self, args: list[str]) -> frozenset[str]:
        if len(args) == 1 and args[0].lower() == "none":
            return frozenset()
        return frozenset(a.lower() for a in args)

    def render(self, value: Any) -> str:
        return " ".join(sorted(value)) or "None"


allow_override = AllowOverride()
allow_override_list = NameList()
