"""Core's directive table (httpd core.c core_cmds + the shared LISTEN_COMMANDS).

Rule 1: each directive is declared here once; MPMs and modules do not re-declare the
        shared ones (Listen, ListenBacklog, MaxConnectionsPerChild, GracefulShutdownTimeout).
Rule 2: entries with ``extra["read_time"]`` run while the file is read (config/parser.py);
        entries with ``extra["section"]`` are containers whose body has context ``inner``.
Rule 3: per-directory entries (context includes DIR) are stored in DirConfig and merged
        by ``ServerConfig.dir_config``; set at server level they are the defaults.
Also: the registries the loader needs (built-in modules, MPMs), so that mpmd.config itself
never imports mpmd.modules or mpmd.mpm.
"""

from __future__ import annotations

from typing import Any

from mpmd.config import values as v
from mpmd.config.directives import Args, Ctx, Directive, Merge, Override
from mpmd.core.errordoc import error_document_value

SERVER = Ctx.SERVER
SRV = Ctx.SERVER | Ctx.VHOST
ANY = Ctx.ANY
GiB = 1024 ** 3

OPTIONS = v.word_set("Options", ["Indexes", "Includes", "IncludesNOEXEC", "FollowSymLinks",
                                 "SymLinksIfOwnerMatch", "ExecCGI", "MultiViews"],
                     ["Indexes", "Includes", "FollowSymLinks", "SymLinksIfOwnerMatch", "ExecCGI"])
FILE_ETAG = v.word_set("FileETag components", ["INode", "MTime", "Size", "Digest"],
                       ["INode", "MTime", "Size"])
COMBINE_SET = {"combine": v.apply_set_change}


def no_effect(values: set[str] | None, why: str) -> dict[str, Any]:
    """``extra`` of a directive accepted with no effect (for ``values``, or any): -t names
    each such line (config/loader.py Rule 7)."""
    return {"no_effect": (frozenset(values) if values is not None else None, why)}


# What governs reading a request's head, before its vhost is known (config/vhosts.py Rule 3).
HEAD_TIME = {"no_effect_in_vhost": "it governs reading request heads, which is done before the "
                                   "Host names a vhost: the address's default vhost's value "
                                   "applies, and this vhost is no address's default"}


def _d(name: str, args: Args, context: Ctx, value: Any, default: Any, doc: str,
       field: str | None = None, **kw: Any) -> Directive:
    return Directive(name, args, context, value, default, field or _snake(name), doc, **kw)


def _snake(name: str) -> str:
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i and (not name[i - 1].isupper() or
                                  (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(c.lower())
    return "".join(out)


def _section(name: str, context: Ctx, inner: Ctx, doc: str, regex: bool = False,
             override: Override = Override.NONE) -> Directive:
    return Directive(f"<{name}>", Args.TAKE1 if name != "VirtualHost" else Args.ITERATE, context,
                     v.words, None, "", doc, syntax=f"<{name} {'regex' if regex else 'arg'}> ... </{name}>",
                     extra={"section": name, "inner": inner, "regex": regex}, override=override)


def _if_section(name: str, args: Args, doc: str, syntax: str) -> Directive:
    return Directive(f"<{name}>", args, SRV | Ctx.DIR, v.words, None, "", doc, syntax=syntax,
                     extra={"section": name, "inner": Ctx.DIRECTORY, "regex": False},
                     override=Override.ALL)


def _read_time(name: str, args: Args, context: Ctx, doc: str, syntax: str,
               override: Override = Override.NONE) -> Directive:
    return Directive(name, args, context, v.words, None, "", doc, syntax=syntax,
                     extra={"read_time": True}, override=override)


DIRECTIVES: list[Directive] = [
    # read-time (config/parser.py)
    _read_time("ServerRoot", Args.TAKE1, SERVER, "Common directory of server-related files (logs, confs, etc.); "
               "relative Include and path directives are resolved against it.", "ServerRoot directory"),
    _read_time("Define", Args.TAKE12, ANY, "Define a variable, optionally to a value; use it as ${NAME}.",
               "Define NAME [value]"),
    _read_time("UnDefine", Args.TAKE1, ANY, "Undefine the existence of a variable.", "UnDefine NAME"),
    _read_time("Include", Args.TAKE1, ANY, "Include config files (wildcards allowed); fails if nothing matches.",
               "Include file-path|directory-path|wildcard"),
    _read_time("IncludeOptional", Args.TAKE1, ANY, "Include config files; silently ignores no match.",
               "IncludeOptional file-path|directory-path|wildcard"),
    _read_time("LoadModule", Args.TAKE2, SERVER, "Load a module: an MPM or built-in by its httpd name "
               "(any path ending in .so, which need not exist: Apache's lines load mpmd's module "
               "of that name, and a name mpmd has no module for is an error), or a Python module "
               "as package.module:attr or package.module.attr (a dotted path that is itself a "
               "module is used as one).",
               "LoadModule module_name modules/mod_x.so|package.module:attr|package.module.attr"),
    _read_time("<IfModule>", Args.TAKE1, ANY, "Keep the body only if the module is (or, with !, is not) loaded.",
               "<IfModule [!]module> ... </IfModule>", override=Override.ALL),
    _read_time("<IfDefine>", Args.TAKE1, ANY, "Keep the body only if NAME is (or, with !, is not) defined.",
               "<IfDefine [!]NAME> ... </IfDefine>", override=Override.ALL),
    _read_time("<IfVersion>", Args.TAKE12, ANY, "Keep the body only if the Apache version mpmd reads "
               "configs of (2.4.62) compares true: =, <, <=, >, >= against major[.minor[.patch]] "
               "(missing parts are 0), ~ or /regex/ for a regular expression, ! to negate.",
               "<IfVersion [[!]operator] version> ... </IfVersion>", override=Override.ALL),
    # sections
    _section("VirtualHost", SERVER, Ctx.VHOST, "Directives that apply to one virtual host (parsed and stored)."),
    _section("Directory", SRV, Ctx.DIRECTORY, "Directives that apply to a directory and its subdirectories."),
    _section("DirectoryMatch", SRV, Ctx.DIRECTORY, "Like <Directory>, matching a regular expression.", True),
    # <Files> may nest in <Files> (httpd accepts it; the inner one never applies: config/model.py)
    _section("Files", SRV | Ctx.DIRECTORY | Ctx.FILES, Ctx.FILES,
             "Directives that apply to files whose base name matches a glob.", override=Override.ALL),
    _section("FilesMatch", SRV | Ctx.DIRECTORY | Ctx.FILES, Ctx.FILES,
             "Like <Files>, matching a regular expression.", True, override=Override.ALL),
    _section("Location", SRV, Ctx.LOCATION, "Directives that apply to URL paths under a prefix."),
    _section("LocationMatch", SRV, Ctx.LOCATION, "Like <Location>, matching a regular expression.", True),
    # <If> sections (config/model.py Rule 5; the expression language is core/expr.py)
    _if_section("If", Args.TAKE1, "Directives that apply when an ap_expr expression is true for the request.",
                '<If "expression"> ... </If>'),
    _if_section("ElseIf", Args.TAKE1, "After <If> or <ElseIf>: applies when they did not and its expression is true.",
                '<ElseIf "expression"> ... </ElseIf>'),
    _if_section("Else", Args.NO_ARGS, "After <If> or <ElseIf>: applies when none of them did.",
                "<Else> ... </Else>"),
    # listening (httpd LISTEN_COMMANDS, shared by every MPM)
    _d("Listen", Args.TAKE12, SERVER, v.listen_addr, [], "An address and port to listen on (repeatable).",
       merge=Merge.APPEND, syntax="Listen [host:]port [protocol]"),
    _d("ListenRemap", Args.TAKE2, SERVER, v.listen_remap, [],
       "Bind another address for every Listen on a port, and take its connections as that "
       "port's (virtual host selection, TLS, SERVER_PORT), as a container's published port: "
       "a configuration runs on other ports without being edited (mpmd -C 'ListenRemap 80 "
       "127.0.0.1:8080').", merge=Merge.APPEND, syntax="ListenRemap port [host:]port"),
    _d("ListenBacklog", Args.TAKE1, SERVER, v.int_at_least(1, "ListenBacklog must be > 0"), 511,
       "Length of the pending connections queue (the kernel caps it at net.core.somaxconn)."),
    _d("MaxConnectionsPerChild", Args.TAKE1, SERVER, v.int_range(0, 2 ** 31 - 1), 0,
       "Connections a child serves before it exits (0 = no limit).", aliases=("MaxRequestsPerChild",)),
    _d("GracefulShutdownTimeout", Args.TAKE1, SERVER, v.duration, 0.0,
       "Seconds a graceful stop waits for requests in progress (0 = no limit)."),
    _d("GracefulStopDelay", Args.TAKE1, SERVER, v.duration, 0.0,
       "Seconds a stop (graceful-stop, TERM) keeps serving before it drains, the "
       "server-health handler answering 503 meanwhile, so that load balancers take the "
       "server out first (0 = drain at once).", syntax="GracefulStopDelay seconds"),
    _d("StuckRequestTimeout", Args.TAKE1, SERVER, v.duration, 0.0,
       "Seconds a request may run, from its parsed head to the end of its answer, before it "
       "is stuck: logged once, with its request line, client and duration, and shown on the "
       "server-status page (0 = off).", syntax="StuckRequestTimeout seconds"),
    _d("StuckRequestAction", Args.TAKE1, SERVER, v.choice("log", "replace"), "log",
       "What a stuck request gets: log (the error-log line), or replace (prefork only: the "
       "master also kills the request's child and a fresh child takes its slot at once, as "
       "gunicorn's worker timeout).", syntax="StuckRequestAction log|replace"),
    # server identity, processes and files
    _d("ServerName", Args.TAKE1, SRV, v.string, None, "Host name (and port) the server uses to identify itself."),
    _d("ServerAdmin", Args.TAKE1, SRV, v.string, None, "E-mail address shown in server-generated pages."),
    _d("ServerAlias", Args.ITERATE, Ctx.VHOST, v.words, [], "Other host names of a virtual host "
       "(wildcards * and ?); repeatable.", merge=Merge.APPEND),
    _d("DocumentRoot", Args.TAKE1, SRV, v.path, "htdocs", "Directory that URL paths are mapped to."),
    _d("PidFile", Args.TAKE1, SERVER, v.path, "logs/mpmd.pid", "File the master writes its process id to."),
    _d("ErrorLog", Args.TAKE1, SRV, v.path, "stderr", "Where the error log goes: a path, stderr, "
       "syslog[:facility[:tag]], or a piped program \"|cmd\" (\"|$cmd\" through the shell)."),
    _d("LogLevel", Args.ITERATE, SRV, v.log_level, "warn", "Verbosity of the error log (emerg..debug, "
       "trace1..8), and per module as module:level (e.g. authz_core:debug).",
       syntax="LogLevel [module:]level [module:level] ..."),
    _d("User", Args.TAKE1, SERVER, v.string, None, "User the children run as (when started as root)."),
    _d("Group", Args.TAKE1, SERVER, v.string, None, "Group the children run as (when started as root)."),
    _d("Mutex", Args.ITERATE, SERVER, v.words, None, "Accepted for compatibility; mpmd chooses its own locks.",
       extra=no_effect(None, "mpmd chooses its own locks")),
    _d("AcceptFilter", Args.TAKE2, SERVER, v.words, ["http", "data"],
       "AcceptFilter http data|none: 'data' defers accept until the client sends (TCP_DEFER_ACCEPT)."),
    _d("HostnameLookups", Args.TAKE1, ANY, v.choice("On", "Off", "Double"), "Off",
       "Off: client host names are never looked up (On and Double are named by -t).",
       extra=no_effect({"on", "double"}, "client host names are never looked up (as Off)")),
    _d("UseCanonicalName", Args.TAKE1, ANY, v.choice("On", "Off", "DNS"), "Off",
       "Off: self-referential URLs use the client's Host (On and DNS are named by -t).",
       extra=no_effect({"on", "dns"}, "self-referential URLs use the client's Host (as Off)")),
    _d("ServerTokens", Args.TAKE1, SERVER, v.choice("Full", "OS", "Minimal", "Minor", "Major", "Prod"), "Full",
       "How much the Server header tells (Prod = product name only)."),
    _d("ServerSignature", Args.TAKE1, ANY, v.choice("On", "Off", "EMail"), "Off",
       "Footer line on the pages the server makes (error pages, directory listings): On names "
       "the server (as ServerTokens), the host and port; EMail links it to ServerAdmin.",
       override=Override.ALL),
    _d("TraceEnable", Args.TAKE1, SRV, v.trace_enable, "On",
       "On: a TRACE request is answered with the request it carried (200, message/http), as "
       "httpd, whatever its URL; a TRACE with a body gets 413.  Off: 405 (with an empty Allow, "
       "as httpd).  extended is refused.", syntax="TraceEnable On|Off"),
    _d("ErrorLogFormat", Args.TAKE12, SRV, v.error_log_format, None,
       "The error log's line shape, as httpd's: %t %{u}t %{cu}t %l %m %M %P %T %F %E, and for a "
       "request's lines %a %A %L %{name}i %{name}e %{name}n %k %v %V; %-x logs \"-\" for an empty "
       "item, %7x only at debug; a field with an empty item is left out ([client\\ %a]).",
       syntax="ErrorLogFormat format"),
    _d("DefaultRuntimeDir", Args.TAKE1, SERVER,
       v.ExistingDir("DefaultRuntimeDir must be a valid directory, absolute or relative to ServerRoot"),
       None, "Directory for run-time files (httpd's scoreboard file, lock files, sockets); it must "
       "exist.  mpmd keeps none: its scoreboard and locks are in memory and PidFile is "
       "relative to ServerRoot, as in httpd, so -t names the line.",
       extra=no_effect(None, "mpmd keeps no run-time files (its scoreboard and locks are in "
                             "memory; PidFile is relative to ServerRoot, as in httpd)")),
    _d("AccessFileName", Args.ITERATE, SRV, v.words, [".htaccess"],
       "Names of the per-directory configuration files read where AllowOverride lets them "
       "be; the first that exists in a directory is read.", syntax="AccessFileName filename ..."),
    _d("ErrorDocument", Args.TAKE2, ANY, error_document_value, [],
       "What the server answers instead of its own error page: a local URL (internal "
       "redirect), a full URL (302), a text, or default.", merge=Merge.APPEND,
       syntax="ErrorDocument error-code document", override=Override.FILEINFO),
    # connections
    _d("Timeout", Args.TAKE1, SRV, v.duration, 60.0, "Seconds to wait for a client to send or receive data "
       "(in a vhost: for its requests' bodies and answers; heads are read with the address's "
       "default vhost's)."),
    _d("KeepAlive", Args.FLAG, SRV, v.flag, True, "Allow persistent connections."),
    _d("KeepAliveTimeout", Args.TAKE1, SRV, v.duration, 5.0,
       "Seconds (or 300ms) to wait for the next request on a persistent connection.", extra=HEAD_TIME),
    _d("MaxKeepAliveRequests", Args.TAKE1, SRV, v.int_range(0, 2 ** 31 - 1), 100,
       "Requests served on one persistent connection (0 = unlimited)."),
    # request limits
    # httpd core.c: any non-negative int, its messages word for word ("Fieldsize" is httpd's).
    # 0 is a limit of 0 bytes for the line and a field (every request is refused), "no limit"
    # for the number of fields (http/limits.py).
    _d("LimitRequestLine", Args.TAKE1, SRV,
       v.int_at_least(0, 'LimitRequestLine "{arg}" must be a non-negative integer'), 8190,
       "Longest request line (method, target and version, without CRLF), in bytes; as in httpd, "
       "one byte more still passes, and 0 refuses every request.", extra=HEAD_TIME),
    _d("LimitRequestFieldSize", Args.TAKE1, SRV,
       v.int_at_least(0, 'LimitRequestFieldsize "{arg}" must be a non-negative integer'), 8190,
       "Longest request header field line (\"Name: value\", without CRLF), in bytes; as in "
       "httpd, one byte more still passes, and 0 refuses any field.", extra=HEAD_TIME),
    _d("LimitRequestFields", Args.TAKE1, SRV,
       v.int_at_least(0, 'LimitRequestFields "{arg}" must be a non-negative integer (0 = no limit)'),
       100, "Most request header fields (0 = unlimited).", extra=HEAD_TIME),
    _d("LimitRequestBody", Args.TAKE1, ANY, v.size, GiB, "Largest request body, in bytes (0 = unlimited).",
       override=Override.ALL),
    # per directory
    _d("Options", Args.ITERATE, ANY, OPTIONS, frozenset({"FollowSymLinks"}),
       "Features enabled in a directory; +X/-Y edit the inherited set.", extra=COMBINE_SET,
       syntax="Options [+|-]option [[+|-]option] ...", override=Override.OPTIONS),
    _d("AllowOverride", Args.ITERATE, Ctx.DIRECTORY, v.allow_override, v.Overrides(Override.NONE),
       "Which directive categories the .htaccess files of the directory (and below) may use: "
       "All, None, or AuthConfig, FileInfo, Indexes, Limit, Options[=option,...] "
       "(docs/htaccess.md).  Only in <Directory> without a regular expression.",
       syntax="AllowOverride All|None|directive-type[=option,...] ..."),
    _d("AllowOverrideList", Args.ITERATE, Ctx.DIRECTORY, v.allow_override_list, frozenset(),
       "Directives the .htaccess files of the directory may use whatever AllowOverride says "
       "(None: only AllowOverride's).", syntax="AllowOverrideList None|directive [directive] ..."),
    _d("SetHandler", Args.TAKE1, ANY, v.string, None, "Handler for every file in the section (e.g. server-status).",
       override=Override.FILEINFO),
    _d("EnableSendfile", Args.FLAG, ANY, v.flag, False, "Send static files with sendfile(2).",
       override=Override.FILEINFO),
    _d("EnableMMAP", Args.FLAG, ANY, v.flag, False, "Read files through mmap(2) to send "
       "them: mpmd never does, so Off is what it does and On is named by -t.",
       field="enable_mmap", extra=no_effect({"true"}, "mpmd reads files without mmap(2) (as Off)"),
       override=Override.FILEINFO),
    _d("FileETag", Args.ITERATE, ANY, FILE_ETAG, frozenset({"MTime", "Size"}),
       "File attributes used to build the ETag of static files.", field="file_etag", extra=COMBINE_SET,
       override=Override.FILEINFO),
]


def builtin_modules() -> dict[str, str]:
    """Built-in module name -> "package.module:Class" (always loaded)."""
    from mpmd.modules import BUILTIN_MODULES
    return dict(BUILTIN_MODULES)


def load_object(spec: str) -> Any:
    from mpmd.modules import load_module_class
    return load_module_class(spec)


def mpm_registry() -> tuple[dict[str, str], str, Any]:
    """(LoadModule name -> MPM name, default MPM, load_mpm_class)."""
    from mpmd.mpm import DEFAULT_MPM, MPM_MODULES, load_mpm_class
    return dict(MPM_MODULES), DEFAULT_MPM, load_mpm_class
