"""The "default-handler": GET/HEAD of files under DocumentRoot or an Alias target.

Theory: one ``os.stat`` per request.  The answer's fixed headers (Content-Type, Content-Length,
Last-Modified, ETag, Accept-Ranges) of every file served and, for files up to
``SMALL_FILE_BYTES``, the bytes themselves are kept in a bounded per-process ``FileCache`` keyed by path and validated by
(mtime_ns, size, inode) plus the per-dir config and type they were built with; a GET with no
conditional or Range header then costs a dict lookup and gets the entry's one shared
``Response``, whose Plan finalize keeps on it for the second (core/respond.py Rule 5).

Rule 1: methods other than GET/HEAD get 405 with ``Allow`` (OPTIONS 200), as nginx does.
Rule 2: the file must not be reached through a symlink unless Options FollowSymLinks (httpd's
        directory walk); without it, the real path must equal root + the URL remainder, so no
        symlink component and no escape from the root (``notes["root"]``) is possible.
Rule 3: directories go to the "httpd/unix-directory" handler (mod_dir: slash redirect,
        DirectoryIndex, autoindex); without mod_dir they are 403.
Rule 4: ETag follows FileETag (default MTime Size): ``"<size hex>-<mtime µs hex>"`` as httpd.
Rule 5: a file is "young" while the request time is within a second of its mtime (or before
        it): it may change again within the same second, unseen by a validator of whole
        seconds, so, as httpd, its ETag is weak (``W/"..."``) and its Last-Modified is no later
        than the request's Date (RFC 9110 8.8.2.1, 8.8.1); If-Match then fails (strong
        comparison), If-None-Match matches weakly, If-Range is not honoured.  The cached entry
        keeps the settled (strong) validators; a young answer is made per request
        (``Entry.as_of``) and never cached, so nothing young outlives its second.
"""

from __future__ import annotations

import os
import stat as stat_mod
from email.utils import formatdate
from time import time
from typing import Any

from mpmd.core.exchange import FileBody, MultipartBody, RequestContext, Response
from mpmd.core.request import error
from mpmd.modules import conditional, ranges

SMALL_FILE_BYTES = 64 * 1024
CACHE_MAX_ENTRIES = 2048
CACHE_MAX_BYTES = 32 * 1024 * 1024
DIRECTORY_HANDLER = "httpd/unix-directory"
ALLOW = "GET, HEAD, OPTIONS"
_S_IFMT, _S_IFREG = 0o170000, stat_mod.S_IFREG
DEFAULT_FILE_ETAG = frozenset({"MTime", "Size"})
# FileETag component -> its hex part, in httpd's order (inode, size, mtime).
ETAG_PARTS = (("inode", lambda st: st.st_ino),
              ("size", lambda st: st.st_size),
              ("mtime", lambda st: st.st_mtime_ns // 1000))


def _etag_components(dc: Any) -> frozenset[str]:
    value = getattr(dc, "file_etag", None)
    if value is None:
        return frozenset(s.lower() for s in DEFAULT_FILE_ETAG)
    if isinstance(value, str):
        value = value.split()
    names = frozenset(str(v).lower() for v in value)
    if "all" in names:
        return frozenset({"inode", "mtime", "size"})
    return names - {"none"}


def make_etag(st: os.stat_result, components: frozenset[str]) -> str | None:
    """Rule 4; None when FileETag None."""
    parts = [f"{fn(st):x}" for name, fn in ETAG_PARTS if name in components]
    return f'"{"-".join(parts)}"' if parts else None


class Entry:
    """What is known about one file version: validators, fixed headers, maybe its bytes."""

    __slots__ = ("key", "dc", "ctype", "extra", "follow", "etag", "mtime", "size", "headers",
                 "full", "data", "response", "settled", "young")

    def __init__(self, key: tuple[int, int, int], dc: Any, ctype: str | None,
                 st: os.stat_result, extra: tuple[tuple[str, str], ...] | None = None) -> None:
        self.key, self.dc, self.ctype = key, dc, ctype
        # Content-Encoding / Content-Language (mod_mime): a function of the per-dir config
        # and the file name, but for an "x-gzip" the client may see as "gzip" (mod_mime
        # Rule 7): an entry that has them is checked against the request's
        self.extra = extra
        self.follow = follows_symlinks(dc)           # dc's Options, asked once per entry
        self.etag = make_etag(st, _etag_components(dc))
        self.mtime = int(st.st_mtime)
        self.size = st.st_size
        # Rule 5: requests up to this time see the file young (httpd: strong only when
        # request_time - mtime > 1 s)
        self.settled = st.st_mtime + 1.0
        self.young = False
        self._fields()
        self.data: bytes | None = None
        # The plain GET's answer once ``data`` is known: shared by every such request (drivers
        # only ever change the Responses they make themselves, error answers).
        self.response: Response | None = None

    def _fields(self) -> None:
        ctype = self.ctype
        headers = [("Content-Type", ctype)] if ctype else []
        if self.extra:
            headers.extend(self.extra)
        headers.append(("Last-Modified", formatdate(self.mtime, usegmt=True)))
        if self.etag:
            headers.append(("ETag", self.etag))
        headers.append(("Accept-Ranges", "bytes"))
        self.headers = headers                       # without Content-Length
        # The whole answer's fields, immutable: finalize renders them once (respond.py).
        self.full = tuple(headers) + (("Content-Length", str(self.size)),)

    def as_of(self, now: float) -> "Entry":
        """Rule 5: this version as a request at ``now`` (while young) sees it: a weak ETag and
        a Last-Modified no later than ``now``; the bytes are shared, the answer is not."""
        young = Entry.__new__(Entry)
        for name in Entry.__slots__:
            setattr(young, name, getattr(self, name))
        young.young = True
        young.response = None
        if self.etag and not self.etag.startswith("W/"):
            young.etag = "W/" + self.etag
        young.mtime = min(self.mtime, int(now))
        young._fields()
        return young

    def validators(self) -> list[tuple[str, str]]:
        """Headers a 304 repeats (RFC 9110 15.4.5)."""
        return [h for h in self.headers if h[0] in ("ETag", "Last-Modified")]


class FileCache:
    """Bounded path -> Entry map; oldest entries go first when full."""

    def __init__(self, max_entries: int = CACHE_MAX_ENTRIES, max_bytes: int = CACHE_MAX_BYTES) -> None:
        self.entries: dict[str, Entry] = {}
        self.max_entries, self.max_bytes, self.bytes = max_entries, max_bytes, 0

    def get(self, path: str, st: os.stat_result, dc: Any, ctype: str | None,
            extra: tuple[tuple[str, str], ...] | None = None) -> Entry:
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        entry = self.entries.get(path)
        if entry is not None and entry.key == key and entry.dc is dc and entry.ctype == ctype \
                and entry.extra == extra:
            return entry
        if entry is not None:
            self._drop(path)
        entry = Entry(key, dc, ctype, st, extra)
        if st.st_size <= SMALL_FILE_BYTES:
            entry.data = self._read(path, st.st_size)
            if entry.data is None:
                return entry                 # changed while read: not kept
            entry.response = Response(200, entry.full, entry.data, memo=())
        self._add(path, entry)               # a larger file's fields are kept, not its bytes
        return entry

    @staticmethod
    def _read(path: str, size: int) -> bytes | None:
        try:
            with open(path, "rb") as f:
                data = f.read(size + 1)
        except OSError:
            return None
        return data if len(data) == size else None      # changed while reading: don't keep it

    def _add(self, path: str, entry: Entry) -> None:
        size = _held(entry)
        while self.entries and (len(self.entries) >= self.max_entries
                                or self.bytes + size > self.max_bytes):
            self._drop(next(iter(self.entries)))
        self.entries[path] = entry
        self.bytes += size

    def _drop(self, path: str) -> None:
        old = self.entries.pop(path, None)
        if old is not None:
            self.bytes -= _held(old)


def _held(entry: Entry) -> int:
    """The bytes of a file an entry holds in memory (none for a file sent from disk)."""
    return len(entry.data) if entry.data is not None else 0


def follows_symlinks(dir_config: Any) -> bool:
    options = getattr(dir_config, "options", None)
    return options is None or "FollowSymLinks" in options


def path_is_plain(root: str, filename: str) -> bool:
    """Rule 2: no symlink between ``root`` and ``filename`` and no escape from ``root``."""
    real_root = os.path.realpath(root)
    if not (filename == root or filename.startswith(root.rstrip("/") + "/")):
        return False
    rest = filename[len(root.rstrip("/")):].rstrip("/")
    return os.path.realpath(filename) == real_root.rstrip("/") + rest if rest else True


def _stat_status(exc: BaseException) -> int:
    """The answer for a file that could not be stat()ed: 403 when it is forbidden, else 404."""
    return 403 if isinstance(exc, PermissionError) else 404


def method_not_allowed(ctx: RequestContext) -> Response:
    """Rule 1."""
    if ctx.request.method == "OPTIONS":
        return Response(200, [("Allow", ALLOW), ("Content-Length", "0")])
    return error(405, ctx, [("Allow", ALLOW)])


class StaticHandler:
    """The handler object registered as "default-handler"."""

    kind = "inline"

    def __init__(self) -> None:
        self.cache = FileCache()

    def serve(self, ctx: RequestContext) -> Response:
        # The plain GET of a cached file is this function alone: it is the hot
        # path of every static benchmark.  Anything unusual leaves through a helper.
        request = ctx.request
        method = request.method
        if method != "GET" and method != "HEAD":
            return method_not_allowed(ctx)
        filename = ctx.filename
        if not filename:
            return error(404, ctx)
        try:
            st = os.stat(filename)
        except (OSError, ValueError) as exc:
            return error(_stat_status(exc), ctx)
        dc = ctx.dir_config
        ctype = ctx.notes.get("content_type")
        entry = self.cache.entries.get(filename)
        # st[6], st[1]: st_size and st_ino from the stat tuple; an index is cheaper than the
        # attribute (os.stat_result fields are not specialized attribute reads).
        if entry is None or entry.dc is not dc or entry.ctype != ctype \
                or entry.key != (st.st_mtime_ns, st[6], st[1]) \
                or entry.extra is not None and entry.extra != ctx.notes.get("content_headers"):
            entry = self._entry(ctx, filename, st, dc, ctype)
            if type(entry) is not Entry:
                return entry                         # a directory's answer, or a refusal
        elif not entry.follow and not path_is_plain(ctx.notes.get("root", "/"), filename):
            return error(403, ctx)                   # (a cached entry is a regular file)
        now = ctx.start_time or time()
        if now <= entry.settled:                     # Rule 5: rare, and never cached
            return serve_entry(ctx, filename, entry.as_of(now))
        watched = conditional.CONDITIONAL_HEADERS
        for name, _ in request.headers:
            if name in watched:
                return serve_entry(ctx, filename, entry)
        if entry.response is not None and method == "GET":
            return entry.response
        return _full(filename, entry, method == "HEAD")

    # mod_core registers the bound ``serve``: calling an instance goes through its type's
    # ``__call__`` slot (a type-cache lookup and an argument tuple per request), a bound method
    # is called as a plain function.  A bound method reads ``kind`` from its function.
    serve.kind = "inline"  # type: ignore[attr-defined]
    __call__ = serve

    def _entry(self, ctx: RequestContext, filename: str, st: os.stat_result, dc: Any,
               ctype: str | None) -> Entry | Response:
        """The file's Entry when it is not cached as it is now, after its symlink and type
        checks; their refusal, or a directory's answer, otherwise."""
        if not follows_symlinks(dc) and not path_is_plain(ctx.notes.get("root", "/"), filename):
            return error(403, ctx)
        if st.st_mode & _S_IFMT != _S_IFREG:
            if stat_mod.S_ISDIR(st.st_mode):
                return self._directory(ctx, st)
            return error(403, ctx)
        return self.cache.get(filename, st, dc, ctype, ctx.notes.get("content_headers"))

    @staticmethod
    def _directory(ctx: RequestContext, st: os.stat_result) -> Response:
        handler = ctx.server.hooks.handlers.get(DIRECTORY_HANDLER)
        if handler is None:
            return error(403, ctx)
        ctx.notes["stat"] = st
        return handler(ctx)


def _open_region(filename: str, entry: Entry, start: int, length: int) -> Any:
    if entry.data is not None:
        return entry.data[start:start + length]
    return FileBody(open(filename, "rb", buffering=0), start, length)


def serve_entry(ctx: RequestContext, filename: str, entry: Entry) -> Response:
    """200/206/304/412/416 for a regular file."""
    req = ctx.request
    head = req.method == "HEAD"
    watched = conditional.CONDITIONAL_HEADERS
    for name, _ in req.headers:
        if name in watched:
            break
    else:                                            # the common case: a plain GET/HEAD
        return _full(filename, entry, head)
    hdrs = {name: value for name, value in reversed(req.headers)}
    status = conditional.evaluate(hdrs, req.method, entry.etag, entry.mtime,
                                  variants=ctx.notes.get(conditional.VARIANTS, ()))
    if status == 304:
        return Response(304, entry.validators())
    if status is not None:
        return error(status, ctx)
    rng = hdrs.get(b"range")
    if_range = hdrs.get(b"if-range")
    if rng is None or (if_range is not None and entry.young) \
            or not conditional.if_range_ok(if_range, entry.etag, entry.mtime):
        return _full(filename, entry, head)
    parsed = ranges.parse_range(rng.decode("latin-1"), entry.size)
    if parsed is None:
        return _full(filename, entry, head)
    if parsed == ranges.UNSATISFIABLE:
        return error(416, ctx, [("Content-Range", f"bytes */{entry.size}")])
    if len(parsed) == 1:
        return _single(filename, entry, parsed[0], head)
    return _multi(filename, entry, parsed, head)


def _full(filename: str, entry: Entry, head: bool) -> Response:
    headers = entry.full
    if head:
        return Response(200, headers, b"")
    if entry.response is not None:
        return entry.response
    if entry.data is not None:
        return Response(200, headers, entry.data)
    try:
        return Response(200, headers, FileBody(open(filename, "rb", buffering=0), 0, entry.size))
    except OSError:
        return Response(403, [("Content-Length", "0")])


def _single(filename: str, entry: Entry, rng: tuple[int, int], head: bool) -> Response:
    start, end = rng
    length = end - start + 1
    headers = entry.headers + [("Content-Range", ranges.content_range(start, end, entry.size)),
                               ("Content-Length", str(length))]
    body = b"" if head else _open_region(filename, entry, start, length)
    return Response(206, headers, body)


def _multi(filename: str, entry: Entry, parsed: list[tuple[int, int]], head: bool) -> Response:
    boundary, parts, tail = ranges.multipart_parts(parsed, entry.size, entry.ctype)
    total = sum(len(h) + e - s + 1 for h, s, e in parts) + len(tail)
    headers = [h for h in entry.headers if h[0] != "Content-Type"]
    headers += [("Content-Type", f"multipart/byteranges; boundary={boundary}"),
                ("Content-Length", str(total))]
    if head:
        return Response(206, headers, b"")
    shared = None if entry.data is not None else open(filename, "rb", buffering=0)
    body: list[bytes | FileBody] = []
    for part_head, start, end in parts:
        body.append(part_head)
        if shared is None:
            body.append(entry.data[start:end + 1])       # type: ignore[index]
        else:
            body.append(FileBody(shared, start, end - start + 1))
    body.append(tail)
    return Response(206, headers, MultipartBody(body))
