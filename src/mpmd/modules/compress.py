"""The DEFLATE (gzip) and BROTLI_COMPRESS (br) output filters: what they do to an answer.

Theory: httpd runs the filters a request's configuration names, in order, over its body;
each looks at the answer and the request and either encodes the body or steps aside.  Here
the filter chain of an answer is worked out once per (per-dir config, media type) and the
whole decision is one ``output_filter`` call (mod_filter.py) before the head is built.  The
rules, checked against Debian's apache2 2.4 (tests/integration/test_compress_vs_apache.py):

Rule 1: the chain is SetOutputFilter's filters, then AddOutputFilter's (by the file's
        extensions), then AddOutputFilterByType's (by the answer's media type, without its
        parameters), each filter once, in the order written.
Rule 2: an answer is left as it is, with no Vary (it does not vary): 1xx, 204, an app's
        answer with a Content-Range, one with a Content-Encoding other than identity, one whose Cache-Control says
        no-transform, the server's own error and redirect pages (``Response.local``: httpd
        does not filter them), and a body
        whose length is known and at most ``MIN_LENGTH`` bytes (68: mod_deflate's "smaller
        than the compression overhead").  A filter steps aside when its environment
        variable is set (``no-gzip``, ``no-brotli``; ``gzip-only-text/html`` = 1 keeps gzip
        to text/html).
        A static file's 206 (a Range, satisfiable) is never encoded: its bytes are the
        identity bytes, and it gets Vary as below (apache2 ranges the gzip bytes instead).
Rule 3: otherwise ``Vary: Accept-Encoding`` is merged into the answer (the env variable
        ``dont-vary`` removes Vary instead), and the first filter of the chain whose coding
        Accept-Encoding accepts encodes the body.  A coding is accepted when it is listed
        with a q-value above 0 (its first listing counts); ``*`` and ``x-gzip`` are not
        taken for gzip, as httpd; ``force-gzip`` makes gzip accepted.  q-values only refuse:
        between two accepted codings the chain's order decides, as httpd's filter order
        does (``BROTLI_COMPRESS;DEFLATE`` prefers br).
Rule 4: an encoded answer loses Content-Length (a known body gets its encoded length back)
        and Content-MD5, gains ``Content-Encoding``, and its ETag gets ``-gzip`` / ``-br``
        before the closing quote (DeflateAlterETag / BrotliAlterETag: AddSuffix, NoChange,
        Remove).  HEAD gets the fields GET would get, the encoded length included when the
        body's length is known (a static file's is).
Rule 5: a 304 carries what the 200 would: Vary and the encoded ETag, unless the client's
        If-None-Match named the identity tag (then that one, as httpd).  conditional.py
        takes ``-gzip``/``-br`` tags of a file's ETag as that file's (If-None-Match,
        If-Match); If-Range does not (the ranged answer is identity bytes).
Rule 6: a static file's encoded variant is made once per file version and settings and kept
        in a bounded per-process ``VariantCache`` (``CACHE_MAX_BYTES``); the Response handed
        out is shared, with ``memo=()``, so its Plan is kept on it (core/respond.py Rule 5).
        ``ctx.notes["mpmd-compress"]`` says what happened: ``hit``, ``miss`` (encoded now
        and kept), ``once`` (encoded, not kept: an app's bytes, a young file), ``stream``.
Rule 7: a streamed body (an iterator, sync or async) is encoded as a stream; each chunk the
        handler yields is flushed (Z_SYNC_FLUSH, brotli's flush), so server-sent events and
        other streaming answers still arrive as they are produced.
"""

from __future__ import annotations

import os
import threading
import zlib
from typing import Any, AsyncIterator, Iterator

from mpmd.core.exchange import FileBody, MultipartBody, RequestContext, Response
from mpmd.core.memo import remember

MIN_LENGTH = 68                  # mod_deflate: gzip header (10) + trailer (8) + 50
CACHE_MAX_BYTES = 32 * 1024 * 1024
CACHE_MAX_ENTRIES = 2048
DEFAULT_HANDLER = "default-handler"
NOTE = "mpmd-compress"
IDENTITY_CODINGS = frozenset(("identity", "7bit", "8bit", "binary"))
_MEMO_SIZE = 1024


# -- codecs ----------------------------------------------------------------------------------

class GzipStream:
    __slots__ = ("z", "total_in", "total_out")

    def __init__(self, params: tuple[int, int, int]) -> None:
        level, wbits, memlevel = params
        self.z = zlib.compressobj(level, zlib.DEFLATED, 16 + wbits, memlevel)
        self.total_in = self.total_out = 0

    def chunk(self, data: bytes) -> bytes:
        z = self.z
        out = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
        self.total_in += len(data)
        self.total_out += len(out)
        return out

    def finish(self) -> bytes:
        out = self.z.flush(zlib.Z_FINISH)
        self.total_out += len(out)
        return out


class BrotliStream:
    __slots__ = ("c", "total_in", "total_out")

    def __init__(self, params: tuple[int, int, int]) -> None:
        import brotli
        quality, lgwin, lgblock = params
        self.c = brotli.Compressor(quality=quality, lgwin=lgwin, lgblock=lgblock)
        self.total_in = self.total_out = 0

    def chunk(self, data: bytes) -> bytes:
        c = self.c
        out = c.process(data) + c.flush()
        self.total_in += len(data)
        self.total_out += len(out)
        return out

    def finish(self) -> bytes:
        out = self.c.finish()
        self.total_out += len(out)
        return out


class Codec:
    """One filter: its name in the config, its coding, its env switch, its settings."""

    __slots__ = ("filter", "coding", "env", "stream_class", "overhead")

    def __init__(self, filter_name: str, coding: str, env: str, stream_class: Any,
                 overhead: int) -> None:
        self.filter, self.coding, self.env = filter_name, coding, env
        self.stream_class = stream_class
        self.overhead = overhead              # framing bytes httpd leaves out of its notes

    def params(self, server: Any) -> tuple[int, int, int]:
        if self.coding == "gzip":
            return (int(getattr(server, "deflate_compression_level", 6)),
                    int(getattr(server, "deflate_window_size", 15)),
                    int(getattr(server, "deflate_mem_level", 9)))
        return (int(getattr(server, "brotli_compression_quality", 5)),
                int(getattr(server, "brotli_compression_window", 18)),
                int(getattr(server, "brotli_compression_max_input_block", 0)))

    def alter_etag(self, server: Any) -> str:
        if self.coding == "gzip":
            return str(getattr(server, "deflate_alter_etag", None) or "AddSuffix")
        return str(getattr(server, "brotli_alter_etag", None) or "AddSuffix")

    def notes(self, server: Any) -> list[tuple[str, str]]:
        if self.coding == "gzip":
            return list(getattr(server, "deflate_filter_note", None) or ())
        return list(getattr(server, "brotli_filter_note", None) or ())

    def whole(self, data: bytes, params: tuple[int, int, int]) -> bytes:
        if self.coding == "gzip":
            level, wbits, memlevel = params
            z = zlib.compressobj(level, zlib.DEFLATED, 16 + wbits, memlevel)
            return z.compress(data) + z.flush()
        import brotli
        quality, lgwin, lgblock = params
        return bytes(brotli.compress(data, quality=quality, lgwin=lgwin, lgblock=lgblock))

    def stream(self, params: tuple[int, int, int]) -> Any:
        return self.stream_class(params)


GZIP = Codec("DEFLATE", "gzip", "no-gzip", GzipStream, 18)
BROTLI = Codec("BROTLI_COMPRESS", "br", "no-brotli", BrotliStream, 0)
FILTERS = {"deflate": GZIP, "brotli_compress": BROTLI}     # lower-case filter name -> codec


_BROTLI: list[bool] = []


def brotli_available() -> bool:
    if not _BROTLI:
        try:
            import brotli  # noqa: F401
            _BROTLI.append(True)
        except ImportError:
            _BROTLI.append(False)
    return _BROTLI[0]


# -- Accept-Encoding (Rule 3) ----------------------------------------------------------------

_ACCEPTS: dict[bytes | None, frozenset[str]] = {}


def accepted(value: bytes | None) -> frozenset[str]:
    """The codings an Accept-Encoding value accepts (q > 0, first listing counts)."""
    hit = _ACCEPTS.get(value)
    if hit is not None:
        return hit
    out: set[str] = set()
    seen: set[str] = set()
    for item in (value or b"").split(b","):
        token, _, params = item.partition(b";")
        name = token.strip().lower().decode("latin-1")
        if not name or name in seen:
            continue
        seen.add(name)
        q = 1.0
        for param in params.split(b";"):
            key, _, number = param.partition(b"=")
            if key.strip().lower() == b"q":
                try:
                    q = float(number.strip())
                except ValueError:
                    q = 1.0                  # httpd refuses only a literal q=0[.000]
        if q > 0:
            out.add(name)
    return remember(_ACCEPTS, value, frozenset(out), _MEMO_SIZE)


# -- the chain (Rule 1) ----------------------------------------------------------------------

def _names(value: Any) -> tuple[str, ...]:
    return tuple(value or ())


class Chains:
    """(per-dir config, media type, file name) -> the chain of codecs, remembered."""

    def __init__(self) -> None:
        self.memo: dict[tuple[int, str | None, str | None], tuple[Any, tuple[Codec, ...]]] = {}

    def __call__(self, dc: Any, mtype: str | None, filename: str | None) -> tuple[Codec, ...]:
        by_ext = getattr(dc, "add_output_filter", None)
        key = (id(dc), mtype, filename if by_ext else None)
        hit = self.memo.get(key)
        if hit is not None and hit[0] is dc:
            return hit[1]
        chain = build_chain(dc, mtype, filename)
        remember(self.memo, key, (dc, chain), _MEMO_SIZE)
        return chain


def build_chain(dc: Any, mtype: str | None, filename: str | None) -> tuple[Codec, ...]:
    names: list[str] = list(_names(getattr(dc, "set_output_filter", None)))
    by_ext = getattr(dc, "add_output_filter", None) or ()
    if by_ext and filename:
        exts = set(filename.rpartition("/")[2].lower().split(".")[1:])
        for filters, wanted in by_ext:
            if exts & set(wanted):
                names += filters
    if mtype:
        for filters, types in getattr(dc, "add_output_filter_by_type", None) or ():
            if mtype in types:
                names += filters
    chain: list[Codec] = []
    for name in names:
        codec = FILTERS.get(name)
        if codec is BROTLI and not brotli_available():
            continue                             # refused at -t (mod_filter.check_config)
        if codec is not None and codec not in chain:
            chain.append(codec)
    return tuple(chain)


def media_type(ctype: str | None) -> str | None:
    if not ctype:
        return None
    return ctype.split(";", 1)[0].strip().lower() or None


# -- headers (Rule 4) ------------------------------------------------------------------------

def suffixed(etag: str, coding: str) -> str:
    """httpd's deflate_check_etag: ``"x"`` -> ``"x-gzip"``, ``W/"x"`` -> ``W/"x-gzip"``."""
    if len(etag) > 2 and etag.endswith('"'):
        return f'{etag[:-1]}-{coding}"'
    return etag


def merged_vary(values: list[str], drop: bool) -> list[str]:
    """The Vary values of an answer that varies by Accept-Encoding (dont-vary: none)."""
    if drop:
        return []
    tokens = [t.strip().lower() for value in values for t in value.split(",")]
    if "*" in tokens or "accept-encoding" in tokens:
        return values
    return [", ".join(values + ["Accept-Encoding"])] if values else ["Accept-Encoding"]


def rebuilt(headers: Any, codec: Codec | None, etag_mode: str, dont_vary: bool,
            length: int | None, keep_length: bool = False) -> tuple[tuple[str, str], ...]:
    """The answer's fields once ``codec`` encoded it (None: identity, with Vary)."""
    out: list[tuple[str, str]] = []
    vary: list[str] = []
    for name, value in headers:
        lname = name.lower()
        if lname == "vary":
            vary.append(value)
            continue
        if codec is not None:
            if lname == "content-length" and not keep_length:
                continue
            if lname in ("content-md5", "content-encoding"):
                continue
            if lname == "etag":
                if etag_mode == "Remove":
                    continue
                if etag_mode == "AddSuffix":
                    value = suffixed(value, codec.coding)
        out.append((name, value))
    out += [("Vary", v) for v in merged_vary(vary, dont_vary)]
    if codec is not None:
        out.append(("Content-Encoding", codec.coding))
        if length is not None:
            out.append(("Content-Length", str(length)))
    return tuple(out)


# -- streams (Rule 7) ------------------------------------------------------------------------

class Encoded:
    """An iterable body encoded chunk by chunk; ``close`` closes the handler's body."""

    __slots__ = ("inner", "enc", "done")

    def __init__(self, inner: Any, enc: Any, done: Any) -> None:
        self.inner, self.enc, self.done = inner, enc, done

    def __iter__(self) -> Iterator[bytes]:
        enc = self.enc
        for chunk in self.inner:
            if chunk:
                out = enc.chunk(bytes(chunk))
                if out:
                    yield out
        yield enc.finish()
        self.done(enc)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


class AsyncEncoded(Encoded):
    """An async iterable body (ASGI on the nginx MPM) encoded chunk by chunk."""

    __slots__ = ()

    def __iter__(self) -> Iterator[bytes]:       # pragma: no cover - never iterated sync
        raise TypeError("an async body")

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._run()

    async def _run(self) -> AsyncIterator[bytes]:
        enc = self.enc
        async for chunk in self.inner:
            if chunk:
                out = enc.chunk(bytes(chunk))
                if out:
                    yield out
        yield enc.finish()
        self.done(enc)


# -- the static variants (Rule 6) ------------------------------------------------------------

class Variant:
    """One encoded version of one static answer: its bytes and the Responses handed out."""

    __slots__ = ("src", "data", "size_in", "get", "head")

    def __init__(self, src: Any, data: bytes, size_in: int, get: Response,
                 head: Response) -> None:
        self.src, self.data, self.size_in, self.get, self.head = src, data, size_in, get, head


class VariantCache:
    """Bounded (headers tuple id, coding, params, ETag mode) -> Variant; oldest out first.
    The static handler hands out one headers tuple per file version (static_files.Entry.full)
    and the cache holds it, so an id names one version for as long as it is kept."""

    def __init__(self, max_bytes: int = CACHE_MAX_BYTES,
                 max_entries: int = CACHE_MAX_ENTRIES) -> None:
        self.entries: dict[tuple[Any, ...], Variant] = {}
        self.max_bytes, self.max_entries, self.bytes = max_bytes, max_entries, 0
        self.hits = self.misses = 0
        self.lock = threading.Lock()

    def get(self, key: tuple[Any, ...], src: Any) -> Variant | None:
        hit = self.entries.get(key)
        if hit is not None and hit.src is src:
            self.hits += 1
            return hit
        return None

    def add(self, key: tuple[Any, ...], variant: Variant) -> None:
        """Keep ``variant`` (a miss: rare, so the threads of a process take a lock here)."""
        size = len(variant.data)
        with self.lock:
            self.misses += 1
            if size > self.max_bytes // 4:
                return                           # one file may not crowd out the rest
            old = self.entries.pop(key, None)
            if old is not None:
                self.bytes -= len(old.data)
            while self.entries and (len(self.entries) >= self.max_entries
                                    or self.bytes + size > self.max_bytes):
                first = next(iter(self.entries))
                self.bytes -= len(self.entries.pop(first).data)
            self.entries[key] = variant
            self.bytes += size


# -- the filter ------------------------------------------------------------------------------

class Scan:
    """What the filter reads of an answer's fields, in one pass."""

    __slots__ = ("ctype", "encoding", "cache_control", "content_range", "length", "etag")

    def __init__(self, headers: Any) -> None:
        self.ctype = self.encoding = self.cache_control = self.etag = None
        self.content_range = False
        self.length: int | None = None
        for name, value in headers:
            lname = name.lower()
            if lname == "content-type":
                self.ctype = value
            elif lname == "content-encoding":
                self.encoding = value
            elif lname == "cache-control":
                self.cache_control = value
            elif lname == "content-range":
                self.content_range = True
            elif lname == "etag":
                self.etag = value
            elif lname == "content-length":
                try:
                    self.length = int(value)
                except ValueError:
                    self.length = None


def _already_encoded(value: str | None) -> bool:
    if not value:
        return False
    return any(t.strip().lower() not in IDENTITY_CODINGS for t in value.split(",") if t.strip())


class Decision:
    """What the filter did for one static answer and request kind, to do again at once."""

    __slots__ = ("src", "dc", "server", "kind", "key", "vary", "body")

    def __init__(self, src: Any, dc: Any, server: Any, kind: str, key: Any = None,
                 vary: Any = None, body: Any = None) -> None:
        self.src, self.dc, self.server, self.kind = src, dc, server, kind
        self.key, self.vary, self.body = key, vary, body


class Compressor:
    """The filter of one process: the chains, the static variants, the decisions."""

    def __init__(self) -> None:
        self.chains = Chains()
        self.cache = VariantCache()
        self.decisions: dict[tuple[Any, ...], Decision] = {}

    # The hot path: a static file's answer again (same headers tuple, same Accept-Encoding).
    def filter(self, ctx: RequestContext, resp: Response) -> Response:
        headers = resp.headers
        if type(headers) is tuple and not ctx.env and ctx.handler == DEFAULT_HANDLER:
            req = ctx.request
            key = (id(headers), req.header(b"accept-encoding"), req.method, resp.status)
            hit = self.decisions.get(key)
            if hit is not None and hit.src is headers and hit.dc is ctx.dir_config \
                    and hit.server is ctx.server:
                out = self._again(ctx, resp, hit)
                if out is not None:
                    return out
            return self._decide(ctx, resp, key)
        return self._decide(ctx, resp, None)

    def _again(self, ctx: RequestContext, resp: Response, hit: Decision) -> Response | None:
        kind = hit.kind
        if kind == "same":
            return resp
        if kind == "vary":
            if hit.key is not None:
                shared = self.cache.get(hit.key, resp.headers)
                if shared is not None and shared.data is resp.body:
                    return shared.get              # the shared identity Response, with Vary
            return Response(resp.status, hit.vary, resp.body, resp.close_connection,
                            resp.on_close)
        variant = self.cache.get(hit.key, resp.headers)
        if variant is None:
            return None
        _drop_body(resp)
        codec = hit.body
        ctx.notes[NOTE] = "hit"
        self._notes(ctx, codec, variant.size_in, len(variant.data))
        return variant.head if ctx.request.method == "HEAD" else variant.get

    def _decide(self, ctx: RequestContext, resp: Response, key: Any) -> Response:
        status = resp.status
        dc = ctx.dir_config
        ranged = status == 206
        if status < 200 or status == 204 or dc is None \
                or (ranged and ctx.handler != DEFAULT_HANDLER):
            return self._remember(key, ctx, resp, "same", resp)
        scan = Scan(resp.headers)
        ctype = scan.ctype
        if ctype is None and status == 304:
            ctype = ctx.notes.get("content_type")
        chain = self.chains(dc, media_type(ctype), ctx.filename)
        if not chain or (scan.content_range and not ranged) or _already_encoded(scan.encoding) \
                or (scan.cache_control and "no-transform" in scan.cache_control.lower()):
            return self._remember(key, ctx, resp, "same", resp)
        body = resp.body
        if getattr(resp, "local", False):       # the server's own page (exchange.py)
            return self._remember(key, ctx, resp, "same", resp)
        length = None if ranged else _known_length(ctx, resp, scan, status)
        if length is not None and length <= MIN_LENGTH:
            return self._remember(key, ctx, resp, "same", resp)
        env = ctx.env
        if env:
            only_html = env.get("gzip-only-text/html") == "1" and media_type(ctype) != "text/html"
            chain = tuple(c for c in chain if not env.get(c.env)
                          and not (c is GZIP and only_html))
            if not chain:
                return resp
        dont_vary = "dont-vary" in env
        accepts = accepted(ctx.request.header(b"accept-encoding"))
        force = "force-gzip" in env
        chosen = next((c for c in chain if c.coding in accepts or (c is GZIP and force)), None)
        server = ctx.server
        if status == 304:
            return self._not_modified(ctx, resp, chosen, scan, dont_vary)
        if chosen is None or ranged:             # a static 206: identity bytes, with Vary
            headers = rebuilt(resp.headers, None, "", dont_vary, None)
            if key is not None:
                # a shared Response (a small cached file) gets a shared twin with Vary, kept
                # in the variant cache, whose bound counts the bytes it holds
                ckey = None
                if resp.memo is not None and type(body) is bytes:
                    ckey = (id(resp.headers), status, "identity")
                    twin = Variant(resp.headers, body, len(body),
                                   Response(status, headers, body, memo=()),
                                   Response(status, headers, b"", memo=()))
                    self.cache.add(ckey, twin)
                self.decisions_add(key, Decision(resp.headers, dc, server, "vary", key=ckey,
                                                 vary=headers))
                if ckey is not None:
                    return twin.get
            return Response(status, headers, body, resp.close_connection, resp.on_close)
        return self._encode(ctx, resp, chosen, scan, key, dont_vary)

    def _remember(self, key: Any, ctx: RequestContext, resp: Response, kind: str,
                  out: Response) -> Response:
        if key is not None:
            self.decisions_add(key, Decision(resp.headers, ctx.dir_config, ctx.server, kind))
        return out

    def decisions_add(self, key: Any, decision: Decision) -> None:
        remember(self.decisions, key, decision, CACHE_MAX_ENTRIES)

    def _encode(self, ctx: RequestContext, resp: Response, codec: Codec, scan: Scan,
                key: Any, dont_vary: bool) -> Response:
        server = ctx.server
        params = codec.params(server)
        mode = codec.alter_etag(server)
        body = resp.body
        head = ctx.request.method == "HEAD"
        static = ctx.handler == DEFAULT_HANDLER and type(resp.headers) is tuple
        if isinstance(body, MultipartBody):
            return resp
        weak = scan.etag is not None and scan.etag.startswith("W/")
        keep = static and not dont_vary and not weak and not resp.close_connection
        ckey = (id(resp.headers), resp.status, codec.coding, params, mode)
        if keep:
            variant = self.cache.get(ckey, resp.headers)
            if variant is not None:              # made for the other method (GET / HEAD)
                _drop_body(resp)
                if key is not None:
                    self.decisions_add(key, Decision(resp.headers, ctx.dir_config, server,
                                                     "encoded", key=ckey, body=codec))
                ctx.notes[NOTE] = "hit"
                self._notes(ctx, codec, variant.size_in, len(variant.data))
                return variant.head if head else variant.get
        if isinstance(body, FileBody) or (head and static and body == b""):
            data = _static_bytes(ctx, body, scan)
            _drop_body(resp)
            if data is None:                     # changed under us: send no wrong length
                return Response(resp.status, rebuilt(resp.headers, codec, mode, dont_vary, None),
                                b"", True)
        elif type(body) is bytes or isinstance(body, (bytearray, memoryview)):
            data = bytes(body)
        elif hasattr(body, "__aiter__"):
            ctx.notes[NOTE] = "stream"
            done = self._stream_done(ctx, codec)
            return Response(resp.status, rebuilt(resp.headers, codec, mode, dont_vary, None),
                            AsyncEncoded(body, codec.stream(params), done),
                            resp.close_connection, resp.on_close)
        else:
            ctx.notes[NOTE] = "stream"
            done = self._stream_done(ctx, codec)
            return Response(resp.status, rebuilt(resp.headers, codec, mode, dont_vary, None),
                            Encoded(body, codec.stream(params), done),
                            resp.close_connection, resp.on_close)
        encoded = codec.whole(data, params)
        headers = rebuilt(resp.headers, codec, mode, dont_vary, len(encoded))
        self._notes(ctx, codec, len(data), len(encoded))
        if keep:
            variant = Variant(resp.headers, encoded, len(data),
                              Response(resp.status, headers, encoded, memo=()),
                              Response(resp.status, headers, b"", memo=()))
            self.cache.add(ckey, variant)
            if key is not None:
                self.decisions_add(key, Decision(resp.headers, ctx.dir_config, server, "encoded",
                                                 key=ckey, body=codec))
            ctx.notes[NOTE] = "miss"
            return variant.head if head else variant.get
        ctx.notes[NOTE] = "once"
        return Response(resp.status, headers, b"" if head else encoded, resp.close_connection,
                        resp.on_close)

    def _not_modified(self, ctx: RequestContext, resp: Response, chosen: Codec | None,
                      scan: Scan, dont_vary: bool) -> Response:
        """Rule 5."""
        if chosen is None or scan.etag is None:
            return Response(304, list(rebuilt(resp.headers, None, "", dont_vary, None)))
        mode = chosen.alter_etag(ctx.server)
        inm = ctx.request.header(b"if-none-match") or b""
        tags = {t.strip() for t in inm.decode("latin-1").split(",")}
        bare = scan.etag[2:] if scan.etag.startswith("W/") else scan.etag
        mine = suffixed(bare, chosen.coding)
        if mode == "AddSuffix" and mine not in tags and "W/" + mine not in tags \
                and (bare in tags or "W/" + bare in tags):
            mode = "NoChange"                   # the client named the identity tag: keep it
        headers = [(n, v) for n, v in rebuilt(resp.headers, chosen, mode, dont_vary, None,
                                              keep_length=True)
                   if n != "Content-Encoding"]
        return Response(304, headers)

    def _notes(self, ctx: RequestContext, codec: Codec, size_in: int, size_out: int) -> None:
        notes = codec.notes(ctx.server)
        if not notes:
            return
        out = max(size_out - codec.overhead, 0)
        for kind, name in notes:
            if kind == "input":
                ctx.notes[name] = str(size_in)
            elif kind == "output":
                ctx.notes[name] = str(out)
            else:
                ctx.notes[name] = str(out * 100 // size_in) if size_in else "-"

    def _stream_done(self, ctx: RequestContext, codec: Codec) -> Any:
        def done(enc: Any) -> None:
            self._notes(ctx, codec, enc.total_in, enc.total_out)
        return done


def _known_length(ctx: RequestContext, resp: Response, scan: Scan, status: int) -> int | None:
    """The identity body's length when known: bytes, a file region, a HEAD's Content-Length,
    a static 304's file."""
    body = resp.body
    if status == 304:
        if ctx.handler == DEFAULT_HANDLER and ctx.filename:
            try:
                return os.stat(ctx.filename).st_size
            except OSError:
                return None
        return None
    if type(body) is bytes:
        if not body and ctx.request.method == "HEAD":
            return scan.length
        return len(body)
    if isinstance(body, (FileBody, MultipartBody)):
        return body.length
    return scan.length


def _static_bytes(ctx: RequestContext, body: Any, scan: Scan) -> bytes | None:
    """A static answer's identity bytes: its file region, or for a HEAD the file itself."""
    try:
        if isinstance(body, FileBody):
            fd, offset, length = body.file.fileno(), body.offset, body.length
            parts = []
            while length > 0:
                piece = os.pread(fd, length, offset)
                if not piece:
                    return None
                parts.append(piece)
                offset += len(piece)
                length -= len(piece)
            return b"".join(parts)
        with open(ctx.filename or "", "rb") as f:  # HEAD: the handler opened nothing
            data = f.read()
    except OSError:
        return None
    return data if scan.length is None or len(data) == scan.length else None


def _drop_body(resp: Response) -> None:
    """Close a file the handler opened for a body that is not sent."""
    if isinstance(resp.body, FileBody):
        try:
            resp.body.close()
        except OSError:
            pass
