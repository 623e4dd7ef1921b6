"""The ``mpmd`` command line, with httpd's flags.

  mpmd [-f FILE] [-d ROOT] [-D NAME]... [-C DIRECTIVE]... [-c DIRECTIVE]... [-b ADDR]...
       [-t | -S | -V | -v | -M | -L | -k ACTION] [-X] [--ready-file PATH] [package.module:app]

Rule 1: without ``-f`` the embedded config (src/mpmd/conf/embedded.conf) is used, and the
        CLI defines ``MPMD_DEMO`` (the bundled demo directory) for it; ``MPMD_RUNDIR`` (the
        temp dir, for PidFile) is always defined.  Config errors print httpd's message, every
        error of the config in one run, and exit 1; the server does not start.
Rule 2: ``-t`` prints the cross-check warnings, then "Syntax OK" (on stderr, as httpd);
        warnings found while reading (an undefined ${NAME}) are printed as they are found,
        whatever the command.
Rule 3: stay light: nothing here imports the MPMs or the HTTP core; running the server
        (``mpmd.supervisor.master.serve``) and ``-k`` (``mpmd.supervisor.signals.send_action``) are
        imported only when used, so ``mpmd -t`` is quick.
Rule 4: the embedded config listens on 127.0.0.1:8080 unless the command line gives an
        address: each ``-b ADDR`` (gunicorn's flag) is a ``Listen ADDR`` line, and so is a
        Listen in ``-C``/``-c``; either defines ``MPMD_LISTEN_GIVEN``, which drops the default
        (a Listen beside it would still try 8080).  With ``-f`` the file's Listen lines are the
        user's: ``-b`` is refused there, and ``-C 'Listen ...'`` adds one, as in httpd.
Rule 5: ``package.module:app`` (gunicorn's and uvicorn's shortcut) is imported once in a
        throwaway process (modules/app_probe.py) to learn whether it is ASGI (a coroutine
        function, or its ``__call__`` is one) or WSGI; it is then mounted at / with ASGIApp or
        WSGIApp, the current directory on WSGIPythonPath.  One that cannot be imported stops
        ``-t`` and start-up with the import error, naming the argument.
Rule 6: ``-k start`` detaches, as httpd's does (supervisor/daemon.py): the command returns once
        the server is up (exit 0) or could not start (its error on stderr, exit 1), and so does
        ``-k restart``/``graceful`` with no server running; ``-D FOREGROUND`` (httpd's) and
        ``-X`` keep it in front.  Plain ``mpmd`` and ``mpmd -f FILE`` always stay in front (httpd
        detaches there too; a quick start that returns to the prompt would be a trap).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import mpmd

PACKAGE_DIR = Path(__file__).resolve().parent
EMBEDDED_CONF = PACKAGE_DIR / "conf" / "embedded.conf"
DEMO_DIR = PACKAGE_DIR / "demo"
K_ACTIONS = ("start", "stop", "restart", "graceful", "graceful-stop")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mpmd", description="A web server with Apache's MPMs, configured like httpd.")
    p.add_argument("-f", dest="config_file", metavar="FILE", help="configuration file (default: the embedded demo)")
    p.add_argument("-d", dest="server_root", metavar="ROOT", help="initial ServerRoot")
    p.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME", help="define NAME for <IfDefine>")
    p.add_argument("-C", dest="pre", action="append", default=[], metavar="DIRECTIVE",
                   help="process DIRECTIVE before reading the config file")
    p.add_argument("-c", dest="post", action="append", default=[], metavar="DIRECTIVE",
                   help="process DIRECTIVE after reading the config file")
    p.add_argument("-b", "--bind", dest="bind", action="append", default=[], metavar="ADDR",
                   type=bind_address,
                   help="listen on ADDR instead of the embedded config's 127.0.0.1:8080 "
                        "(Listen's syntax: 8000, 127.0.0.1:8000, [::1]:8000; repeatable; "
                        "with -f, set Listen in the file instead)")
    p.add_argument("-t", dest="test", action="store_true", help="check the configuration and exit")
    p.add_argument("-V", dest="version_full", action="store_true", help="show version and build settings")
    p.add_argument("-v", dest="version", action="store_true", help="show version")
    p.add_argument("-S", dest="dump_vhosts", action="store_true",
                   help="show the virtual host settings (as apachectl -S)")
    p.add_argument("-M", dest="list_modules", action="store_true", help="list loaded modules")
    p.add_argument("-L", dest="list_directives", action="store_true", help="list directives")
    p.add_argument("-X", dest="single_process", action="store_true", help="debug: one process, foreground")
    p.add_argument("-k", dest="action", choices=K_ACTIONS, help="signal a running server")
    p.add_argument("--ready-file", dest="ready_file", metavar="PATH",
                   help="write the bound addresses and pid here once listening (tests)")
    p.add_argument("app", nargs="?", metavar="package.module:app",
                   help="a WSGI or ASGI application to serve at / (imported from the current "
                        "directory), with the embedded config unless -f is given")
    return p


def bind_address(text: str) -> str:
    """-b ADDR: checked as Listen checks its address, so a typo is named as -b's."""
    from mpmd.config.values import listen_addr
    try:
        listen_addr([text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    opts = parser.parse_args(argv)
    opts.embedded = opts.config_file is None
    if opts.bind and not opts.embedded:
        parser.error("-b/--bind sets the embedded config's address; with -f, set Listen in "
                     "the file (or add one with -C 'Listen ADDR')")
    opts.config_file = config_path(opts.config_file, opts.server_root)
    builtin = [f"MPMD_RUNDIR={tempfile.gettempdir()}"] + ([f"MPMD_DEMO={DEMO_DIR}"] if opts.embedded else [])
    opts.pre = [*(f"Listen {addr}" for addr in opts.bind), *opts.pre]
    if opts.embedded and any(names_listen(d) for d in (*opts.pre, *opts.post)):
        builtin.append("MPMD_LISTEN_GIVEN")          # Rule 4
    opts.defines = [*builtin, *opts.defines]
    # Rule 6: -k start detaches; -D FOREGROUND and -X keep it in front
    opts.foreground = "FOREGROUND" in opts.defines or opts.single_process
    opts.detach = False
    opts.load_config = lambda: load(opts)
    return opts


def names_listen(directive: str) -> bool:
    words = directive.split(None, 1)
    return bool(words) and words[0].lower() == "listen"


def add_app(opts: argparse.Namespace) -> str | None:
    """Mount the command line's app at / (Rule 5); the error text when it cannot be."""
    from mpmd.modules.app_probe import load_object, probe
    spec, cwd = opts.app, os.getcwd()
    if ":" not in spec:
        return f"mpmd: {spec}: the application must be given as package.module:callable"
    outcome = probe([lambda: load_object(spec)], [cwd])[0]
    if outcome.error is not None:
        return f"mpmd: cannot load the application {spec} (from {cwd}): {outcome.error}"
    directive = "ASGIApp" if outcome.interface == "asgi" else "WSGIApp"
    opts.post = [*opts.post, f'WSGIPythonPath "{cwd}"', f"{directive} / {spec}"]
    return None


def config_path(config_file: str | None, server_root: str | None) -> str:
    """-f FILE, absolute; a relative FILE is under -d ROOT when given (httpd), else the cwd."""
    if not config_file:
        return str(EMBEDDED_CONF)
    if server_root and not os.path.isabs(config_file):
        return os.path.join(os.path.abspath(server_root), config_file)
    return os.path.abspath(config_file)


def load(opts: argparse.Namespace) -> Any:
    from mpmd.config.loader import load_config
    return load_config(opts.config_file, defines=opts.defines, pre=opts.pre, post=opts.post,
                       server_root=opts.server_root, warn=print_read_warning)


def print_read_warning(problem: Any) -> None:
    """A warning found while reading (an undefined ${NAME}): on stderr at once, as httpd
    prints AH00111, so it is seen before a later line's error and by every command."""
    print(str(problem), file=sys.stderr)


def version_text() -> str:
    return f"Server version: {mpmd.SERVER_SOFTWARE}/{mpmd.__version__}"


def full_version_text(mpm_name: str, server_root: str, opts: argparse.Namespace) -> str:
    import httptools
    from mpmd.config.loader import Registry
    mpm = Registry().mpm_class(mpm_name)
    threaded = bool(getattr(mpm, "threaded", False))
    forked = bool(getattr(mpm, "forked", True))
    return "\n".join([
        version_text(),
        f"Server built:   Python {platform.python_version()} ({platform.python_implementation()})",
        f"Server MPM:     {mpm_name}",
        f"  threaded:     {'yes' if threaded else 'no'}",
        f"    forked:     {'yes (variable process count)' if forked else 'no'}",
        f"Architecture:   {platform.machine()}",
        f"Python version: {platform.python_version()}",
        f"httptools version: {getattr(httptools, '__version__', 'unknown')}",
        f" -D HTTPD_ROOT=\"{server_root}\"",
        f" -D SERVER_CONFIG_FILE=\"{opts.config_file}\"",
        f"SERVER_CONFIG_FILE={opts.config_file}",
    ]) + "\n"


def modules_text(cfg: Any) -> str:
    return "Loaded Modules:\n" + "".join(f" {name} ({kind})\n" for name, kind in cfg.loaded)


def do_test(cfg: Any, opts: argparse.Namespace) -> int:
    for problem in cfg.problems:
        print(str(problem), file=sys.stderr)
    print("Syntax OK", file=sys.stderr)
    return 0


def do_version(opts: argparse.Namespace) -> int:
    """-V as httpd: the config is read (for the MPM) but not processed, so a misspelled
    directive does not hide the build settings; a file that cannot be read is reported
    first, the settings still follow, and the exit status is 1."""
    from mpmd.config.loader import read_only
    mpm_name, server_root, error = read_only(opts.config_file, defines=opts.defines, pre=opts.pre,
                                             post=opts.post, server_root=opts.server_root)
    if error is not None:
        print_config_error(error)
    sys.stdout.write(full_version_text(mpm_name, server_root, opts))
    return 0 if error is None else 1


def print_config_error(exc: Any) -> None:
    """The error as httpd prints it; every error of the load, then their count, when there
    are several (config/loader.py Rule 8)."""
    from mpmd.config.model import ConfigErrors
    if isinstance(exc, ConfigErrors):
        print("\n".join(exc.lines(error_text)), file=sys.stderr)
    else:
        print(error_text(exc), file=sys.stderr)


def error_text(exc: Any) -> str:
    from mpmd.config.model import CheckError
    bare = exc.file is not None or isinstance(exc, CheckError)
    return str(exc) if bare else f"mpmd: {exc}"


def do_vhosts(cfg: Any, opts: argparse.Namespace) -> int:
    from mpmd.config.vhosts import vhost_report
    sys.stdout.write(vhost_report(cfg))
    return 0


def do_modules(cfg: Any, opts: argparse.Namespace) -> int:
    sys.stdout.write(modules_text(cfg))
    return 0


def do_action(cfg: Any, opts: argparse.Namespace) -> int:
    from mpmd.supervisor.signals import NOT_RUNNING, find_master, send_action
    if opts.action == "start":
        pid, why = find_master(cfg)
        if pid is not None:              # httpd: "httpd (pid 42) already running", exit 0
            print(f"mpmd {why} already running")
            return 0
        opts.detach = not opts.foreground    # Rule 6
        return do_serve(cfg, opts)
    code = int(send_action(cfg, opts.action))
    if code == NOT_RUNNING:              # restart/graceful with nothing running: start (httpd)
        print("mpmd not running, trying to start", flush=True)
        opts.detach = not opts.foreground
        return do_serve(cfg, opts)
    return code


def do_serve(cfg: Any, opts: argparse.Namespace) -> int:
    from mpmd.supervisor.master import serve
    return int(serve(cfg, opts) or 0)


# (option attribute, what to do with the loaded config), first set one wins; else serve.
COMMANDS: tuple[tuple[str, Callable[[Any, argparse.Namespace], int]], ...] = (
    ("test", do_test),
    ("dump_vhosts", do_vhosts),
    ("list_modules", do_modules),
    ("action", do_action),
)


def list_directives() -> int:
    from mpmd.config.docs import collect, render_list
    groups, _ = collect()
    sys.stdout.write(render_list(groups))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["bench"]:          # `mpmd bench ...`: the comparison lab, its own options
        from mpmd.bench import main as bench_main
        return bench_main(args[1:])
    opts = parse_args(args)
    if opts.version:
        print(version_text())
        return 0
    if opts.list_directives:
        return list_directives()
    if opts.version_full:
        return do_version(opts)
    if opts.app:
        error = add_app(opts)
        if error is not None:
            print(error, file=sys.stderr)
            return 1
    from mpmd.config.model import ConfigError
    try:
        cfg = load(opts)
    except ConfigError as exc:
        print_config_error(exc)
        return 1
    for attr, command in COMMANDS:
        if getattr(opts, attr):
            return command(cfg, opts)
    return do_serve(cfg, opts)
