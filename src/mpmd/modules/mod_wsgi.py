"""mod_wsgi's role: Python WSGI applications (PEP 3333) inside the server.

Configuration (server or virtual-host context):
  WSGIScriptAlias /app /srv/app.py     the script's ``application``; loaded as a module once per process
  WSGIApp /api package.module:callable an importable callable
  WSGIPythonPath dir[:dir...]          prepended to sys.path before any app is loaded
  WSGIPreload On|Off                   On: import in the master before fork (post_config, like
                                       gunicorn --preload); Off (default): import in child_init

Theory: translate_name claims every URL under a mount (longest mount first) and names the
"wsgi-script" handler, whose kind is "blocking".  The handler builds the environ
(wsgi_environ.py), calls the application and turns what it returns into a ``Response``:

Rule 1: the status and headers are taken when the first non-empty chunk exists (PEP 3333:
        "start_response ... headers are not sent until the first non-empty body string"); until
        then start_response may be called again with ``exc_info``.  After that, a call with
        ``exc_info`` re-raises it.
Rule 2: a list/tuple result is joined into bytes (it is already in memory); any other iterable
        becomes a lazy generator body, streamed by the driver (chunked without Content-Length).
        Data passed to ``write()`` is sent before the iterable's chunks.
Rule 3: ``wsgi.file_wrapper`` over a regular file with ``fileno()`` becomes a ``FileBody``, so the
        driver can use sendfile; otherwise it is iterated in blocks.
Rule 4: the result's ``close()`` is called exactly once, through ``Response.on_close``, whether
        the body was sent, cut short or never sent (HEAD).
Rule 5: an exception before the headers are taken gives a 500 and a traceback in the ErrorLog
        (MPMD0702); the process keeps serving.  After that the body generator logs (MPMD0703)
        and raises ``AppBodyError`` (an OSError), and the driver drops the connection (a client
        must not take a cut response for a whole one).
Rule 6: more body than the app's Content-Length is cut at the declared length.
Rule 7: a request body that fails (bad chunk, over LimitRequestBody, timed out, the client gone)
        raises ``RequestBodyError``, an OSError, from wsgi.input, as mod_wsgi's "request data
        read error"; an app that lets it propagate gets one line in the ErrorLog (MPMD0705),
        no traceback (the client's fault, not the app's), and the driver answers the body's
        status (400, 408, 413) instead of the 500.
Rule 8: ``mpmd -t``, start-up and each restart import every mount's application in a throwaway
        process (app_probe.py): one that cannot be imported fails the configuration at its
        line, with the import error, and so does an ASGI application mounted here.  The
        server's own import stays where WSGIPreload puts it.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import sys
import threading
import traceback
from typing import Any, Callable, ClassVar, Iterable, Iterator

from mpmd.config.directives import Args, Ctx, Directive, Merge
from mpmd.core.exchange import FileBody, Response
from mpmd.core.memo import derived_by_content
from mpmd.core.modules import Module
from mpmd.http.errors import RequestBodyError
from mpmd.modules import wsgi_environ
from mpmd.modules.app_probe import MountLine, check_mounts, lines_of, load_object
from mpmd.modules.wsgi_input import ErrorStream, wsgi_input
from mpmd.config import values as config_values
from mpmd.modules.mounts import MountTable, find_mount

HANDLER_NAME = "wsgi-script"
SERVER_CTX = Ctx.SERVER | Ctx.VHOST
# A vhost's mounts come before the main server's it inherits (as mod_alias's Alias lines), so
# at equal length the vhost's own wins (config/loader.py _merge_vhost).
VHOST_FIRST = {"vhost_merge": "first"}

# Response headers a WSGI app must not set (PEP 3333 "hop-by-hop"); the server owns framing.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "te", "trailers", "transfer-encoding", "upgrade"})


class AppBodyError(ConnectionAbortedError):
    """The application failed after its headers were sent (Rule 5).

    An OSError on purpose: every driver already ends the connection on one, without sending
    the final chunk, so the client sees a cut response, never a complete-looking one.
    """


# -- directive converters (Rule 1 of config/directives.py: args in, value or ValueError out) ----

def _mount(url: str) -> str:
    if not url.startswith("/"):
        raise ValueError("the URL path must start with '/'")
    return url.rstrip("/")


def _script_alias(args: list[str]) -> tuple[str, str]:
    return _mount(args[0]), args[1]


def _app_spec(args: list[str]) -> tuple[str, str]:
    if ":" not in args[1]:
        raise ValueError("must be package.module:callable")
    return _mount(args[0]), args[1]


def _path_list(args: list[str]) -> list[str]:
    return [p for a in args for p in a.split(os.pathsep) if p]


DIRECTIVES = [
    Directive("WSGIScriptAlias", args=Args.TAKE2, context=SERVER_CTX, value=_script_alias,
              default=[], field="wsgi_script_alias", merge=Merge.APPEND, owner="wsgi_module", extra=VHOST_FIRST,
              syntax="WSGIScriptAlias URL-path file-path",
              doc="Serve the WSGI callable 'application' of a script file under a URL path."),
    Directive("WSGIApp", args=Args.TAKE2, context=SERVER_CTX, value=_app_spec,
              default=[], field="wsgi_app", merge=Merge.APPEND, owner="wsgi_module", extra=VHOST_FIRST,
              syntax="WSGIApp URL-path package.module:callable",
              doc="Serve an importable WSGI callable under a URL path."),
    Directive("WSGIPythonPath", args=Args.TAKE1, context=Ctx.SERVER, value=_path_list,
              default=[], field="wsgi_python_path", merge=Merge.APPEND, owner="wsgi_module",
              syntax="WSGIPythonPath directory[:directory...]",
              doc="Directories added to sys.path before WSGI/ASGI applications are loaded."),
    Directive("WSGIPreload", args=Args.FLAG, context=Ctx.SERVER, value=config_values.flag,
              default=False, field="wsgi_preload", owner="wsgi_module",
              syntax="WSGIPreload On|Off",
              doc="Import WSGI applications in the master before forking children."),
]


# -- loading --------------------------------------------------------------------------------

def flatten(values: Any) -> list[Any]:
    """A repeated directive's values as one flat list (APPEND may nest lists)."""
    out: list[Any] = []
    for v in values or ():
        if isinstance(v, list):
            out.extend(v)
        else:
            out.append(v)
    return out


def python_path(server: Any) -> list[str]:
    """WSGIPythonPath's directories, relative ones under ServerRoot."""
    root = getattr(server, "server_root", None) or os.getcwd()
    return [os.path.join(root, d) for d in flatten(getattr(server, "wsgi_python_path", []))]


def add_python_path(server: Any) -> None:
    for d in reversed(python_path(server)):
        if d not in sys.path:
            sys.path.insert(0, d)


def load_script(path: str) -> Callable[..., Any]:
    """A script's ``application``; the script becomes module ``_mpmd_wsgi_<n>`` (mod_wsgi style)."""
    name = "_mpmd_wsgi_" + str(abs(hash(os.path.realpath(path))))
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load WSGI script {path!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    app = getattr(module, "application", None)
    if app is None:
        raise AttributeError(f"WSGI script {path!r} does not contain a WSGI application 'application'")
    return app


# -- file_wrapper ---------------------------------------------------------------------------

class FileWrapper:
    """``wsgi.file_wrapper``: iterates a file in blocks; the handler turns it into a FileBody (Rule 3)."""

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while True:
            data = read(self.blksize)
            if not data:
                return
            yield data


def file_body(wrapper: FileWrapper, declared: int | None) -> FileBody | None:
    """A FileBody for a wrapper over a regular file, or None to iterate it instead."""
    f = wrapper.filelike
    try:
        st = os.fstat(f.fileno())
        offset = f.tell() if hasattr(f, "tell") else 0
    except (AttributeError, OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    length = max(st.st_size - offset, 0)
    if declared is not None:
        length = min(length, declared)
    return FileBody(f, offset, length)


# -- start_response -------------------------------------------------------------------------

class StartResponse:
    """The per-request ``start_response`` callable and what it was given (Rule 1)."""

    __slots__ = ("status", "headers", "sent", "written")

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.sent = False                      # headers taken: exc_info now re-raises
        self.written: list[bytes] = []         # data given to write()

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None               # break the traceback cycle (PEP 3333)
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        if type(status) is not str or len(status) < 4 or not status[:3].isdigit() or status[3] != " ":
            raise AssertionError(f"invalid WSGI status {status!r}")
        if type(headers) is not list:
            raise AssertionError("WSGI headers must be a list of (name, value) tuples")
        self.status = status
        self.headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        if self.status is None:
            raise AssertionError("write() called before start_response()")
        if type(data) is not bytes:
            raise TypeError("write() argument must be bytes")
        self.written.append(data)


# An app's header list (new each request, alike each time) -> its checked form, by content.
_HEADS: dict[tuple[Any, ...], tuple[tuple[tuple[str, str], ...], int | None]] = {}
HEAD_CACHE_SIZE = 1024


def response_head(sr: StartResponse) -> tuple[int, tuple[tuple[str, str], ...], int | None]:
    """(status code, headers without hop-by-hop ones, declared Content-Length).  The headers
    are an immutable tuple: a list already seen is checked once (finalize then renders it once)."""
    if sr.status is None:
        raise AssertionError("the application returned without calling start_response()")
    sr.sent = True
    headers, declared = derived_by_content(_HEADS, sr.headers, _checked, HEAD_CACHE_SIZE)
    return int(sr.status[:3]), headers, declared


def _checked(raw: list[tuple[str, str]]) -> tuple[tuple[tuple[str, str], ...], int | None]:
    declared: int | None = None
    headers = []
    for name, value in raw:
        lname = name.lower()
        if lname in HOP_BY_HOP:
            continue
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise ValueError(f"CR/LF in response header {name!r}")
        if lname == "content-length":
            declared = int(value)
        headers.append((name, value))
    return tuple(headers), declared


def _cut(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """At most ``limit`` bytes of ``chunks`` (Rule 6)."""
    left = limit
    for chunk in chunks:
        if left <= 0:
            return
        if len(chunk) > left:
            chunk = chunk[:left]
        left -= len(chunk)
        yield chunk


class Closer:
    """Calls the result's close() once (Rule 4)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Any] | None) -> None:
        self.fn = fn

    def __call__(self) -> None:
        fn, self.fn = self.fn, None
        if fn is not None:
            fn()


# -- the application and its handler --------------------------------------------------------

class WSGIApplication:
    """One mount: a lazily loaded callable plus its per-process environ base."""

    def __init__(self, mount: str, loader: Callable[[], Any], what: str) -> None:
        self.mount = mount
        self.loader = loader
        self.what = what                       # "script /srv/app.py" for messages
        self.app: Any = None
        self.base: dict[str, Any] | None = None
        self.server_name = ""
        self.log: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        if self.app is None:
            with self._lock:
                if self.app is None:
                    self.app = self.loader()
        return self.app

    def prepare(self, server: Any, mpm: Any, log: Any) -> None:
        """Per-process state: the environ base for this MPM (wsgi_environ Rule 3)."""
        threaded, forked = wsgi_environ.mpm_flags(mpm)
        self.log = log
        self.server_name = getattr(server, "server_name", "") or ""
        errors = ErrorStream(_log_sink(log), prefix=f"[wsgi {self.mount or '/'}] ")
        self.base = wsgi_environ.make_base(
            script_name=self.mount, scheme="http", multithread=threaded, multiprocess=forked,
            errors=errors, file_wrapper=FileWrapper)

    def __call__(self, ctx: Any) -> Response:
        if self.base is None:
            self.prepare(ctx.server, ctx.mpm, self.log)
        base = self.base
        if ctx.conn.scheme != base["wsgi.url_scheme"]:
            base = dict(base, **{"wsgi.url_scheme": ctx.conn.scheme})
        environ = wsgi_environ.build_environ(ctx, base, wsgi_input(ctx.body), self.server_name)
        sr = StartResponse()
        result = None
        try:
            app = self.app if self.app is not None else self.load()
            result = app(environ, sr)
            return self._respond(result, sr, environ)
        except Exception as exc:
            if result is not None and hasattr(result, "close"):
                _quiet_close(result)
            if isinstance(exc, RequestBodyError):
                self._log_body_error(environ, exc, ctx)   # Rule 7
            else:
                self._log_exc("MPMD0702", environ, ctx)
            return _server_error(ctx)

    def _respond(self, result: Any, sr: StartResponse, environ: dict[str, Any]) -> Response:
        closer = Closer(getattr(result, "close", None))
        if type(result) in (list, tuple) and not sr.written:
            return self._whole(result, sr, closer)
        if isinstance(result, FileWrapper) and not sr.written:
            status, headers, declared = response_head(sr)
            body = file_body(result, declared)
            if body is not None:
                return Response(status, headers, body, on_close=closer)
        return self._stream(iter(result), sr, closer, environ)

    def _whole(self, result: Any, sr: StartResponse, closer: Closer) -> Response:
        body = result[0] if len(result) == 1 else b"".join(result)
        status, headers, declared = response_head(sr)
        if declared is not None and len(body) > declared:
            body = body[:declared]
        closer()
        return Response(status, headers, body)

    def _stream(self, it: Iterator[bytes], sr: StartResponse, closer: Closer,
                environ: dict[str, Any]) -> Response:
        first = b""
        written = sr.written
        if not written:
            for first in it:                    # headers wait for the first non-empty chunk
                if first:
                    break
        status, headers, declared = response_head(sr)
        chunks = self._chunks(written, first, it, environ)
        if declared is not None:
            chunks = _cut(chunks, declared)
        return Response(status, headers, chunks, on_close=closer)

    def _chunks(self, written: list[bytes], first: bytes, it: Iterator[bytes],
                environ: dict[str, Any]) -> Iterator[bytes]:
        try:
            yield from written
            written.clear()
            if first:
                yield first
            for chunk in it:
                if written:                     # write() called from inside the iterable
                    yield from written
                    written.clear()
                if chunk:
                    yield chunk
        except GeneratorExit:
            raise
        except Exception as exc:
            if isinstance(exc, RequestBodyError):
                self._log_body_error(environ, exc)        # Rule 7
            else:
                self._log_exc("MPMD0703", environ)
            raise AppBodyError(f"WSGI application {self.what} failed in its body") from exc

    def _log_body_error(self, environ: dict[str, Any], exc: RequestBodyError,
                        ctx: Any = None) -> None:
        where = environ.get("REQUEST_METHOD", "") + " " + environ.get("REQUEST_URI", "")
        _log(self.log, "error", "MPMD0705",
             f"WSGI application {self.what} ({where}): {exc} ({exc.error.status})", ctx)

    def _log_exc(self, msg_id: str, environ: dict[str, Any], ctx: Any = None) -> None:
        where = environ.get("REQUEST_METHOD", "") + " " + environ.get("REQUEST_URI", "")
        text = f"exception in WSGI application {self.what} ({where}):\n" + traceback.format_exc()
        _log(self.log, "error", msg_id, text.rstrip("\n"), ctx)


def _quiet_close(result: Any) -> None:
    try:
        result.close()
    except Exception:
        pass


def _server_error(ctx: Any = None) -> Response:
    try:
        from mpmd.core.request import error
        return error(500, ctx)                  # ErrorDocument 500 applies (httpd's ap_die)
    except Exception:
        body = (b"<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n"
                b"<title>500 Internal Server Error</title>\n</head><body>\n<h1>Internal Server Error</h1>\n"
                b"<p>The server encountered an internal error and was unable to complete your request.</p>\n"
                b"</body></html>\n")
        return Response(500, [("Content-Type", "text/html; charset=iso-8859-1")], body)


def _log_sink(log: Any) -> Callable[[str], None] | None:
    if log is None:
        return None
    return lambda text: log.log("error", "MPMD0704", text.rstrip("\n"), "wsgi")


def _log(log: Any, level: str, msg_id: str, text: str, ctx: Any = None) -> None:
    """An error-log line; ``ctx``: the request it is about (ErrorLogFormat's %L, %a ...)."""
    if log is None:
        sys.stderr.write(f"[wsgi:{level}] [pid {os.getpid()}] {msg_id}: {text}\n")
    elif ctx is not None:
        log.log(level, msg_id, text, "wsgi", ctx)
    else:
        log.log(level, msg_id, text, "wsgi")


class WSGIHandler:
    """The "wsgi-script" handler: runs the mount translate_name chose."""

    kind = "blocking"

    def __call__(self, ctx: Any) -> Response:
        app = ctx.notes.get("wsgi.app")
        if app is None:
            return Response(404, [("Content-Type", "text/plain")], b"no WSGI application here\n")
        return app(ctx)


def _mount_specs(server: Any) -> list[tuple[str, str, Callable[[], WSGIApplication]]]:
    """``server``'s WSGIScriptAlias and WSGIApp lines as mounts (mounts.py Rule 2)."""
    root = getattr(server, "server_root", None) or os.getcwd()
    specs: list[tuple[str, str, Callable[[], WSGIApplication]]] = []
    for url, path in flatten(getattr(server, "wsgi_script_alias", [])):
        path = os.path.join(root, path)
        what = f"script {path}"
        specs.append((url, what, lambda u=url, p=path, w=what:
                      WSGIApplication(u, lambda: load_script(p), w)))
    for url, spec in flatten(getattr(server, "wsgi_app", [])):
        specs.append((url, spec, lambda u=url, s=spec: WSGIApplication(u, lambda: load_object(s), s)))
    return specs


class WSGIModule(Module):
    name: ClassVar[str] = "wsgi_module"
    route_pure: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("mod_wsgi.c", "mod_wsgi")
    DIRECTIVES: ClassVar[list[Directive]] = DIRECTIVES
    builtin: ClassVar[bool] = True

    def __init__(self) -> None:
        self.handlers = {HANDLER_NAME: WSGIHandler()}
        self.table: MountTable[WSGIApplication] = MountTable(_mount_specs)
        self.mounts = self.table.of
        self.log: Any = None

    def check_config(self, cfg: Any) -> list[Any]:
        """-t, start-up and each restart: every mount's application is imported in a throwaway
        process (app_probe); one that cannot be, or that is an ASGI application, is an error at
        its line (Rule 8)."""
        root = getattr(cfg, "server_root", None) or os.getcwd()
        scripts = [(os.path.join(root, path), file, line)
                   for (_, path), file, line in lines_of(cfg, "wsgi_script_alias")]
        mounts = [MountLine("WSGIScriptAlias", path, lambda p=path: load_script(p), file, line)
                  for path, file, line in scripts]
        mounts += [MountLine("WSGIApp", spec, lambda s=spec: load_object(s), file, line)
                   for (_, spec), file, line in lines_of(cfg, "wsgi_app")]
        return check_mounts(mounts, python_path(cfg), "wsgi", "MPMD0706", (
            "error", "is an ASGI application (a coroutine function, or its __call__ is one): "
                     "serve it with ASGIApp"))

    def post_config(self, server: Any) -> None:
        """In the master, before fork: WSGIPreload On imports the applications now."""
        if getattr(server, "wsgi_preload", False):
            self._load_all(server)

    def child_init(self, server: Any, mpm: Any) -> None:
        """After fork: import (WSGIPreload Off) and make each mount's environ base."""
        self.log = getattr(mpm, "log", None) or self.log
        self._load_all(server)
        for m in self.table.all(server):
            m.prepare(server, mpm, self.log)

    def _load_all(self, server: Any) -> None:
        if self.log is None:
            self.log = _error_log(server)
        add_python_path(server)
        for m in self.table.all(server):
            m.log = self.log
            try:
                m.load()
            except Exception:
                _log(self.log, "error", "MPMD0701",
                     f"failed to load WSGI application {m.what}:\n{traceback.format_exc().rstrip()}")

    def translate_name(self, ctx: Any) -> bool | None:
        m = find_mount(self.mounts(ctx.server), ctx.uri_path)
        if m is None:
            return None
        ctx.handler = HANDLER_NAME
        ctx.notes["wsgi.app"] = m
        return True


def _error_log(server: Any) -> Any:
    try:
        from mpmd.core import log
        return log.from_config(server)
    except Exception:
        return None
