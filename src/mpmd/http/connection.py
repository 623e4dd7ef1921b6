"""The server side of one HTTP/1.1 connection, sans I/O, on llhttp (httptools).

Theory of operation: ``receive_data`` feeds bytes to ``httptools.HttpRequestParser``; its
callbacks turn what it finds into events on a FIFO queue; ``next_event`` pops them.  llhttp
parses ahead (a pipelined burst yields all its requests in one feed), so the queue may hold
the events of several requests; the consumer still sees them one cycle at a time.

Rule 1: events come out as ``Request [Data...] EndOfMessage`` per request; after
        ``EndOfMessage`` the connection yields ``PAUSED`` until ``start_next_cycle()``.
Rule 2: an error is queued *after* the events that preceded it, so earlier pipelined
        requests are answered before the ``ProtocolError`` is raised; once raised it is
        raised again on every later call, and nothing more is parsed (RFC 9112 9.6: the
        stream cannot be resynchronised after a framing error).
Rule 3: after a request that does not keep the connection alive, bytes that follow it are
        ignored and the next cycle yields ``ConnectionClosed`` (RFC 9112 9.6).
Rule 4: llhttp owns the syntax (strict mode: no bare LF, no bare CR, no obs-fold, no NUL,
        CL+TE rejected, CL digits and overflow checked).  This module adds what llhttp does
        not: the limits, Host rules (RFC 9112 3.2), version policy (1.x only, 1.2+ answered as
        1.1, RFC 9110 6.2), Transfer-Encoding policy (RFC 9112 6.3: a final coding other
        than chunked is 400, an unknown coding before chunked 501), absolute-form targets,
        and no fragment in a request-target (RFC 9112 3.2: neither form has one; httpd 400).
Rule 5: the leniencies turned on: ``lenient_version``, so that HTTP/1.2 parses (the version
        is then checked here: 505 for any major other than 1); ``lenient_keep_alive``, so that
        a ``Connection`` field among the trailers does not end the connection in llhttp (Rule 3
        is kept here: a request that does not keep the connection alive stops the parser in
        ``on_message_complete``); and, only while a chunked body is parsed, the Content-Length
        and Transfer-Encoding leniencies, so that those fields in the trailer section are
        dropped as any trailer is (Rule 8).
Rule 6: a refused request's ``ProtocolError`` carries its method once the request line was
        read (``method``), so a refused HEAD is answered without content (RFC 9110 9.3.2), and
        what was received of its request line (``line``), for the access log's %r.
Rule 7: a request-target with raw bytes above 0x7F (clients that send UTF-8 paths unescaped)
        is taken as sent, as httpd and nginx take it: llhttp refuses those bytes in a URL, so
        a read that holds any, outside a body, is fed in pieces: each run of such bytes that
        falls in the request-target (llhttp is asked: an empty feed flushes the URL span only
        while it is open) goes to llhttp as as many "x", and the target keeps the real bytes.
        Elsewhere (a field value's obs-text, a body) the bytes go to llhttp as they are.  A
        pipelined request behind a body in the same read is not looked at (400, as before).
Rule 8: trailer fields are counted against the limits and dropped, never merged into the
        head (RFC 9110 6.5.1: a sender must not put framing, routing or control fields there,
        and a recipient must not take them as header fields).  A malformed or repeated
        Content-Length among them is still a 400 (llhttp checks its digits in any section).
Rule 9: an unknown method is judged on its whole request line, however the reads cut it:
        501 for "BLAH / HTTP/1.1", 400 for a line that is no request line at all; the error
        waits for the line's end (or the peer's close, or LimitRequestLine).

Methods: llhttp accepts a fixed list (RFC 9110, WebDAV, and a few more); any other method
is answered 501 (Apache's answer to an unknown method).  CONNECT is answered 405: this is
an origin server, not a proxy.  An ``Upgrade`` on a request with a body is rejected (llhttp
would skip the body).

Rule 10: a GET asking to upgrade to websocket (``Upgrade: websocket``, ``Connection: upgrade``)
        holds what follows its head (``_tail``) unparsed: after its answer either the handler
        took the connection over (``take_over``: an accepted websocket, mpmd/http/websocket.py;
        the held bytes are its first frames, and no HTTP is parsed any more) or it was a plain
        answer, and ``start_next_cycle`` parses them as HTTP.  Any other upgrade (h2c, or to a
        handler that is no websocket endpoint) is so served as a plain request, as httpd does.
"""

from __future__ import annotations

import re
import sys
from collections import deque
from typing import NoReturn, Union

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

from mpmd.http.errors import ProtocolError
from mpmd.http.events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Request,
)
from mpmd.http.limits import DEFAULT_LIMITS, Limits

_Queued = Union[Request, Data, EndOfMessage, ProtocolError]
_EOM = EndOfMessage()
_TRAILER = (b"", b"")

# Methods as str, so the hot path does not decode the common ones.
_METHODS = {m.encode(): m for m in (
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT",
    "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH",
)}

# llhttp's version string -> ours; anything else is decided in _version().
_VERSIONS = {"1.1": "1.1", "1.0": "1.0"}

# More than the longest method llhttp parses (GET_PARAMETER, 13; refused later for HTTP/1.x).
_LONGEST_METHOD = 16

# An int needle: ``b"#" in url`` first tries the needle as an int, and on 3.11 that builds
# and drops a TypeError, once per request.
_HASH = ord("#")

# Characters allowed in a Host value / authority: RFC 3986 reg-name, IP-literal, port.
_HOST_CHARS = (b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
               b"-._~!$&'()*+,;=%:[]")

# llhttp's error text -> the answer it deserves; anything else is a 400.
_LLHTTP_ERRORS: dict[str, tuple[int, str]] = {
    "Invalid method encountered": (501, "method not implemented"),
    "Request has invalid `Transfer-Encoding`": (501, "transfer coding not implemented"),
    "Pause on PRI/Upgrade": (505, "HTTP/2 is not supported"),
}

# llhttp's error texts for a failure after the request line (in the fields): that line was then
# read whole, and the access log gets it (Rule 6).  Any other llhttp error is in the line.
_FIELD_STAGE = ("header", "Content-Length", "Transfer-Encoding", "Duplicate", "Data after")

# A run of bytes llhttp refuses in a URL (Rule 7), and what it is fed instead.
_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
_STAND_IN = b"x"


class _Probe(bytes):
    """A URL placeholder whose replacement shows that ``on_url`` ran (``_url_open``)."""


# Why the parse stopped at end of stream, by the parser's position.
_EOF_REASONS = ("", "connection closed in the request head", "connection closed in the body")

IDLE, HEAD, BODY = 0, 1, 2


class Connection:
    """One client connection's HTTP/1.1 request stream.  See the module docstring."""

    __slots__ = (
        "limits", "_parser", "_events", "_paused", "_closing", "_dead", "_eof",
        "_phase", "_progress", "_stall", "_head_bytes", "_url", "_headers", "_section",
        "_host", "_hosts", "_good_host", "_cl", "_te", "_expect", "_chunked", "_body_seen",
        "_error",
        "_keep_alive", "_max_field", "_max_fields", "_max_line", "_max_target", "_max_section",
        "_upgrade", "_undecided", "_ws", "_tail",
    )

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        # limits.py Rule 3: a line of limit + 1 bytes passes.  The request line is method +
        # target + 10 ("  HTTP/1.1"); a target of at most _max_target passes whatever the
        # method, so only a longer one costs asking llhttp for the method.
        self._max_field = limits.field_size + 1
        self._max_line = limits.request_line + 1 - 10
        self._max_target = self._max_line - _LONGEST_METHOD
        self._max_section = limits.header_section
        self._max_fields = limits.fields or sys.maxsize       # LimitRequestFields 0: no limit
        self._parser = HttpRequestParser(self)
        self._parser.set_dangerous_leniencies(lenient_version=True, lenient_keep_alive=True)
        self._events: deque[_Queued] = deque()
        self._paused = False          # EndOfMessage handed out; waiting for start_next_cycle
        self._closing = False         # a request without keep-alive was parsed (Rule 3)
        self._dead = False            # parsing stopped (error queued or closing)
        # An unknown method's error, waiting for the rest of its line (Rule 9): the head so far
        self._undecided: bytearray | None = None
        self._eof = False
        self._phase = IDLE            # where the *parser* is: IDLE, HEAD or BODY
        self._progress = False        # a head callback fired during the current feed
        self._stall = 0               # bytes fed with no head callback (one unfinished line)
        self._head_bytes = 0
        self._error: ProtocolError | None = None
        self._good_host: bytes | None = None   # the last Host value that passed _host_ok
        self._keep_alive = True
        self._ws = False              # the message being parsed is a websocket upgrade
        self._tail: bytearray | None = None   # held after a websocket upgrade (Rule 10)
        self._reset_message()

    def _reset_message(self) -> None:
        self._reset_head()
        self._chunked = False
        self._body_seen = 0

    def _reset_head(self) -> None:
        """What the next head starts from; the body's fields (_chunked, _body_seen) stay."""
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._section = 0
        self._host: bytes | None = None
        self._hosts = 0
        self._cl: bytes | None = None
        self._te: tuple[bytes, ...] = ()  # a tuple: most heads have none, and () is no allocation
        self._expect: bytes | None = None
        self._upgrade = False             # an Upgrade field came: ask llhttp should_upgrade()

    # -- the public API -------------------------------------------------------------

    def receive_data(self, data: bytes | memoryview) -> None:
        """Feed bytes read from the peer; ``b""`` means the peer closed its side.  ``data`` may
        be a view of the caller's receive buffer: nothing keeps it after the call returns."""
        if self._tail is not None:           # Rule 10
            if data:
                self._tail += data
            else:
                self._eof = True
            return
        if not data:
            self._eof = True
            if self._undecided is not None:
                self._decide_method_error()
            return
        if self._dead:
            if self._undecided is not None:
                self._undecided += data
                self._decide_method_error()
            return
        self._progress = False
        if self._phase != BODY and not (
                data.isascii() if type(data) is bytes else bytes(data).isascii()):
            self._feed_high(bytes(data))     # Rule 7
        else:
            try:                             # _feed's first round, inline: once per read
                self._parser.feed_data(data)
            except HttpParserUpgrade as exc:
                self._upgraded(data[exc.args[0]:])
            except HttpParserError as exc:
                self._parse_error(data, exc)
        if self._phase == HEAD and not self._dead:
            self._head_bytes += len(data)
            self._stall = 0 if self._progress else self._stall + len(data)
            if self._stall > self.limits.stall_bytes:
                error = ProtocolError(400, "request header field exceeds LimitRequestFieldSize")
                error.line = self.received_line()
                self._fail(error)

    def next_event(self) -> Event:
        """The next event; raises ``ProtocolError`` for a request that must be refused."""
        if self._paused:
            return PAUSED
        events = self._events
        if events:
            event = events.popleft()
            if event is _EOM:
                self._paused = True
            elif type(event) is ProtocolError:
                events.appendleft(event)
                raise event
            return event  # type: ignore[return-value]
        if not (self._closing or self._eof):
            return NEED_DATA                 # _when_empty's common answer, without the call
        return self._when_empty()

    def start_next_cycle(self) -> None:
        """Begin the next request/response cycle after the response has been sent."""
        if not self._paused:
            raise RuntimeError("start_next_cycle() before the request's EndOfMessage")
        self._paused = False
        tail = self._tail
        if tail is not None:                 # Rule 10: a plain answer; the rest is HTTP
            self._tail = None
            self._ws = False
            if tail:
                self._feed(bytes(tail))

    def take_over(self) -> bytes:
        """Rule 10: the handler took the connection after a websocket upgrade's answer: the
        bytes held after its head; nothing more is parsed."""
        tail = bytes(self._tail or b"")
        self._tail = None
        self._dead = self._closing = True
        return tail

    @property
    def upgrading(self) -> bool:
        """True while a websocket upgrade's answer is pending (Rule 10)."""
        return self._tail is not None

    def has_buffered_request(self) -> bool:
        """True when the next request (or its error) is already parsed and queued."""
        events = self._events
        if not events:
            return False
        if self._paused:
            return True
        return any(type(e) is not Data and e is not _EOM for e in events)

    def message_buffered(self) -> bool:
        """True when nothing more of the current request will come from the peer: its end
        (EndOfMessage) or an error is queued, or the peer closed its side.  A transport that
        reads a body before the handler runs (the event MPM's listener) waits for this."""
        if self._eof:
            return True
        return any(e is _EOM or type(e) is ProtocolError for e in self._events)

    def received_line(self) -> bytes | None:
        """The request line of the head being read, once it was read whole (the access log's
        %r for a head refused before its end, a 408 say); else None, as httpd logs "-"."""
        if self._phase != HEAD or not self._url or self._dead or self._url_open():
            return None
        version = self._parser.get_http_version()
        if version == "0.0":                 # the first head's version has not arrived
            return None
        return self._line(version)

    def _line(self, version: str) -> bytes:
        return b"%s %s HTTP/%s" % (self._parser.get_method(), self._url, version.encode())

    def _url_open(self) -> bool:
        """Whether llhttp is inside the request-target: an empty feed flushes the URL span only
        while it is open, and ``on_url`` then replaces the probe (Rule 7)."""
        url = self._url
        probe = self._url = _Probe(url)
        try:
            self._parser.feed_data(b"")
        except HttpParserError:
            pass
        opened = self._url is not probe
        self._url = url
        return opened

    @property
    def partial_request(self) -> bool:
        """True when the peer has sent part of a request head (Timeout, not KeepAliveTimeout)."""
        return self._phase == HEAD

    @property
    def bytes_buffered(self) -> int:
        """Bytes received but not yet handed out: an unfinished head (upper bound) + body data."""
        pending = self._head_bytes if self._phase == HEAD else 0
        if self._tail is not None:
            pending += len(self._tail)
        return pending + sum(len(e.data) for e in self._events if type(e) is Data)

    @property
    def closing(self) -> bool:
        """True once no further request will be read from this connection."""
        return self._closing or self._dead or self._eof

    # -- feeding llhttp -------------------------------------------------------------

    def _feed(self, data: bytes | memoryview, read: bytes | memoryview | None = None) -> None:
        """Feed ``data``, and what follows each upgrade request llhttp stopped at: only plain
        requests get that far (CONNECT and upgrades with a body were refused in
        on_headers_complete), so parsing goes on after them.  ``read``: the whole read
        ``data`` is a piece of (Rule 7), for an error's request line."""
        while data and not self._dead:
            try:
                self._parser.feed_data(data)
                return
            except HttpParserUpgrade as exc:
                data = data[exc.args[0]:]
                if self._ws:
                    self._tail = bytearray(data)         # Rule 10
                    return
            except HttpParserError as exc:
                self._parse_error(data if read is None else read, exc)
                return

    def _upgraded(self, rest: bytes | memoryview) -> None:
        """llhttp stopped after an upgrade request: hold the rest (Rule 10) or parse it."""
        if self._ws:
            self._tail = bytearray(rest)
        else:
            self._feed(rest)

    def _feed_high(self, data: bytes) -> None:
        """Rule 7: ``data`` holds bytes above 0x7F; those in the request-target reach llhttp
        as stand-ins, and ``_url`` gets them back."""
        start = 0
        for run in _HIGH_RUN.finditer(data):
            first, end = run.span()
            self._feed(data[start:first], data)
            start = first
            if self._tail is not None:       # Rule 10: held after a websocket upgrade
                self._tail += data[first:]
                return
            if self._dead or self._phase == BODY:
                break                        # a body's bytes go as they are
            if self._phase == HEAD and self._url_open():
                self._feed(_STAND_IN * (end - first), data)
                if not self._dead:
                    self._url = self._url[:first - end] + data[first:end]
            else:
                self._feed(data[first:end], data)
            start = end
        if not self._dead and self._tail is None:
            self._feed(data[start:], data)

    def _parse_error(self, data: bytes | memoryview, exc: HttpParserError) -> None:
        if not self._closing:
            error = self._error
            if error is None:
                if str(exc) == _BAD_METHOD and self._phase == HEAD:
                    head = _failing_head(bytes(data))
                    if b"\n" not in head and len(head) <= self.limits.request_line:
                        self._undecided = bytearray(head)    # Rule 9: not judged on a part
                        self._dead = True
                        return
                error = _from_llhttp(exc, bytes(data))
                known = error.status != 501      # 501: an unknown method; llhttp's method
            else:                                # field is then the previous request's
                known = True
            if self._phase == HEAD:              # Rule 6
                if known:
                    error.method = _METHODS.get(self._parser.get_method())
                if error.line is None:
                    error.line = self._failed_line(data, str(exc))
            self._fail(error)
        self._dead = True

    def _decide_method_error(self) -> None:
        """Rule 9: an unknown method's line has ended (or the peer closed, or the line is over
        LimitRequestLine): 501 for a request line, 400 for anything else."""
        head = self._undecided
        assert head is not None
        if b"\n" not in head and not self._eof and len(head) <= self.limits.request_line:
            return
        self._undecided = None
        error = _from_llhttp(HttpParserError(_BAD_METHOD), bytes(head))
        if error.line is None:
            error.line = _first_line(bytes(head), self.limits.request_line + 1)
        self._events.append(error)

    def _failed_line(self, data: bytes | memoryview, reason: str) -> bytes:
        """Rule 6: the request line of a head llhttp (or a check here) stopped in: rebuilt when
        the failure came after it, else the failing head's first line as received."""
        if self._url and (self._error is not None or any(w in reason for w in _FIELD_STAGE)):
            return self._line(self._parser.get_http_version())
        return _first_line(bytes(data), self.limits.request_line + 1)

    def _fail(self, error: ProtocolError) -> None:
        if not self._dead:
            self._events.append(error)
            self._dead = True

    def _reject(self, status: int, reason: str) -> NoReturn:
        """Stop parsing from inside a callback; ``_feed`` queues the error."""
        self._error = ProtocolError(status, reason)
        raise self._error

    def _when_empty(self) -> Event:
        if self._closing:
            return ConnectionClosed()
        if self._eof:
            if self._phase == IDLE:
                return ConnectionClosed()
            self._fail(ProtocolError(400, _EOF_REASONS[self._phase]))
            return self.next_event()
        return NEED_DATA

    # -- llhttp callbacks (called by httptools; hot path) ---------------------------

    def on_message_begin(self) -> None:
        self._ws = False
        self._phase = HEAD
        self._progress = True
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._progress = True
        if self._url:
            url = self._url + url
        elif url[:1] == b"*" and self._parser.get_method() == b"PRI":
            self._reject(505, "HTTP/2 connection preface on an HTTP/1.1 port")
        if len(url) > self._max_target and len(url) + len(self._parser.get_method()) > self._max_line:
            self._too_long(url)
        self._url = url

    def _too_long(self, url: bytes) -> NoReturn:
        """414; the log's %r is the line's first LimitRequestLine + 1 bytes, as httpd's."""
        error = self._error = ProtocolError(414, "request line exceeds LimitRequestLine")
        error.line = (self._parser.get_method() + b" " + url)[:self.limits.request_line + 1]
        raise error

    def on_header(self, name: bytes, value: bytes) -> None:
        self._progress = True
        headers = self._headers
        size = len(name) + len(value) + 2
        if size > self._max_field or len(headers) >= self._max_fields:
            self._field_limit(size)
        self._section += size
        if self._phase == BODY:
            headers.append(_TRAILER)     # a trailer: counted, not kept
            return
        lname = name.lower()
        value = value.rstrip(b" \t")
        headers.append((lname, value))
        if lname == b"host":                 # in every request: no call for it
            self._hosts += 1
            self._host = value
            return
        watch = _WATCHED.get(lname)
        if watch is not None:
            watch(self, value)

    def _field_limit(self, size: int) -> NoReturn:
        if size > self._max_field:
            self._reject(400, "request header field exceeds LimitRequestFieldSize")
        self._reject(400, "number of request header fields exceeds LimitRequestFields")

    def on_headers_complete(self) -> None:
        self._progress = True
        limit = self._max_section
        if limit is not None and self._section > limit:
            self._reject(431, "request header section too large")
        request = _build(self)
        self._keep_alive = request.keep_alive
        self._phase = BODY
        self._stall = 0
        self._reset_head()                   # the body needs none of the head's fields
        self._events.append(request)

    def on_body(self, body: bytes) -> None:
        if self._chunked:
            self._body_seen += len(body)
            limit = self.limits.body
            if limit and self._body_seen > limit:
                self._reject(413, "chunked request body exceeds LimitRequestBody")
        self._events.append(Data(body))

    def on_message_complete(self) -> None:
        self._events.append(_EOM)
        self._phase = IDLE
        if self._chunked:                    # trailers may have added to the head's fields
            self._reset_message()
            self._parser.set_dangerous_leniencies(lenient_chunked_length=False,
                                                  lenient_transfer_encoding=False)
        if not self._keep_alive:
            self._closing = True
            self._dead = True
            # Rule 3: llhttp parses nothing after it (Rule 5).  A new instance each time: one
            # shared instance raised again keeps every raise's frames (and their Connection)
            # on its __traceback__.
            raise _Stop()


# -- header bookkeeping, by lower-cased name --------------------------------------

def _saw_cl(conn: Connection, value: bytes) -> None:
    conn._cl = value


def _saw_te(conn: Connection, value: bytes) -> None:
    conn._te += (value,)


def _saw_expect(conn: Connection, value: bytes) -> None:
    conn._expect = value


def _saw_upgrade(conn: Connection, value: bytes) -> None:
    conn._upgrade = True
    if b"websocket" in value.lower():
        conn._ws = True


_WATCHED = {                          # Host is counted in on_header itself
    b"content-length": _saw_cl,
    b"transfer-encoding": _saw_te,
    b"expect": _saw_expect,
    b"upgrade": _saw_upgrade,
}


# -- building the Request (once per request, in on_headers_complete) ---------------

def _build(conn: Connection) -> Request:
    parser = conn._parser
    raw_method = parser.get_method()
    method = _METHODS.get(raw_method) or raw_method.decode("ascii")
    if method == "CONNECT":
        conn._reject(405, "CONNECT is not supported by an origin server")
    llhttp_version = parser.get_http_version()
    version = _VERSIONS.get(llhttp_version) or _version(conn, llhttp_version)
    headers = conn._headers
    url = conn._url
    host = conn._host
    if url[:1] == b"/" and _HASH not in url and conn._hosts == 1 \
            and (host == conn._good_host or _host_ok(conn, host)):
        path, _, query = url.partition(b"?")      # origin-form with one valid Host: the common case
    else:
        path, query, authority = _split_target(conn, url, method)
        if authority is not None:
            headers = _with_host(headers, authority)   # RFC 9112 3.2.2: the target wins
        _check_host(conn, version, authority)
    if conn._te or conn._cl is not None:
        content_length, chunked = _framing(conn, version)
    else:
        content_length, chunked = None, False
    keep_alive = parser.should_keep_alive() and not (chunked and version == "1.0")
    if conn._upgrade and parser.should_upgrade() and (chunked or content_length):
        conn._reject(400, "Upgrade request with a body")
    # Positional: (method, target, path, query, http_version, headers, keep_alive,
    # expect_continue, content_length, chunked); keywords cost a third more, once per request.
    return Request(method, url, path, query, version, tuple(headers), keep_alive,
                   conn._expect is not None and _expect_continue(conn, version),
                   content_length, chunked)


def _host_ok(conn: Connection, host: bytes) -> bool:
    """Whether Host is a valid authority (``_authority_ok``); the last good one is remembered,
    as a client sends the same Host on every request of a connection (translate builds a table
    a call)."""
    if not _authority_ok(host, True):
        return False
    conn._good_host = host
    return True


def _authority_ok(authority: bytes, host_header: bool = False) -> bool:
    """RFC 3986 host [":" port]: allowed characters only, an IP-literal closed by "]", at most
    one ":" outside it, and a port of digits only (``Host: x:abc`` is httpd's 400 too).  As
    httpd's fix_hostname, a name is not empty and has no empty label ("a..b", ".a"; one
    trailing dot is the root's); a Host header's ":" has a port after it (httpd takes
    ``http://x:/`` but not ``Host: x:``)."""
    if authority.translate(None, _HOST_CHARS):
        return False
    if authority[:1] == b"[":
        end = authority.find(b"]")
        if end < 0:
            return False
        rest = authority[end + 1:]
        if rest and rest[:1] != b":":
            return False
        sep, port = rest[:1], rest[1:]
    else:
        name, sep, port = authority.partition(b":")
        if b"[" in authority or b"]" in authority or b":" in port:
            return False
        if not name or name[:1] == b"." or b".." in name:
            return False
    return port.isdigit() if sep and (port or host_header) else True


def _version(conn: Connection, llhttp_version: str) -> str:
    """1.0 and 1.1 as is; 1.2+ answered as 1.1 (RFC 9110 6.2); other majors get 505."""
    version = _VERSIONS.get(llhttp_version)
    if version is not None:
        return version
    if llhttp_version.startswith("1."):
        return "1.1"
    conn._reject(505, f"HTTP/{llhttp_version} not supported")


def _split_target(conn: Connection, url: bytes, method: str) -> tuple[bytes, bytes, bytes | None]:
    """(path, query, authority) of the request-target (RFC 9112 3.2)."""
    if url[:1] == b"/":
        authority = None
    elif url == b"*" and method == "OPTIONS":
        return b"*", b"", None
    else:
        authority, url = _absolute_form(conn, url)
    if b"#" in url:
        conn._reject(400, "fragment in request-target")
    path, sep, query = url.partition(b"?")
    return path, query, authority


def _absolute_form(conn: Connection, url: bytes) -> tuple[bytes, bytes]:
    scheme, sep, rest = url.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        conn._reject(400, "request-target must be origin-form or an http(s) absolute URI")
    end = len(rest)
    for stop in (b"/", b"?", b"#"):
        index = rest.find(stop)
        if 0 <= index < end:
            end = index
    authority, path = rest[:end], rest[end:]
    if not authority or not _authority_ok(authority):
        conn._reject(400, "invalid authority in absolute-form request-target")
    if not path.startswith(b"/"):
        path = b"/" + path
    return authority, path


def _with_host(headers: list[tuple[bytes, bytes]], authority: bytes) -> list[tuple[bytes, bytes]]:
    kept = [(k, v) for k, v in headers if k != b"host"]
    kept.append((b"host", authority))
    return kept


def _check_host(conn: Connection, version: str, authority: bytes | None) -> None:
    """RFC 9112 3.2: exactly one Host on HTTP/1.1, with a valid value."""
    if conn._hosts > 1:
        conn._reject(400, "more than one Host header field")
    host = conn._host
    if host is None:
        # even with an absolute-form target, which then gives the host (RFC 9112 3.2: "any
        # HTTP/1.1 request message that lacks a Host header field"; httpd: 400)
        if version == "1.1":
            conn._reject(400, "HTTP/1.1 request without Host")
        return
    if not _authority_ok(host, True):
        conn._reject(400, "invalid Host header value")


def _framing(conn: Connection, version: str) -> tuple[int | None, bool]:
    """(content_length, chunked); llhttp already refused CL+TE and malformed CL."""
    if conn._te:
        codings = [c.strip().lower() for c in b",".join(conn._te).split(b",")]
        if codings[-1] != b"chunked":
            # RFC 9112 6.3 item 4: the length cannot be determined; 400 and close (httpd too)
            conn._reject(400, "final transfer coding is not chunked")
        if any(c != b"chunked" for c in codings):
            conn._reject(501, "transfer coding other than chunked")
        if len(codings) != 1:
            conn._reject(400, "chunked applied more than once")
        conn._chunked = True
        # Rule 8: CL and TE may come again in the trailer section; the head was checked above
        conn._parser.set_dangerous_leniencies(lenient_chunked_length=True,
                                              lenient_transfer_encoding=True)
        return None, True
    if conn._cl is None:
        return None, False
    length = int(conn._cl)
    limit = conn.limits.body
    if limit and length > limit:
        conn._reject(413, "Content-Length exceeds LimitRequestBody")
    return length, False


def _expect_continue(conn: Connection, version: str) -> bool:
    """RFC 9110 10.1.1: only 100-continue is known; others get Apache's 417."""
    expect = conn._expect
    if expect is None:
        return False
    if expect.lower() != b"100-continue":
        conn._reject(417, "unsupported expectation")
    return version == "1.1"


def _from_llhttp(exc: HttpParserError, data: bytes = b"") -> ProtocolError:
    text = str(exc)
    status, reason = _LLHTTP_ERRORS.get(text, (400, text))
    if status == 501 and text == "Invalid method encountered" and not _looks_like_request_line(data):
        # "THIS IS NOT HTTP": not an unknown method but no request line at all (httpd: 400).
        return ProtocolError(400, "malformed request line")
    return ProtocolError(status, reason)


class _Stop(Exception):
    """Raised in a callback to stop llhttp after a request that closes the connection."""


def _first_line(data: bytes, most: int) -> bytes:
    """Error path only (Rule 6): the first line of the failing head in ``data``: the first head
    whose line is not a request llhttp takes (earlier pipelined requests parsed fine), at most
    ``most`` bytes, without its CR."""
    heads = [h.lstrip(b"\r\n") for h in data.split(b"\r\n\r\n")]
    heads = [h for h in heads if h] or [b""]
    lines = [h.split(b"\n", 1)[0].rstrip(b"\r") for h in heads]
    for line in lines:
        method = line.split(b" ", 1)[0]
        if method not in _METHODS or not _REQUEST_LINE.match(line):
            return line[:most]
    return lines[-1][:most]


_REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^ \x00-\x20\x7f]+ HTTP/\d\.\d\r?$")


_BAD_METHOD = "Invalid method encountered"
_HEAD_END = re.compile(rb"\r\n\r\n")


def _failing_head(data: bytes) -> bytes:
    """Error path only: where the head llhttp stopped in begins, for an unknown method, to the
    end of ``data``: the first head whose method llhttp does not know (the heads before it
    parsed), leading blank lines off; the last one when every method is known."""
    starts = [0, *(m.end() for m in _HEAD_END.finditer(data))]
    heads = [rest for rest in (data[i:].lstrip(b"\r\n") for i in starts) if rest.strip()]
    for head in heads:                       # each runs to the end of ``data``
        if head.split(b" ", 1)[0] not in _METHODS:
            return head
    return heads[-1] if heads else b""


def _looks_like_request_line(data: bytes) -> bool:
    """Error path only: is the failing request's first line "token SP target SP HTTP/x.y"?"""
    line = _failing_head(data).split(b"\n", 1)[0]
    return bool(_REQUEST_LINE.match(line))
