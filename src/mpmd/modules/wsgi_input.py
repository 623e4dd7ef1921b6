"""wsgi.input and wsgi.errors: the two streams PEP 3333 puts in the environ.

Rule 1: wsgi.input is the driver's BodyReader (``ctx.body``) itself whenever it already has
        ``read``, ``readline``, ``readlines`` and ``__iter__`` -- no wrapper on the hot path.
        A reader lacking some of them is wrapped once per request by ``InputStream``.
Rule 2: the reader enforces LimitRequestBody and chunked framing; at the end of the body it
        returns ``b""``, so ``wsgi.input_terminated`` is always True (apps may read to EOF).
Rule 3: wsgi.errors writes whole lines to the ErrorLog (the process's stderr, which the master
        points at ErrorLog), prefixed like httpd's mod_wsgi messages.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterator

_WSGI_INPUT_ATTRS = ("read", "readline", "readlines", "__iter__")
_complete_types: dict[type, bool] = {}


class InputStream:
    """Adds the PEP 3333 methods a minimal BodyReader lacks (readlines, iteration)."""

    __slots__ = ("_body",)

    def __init__(self, body: Any) -> None:
        self._body = body

    def read(self, size: int = -1) -> bytes:
        if size is None:
            size = -1
        return self._body.read(size)

    def readline(self, size: int = -1) -> bytes:
        if size is None:
            size = -1
        return self._body.readline(size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line


def wsgi_input(body: Any) -> Any:
    """``body`` itself when it already speaks PEP 3333 (Rule 1), else a wrapper."""
    cls = type(body)
    complete = _complete_types.get(cls)
    if complete is None:
        complete = all(hasattr(cls, a) for a in _WSGI_INPUT_ATTRS)
        _complete_types[cls] = complete
    return body if complete else InputStream(body)


class ErrorStream:
    """wsgi.errors: text written by the application goes to the ErrorLog line by line."""

    def __init__(self, sink: Callable[[str], Any] | None = None, prefix: str = "") -> None:
        self._sink = sink
        self._prefix = prefix
        self._partial = ""

    def _emit(self, line: str) -> None:
        text = f"{self._prefix}{line}\n"
        if self._sink is not None:
            self._sink(text)
        else:
            sys.stderr.write(text)

    def write(self, s: str) -> int:
        data = self._partial + s
        *lines, self._partial = data.split("\n")
        for line in lines:
            self._emit(line)
        return len(s)

    def writelines(self, seq: Any) -> None:
        for s in seq:
            self.write(s)

    def flush(self) -> None:
        if self._partial:
            self._emit(self._partial)
            self._partial = ""
        if self._sink is None:
            sys.stderr.flush()
